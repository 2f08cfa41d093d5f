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

build_dir=${EMASK_BUILD_DIR:-build/perf}
emask_configure_release "$build_dir" OFF
cmake --build "$build_dir" --target emask_perf -j"$(emask_jobs)"

json=${EMASK_PERF_JSON:-$build_dir/perf.json}
"$build_dir/bench/emask_perf" --json "$json" "$@"
