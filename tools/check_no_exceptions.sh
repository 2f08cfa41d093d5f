#!/usr/bin/env bash
# The -fno-exceptions path, with each compiler given (default: g++ and clang++, those found):
#   - abort_default.cpp built with -fno-exceptions: a bad argument must abort (not exit 0) with
#     the message on stderr; the same with exceptions on but -DEMASK_NO_EXCEPTIONS;
#   - custom_handler.cpp built with -fno-exceptions: the handler installed with
#     set_error_handler sees the message, prints it and exits 0.
set -euo pipefail

# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
root=$(emask_root)
src="$root/tests/consumers/no_exceptions"

compilers=("$@")
if [ "${#compilers[@]}" -eq 0 ]; then
  for c in g++ clang++; do
    if command -v "$c" >/dev/null 2>&1; then compilers+=("$c"); else emask_log "skipping $c: not found"; fi
  done
fi
[ -d /usr/include/eigen3/Eigen ] && eigen=/usr/include/eigen3 ||
  eigen=$(pkg-config --variable=includedir eigen3)/eigen3
flags=(-std=c++17 -O1 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror
       -I"$root/include" -isystem "$eigen")
expected="emask::causal::bottom_right: argument 'q_len' = -1, expected >= 0"

work=$(mktemp -d "${TMPDIR:-/tmp}/emask-noexc.XXXXXX")
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

report() {  # report OK|FAIL name [detail]
  if [ "$1" = OK ]; then
    passed=$((passed + 1)); printf '  ok    %s\n' "$2"
  else
    failed=$((failed + 1)); printf '  FAIL  %s: %s\n' "$2" "${3:-}"
  fi
}

# check_abort NAME EXE: must die abnormally, stderr must hold the message.
check_abort() {
  local name=$1 exe=$2 rc=0
  # (the group's stderr redirection keeps bash's "Aborted" job notice out of the log)
  { "$exe" >"$work/out" 2>"$work/err" </dev/null; } 2>/dev/null || rc=$?
  if [ "$rc" -eq 0 ]; then
    report FAIL "$name" "exited 0, expected an abort"
  elif [ "$rc" -ne 134 ]; then
    report FAIL "$name" "exit status $rc, expected 134 (SIGABRT); stderr: $(head -c 300 "$work/err")"
  elif ! grep -qF "$expected" "$work/err"; then
    report FAIL "$name" "stderr lacks the message; stderr: $(head -c 300 "$work/err")"
  elif grep -q UNREACHABLE "$work/out"; then
    report FAIL "$name" "continued after the error"
  else
    report OK "$name (aborted, stderr: $(head -n 1 "$work/err"))"
  fi
}

for cxx in "${compilers[@]}"; do
  tag=$(basename "$cxx")
  if "$cxx" "${flags[@]}" -fno-exceptions "$src/abort_default.cpp" -o "$work/abort-$tag" \
       2>"$work/build.log"; then
    check_abort "$tag -fno-exceptions default handler" "$work/abort-$tag"
  else
    report FAIL "$tag -fno-exceptions build of abort_default.cpp" "$(head -n 20 "$work/build.log")"
  fi
  if "$cxx" "${flags[@]}" -DEMASK_NO_EXCEPTIONS "$src/abort_default.cpp" -o "$work/macro-$tag" \
       2>"$work/build.log"; then
    check_abort "$tag -DEMASK_NO_EXCEPTIONS default handler" "$work/macro-$tag"
  else
    report FAIL "$tag -DEMASK_NO_EXCEPTIONS build of abort_default.cpp" "$(head -n 20 "$work/build.log")"
  fi
  if "$cxx" "${flags[@]}" -fno-exceptions "$src/custom_handler.cpp" -o "$work/handler-$tag" \
       2>"$work/build.log"; then
    rc=0
    "$work/handler-$tag" >"$work/out" 2>&1 </dev/null || rc=$?
    if [ "$rc" -eq 0 ] && grep -q "^custom handler: emask::key_padding::from_lengths: argument 'lengths\[1\]' = 9" "$work/out"; then
      report OK "$tag -fno-exceptions custom handler ($(head -n 1 "$work/out"))"
    else
      report FAIL "$tag -fno-exceptions custom handler" "exit $rc, output: $(head -c 300 "$work/out")"
    fi
  else
    report FAIL "$tag -fno-exceptions build of custom_handler.cpp" "$(head -n 20 "$work/build.log")"
  fi
done

echo "no-exceptions: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
