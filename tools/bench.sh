#!/usr/bin/env bash
# The full benchmark run: every bench_* program, 5 repetitions, aggregates only, JSON results in
# build/bench/results/<program>.json (the "bench" preset's build directory).
#
#   bash tools/bench.sh [extra google-benchmark arguments, e.g. --benchmark_filter=decode]
#
# Release build with -DEMASK_NATIVE=ON; tests and examples off. Installs libeigen3-dev and
# libbenchmark-dev when missing. EMASK_BUILD_DIR overrides the build directory.
set -euo pipefail

# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(emask_root)
cd "$root"

emask_ensure_build_tools
# shellcheck disable=SC2046
emask_ensure_packages libeigen3-dev libbenchmark-dev $(emask_compiler_packages)

build_dir=${EMASK_BUILD_DIR:-build/bench}
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
cmake "${cmake_args[@]}"
cmake --build "$build_dir" -j"$(emask_jobs)"

results="$build_dir/results"
mkdir -p "$results"
status=0
count=0
shopt -s nullglob
for b in "$build_dir"/bench/bench_*; do
  [ -f "$b" ] && [ -x "$b" ] || continue
  name=$(basename "$b")
  count=$((count + 1))
  echo
  echo "---- $name -> $results/$name.json"
  if ! "$b" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
       --benchmark_out="$results/$name.json" --benchmark_out_format=json "$@"; then
    echo "!!!! $name failed"
    status=1
  fi
done
echo
echo "bench: $count programs, results in $results"
exit "$status"
