#!/usr/bin/env bash
# Consumption tests: builds the tiny project in tests/consumers against emask in every way a
# user would, all offline, in a temporary directory:
#   1. find_package(emask) after `cmake --install` into a temporary prefix
#   2. find_package(emask) from the build tree (emask_DIR = a configured build directory)
#   3. add_subdirectory of this checkout
#   4. FetchContent with SOURCE_DIR = this checkout
#   5. FetchContent with URL = an archive of this checkout (file://, no network)
#   6. the installed version file: find_package(emask 1) must fail, the exact version succeed
# Honours CXX. Prints one line per check and exits non-zero when any failed.
set -euo pipefail

# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(emask_root)
cd "$root"

work=$(mktemp -d "${TMPDIR:-/tmp}/emask-consumers.XXXXXX")
if [ -z "${EMASK_KEEP_TMP:-}" ]; then trap 'rm -rf "$work"' EXIT; fi
emask_log "consumer checks in $work"

version=$(sed -n 's/^project(emask VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt | head -n 1)
[ -n "$version" ] || { emask_log "cannot read project(emask VERSION ...) from CMakeLists.txt"; exit 1; }

common=(-DCMAKE_BUILD_TYPE=Release -Wno-dev)
if [ -n "${CXX:-}" ]; then common+=(-DCMAKE_CXX_COMPILER="$CXX"); fi
jobs=$(emask_jobs)
passed=0
failed=0
failures=()

# run_step NAME COMMAND...: runs the command with its output in $work/NAME.log.
run_step() {
  local name=$1
  shift
  if "$@" >"$work/$name.log" 2>&1; then
    printf '  ok    %s\n' "$name"
    passed=$((passed + 1))
  else
    printf '  FAIL  %s (log follows)\n' "$name"
    sed 's/^/      | /' "$work/$name.log" | tail -n 40
    failed=$((failed + 1))
    failures+=("$name")
  fi
}

# build_consumer DIR ARGS...: configure, build and run the consumer project.
build_consumer() {
  local dir=$1
  shift
  cmake -S "$root/tests/consumers" -B "$dir" "${common[@]}" "$@" &&
    cmake --build "$dir" -j"$jobs" &&
    ctest --test-dir "$dir" --output-on-failure &&
    "$dir/consumer"
}

install_emask() {
  cmake -S "$root" -B "$work/emask-build" "${common[@]}" -DEMASK_BUILD_TESTS=OFF \
    -DEMASK_BUILD_EXAMPLES=OFF -DEMASK_BUILD_BENCHMARKS=OFF &&
    cmake --install "$work/emask-build" --prefix "$work/prefix" &&
    # The installed tree: headers, package files, license; nothing from the development side.
    for f in include/emask/emask.hpp include/emask/config.hpp \
             share/cmake/emask/emaskConfig.cmake share/cmake/emask/emaskConfigVersion.cmake \
             share/cmake/emask/emaskTargets.cmake share/doc/emask/LICENSE; do
      [ -f "$work/prefix/$f" ] || { echo "missing from the install: $f"; exit 1; }
    done
}

# The consumer found the installed copy, not something else on the system.
consumer_from_prefix() {
  build_consumer "$work/c-install" -DEMASK_CONSUME=find_package \
    -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF &&
    grep -q "^emask_DIR:PATH=$work/prefix/share/cmake/emask" "$work/c-install/CMakeCache.txt"
}

consumer_from_build_tree() {
  build_consumer "$work/c-buildtree" -DEMASK_CONSUME=find_package \
    -Demask_DIR="$work/emask-build" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
}

make_archive() {
  # The checkout as a release archive would hold it: no .git, no build directories.
  tar -C "$root" --exclude=./.git --exclude=./build --exclude=./out \
    -czf "$work/emask-src.tar.gz" .
}

version_check() {
  cmake -S "$root/tests/consumers/version_check" -B "$work/c-version" -Wno-dev \
    -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
    -DEMASK_EXPECTED_VERSION="$version"
}

# Configuring emask as the top-level project without Catch2 (Google Benchmark) fails with a
# message that names the option that turns the tests (benchmarks) off.
missing_dependency_named() {
  local package=$1 option=$2 log=$work/top-level-$1.log
  if cmake -S "$root" -B "$work/top-level-$package" -Wno-dev \
    -DCMAKE_DISABLE_FIND_PACKAGE_"$package"=ON >"$log" 2>&1; then
    echo "configuring without $package succeeded: expected an error naming $option"
    return 1
  fi
  tr -s ' \n' ' ' <"$log" | grep -q -- "$option" || {
    cat "$log"
    echo "the error does not name $option"
    return 1
  }
}

run_step no-catch2-names-option missing_dependency_named Catch2 -DEMASK_BUILD_TESTS=OFF
run_step no-benchmark-names-option missing_dependency_named benchmark -DEMASK_BUILD_BENCHMARKS=OFF
run_step install install_emask
run_step find_package-install consumer_from_prefix
run_step find_package-build-tree consumer_from_build_tree
run_step add_subdirectory build_consumer "$work/c-subdir" -DEMASK_CONSUME=subdirectory \
  -DEMASK_SOURCE_DIR="$root"
run_step fetchcontent-source_dir build_consumer "$work/c-fetch-src" -DEMASK_CONSUME=fetch_source \
  -DEMASK_SOURCE_DIR="$root"
run_step archive make_archive
run_step fetchcontent-url build_consumer "$work/c-fetch-url" -DEMASK_CONSUME=fetch_url \
  -DEMASK_URL="file://$work/emask-src.tar.gz"
run_step version-file version_check

echo "consumers: $passed passed, $failed failed${failures:+ (${failures[*]})}"
[ "$failed" -eq 0 ]
