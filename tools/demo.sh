#!/usr/bin/env bash
# The README demo command: builds and runs every example program, then a short benchmark pass.
#
#   bash tools/demo.sh
#
# On a fresh Debian 12 machine (g++ and cmake present) it first installs what is missing with
# apt-get (libeigen3-dev, libbenchmark-dev). Release build in build/demo (override with
# EMASK_BUILD_DIR) with -DEMASK_NATIVE=ON; tests off. Each benchmark runs with
# --benchmark_min_time=0.05 and EMASK_BENCH_SHORT=1 (small shapes). For the full benchmark run
# see tools/bench.sh. Extra arguments are passed to every benchmark binary
# (e.g. --benchmark_filter=causal). Examples marked "// emask-requires: mpi" run under mpirun on
# 4 ranks with their default arguments when MPI was found (libopenmpi-dev), else are skipped.
set -euo pipefail

# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(emask_root)
cd "$root"

build_dir=${EMASK_BUILD_DIR:-build/demo}
emask_configure_release "$build_dir" ON
# The build log is kept out of the demo's output (-march=native builds of Eigen print GCC 12's
# -Wmaybe-uninitialized notes from its AVX-512 intrinsics); it is shown when the build fails.
echo "building examples and benchmarks in $build_dir (Release, -march=native; log: $build_dir/build.log)"
if ! cmake --build "$build_dir" -j"$(emask_jobs)" >"$build_dir/build.log" 2>&1; then
  grep -E ' error|\*\*\* \[' "$build_dir/build.log" | head -n 40 || tail -n 40 "$build_dir/build.log"
  echo "demo: the build FAILED (full log: $build_dir/build.log)"
  exit 1
fi

status=0

echo
echo "================================ examples ================================"
shopt -s nullglob
examples=("$root"/examples/*.cpp)
for src in "${examples[@]}"; do
  name=$(basename "$src" .cpp)
  args=$(sed -n 's|^// ctest-args: ||p' "$src" | head -n 1)
  if emask_requires_mpi "$src"; then
    echo
    if [ ! -x "$build_dir/examples/$name" ]; then
      echo "---- examples/$name: skipped (needs MPI: apt-get install libopenmpi-dev openmpi-bin)"
      continue
    fi
    echo "---- mpirun -np 4 examples/$name"
    if ! (cd "$build_dir/examples" && emask_mpirun 4 "./$name"); then
      echo "!!!! example $name failed"
      status=1
    fi
    continue
  fi
  echo
  echo "---- examples/$name${args:+ $args}"
  # shellcheck disable=SC2086
  # Run inside the build directory: examples that write files (mask_pictures) write them there.
  if ! (cd "$build_dir/examples" && "./$name" $args); then
    echo "!!!! example $name failed"
    status=1
  fi
done
if [ "${#examples[@]}" -gt 0 ]; then
  echo
  echo "---- checking example output (ctest -R '^example:')"
  ctest --test-dir "$build_dir" -R '^example:' --output-on-failure -j2 || status=1
else
  echo "(no examples yet)"
fi

echo
echo "=========================== benchmarks (short pass) ======================="
benches=()
for b in "$build_dir"/bench/bench_*; do
  [ -f "$b" ] && [ -x "$b" ] && benches+=("$b")
done
for b in "${benches[@]}"; do
  echo
  echo "---- $(basename "$b")"
  if ! EMASK_BENCH_SHORT=1 "$b" --benchmark_min_time=0.05 "$@"; then
    echo "!!!! benchmark $(basename "$b") failed"
    status=1
  fi
done
[ "${#benches[@]}" -gt 0 ] || echo "(no benchmarks yet)"

echo
if [ "$status" -eq 0 ]; then
  echo "demo: ${#examples[@]} examples and ${#benches[@]} benchmark programs ran OK (full benchmarks: bash tools/bench.sh)"
else
  echo "demo: FAILED (see above)"
fi
exit "$status"
