#!/usr/bin/env bash
# CI row clang_tidy: clang-tidy with the checks of the repository's .clang-tidy (bugprone-*,
# performance-*, minus the ones documented there as noise) on every public header: one
# translation unit per header that includes it alone, C++17, warnings as errors, diagnostics
# reported only for emask's own headers. Prints each header's findings and the count.
#   bash tools/ci/clang_tidy.sh [header ...]     (default: every include/emask/**/*.hpp)
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
headers=("$@")
if [ "${#headers[@]}" -eq 0 ]; then
  mapfile -t headers < <(find include/emask -name '*.hpp' | sort)
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/emask-tidy.XXXXXX")
trap 'rm -rf "$work"' EXIT
jobs=$(emask_jobs)
check_one() {  # header -> writes $work/<n>.log, returns clang-tidy's status
  local h=$1 tu
  tu="$work/$(echo "$h" | tr '/.' '__').cpp"
  printf '#include "%s"\n' "${h#include/}" >"$tu"
  "$tidy" --quiet --config-file="$root/.clang-tidy" --warnings-as-errors='*' --header-filter="^$root/include/emask/.*" "$tu" -- \
    -std=c++17 -x c++ -I"$root/include" -isystem "$eigen" >"$tu.log" 2>&1
}
export -f check_one
export root eigen work tidy
rc=0
printf '%s\n' "${headers[@]}" | xargs -P "$jobs" -I{} bash -c 'check_one "$1" || echo "$1" >>"$work/failed"' _ {} || rc=$?
failed=0
if [ -f "$work/failed" ]; then
  failed=$(sort -u "$work/failed" | wc -l)
  while read -r h; do
    echo "  FAIL  $h"
    grep -E 'warning:|error:' "$work/$(echo "$h" | tr '/.' '__').cpp.log" | sort -u | sed 's/^/        /' | head -n 30
  done < <(sort -u "$work/failed")
fi
if [ "$failed" -eq 0 ] && [ "$rc" -eq 0 ]; then
  echo "ci-clang_tidy: PASS (${#headers[@]} headers clean, $($tidy --version | grep -m1 version), $((SECONDS - start)) s)"
  exit 0
fi
echo "ci-clang_tidy: FAIL ($failed of ${#headers[@]} headers with findings, $((SECONDS - start)) s)"
exit 1
