#!/usr/bin/env bash
# CI row clang_format: `clang-format --dry-run --Werror` with the repository's .clang-format on
# every C++ file of include/ tests/ examples/ bench/ (tests/catch.hpp, a shim, included).
# Prints the files that are not formatted and their count; fails when there is any.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=tools/lib.sh
source tools/lib.sh
command -v "${CLANG_FORMAT:-clang-format}" >/dev/null 2>&1 || emask_ensure_packages clang-format
fmt=${CLANG_FORMAT:-clang-format}
start=$SECONDS
mapfile -t files < <(find include tests examples bench -type f \( -name '*.hpp' -o -name '*.cpp' -o -name '*.h' \) | sort)
bad=()
for f in "${files[@]}"; do
  "$fmt" --dry-run --Werror --style=file "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ "${#bad[@]}" -eq 0 ]; then
  echo "ci-clang_format: PASS (${#files[@]} files formatted, $("$fmt" --version | head -n 1), $((SECONDS - start)) s)"
  exit 0
fi
printf '  not formatted: %s\n' "${bad[@]}"
echo "ci-clang_format: FAIL (${#bad[@]} of ${#files[@]} files not formatted; see them with"
echo "  clang-format --dry-run --Werror FILE, fix with clang-format -i FILE)"
exit 1
