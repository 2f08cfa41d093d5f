#!/usr/bin/env bash
# CI row native: the kernels' tests built with -march=native, so the widest SIMD paths of this
# machine run under test (the other test rows build for plain x86-64: SSE2). With AVX-512 that
# is Eigen's 16-lane packets, the mask-register selects of
# detail/simd.hpp and the 8 x 2 register blocks of the attention micro-kernel. Builds and runs
# test_softmax, test_attention, test_differential, test_nan_policy, test_rl_policy and
# test_softmax_no_simd (EMASK_NO_SIMD must switch the AVX-512 paths off too) with
# g++ -O2 -march=native -Werror (GCC 12's false -W(maybe-)uninitialized inside its own
# avx512fintrin.h, PR 105593, are not errors here). Build dir: build/ci-native.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=tools/lib.sh
source tools/lib.sh
emask_ensure_build_tools
emask_ensure_packages libeigen3-dev catch2
start=$SECONDS
build=build/ci-native
cxx=${CXX:-g++}
tests=(test_softmax test_softmax_no_simd test_attention test_differential test_nan_policy test_rl_policy)
flags="-march=native"
if "$cxx" --version | grep -q 'g++.* 12\.'; then
  flags="$flags -Wno-maybe-uninitialized -Wno-uninitialized"
fi
emask_fresh_build_dir "$build" "$cxx|native"
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release \
  "-DCMAKE_CXX_FLAGS_RELEASE=-O2" "-DCMAKE_CXX_FLAGS=$flags" -DEMASK_WERROR=ON \
  -DEMASK_BUILD_TESTS=ON -DEMASK_TEST_GROUPS=OFF -DEMASK_TEST_NO_SIMD=ON -DEMASK_BUILD_EXAMPLES=OFF -DEMASK_BUILD_BENCHMARKS=OFF >/dev/null
rc=0
cmake --build "$build" -j"$(emask_jobs)" --target "${tests[@]}" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "ci-native: FAIL (build, exit $rc, $((SECONDS - start)) s)"
  exit "$rc"
fi
filter=$(printf '%s:|' "${tests[@]}")
ctest --test-dir "$build" --output-on-failure -j2 -R "^(${filter%|})" || rc=$?
if [ "$rc" -eq 0 ]; then
  echo "ci-native: PASS (${#tests[@]} test programs with $flags, $((SECONDS - start)) s)"
else
  echo "ci-native: FAIL (ctest exit $rc, $((SECONDS - start)) s)"
fi
exit "$rc"
