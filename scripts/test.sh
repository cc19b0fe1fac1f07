#!/bin/sh
# Install what the tests need, build kzproxy, and run the whole test suite.
# Usage: scripts/test.sh [--sanitizers]
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)

sh scripts/deps.sh

build="$top/_build"
conf=""
checkvars=""
if [ "${1:-}" = "--sanitizers" ]; then
  build="$top/_build-san"
  conf="--enable-sanitizers"
  # Under the sanitizers, two of the real-Kafka variants (the whole set runs
  # in the plain pass): the cluster's JVMs make each one long on 2 cores.
  checkvars="KAFKA_TESTS=tests/integration/kafka/test_kcat_roundtrip.kafka tests/integration/kafka/test_wal_idempotent.kafka"
fi

[ -x configure ] || autoreconf -fi
mkdir -p "$build"
cd "$build"
[ -f Makefile ] || "$top/configure" -q --enable-werror $conf
make -j"$(nproc)" >/dev/null
start=$(date +%s)
if make -j"$(nproc)" check ${checkvars:+"$checkvars"}; then
  echo "kzproxy: test suite passed in $(( $(date +%s) - start ))s"
else
  echo "kzproxy: test suite FAILED; logs are in $build (see test-suite.log and tests/*/*.log)" >&2
  # The end of each failed test's log, so a CI record that keeps only this
  # output still says why.
  find tests -name '*.trs' -exec grep -l '^:test-result: FAIL' {} + 2>/dev/null | while read -r trs; do
    log="${trs%.trs}.log"
    echo "---- last 60 lines of $log ----" >&2
    tail -n 60 "$log" >&2 || true
  done
  exit 1
fi
