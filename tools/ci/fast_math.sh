#!/usr/bin/env bash
# CI row fast_math: the kernels compiled with -ffast-math stay correct. -ffast-math lets the
# compiler assume there is no NaN and no infinity, so the kernels must decide masked entries
# from the mask (never from -infinity arithmetic) and write -infinity as a stored constant.
# Builds and runs the kernel tests (softmax, attention, the 10^4-case differential tests), the
# bit-pattern NaN tests behind every argument check (test_ieee), and every example with g++ -O2
# -ffast-math -Werror (an example marked "// emask-requires: mpi" when MPI was found: it runs
# under mpirun as its ctest case does). A NaN in a kept score is outside the contract of a -ffast-math build, so
# test_nan_policy is not part of this row and the kept-NaN checks of test_softmax and
# test_attention compile out under __FAST_MATH__; masked NaN and infinities are still checked
# to change nothing, and a NaN argument (scale, a probability) must still be rejected.
# Build dir: build/ci-fast_math.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=tools/lib.sh
source tools/lib.sh
emask_ensure_build_tools
emask_ensure_packages libeigen3-dev catch2
start=$SECONDS
build=build/ci-fast_math
cxx=${CXX:-g++}
tests=(test_softmax test_attention test_differential test_ieee)
emask_fresh_build_dir "$build" "$cxx|fast_math"
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release \
  "-DCMAKE_CXX_FLAGS_RELEASE=-O2" "-DCMAKE_CXX_FLAGS=-ffast-math" -DEMASK_WERROR=ON \
  -DEMASK_BUILD_TESTS=ON -DEMASK_TEST_GROUPS=OFF -DEMASK_BUILD_EXAMPLES=ON -DEMASK_BUILD_BENCHMARKS=OFF >/dev/null
targets=()
for t in "${tests[@]}"; do [ -f "tests/$t.cpp" ] && targets+=("$t"); done
available=$(cmake --build "$build" --target help 2>/dev/null || true)
for f in examples/*.cpp; do
  t="example_$(basename "$f" .cpp)"
  if emask_requires_mpi "$f" && ! grep -q "$t\b" <<<"$available"; then
    echo "ci-fast_math: skipping $t (needs MPI, not found)"
    continue
  fi
  targets+=("$t")
done
rc=0
cmake --build "$build" -j"$(emask_jobs)" --target "${targets[@]}" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "ci-fast_math: FAIL (build, exit $rc, $((SECONDS - start)) s)"
  exit "$rc"
fi
filter=$(printf '%s:|' "${targets[@]}" | sed 's/example_\([a-z_0-9]*\):/example:\1/g')
ctest --test-dir "$build" --output-on-failure -j2 -R "^(${filter%|})" || rc=$?
if [ "$rc" -eq 0 ]; then
  echo "ci-fast_math: PASS (${#targets[@]} targets with -ffast-math, $((SECONDS - start)) s)"
else
  echo "ci-fast_math: FAIL (ctest exit $rc, $((SECONDS - start)) s)"
fi
exit "$rc"
