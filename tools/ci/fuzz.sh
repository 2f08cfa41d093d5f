#!/usr/bin/env bash
# CI row fuzz: builds tests/fuzz/fuzz_kernels.cpp with clang++ -fsanitize=fuzzer,address,undefined
# and runs it for a bounded time from the seed corpus tests/fuzz/corpus (new inputs go to a
# scratch copy, the repository is not modified). Prints the number of executions; fails on any
# finding (crash, sanitizer report, or a violated kernel property: see the harness).
#   bash tools/ci/fuzz.sh [seconds [runs]]   (default 60 s, no run limit; EMASK_FUZZ_SECONDS
#                                           and EMASK_FUZZ_RUNS also work)
#
# Two libFuzzer costs are switched off, both measured on the 1882-input corpus of a 15-minute
# run (one core): the entropic power schedule (-entropic=0), whose per-run feature-frequency
# update took 69% of the time with the ~35,000 features of the kernels' loops, and comparison
# tracing (-fno-sanitize-coverage=trace-cmp), which instruments every compare in the numeric
# inner loops while the decoder has no magic constants to solve. Together: 28 s -> 5 s.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=tools/lib.sh
source tools/lib.sh
seconds=${1:-${EMASK_FUZZ_SECONDS:-60}}
runs=${2:-${EMASK_FUZZ_RUNS:--1}}
cxx=${FUZZ_CXX:-clang++}
command -v "$cxx" >/dev/null 2>&1 || emask_ensure_packages clang
# libFuzzer's runtime (Debian: libclang-rt-<N>-dev, or part of libclang-common-<N>-dev).
if ! "$cxx" -print-file-name=libclang_rt.fuzzer-x86_64.a | grep -q /; then
  ver=$("$cxx" -dumpversion | cut -d. -f1)
  emask_ensure_packages "libclang-rt-$ver-dev" || emask_ensure_packages "libclang-common-$ver-dev"
fi
emask_ensure_packages libeigen3-dev
[ -d /usr/include/eigen3/Eigen ] && eigen=/usr/include/eigen3 ||
  eigen=$(pkg-config --variable=includedir eigen3)/eigen3
start=$SECONDS
build=build/ci-fuzz
mkdir -p "$build"
exe=$build/fuzz_kernels
"$cxx" -std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-coverage=trace-cmp -fno-sanitize-recover=all -I"$root/include" -I"$root/tests" -isystem "$eigen" \
  tests/fuzz/fuzz_kernels.cpp -o "$exe"
built=$((SECONDS - start))
corpus=$build/corpus
rm -rf "$corpus"
mkdir -p "$corpus"
cp tests/fuzz/corpus/* "$corpus/" 2>/dev/null || true
log=$build/fuzz.log
rc=0
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
  "$exe" -max_total_time="$seconds" -runs="$runs" -entropic=0 -max_len=4096 -timeout=20 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$build/" "$corpus" >"$log" 2>&1 || rc=$?
done_runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -n 1)
done_runs=${done_runs:-$(grep -Eo '#[0-9]+' "$log" | tail -n 1 | tr -d '#')}
if [ "$rc" -eq 0 ]; then
  echo "ci-fuzz: PASS (${done_runs:-?} executions in $((SECONDS - start - built)) s without a finding; build ${built} s, total $((SECONDS - start)) s)"
  exit 0
fi
grep -E 'FINDING|ERROR|runtime error|SUMMARY' "$log" | head -n 20 || true
tail -n 40 "$log"
echo "ci-fuzz: FAIL (exit $rc after ${done_runs:-?} executions; the input is saved as $build/crash-* or leak-*;"
echo "  reproduce with: $exe $build/crash-...)"
exit 1
