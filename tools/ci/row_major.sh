#!/usr/bin/env bash
# CI row row_major: the whole test suite with -DEIGEN_DEFAULT_TO_ROW_MAJOR, a setting some users
# compile Eigen with; it changes the layout of every Eigen::Matrix whose storage order is not
# spelled out, so any place that silently assumes column-major (Map of a buffer, data() pointer
# arithmetic, dense bool arrays) shows up. g++ -O2 -g1 -Werror: the one row that builds the
# whole suite at -O2 (the README test command and the clang and asan rows use -O1, which builds
# about 30% faster), with test_softmax_no_simd (EMASK_NO_SIMD) too. Build dir: build/ci-row_major.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
start=$SECONDS
rc=0
CXX=${CXX:-g++} EMASK_WERROR=ON EMASK_EXTRA_FLAGS=-DEIGEN_DEFAULT_TO_ROW_MAJOR EMASK_DEBUG_FLAGS="-O2 -g1" EMASK_CMAKE_ARGS=-DEMASK_TEST_NO_SIMD=ON \
  EMASK_BUILD_DIR=build/ci-row_major bash tools/test.sh || rc=$?
if [ "$rc" -eq 0 ]; then
  echo "ci-row_major: PASS (EIGEN_DEFAULT_TO_ROW_MAJOR, $((SECONDS - start)) s)"
else
  echo "ci-row_major: FAIL (EIGEN_DEFAULT_TO_ROW_MAJOR, exit $rc, $((SECONDS - start)) s)"
fi
exit "$rc"
