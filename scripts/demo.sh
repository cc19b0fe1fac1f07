#!/bin/sh
# Install what kzproxy needs, build it, and run the demo: a mock Kafka cluster
# of 3 brokers in 3 zones (--kafka: real Apache Kafka, KRaft), one kzproxy per
# zone, messages produced and consumed through the proxies, and an account of
# what happened. Options: scripts/demo.sh --help.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
sh scripts/deps.sh
[ -x configure ] || autoreconf -fi
mkdir -p _build
cd _build
[ -f Makefile ] || "$top/configure" -q
make -j"$(nproc)" kzproxy tests/testbed/kz-testbed >/dev/null
top_srcdir="$top" top_builddir="$top/_build" /usr/bin/python3 "$top/scripts/demo.py" "$@"
