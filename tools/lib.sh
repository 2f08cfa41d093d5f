# Shared helpers of tools/*.sh and .ci/run. Source it; it defines functions only.
# shellcheck shell=bash

# The repository root (this file lives in <root>/tools).
emask_root() { (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd); }

emask_log() { printf '[emask] %s\n' "$*" >&2; }

# Runs a command as root: directly when we are root, through sudo when it exists.
emask_as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -E "$@"
  else
    emask_log "need root to run: $* (no sudo found); install it by hand"
    return 1
  fi
}

# True when the Debian package $1 is installed.
emask_have_package() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Installs the Debian packages given as arguments that are not installed yet. Runs
# `apt-get update` only when something is missing. Without dpkg/apt-get (not Debian) it
# only warns: CMake will then say what it cannot find.
emask_ensure_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    emask_log "not a Debian system: make sure these are installed: $*"
    return 0
  fi
  local missing=() p
  for p in "$@"; do
    emask_have_package "$p" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  emask_log "installing missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  emask_as_root apt-get update -qq
  emask_as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
}

# The build tools CMake needs, when this machine lacks them (a "cmake present" machine may
# still lack make).
emask_ensure_build_tools() {
  local pkgs=()
  command -v cmake >/dev/null 2>&1 || pkgs+=(cmake)
  if ! command -v make >/dev/null 2>&1 && ! command -v ninja >/dev/null 2>&1; then
    pkgs+=(make)
  fi
  if [ "${#pkgs[@]}" -gt 0 ]; then emask_ensure_packages "${pkgs[@]}"; fi
}

# Packages needed by the compiler named in $CXX: clang and LLVM's OpenMP runtime for clang++
# (plus its sanitizer runtimes when EMASK_SANITIZE is set), nothing for g++ (assumed present;
# its sanitizer runtimes come with it).
emask_compiler_packages() {
  case "$(basename "${CXX:-c++}")" in
    clang++*|clang*)
      echo clang libomp-dev
      if [ -n "${EMASK_SANITIZE:-}" ]; then echo libclang-rt-dev; fi
      ;;
    *) ;;
  esac
}

# Removes build directory $1 when the configuration stamp $2 differs from the one stored there
# (another compiler or other flags): CMake cannot switch compilers inside one cache.
emask_fresh_build_dir() {
  local dir=$1 stamp=$2
  if [ -f "$dir/CMakeCache.txt" ]; then
    if [ ! -f "$dir/.emask-config" ] || [ "$(cat "$dir/.emask-config")" != "$stamp" ]; then
      emask_log "configuration changed: removing $dir"
      rm -rf "$dir"
    fi
  fi
  mkdir -p "$dir"
  printf '%s' "$stamp" >"$dir/.emask-config"
}

emask_jobs() {
  if [ -n "${EMASK_JOBS:-}" ]; then echo "$EMASK_JOBS"; return; fi
  nproc 2>/dev/null || echo 2
}

# Configures a Release build with -march=native and the benchmarks in $1 (examples too when $2
# is ON; tests off), after installing what it needs: the shared set-up of tools/bench.sh,
# tools/demo.sh and tools/perf.sh. CMake's output goes to $1/configure.log (shown on failure).
emask_configure_release() {
  local build_dir=$1 examples=$2 root
  root=$(emask_root)
  emask_ensure_build_tools
  # shellcheck disable=SC2046
  emask_ensure_packages libeigen3-dev libbenchmark-dev $(emask_compiler_packages)
  local cmake_args=(
    -S "$root" -B "$build_dir"
    -DCMAKE_BUILD_TYPE=Release
    -DEMASK_NATIVE=ON
    -DEMASK_BUILD_TESTS=OFF
    -DEMASK_BUILD_EXAMPLES="$examples"
    -DEMASK_BUILD_BENCHMARKS=ON
  )
  if [ -n "${CXX:-}" ]; then cmake_args+=(-DCMAKE_CXX_COMPILER="$CXX"); fi
  emask_fresh_build_dir "$build_dir" "${CXX:-default}|${cmake_args[*]}"
  cmake "${cmake_args[@]}" >"$build_dir/configure.log" 2>&1 || {
    cat "$build_dir/configure.log"
    return 1
  }
}

# True when source file $1 needs MPI: an example marked "// emask-requires: mpi", or a file that
# includes <mpi.h> (emask/dist/ring_attention.hpp). Loops over examples/*.cpp or the headers
# skip those (or build them with emask_mpi_flags) so that they pass on a machine without MPI.
emask_requires_mpi() {
  grep -Eq '^// emask-requires: .*mpi|^[[:space:]]*#[[:space:]]*include[[:space:]]*<mpi\.h>' "$1"
}

# Prints the compile flags of MPI's C API for a plain compiler command line (mpicxx's include
# directories as -isystem, as CMake's MPI::MPI_CXX gives them, and the C++ bindings off); fails
# when no MPI compiler wrapper is installed.
emask_mpi_flags() {
  local wrapper mpi_out=() f
  wrapper=$(command -v mpicxx || command -v mpic++ || true)
  [ -n "$wrapper" ] || return 1
  local raw
  raw=$("$wrapper" --showme:compile 2>/dev/null || "$wrapper" -compile_info 2>/dev/null) || return 1
  for f in $raw; do
    case "$f" in
      -I*) mpi_out+=(-isystem "${f#-I}") ;;
      -D* | -pthread) mpi_out+=("$f") ;;
      *) ;;
    esac
  done
  [ "${#mpi_out[@]}" -gt 0 ] || return 1
  echo "-DOMPI_SKIP_MPICXX -DMPICH_SKIP_MPICXX ${mpi_out[*]}"
}

# emask_mpirun NP PROGRAM [ARGS...]: runs PROGRAM on NP ranks of this host, as the MPI ctest
# cases do (cmake/emask_mpi.cmake): with Open MPI, --oversubscribe (more ranks than cores), root
# allowed (containers), shared memory only (pml ob1, btl self,vader, no cross-memory attach),
# and one OpenMP thread per rank unless OMP_NUM_THREADS is set.
emask_mpirun() {
  local np=$1 launcher launch_extra=()
  shift
  launcher=$(command -v mpiexec || command -v mpirun || true)
  if [ -z "$launcher" ]; then
    emask_log "no mpiexec found (Debian: apt-get install openmpi-bin)"
    return 127
  fi
  if "$launcher" --version 2>&1 | grep -Eq 'Open MPI|OpenRTE'; then
    launch_extra+=(--oversubscribe)
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml=ob1 \
      OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none \
      OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$launcher" -n "$np" "${launch_extra[@]}" "$@"
  else
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$launcher" -n "$np" "$@"
  fi
}
