#!/bin/sh
# Run the codec unit tests under valgrind's memcheck: no leaks, no invalid
# reads or writes. Skipped (77) when valgrind is missing or the build uses
# sanitizers (the two do not mix).
set -eu
command -v valgrind >/dev/null 2>&1 || { echo "valgrind not installed"; exit 77; }
bin="${top_builddir:-.}/tests/unit/check_codec"
if nm "$bin" 2>/dev/null | grep -q __asan_init; then
  echo "sanitizer build: valgrind skipped"
  exit 77
fi
CK_FORK=no exec valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
  "$bin"
