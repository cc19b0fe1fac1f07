#!/bin/sh
# The kcat round trip with every kzproxy under valgrind's memcheck: a leak or
# an invalid access makes the daemon exit non-zero, which fails the test.
# Skipped (77) without valgrind or in a sanitizer build.
set -eu
command -v valgrind >/dev/null 2>&1 || { echo "valgrind not installed"; exit 77; }
if nm "${top_builddir:-.}/kzproxy" 2>/dev/null | grep -q __asan_init; then
  echo "sanitizer build: valgrind skipped"
  exit 77
fi
KZ_PROXY_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect"
export KZ_PROXY_WRAPPER
exec /usr/bin/python3 "${top_srcdir:-..}/tests/integration/test_kcat_roundtrip.py"
