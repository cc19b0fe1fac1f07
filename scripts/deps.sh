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

# ---- objwal: S3 emulators for the objwal integration tests ----
# s3rver 3.7.1 and @20minutes/s3rver, pinned by tests/s3/package-lock.json.
# Skipped when already installed, so a second run is fast.
kz_top=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$kz_top/tests/s3/node_modules/s3rver" ] || [ ! -d "$kz_top/tests/s3/node_modules/@20minutes/s3rver" ]; then
  echo "kzproxy: installing the S3 emulators (npm ci --prefix tests/s3)"
  npm ci --prefix "$kz_top/tests/s3" --no-audit --no-fund --loglevel=error >/dev/null
fi
# ---- end objwal ----

# ---- clients: KafkaJS for the client integration tests ----
# kafkajs, pinned by tests/clients/package-lock.json; run by
# tests/integration/test_clients.py (tests/clients/kafkajs_roundtrip.js).
# Skipped when already installed, so a second run is fast.
kz_top=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$kz_top/tests/clients/node_modules/kafkajs" ]; then
  echo "kzproxy: installing KafkaJS (npm ci --prefix tests/clients)"
  npm ci --prefix "$kz_top/tests/clients" --no-audit --no-fund --loglevel=error >/dev/null
fi
# ---- end clients ----
