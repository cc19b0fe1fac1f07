#!/bin/sh
# Install what kzproxy needs to build and test on Debian 12 (run as root).
# Idempotent: packages already present are left alone, so a second run is fast.
set -eu

APT_PACKAGES="build-essential autoconf automake pkg-config \
  libevent-dev libcurl4-openssl-dev libssl-dev libjansson-dev librdkafka-dev check \
  kcat python3-confluent-kafka python3-kafka valgrind curl ca-certificates"

missing=""
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js and npm run s3rver and KafkaJS; take Debian's only if none is installed.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "kzproxy: missing packages:$missing; run as root or: apt-get install$missing" >&2
    exit 1
  fi
  echo "kzproxy: installing$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
