#!/usr/bin/env bash
# CI row mpi: context-parallel attention over MPI (emask/dist, issue 18) on this host, with Open
# MPI (installed when missing: libopenmpi-dev openmpi-bin). A Release build (-O3 -march=native,
# as the perf row; -Werror) of the MPI programs only: ctest -L mpi (tests/mpi/test_*.cpp under
# mpirun -np 1, 2 and 4, and examples/ring_attention at np 4 with --seq 4096), then
# examples/ring_attention at np 4 with its default S = 32768, then the issue's target
# measurement tests/mpi/ring_balance at np 2 with --seq 16384 (causal: zigzag's slowest rank
# against the average rank, total CPU time against single-process tiled attention), which
# fails only when a ratio is 2.5x beyond its target, after 3 tries (JSON of the last run in
# build/ci-mpi/ring_balance.json; tools/dist_table.py --ring-json puts it in
# docs/distributed.md). Prints every figure. About 3 minutes on 2 cores. Build dir: build/ci-mpi.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=tools/lib.sh
source tools/lib.sh
emask_ensure_build_tools
# catch2: the MPI block lives in tests/CMakeLists.txt, which needs Catch2 to configure.
emask_ensure_packages libeigen3-dev catch2 libopenmpi-dev openmpi-bin
start=$SECONDS
build=build/ci-mpi
cxx=${CXX:-g++}
flags="-march=native"
if "$cxx" --version | grep -q 'g++.* 12\.'; then
  # GCC 12's false -W(maybe-)uninitialized inside its own avx512fintrin.h (PR 105593)
  flags="$flags -Wno-maybe-uninitialized -Wno-uninitialized"
fi
fail() {
  echo "ci-mpi: FAIL ($1, $((SECONDS - start)) s)"
  exit 1
}

emask_fresh_build_dir "$build" "$cxx|mpi"
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release \
  "-DCMAKE_CXX_FLAGS_RELEASE=-O3 -DNDEBUG" "-DCMAKE_CXX_FLAGS=$flags" -DEMASK_WERROR=ON \
  -DEMASK_MPI=ON -DEMASK_BUILD_TESTS=ON -DEMASK_BUILD_EXAMPLES=ON -DEMASK_BUILD_BENCHMARKS=OFF \
  -DEMASK_PRECOMPILED_HEADERS=OFF >"$build/configure.log" 2>&1 || {
  cat "$build/configure.log"
  fail "configure"
}
# The MPI programs only: the tests' mpi_* targets and the examples marked emask-requires: mpi.
# (`help` lists "... name" with Makefiles, "name: phony" with Ninja.)
mapfile -t targets < <(cmake --build "$build" --target help | grep -oE '^(\.\.\. )?mpi_[A-Za-z0-9_]+' |
  sed 's/^\.\.\. //' | sort -u)
for f in examples/*.cpp; do
  if emask_requires_mpi "$f"; then targets+=("example_$(basename "$f" .cpp)"); fi
done
[ "${#targets[@]}" -gt 0 ] || fail "no MPI targets configured"
echo "ci-mpi: building ${targets[*]} ($cxx -O3 $flags)"
cmake --build "$build" -j"$(emask_jobs)" --target "${targets[@]}" || fail "build"

echo
echo "---- ctest -L mpi"
ctest --test-dir "$build" --output-on-failure -L mpi || fail "ctest -L mpi"
ran=$(ctest --test-dir "$build" -N -L mpi | sed -n 's/^Total Tests: //p')

rc=0
examples=0
for f in examples/*.cpp; do
  emask_requires_mpi "$f" || continue
  examples=$((examples + 1))
  name=$(basename "$f" .cpp)
  echo
  echo "---- mpirun -np 4 examples/$name (default arguments)"
  t0=$SECONDS
  (cd "$build/examples" && timeout 600 bash -c "source '$root/tools/lib.sh'; emask_mpirun 4 ./$name") ||
    { echo "ci-mpi: examples/$name failed"; rc=1; }
  echo "(examples/$name: $((SECONDS - t0)) s)"
done

balance="$build/tests/mpi/ring_balance"
if [ -x "$balance" ]; then
  echo
  echo "---- mpirun -np 2 tests/mpi/ring_balance --seq 16384 (fails when 2.5x beyond a target)"
  ok=0
  for attempt in 1 2 3; do
    t0=$SECONDS
    if timeout 900 bash -c "source '$root/tools/lib.sh'; emask_mpirun 2 '$balance' --seq 16384 --json '$build/ring_balance.json'"; then
      ok=1
      echo "(ring_balance: attempt $attempt passed, $((SECONDS - t0)) s)"
      break
    fi
    echo "(ring_balance: attempt $attempt failed, $((SECONDS - t0)) s)"
  done
  [ "$ok" -eq 1 ] || { echo "ci-mpi: ring_balance missed a target by 2.5x in 3 tries"; rc=1; }
else
  echo "ci-mpi: tests/mpi/ring_balance.cpp was not built"
  rc=1
fi

if [ "$rc" -eq 0 ]; then
  echo "ci-mpi: PASS ($ran ctest cases under mpirun, $examples MPI example(s) on 4 ranks with default arguments, ring_balance on 2 ranks, $((SECONDS - start)) s)"
else
  echo "ci-mpi: FAIL ($((SECONDS - start)) s)"
fi
exit "$rc"
