#!/bin/sh
# ThreadSanitizer over the workers (issue 17): builds kzproxy with
# -fsanitize=thread in a scratch directory, then runs integration tests with
# every proxy on two event-loop threads (tests/tsan/workers2.py adds
# "workers": 2 to each config that does not set workers). A data race or a
# lock-order inversion is written to $KZ_TSAN_LOGS/ts.*; any such file fails
# the run. Not part of make check (a TSan build and the tests take about
# 5 minutes on 2 cores).
#
#   tests/tsan/run.sh [TEST ...]     (from the source tree; default: the list below)
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${KZ_TSAN_BUILD:-/tmp/kzproxy-tsan}
logs=${KZ_TSAN_LOGS:-$build/reports}
top_builddir=${top_builddir:-$src/_build}
[ -x "$top_builddir/kzproxy" ] || { echo "tsan: build the tree first ($top_builddir/kzproxy: the tests' helpers)"; exit 2; }
mkdir -p "$build"
if [ ! -x "$build/kzproxy" ] || [ -n "$(find "$src" -name '*.[ch]' -newer "$build/kzproxy" -print -quit)" ]; then
  echo "tsan: building kzproxy with -fsanitize=thread in $build"
  (cd "$build" && "$src/configure" -q CFLAGS="-fsanitize=thread -g -O1 -fno-omit-frame-pointer" \
     LDFLAGS="-fsanitize=thread" >/dev/null && make -s -j2 kzproxy >/dev/null)
fi
rm -rf "$logs" && mkdir -p "$logs"
tests=${*:-"test_workers test_kcat_roundtrip test_client_tls test_client_sasl test_fetch_cache test_acl test_rolling_restart test_upgrade test_wal_local test_cut_through test_failover"}
fail=0
for t in $tests; do
  start=$(date +%s)
  if KZ_TSAN_PROXY="$build/kzproxy" KZ_PROXY_WRAPPER="$src/tests/tsan/workers2.py" \
     TSAN_OPTIONS="halt_on_error=0 log_path=$logs/ts second_deadlock_stack=1" \
     top_builddir="$top_builddir" top_srcdir="$src" /usr/bin/python3 "$src/tests/integration/$t.py" >"$logs/$t.out" 2>&1; then
    r=pass
  else
    r=FAIL; fail=1
  fi
  echo "tsan: $t $r in $(( $(date +%s) - start )) s, reports so far: $(ls "$logs" | grep -c '^ts\.' || true)"
done
n=$(ls "$logs" | grep -c '^ts\.' || true)
if [ "$n" -gt 0 ]; then
  echo "tsan: $n report files in $logs:"; grep -h '^SUMMARY' "$logs"/ts.* | sort | uniq -c
  exit 1
fi
echo "tsan: no data race or lock-order report"
exit $fail
