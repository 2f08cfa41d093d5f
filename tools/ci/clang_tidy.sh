#!/usr/bin/env bash
# CI row clang_tidy: clang-tidy with the checks of the repository's .clang-tidy (bugprone-*,
# performance-*, minus the ones documented there as noise), warnings as errors, diagnostics
# reported only for emask's own headers (include/emask/). C++17.
#
# Translation units checked by default:
#   - one that includes the umbrella header emask/emask.hpp (every header's own code), and
#   - every example program (the kernels, maskers and policies instantiated with real types,
#     so checks that only see instantiated templates run on them too).
# Files that need MPI (examples marked "// emask-requires: mpi", headers including <mpi.h>) get
# MPI's include flags (mpicxx --showme:compile) when MPI is installed and are skipped otherwise.
# Every header compiling alone is the headers row's job (tools/check_headers.sh), so one TU per
# header is only run on request:
#   bash tools/ci/clang_tidy.sh                      umbrella + examples
#   bash tools/ci/clang_tidy.sh --each [header ...]  one TU per header (default: all of them)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=tools/lib.sh
source tools/lib.sh
command -v "${CLANG_TIDY:-clang-tidy}" >/dev/null 2>&1 || emask_ensure_packages clang-tidy
emask_ensure_packages libeigen3-dev
tidy=${CLANG_TIDY:-clang-tidy}
start=$SECONDS
[ -d /usr/include/eigen3/Eigen ] && eigen=/usr/include/eigen3 ||
  eigen=$(pkg-config --variable=includedir eigen3)/eigen3
work=$(mktemp -d "${TMPDIR:-/tmp}/emask-tidy.XXXXXX")
trap 'rm -rf "$work"' EXIT

mpi_flags=$(emask_mpi_flags || true)
mpi_units=()  # translation units that need MPI's flags
skipped=()
add_unit() {  # add_unit TU SOURCE: SOURCE decides whether it needs MPI
  if emask_requires_mpi "$2"; then
    if [ -z "$mpi_flags" ]; then skipped+=("${2#"$root"/}"); return; fi
    mpi_units+=("$1")
  fi
  units+=("$1")
}
units=()
if [ "${1:-}" = "--each" ]; then
  shift
  headers=("$@")
  [ "${#headers[@]}" -gt 0 ] || mapfile -t headers < <(find include/emask -name '*.hpp' | sort)
  for h in "${headers[@]}"; do
    tu="$work/$(echo "$h" | tr '/.' '__').cpp"
    printf '#include "%s"\n' "${h#include/}" >"$tu"
    add_unit "$tu" "$h"
  done
else
  printf '#include <emask/emask.hpp>\n' >"$work/umbrella.cpp"
  units+=("$work/umbrella.cpp")
  for f in examples/*.cpp; do add_unit "$root/$f" "$root/$f"; done
fi

[ "${#skipped[@]}" -eq 0 ] || emask_log "no MPI here (mpicxx not found): skipping ${skipped[*]}"
printf '%s\n' "${mpi_units[@]}" >"$work/mpi_units"
check_one() {  # translation unit -> writes $work/<name>.log, returns clang-tidy's status
  local tu=$1 log extra=()
  log="$work/$(echo "$tu" | tr '/.' '__').log"
  # shellcheck disable=SC2206
  if grep -qxF -- "$tu" "$work/mpi_units"; then extra=($mpi_flags); fi
  "$tidy" --quiet --config-file="$root/.clang-tidy" --warnings-as-errors='*' \
    --header-filter="^$root/include/emask/.*" "$tu" -- \
    -std=c++17 -x c++ -I"$root/include" -isystem "$eigen" "${extra[@]}" >"$log" 2>&1
}
export -f check_one
export root eigen work tidy mpi_flags
rc=0
printf '%s\n' "${units[@]}" | xargs -P "$(emask_jobs)" -I{} bash -c 'check_one "$1" || echo "$1" >>"$work/failed"' _ {} || rc=$?
failed=0
if [ -f "$work/failed" ]; then
  failed=$(sort -u "$work/failed" | wc -l)
  while read -r tu; do
    echo "  FAIL  ${tu#"$root"/}"
    grep -E 'warning:|error:' "$work/$(echo "$tu" | tr '/.' '__').log" | sort -u | sed 's/^/        /' | head -n 30
  done < <(sort -u "$work/failed")
fi
if [ "$failed" -eq 0 ] && [ "$rc" -eq 0 ]; then
  echo "ci-clang_tidy: PASS (${#units[@]} translation units, no finding in include/emask, $($tidy --version | grep -m1 version), $((SECONDS - start)) s)"
  exit 0
fi
echo "ci-clang_tidy: FAIL ($failed of ${#units[@]} translation units with findings, $((SECONDS - start)) s)"
exit 1
