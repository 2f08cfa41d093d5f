#!/usr/bin/env bash
# CI row fuzz: builds the two libFuzzer harnesses with clang++ -fsanitize=fuzzer,address,undefined
# (in parallel) and runs them at the same time, each for a bounded time from its own seed corpus
# (new inputs go to a scratch copy of each corpus, the repository is not modified):
#   kernels  tests/fuzz/fuzz_kernels.cpp, corpus tests/fuzz/corpus: masked softmax / attention;
#   masks    tests/fuzz/fuzz_masks.cpp, corpus tests/fuzz/corpus_masks: RL action masking (policy,
#            DQN helpers) and the random maskers (MLM, whole-word, span, T5, MAE, MGD).
# Prints one PASS/FAIL line per harness with its number of executions, then the overall result;
# fails on any finding (crash, sanitizer report, or a violated property: see each harness).
#   bash tools/ci/fuzz.sh [seconds [runs]]   (per harness; default 60 s, no run limit;
#                                           EMASK_FUZZ_SECONDS and EMASK_FUZZ_RUNS also work)
#
# Two libFuzzer costs are switched off, both measured on the 1882-input corpus of a 15-minute
# run (one core) of the kernels harness: the entropic power schedule (-entropic=0), whose
# per-run feature-frequency update took 69% of the time with the ~35,000 features of the kernels'
# loops, and comparison tracing (-fno-sanitize-coverage=trace-cmp), which instruments every
# compare in the numeric inner loops while the decoders have no magic constants to solve.
# Together: 28 s -> 5 s.
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
harnesses=(kernels masks)
declare -A corpus_dir=([kernels]=tests/fuzz/corpus [masks]=tests/fuzz/corpus_masks)

# Build both harnesses at the same time (one core each).
declare -A pid
for h in "${harnesses[@]}"; do
  "$cxx" -std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-coverage=trace-cmp -fno-sanitize-recover=all -I"$root/include" -I"$root/tests" \
    -isystem "$eigen" "tests/fuzz/fuzz_$h.cpp" -o "$build/fuzz_$h" >"$build/build_$h.log" 2>&1 &
  pid[$h]=$!
done
build_failed=0
for h in "${harnesses[@]}"; do
  if ! wait "${pid[$h]}"; then
    tail -n 40 "$build/build_$h.log"
    echo "ci-fuzz: FAIL (tests/fuzz/fuzz_$h.cpp does not build; log: $build/build_$h.log)"
    build_failed=1
  fi
done
[ "$build_failed" -eq 0 ] || exit 1
built=$((SECONDS - start))

# Run both at the same time, each on a scratch copy of its corpus.
for h in "${harnesses[@]}"; do
  corpus=$build/corpus_$h
  rm -rf "$corpus" "$build/$h"-crash-* "$build/$h"-leak-* "$build/$h"-timeout-* "$build/$h"-oom-*
  mkdir -p "$corpus"
  cp "${corpus_dir[$h]}"/* "$corpus/" 2>/dev/null || true
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
    "$build/fuzz_$h" -max_total_time="$seconds" -runs="$runs" -entropic=0 -max_len=4096 -timeout=20 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/$h-" "$corpus" \
    >"$build/fuzz_$h.log" 2>&1 &
  pid[$h]=$!
done
declare -A rc
for h in "${harnesses[@]}"; do
  rc[$h]=0
  wait "${pid[$h]}" || rc[$h]=$?
done
ran=$((SECONDS - start - built))

failed=0
for h in "${harnesses[@]}"; do
  log=$build/fuzz_$h.log
  done_runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -n 1 || true)
  done_runs=${done_runs:-$(grep -Eo '#[0-9]+' "$log" | tail -n 1 | tr -d '#' || true)}
  if [ "${rc[$h]}" -eq 0 ]; then
    echo "ci-fuzz: fuzz_$h PASS (${done_runs:-?} executions in ${ran} s without a finding)"
    continue
  fi
  failed=1
  echo "ci-fuzz: fuzz_$h FAIL (exit ${rc[$h]} after ${done_runs:-?} executions; log: $log)"
  grep -E 'FINDING|ERROR|runtime error|SUMMARY' "$log" | head -n 20 || true
  tail -n 40 "$log"
  echo "  the input is saved as $build/$h-crash-* (or $h-leak-*, $h-timeout-*, $h-oom-*);"
  echo "  reproduce with: $build/fuzz_$h $build/$h-crash-..."
done
if [ "$failed" -eq 0 ]; then
  echo "ci-fuzz: PASS (both harnesses, ${seconds} s each at the same time; build ${built} s, total $((SECONDS - start)) s)"
  exit 0
fi
echo "ci-fuzz: FAIL (build ${built} s, total $((SECONDS - start)) s)"
exit 1
