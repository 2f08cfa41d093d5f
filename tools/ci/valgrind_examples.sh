#!/usr/bin/env bash
# CI row valgrind_examples: every example program under valgrind memcheck. Each example must
# exit 0 and valgrind must report no error (--error-exitcode=1): no invalid read or write, no use
# of uninitialized values, no definite leak. Built -O1 -g without OpenMP (libgomp's thread pool
# is not what this row checks, and single-threaded runs keep the budget small), with the
# arguments of the example's "// ctest-args:" line. Examples marked "// emask-requires: mpi"
# are not part of this row (Open MPI's own allocations and shared-memory transport are reported
# by memcheck); the mpi row runs them. Build dir: build/ci-valgrind_examples.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=tools/lib.sh
source tools/lib.sh
emask_ensure_build_tools
emask_ensure_packages libeigen3-dev valgrind
start=$SECONDS
build=build/ci-valgrind_examples
cxx=${CXX:-g++}
emask_fresh_build_dir "$build" "$cxx|valgrind"
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Debug \
  "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g" -DEMASK_OPENMP=OFF \
  -DEMASK_BUILD_TESTS=OFF -DEMASK_BUILD_EXAMPLES=ON -DEMASK_BUILD_BENCHMARKS=OFF >/dev/null
examples=()
for f in examples/*.cpp; do
  if emask_requires_mpi "$f"; then echo "  skip  $(basename "$f" .cpp): needs MPI (the mpi row runs it)"; continue; fi
  examples+=("$f")
done
targets=()
for f in "${examples[@]}"; do targets+=("example_$(basename "$f" .cpp)"); done
cmake --build "$build" -j"$(emask_jobs)" --target "${targets[@]}"
outdir=$(mktemp -d "${TMPDIR:-/tmp}/emask-valgrind.XXXXXX")
trap 'rm -rf "$outdir"' EXIT
passed=0
failed=0
for f in "${examples[@]}"; do
  name=$(basename "$f" .cpp)
  exe=$(find "$build" -type f -name "$name" -perm -u+x | head -n 1)
  if [ -z "$exe" ]; then
    echo "  FAIL  $name: executable not found"; failed=$((failed + 1)); continue
  fi
  args=()
  line=$(sed -n 's|^// ctest-args: ||p' "$f" | head -n 1)
  # shellcheck disable=SC2206
  [ -n "$line" ] && args=($line)
  # mask_pictures writes files: give it a scratch directory instead of "."
  for i in "${!args[@]}"; do [ "${args[$i]}" = "." ] && args[i]=$outdir; done
  t0=$SECONDS
  rc=0
  (cd "$outdir" && timeout 900 valgrind --tool=memcheck --error-exitcode=1 --leak-check=full \
     --errors-for-leak-kinds=definite --track-origins=yes --quiet "$root/$exe" "${args[@]}" \
     >"$outdir/$name.out" 2>"$outdir/$name.err") || rc=$?
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1)); echo "  ok    $name ${args[*]} ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); echo "  FAIL  $name ${args[*]}: exit $rc ($((SECONDS - t0)) s)"
    head -n 40 "$outdir/$name.err" | sed 's/^/        /'
  fi
done
if [ "$failed" -eq 0 ]; then
  echo "ci-valgrind_examples: PASS ($passed examples clean under memcheck, $((SECONDS - start)) s)"
  exit 0
fi
echo "ci-valgrind_examples: FAIL ($failed of $((passed + failed)) examples, $((SECONDS - start)) s)"
exit 1
