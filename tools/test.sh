#!/usr/bin/env bash
# The README test command: builds and runs emask's whole test suite (tests and examples).
#
#   bash tools/test.sh
#
# On a fresh Debian 12 machine (g++ and cmake present) it first installs what is missing with
# apt-get (libeigen3-dev, catch2; libopenmpi-dev and openmpi-bin for the MPI tests; clang and
# libomp-dev when CXX=clang++).
#
# Environment knobs (all optional):
#   CXX                  compiler (default: CMake's choice, normally g++)
#   EMASK_BUILD_DIR      build directory (default: build/test)
#   EMASK_BUILD_TYPE     CMake build type (default: Debug, compiled "-O1 -g1": asserts on, fast)
#   EMASK_DEBUG_FLAGS    the flags of that Debug build (default "-O1 -g1": line tables, enough
#                        for backtraces; full -g made the heaviest test file 1.6x slower to
#                        build with g++, 94 s against 58 s; -O1 builds the suite in 264 s of
#                        CPU against 386 s at -O2 and runs it as fast. The row_major CI row
#                        runs the whole suite at -O2, the native and fast_math rows the kernels)
#   EMASK_CMAKE_ARGS     extra CMake configure arguments (e.g. -DEMASK_TEST_NO_SIMD=ON)
#   EMASK_PCH            ON (default) / OFF: precompile emask.hpp once for the examples
#                        (EMASK_PRECOMPILED_HEADERS); the valgrind_examples CI row builds them
#                        without it
#   EMASK_CXX_STANDARD   17 (default) or 20
#   EMASK_WERROR         ON turns warnings into errors (CI)
#   EMASK_SANITIZE       e.g. address,undefined: adds -fsanitize=... to compile and link flags
#   EMASK_EXTRA_FLAGS    extra C++ compiler flags
#   EMASK_JOBS           parallel build jobs (default: nproc)
#   EMASK_CTEST_ARGS     extra arguments for ctest (e.g. "-R test_rl:")
#   EMASK_TEST_TIMEOUT   seconds before ctest kills one test case (default 300)
#   EMASK_MPI            AUTO (default): install Open MPI when missing and run the MPI tests
#                        (ctest cases mpi:*, label mpi, under mpirun -np 1, 2, 4) and the MPI
#                        example; OFF: neither install nor build them; ON: fail without MPI.
#                        Sanitizer builds (EMASK_SANITIZE) neither install nor run them (Open MPI
#                        trips LeakSanitizer)
set -euo pipefail

# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(emask_root)
cd "$root"

emask_ensure_build_tools
# shellcheck disable=SC2046
emask_ensure_packages libeigen3-dev catch2 $(emask_compiler_packages)
mpi=${EMASK_MPI:-AUTO}
if ! [[ "${mpi^^}" =~ ^(OFF|0|FALSE|NO|N)$ ]] && [ -z "${EMASK_SANITIZE:-}" ]; then
  emask_ensure_packages libopenmpi-dev openmpi-bin
fi

build_dir=${EMASK_BUILD_DIR:-build/test}
build_type=${EMASK_BUILD_TYPE:-Debug}
std=${EMASK_CXX_STANDARD:-17}
werror=${EMASK_WERROR:-OFF}
cxx_flags=${EMASK_EXTRA_FLAGS:-}
link_flags=""
if [ -n "${EMASK_SANITIZE:-}" ]; then
  san="-fsanitize=${EMASK_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all"
  cxx_flags="$cxx_flags $san"
  link_flags="-fsanitize=${EMASK_SANITIZE}"
  # Report and stop on the first finding, with a stack trace.
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  # allocator_may_return_null: an impossible size (the option-domain tests) is std::bad_alloc,
  # as without the sanitizer, instead of an ASan report.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
fi
cxx_flags=${cxx_flags# }

cmake_args=(
  -S "$root" -B "$build_dir"
  -DCMAKE_BUILD_TYPE="$build_type"
  "-DCMAKE_CXX_FLAGS_DEBUG=${EMASK_DEBUG_FLAGS:--O1 -g1}"
  -DCMAKE_CXX_STANDARD="$std"
  -DCMAKE_CXX_STANDARD_REQUIRED=ON
  "-DCMAKE_CXX_FLAGS=$cxx_flags"
  "-DCMAKE_EXE_LINKER_FLAGS=$link_flags"
  -DEMASK_WERROR="$werror"
  -DEMASK_BUILD_TESTS=ON
  -DEMASK_BUILD_EXAMPLES=ON
  -DEMASK_BUILD_BENCHMARKS=OFF
  -DEMASK_PRECOMPILED_HEADERS="${EMASK_PCH:-ON}"
)
# Only when asked: the default keeps the configuration stamp (and the build directory) as it was.
if [ -n "${EMASK_MPI:-}" ]; then
  cmake_args+=(-DEMASK_MPI="$EMASK_MPI")
fi
if [ -n "${CXX:-}" ]; then
  cmake_args+=(-DCMAKE_CXX_COMPILER="$CXX")
fi
if [ -n "${EMASK_CMAKE_ARGS:-}" ]; then
  read -r -a extra_cmake_args <<<"$EMASK_CMAKE_ARGS"
  cmake_args+=("${extra_cmake_args[@]}")
fi

emask_fresh_build_dir "$build_dir" "${CXX:-default}|${cmake_args[*]}"
emask_log "configure: ${CXX:-default compiler}, $build_type, C++$std, flags '$cxx_flags', -Werror=$werror -> $build_dir"
cmake "${cmake_args[@]}"

# Keep going past a target that fails to build, so one broken test file does not hide the
# results of the others; the failure still fails this script. (A test executable that did
# not build contributes no ctest cases, so the build status must be checked, not only ctest.)
keep_going=()
case "$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$build_dir/CMakeCache.txt")" in
  Ninja*) keep_going=(-- -k 0) ;;
  *Makefiles*) keep_going=(-- -k) ;;
esac
build_status=0
cmake --build "$build_dir" -j"$(emask_jobs)" "${keep_going[@]}" 2>&1 | tee "$build_dir/build.log" ||
  build_status=$?

# ctest runs two test programs at once on what may be two cores: OpenMP threads that sleep
# instead of spinning at barriers keep that from crawling. Results do not depend on it.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

log="$build_dir/ctest.log"
status=0
# shellcheck disable=SC2086
# A per-test timeout, so a hung test (a deadlock, or a crash whose signal handler deadlocks)
# fails the run instead of stalling it.
ctest --test-dir "$build_dir" --output-on-failure -j2 --timeout "${EMASK_TEST_TIMEOUT:-300}" \
  ${EMASK_CTEST_ARGS:-} 2>&1 | tee "$log" ||
  status=$?
summary=$(grep -E 'tests passed|No tests were found' "$log" | tail -n 1 || true)
echo "emask tests (${CXX:-default compiler}, $build_type, C++$std${EMASK_SANITIZE:+, sanitize=$EMASK_SANITIZE}): ${summary:-no ctest summary}"
if [ "$build_status" -ne 0 ]; then
  echo "emask tests: THE BUILD FAILED (exit $build_status): the targets that did not build were not tested. First errors:"
  grep -E ' error: |\*\*\* \[' "$build_dir/build.log" | grep -v 'Waiting for unfinished' | head -n 20 || true
  exit "$build_status"
fi
exit "$status"
