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

build_dir=${EMASK_BUILD_DIR:-build/bench}
emask_configure_release "$build_dir" OFF
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
