#!/bin/sh
# The log compiler of the .kafka tests: runs the integration test that a
# tests/integration/kafka/NAME.kafka file stands for (tests/integration/NAME.py)
# against real Apache Kafka (KZ_BACKEND=kafka). The file's lines that are not
# comments are the test's arguments.
set -eu
spec=$1
name=$(basename "$spec" .kafka)
args=$(grep -v '^#' "$spec" | tr '\n' ' ' || true)
KZ_BACKEND=kafka
export KZ_BACKEND
# shellcheck disable=SC2086 # the arguments are words
exec /usr/bin/python3 "${top_srcdir:-.}/tests/integration/$name.py" $args
