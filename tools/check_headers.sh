#!/usr/bin/env bash
# Every public header (include/emask/**/*.hpp except detail/) must compile on its own with the
# strict flags users may have: a one-line TU per header, -fsyntax-only, per compiler. A header
# that includes <mpi.h> (emask/dist/ring_attention.hpp) is compiled with MPI's include flags
# (mpicxx --showme:compile, as -isystem) when MPI is installed, and skipped (said so) otherwise.
#
#   bash tools/check_headers.sh [compiler...]      (default: g++ clang++, those found)
#
# EMASK_HEADER_STD (default 17) picks the standard; EMASK_HEADER_FLAGS adds flags.
set -euo pipefail

# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(emask_root)
cd "$root"

compilers=("$@")
if [ "${#compilers[@]}" -eq 0 ]; then
  for c in g++ clang++; do
    if command -v "$c" >/dev/null 2>&1; then compilers+=("$c"); else emask_log "skipping $c: not found"; fi
  done
fi

# Eigen as a system include, as CMake's imported Eigen3::Eigen gives it to users: Eigen 3.4
# itself is not clean under clang's -Wconversion (it implies -Wsign-conversion).
eigen_dir=$(pkg-config --variable=includedir eigen3 2>/dev/null || true)
eigen_dir=${eigen_dir:+$eigen_dir/eigen3}
[ -d "${eigen_dir:-/nonexistent}/Eigen" ] || eigen_dir=/usr/include/eigen3
eigen_flags="-isystem $eigen_dir"
std=${EMASK_HEADER_STD:-17}
flags="-std=c++$std -x c++ -fsyntax-only -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror \
-I$root/include $eigen_flags ${EMASK_HEADER_FLAGS:-}"

mapfile -t headers < <(cd include && find emask -name '*.hpp' -not -path 'emask/detail/*' | sort)
if [ "${#headers[@]}" -eq 0 ]; then emask_log "no headers found"; exit 1; fi

# Headers that need MPI: kept with MPI's flags, or dropped when there is no MPI here.
mpi_flags=$(emask_mpi_flags || true)
mpi_headers=()
kept=()
for h in "${headers[@]}"; do
  if emask_requires_mpi "include/$h"; then
    mpi_headers+=("$h")
    [ -n "$mpi_flags" ] && kept+=("$h")
  else
    kept+=("$h")
  fi
done
headers=("${kept[@]}")
if [ "${#mpi_headers[@]}" -gt 0 ]; then
  if [ -n "$mpi_flags" ]; then
    emask_log "MPI headers compiled with: $mpi_flags (${mpi_headers[*]})"
  else
    emask_log "no MPI here (mpicxx not found): skipping ${mpi_headers[*]}"
  fi
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/emask-headers.XXXXXX")
trap 'rm -rf "$out"' EXIT

# One job per (compiler, header); a failure leaves its diagnostics in $out/<n>.err.
n=0
jobs_file="$out/jobs"
: >"$jobs_file"
for c in "${compilers[@]}"; do
  for h in "${headers[@]}"; do
    extra=""
    if printf '%s\n' "${mpi_headers[@]}" | grep -qxF -- "$h"; then extra=$mpi_flags; fi
    printf '%s\t%s\t%s\t%s\n' "$n" "$c" "$h" "$extra" >>"$jobs_file"
    n=$((n + 1))
  done
done

export flags out
# shellcheck disable=SC2016
xargs -P "$(emask_jobs)" -n 1 -d '\n' bash -c '
  IFS=$'"'"'\t'"'"' read -r id cxx header extra <<<"$1"
  # The header twice: it must also be idempotent (#pragma once).
  # shellcheck disable=SC2086
  if printf "#include <%s>\n#include <%s>\n" "$header" "$header" |
       $cxx $flags $extra - >"$out/$id.err" 2>&1; then
    echo ok >"$out/$id.status"
  else
    echo FAIL >"$out/$id.status"
  fi' _ <"$jobs_file"

failed=0
while IFS=$'\t' read -r id c h _; do
  status=$(cat "$out/$id.status" 2>/dev/null || echo FAIL)
  if [ "$status" != ok ]; then
    failed=$((failed + 1))
    printf '  FAIL  %-8s %s\n' "$c" "$h"
    sed 's/^/      | /' "$out/$id.err" | head -n 12
  fi
done <"$jobs_file"

mpi_note=""
if [ "${#mpi_headers[@]}" -gt 0 ]; then
  if [ -n "$mpi_flags" ]; then mpi_note="; ${#mpi_headers[@]} with MPI's flags"; else mpi_note="; ${#mpi_headers[@]} MPI headers skipped: no MPI here"; fi
fi
echo "headers: $((n - failed)) of $n compiled alone (${#headers[@]} headers x ${compilers[*]}, C++$std, -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror), $failed failed$mpi_note"

# fwd.hpp agrees with the definitions: included first, then every public header, with a
# mismatched class-key as an error (tests/test_fwd.cpp also links a TU that sees fwd.hpp alone).
fwd_failed=0
for c in "${compilers[@]}"; do
  if ! printf '#include <emask/fwd.hpp>\n#include <emask/emask.hpp>\n#include <emask/reference.hpp>\n' |
       $c $flags -Werror=mismatched-tags - >"$out/fwd.err" 2>&1; then
    fwd_failed=$((fwd_failed + 1))
    printf '  FAIL  %-8s emask/fwd.hpp disagrees with a definition:\n' "$c"
    sed 's/^/      | /' "$out/fwd.err" | head -n 12
  fi
done
echo "headers: fwd.hpp before every public header, ${#compilers[@]} compilers, $fwd_failed failed"

# Private headers refuse to be included on their own (they #error without a public header).
mapfile -t private < <(cd include && find emask/detail -name '*.hpp' | sort)
leaked=0
for h in "${private[@]}"; do
  if printf '#include <%s>\n' "$h" | ${compilers[0]} $flags - 2>"$out/private.err"; then
    leaked=$((leaked + 1))
    printf '  FAIL  %s compiles without a public header (it must #error)\n' "$h"
  elif ! grep -q "is private to emask" "$out/private.err"; then
    leaked=$((leaked + 1))
    printf '  FAIL  %s fails alone, but not with its #error:\n' "$h"
    sed 's/^/      | /' "$out/private.err" | head -n 6
  fi
done
echo "headers: ${#private[@]} private headers, $leaked usable without a public header"
[ "$failed" -eq 0 ] && [ "$leaked" -eq 0 ] && [ "$fwd_failed" -eq 0 ]
