#!/usr/bin/env bash
# CI row no_exceptions_tests: emask with -fno-exceptions beyond the handler programs of the
# noexcept row: (1) every example built with -fno-exceptions -Werror and run through ctest (its
# output regexes must match); (2) tools/ci/no_exceptions_kernels.cpp, built with -fno-exceptions
# with g++ and clang++: the softmax and attention kernels (every variant), merge, MLM masking
# and the DQN helpers run on good input, and a bad argument to each ends in the default
# handler: exit by SIGABRT with "emask::<function>: argument '<name>'" on stderr.
# (The Catch2 test programs themselves need exceptions.) Build dir: build/ci-no_exceptions_tests.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=tools/lib.sh
source tools/lib.sh
emask_ensure_build_tools
emask_ensure_packages libeigen3-dev
start=$SECONDS
build=build/ci-no_exceptions_tests
cxx=${CXX:-g++}
passed=0
failed=0
report() {  # OK|FAIL name [detail]
  if [ "$1" = OK ]; then passed=$((passed + 1)); echo "  ok    $2"; else failed=$((failed + 1)); echo "  FAIL  $2: ${3:-}"; fi
}

# (1) examples
emask_fresh_build_dir "$build" "$cxx|no_exceptions"
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release \
  "-DCMAKE_CXX_FLAGS_RELEASE=-O2" "-DCMAKE_CXX_FLAGS=-fno-exceptions" -DEMASK_WERROR=ON \
  -DEMASK_BUILD_TESTS=OFF -DEMASK_BUILD_EXAMPLES=ON -DEMASK_BUILD_BENCHMARKS=OFF >/dev/null
if cmake --build "$build" -j"$(emask_jobs)" >"$build/build.log" 2>&1; then
  if ctest --test-dir "$build" --output-on-failure -j2 -R '^example:' >"$build/ctest.log" 2>&1; then
    report OK "examples with -fno-exceptions ($(grep -Eo '[0-9]+% tests passed.*' "$build/ctest.log"))"
  else
    report FAIL "examples with -fno-exceptions" "$(grep -E 'Failed|\*\*\*' "$build/ctest.log" | head -n 10)"
  fi
else
  report FAIL "examples build with -fno-exceptions" "$(grep -E 'error' "$build/build.log" | head -n 10)"
fi

# (2) kernels and their error path
[ -d /usr/include/eigen3/Eigen ] && eigen=/usr/include/eigen3 ||
  eigen=$(pkg-config --variable=includedir eigen3)/eigen3
declare -A expect=(
  [softmax_out]="emask::masked_softmax: argument 'out' = 5 x 9, expected 6 x 9"
  [softmax_scale]="emask::masked_softmax: argument 'options.scale' = nan, expected a finite value (unset: 1)"
  [attention_k]="emask::masked_attention: argument 'k'"
  [attention_offset]="emask::masked_attention: argument 'mask' = causal::bottom_right(6, 9), expected lengths covering the call's positions: queries [0, 6), keys [4, 13)"
  [attention_backward_dout]="emask::masked_attention_backward: argument 'dout' = 5x4, expected 6x4"
  [softmax_backward_dy]="emask::masked_softmax_backward: argument 'dy' = 6 x 8, expected 6 x 9"
  [kv_block_table]="emask::masked_attention_decode: argument 'block_table[0][1]' = 7, expected a physical page in [0, 2)"
  [merge]="emask::merge_attention: argument 'parts'"
  [mlm_vocabulary]="emask::mlm_mask: argument 'vocabulary'"
  [rl_no_legal]="emask::masked_q_argmax: argument 'legal'"
)
compilers=("$cxx")
command -v clang++ >/dev/null 2>&1 && [ "$cxx" != clang++ ] && compilers+=(clang++)
for c in "${compilers[@]}"; do
  exe="$build/no_exceptions_kernels-$(basename "$c")"
  if ! "$c" -std=c++17 -O1 -fno-exceptions -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror \
       -I"$root/include" -isystem "$eigen" tools/ci/no_exceptions_kernels.cpp -o "$exe" 2>"$build/nek.log"; then
    report FAIL "$c build of no_exceptions_kernels.cpp" "$(head -n 15 "$build/nek.log")"
    continue
  fi
  if out=$("$exe" 2>&1) && [[ "$out" == ok* ]]; then
    report OK "$c -fno-exceptions kernels on good input ($out)"
  else
    report FAIL "$c -fno-exceptions kernels on good input" "$out"
  fi
  for case in "${!expect[@]}"; do
    rc=0
    { "$exe" "$case" >"$build/out" 2>"$build/err" </dev/null; } 2>/dev/null || rc=$?
    if [ "$rc" -eq 134 ] && grep -qF "${expect[$case]}" "$build/err" && ! grep -q UNREACHABLE "$build/out"; then
      report OK "$c $case: aborted with: $(head -n 1 "$build/err")"
    else
      report FAIL "$c $case" "exit $rc, stderr: $(head -c 300 "$build/err"), expected: ${expect[$case]}"
    fi
  done
done
if [ "$failed" -eq 0 ]; then
  echo "ci-no_exceptions_tests: PASS ($passed checks, $((SECONDS - start)) s)"
  exit 0
fi
echo "ci-no_exceptions_tests: FAIL ($failed of $((passed + failed)) checks, $((SECONDS - start)) s)"
exit 1
