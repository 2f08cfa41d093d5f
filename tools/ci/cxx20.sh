#!/usr/bin/env bash
# CI row cxx20: the whole test suite (tests and examples) compiled as C++20 with clang++ and
# -Werror (the C++17 rows are gcc and clang in .ci/run). C++20 turns on the mask_expression
# concept and the compile-fail checks that go with it. Build dir: build/ci-cxx20.
#   bash tools/ci/cxx20.sh            (CXX=g++ bash tools/ci/cxx20.sh for g++)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
start=$SECONDS
cxx=${CXX:-clang++}
rc=0
CXX=$cxx EMASK_CXX_STANDARD=20 EMASK_WERROR=ON EMASK_BUILD_DIR=build/ci-cxx20 \
  bash tools/test.sh || rc=$?
if [ "$rc" -eq 0 ]; then
  echo "ci-cxx20: PASS ($cxx, C++20, $((SECONDS - start)) s)"
else
  echo "ci-cxx20: FAIL ($cxx, C++20, exit $rc, $((SECONDS - start)) s)"
fi
exit "$rc"
