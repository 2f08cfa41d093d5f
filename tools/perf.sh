#!/usr/bin/env bash
# The perf row: every kernel measured against this machine's own limits in one run.
#
#   bash tools/perf.sh                 the CI check (what `bash .ci/run perf` runs)
#   bash tools/perf.sh --full          also the variants the docs chart (naive, fused, log)
#
# Builds bench/perf/emask_perf.cpp (Release, -O3 -march=native) in build/perf (override with
# EMASK_BUILD_DIR) and runs it; JSON of the run in <build>/perf.json (override with
# EMASK_PERF_JSON). Each check fails only when its ratio is 2.5x worse than its target, after 3
# tries, so a loaded machine cannot fail it but an 8x regression does. Installs libeigen3-dev
# and libbenchmark-dev (the bench/ project needs it to configure) when missing.
#
# To regenerate the README table, docs/benchmarks.md and the charts from one run:
#   bash tools/perf.sh --full && python3 tools/bench_report.py build/perf/perf.json \
#     --readme README.md --benchmarks docs/benchmarks.md --img-dir docs/img \
#     --command "bash tools/perf.sh --full"
set -euo pipefail

# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(emask_root)
cd "$root"

emask_ensure_build_tools
# shellcheck disable=SC2046
emask_ensure_packages libeigen3-dev libbenchmark-dev $(emask_compiler_packages)

build_dir=${EMASK_BUILD_DIR:-build/perf}
cmake_args=(
  -S "$root" -B "$build_dir"
  -DCMAKE_BUILD_TYPE=Release
  -DEMASK_NATIVE=ON
  -DEMASK_BUILD_TESTS=OFF
  -DEMASK_BUILD_EXAMPLES=OFF
  -DEMASK_BUILD_BENCHMARKS=ON
)
if [ -n "${CXX:-}" ]; then cmake_args+=(-DCMAKE_CXX_COMPILER="$CXX"); fi
emask_fresh_build_dir "$build_dir" "${CXX:-default}|${cmake_args[*]}"
cmake "${cmake_args[@]}" >/dev/null
cmake --build "$build_dir" --target emask_perf -j"$(emask_jobs)"

json=${EMASK_PERF_JSON:-$build_dir/perf.json}
"$build_dir/bench/emask_perf" --json "$json" "$@"
