#!/bin/sh
# Install what kzproxy needs to build and test on Debian 12 (run as root).
# Idempotent: packages already present are left alone, so a second run is fast.
set -eu

APT_PACKAGES="build-essential autoconf automake pkg-config \
  libevent-dev libcurl4-openssl-dev libssl-dev libjansson-dev librdkafka-dev check \
  kcat python3-confluent-kafka python3-kafka valgrind curl ca-certificates \
  debhelper dpkg-dev fakeroot python3-yaml systemd"
# The last line is packaging: dpkg-buildpackage and dh for the .deb
# (tests/packaging/test_deb.sh), PyYAML and systemd-analyze for
# tests/integration/test_packaging.py.

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
# kafkajs and @platformatic/kafka, pinned by tests/clients/package-lock.json;
# run by tests/integration/test_clients.py (tests/clients/kafkajs_roundtrip.js,
# tests/clients/platformatic_roundtrip.js).
# Skipped when already installed, so a second run is fast.
kz_top=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$kz_top/tests/clients/node_modules/kafkajs" ] ||
   [ ! -d "$kz_top/tests/clients/node_modules/@platformatic/kafka" ]; then
  echo "kzproxy: installing KafkaJS and @platformatic/kafka (npm ci --prefix tests/clients)"
  npm ci --prefix "$kz_top/tests/clients" --no-audit --no-fund --loglevel=error >/dev/null
fi
# ---- end clients ----

# ---- real Kafka: the test bed's Apache Kafka and the reference Java client ----
# tests/kafka/pom.xml pins the Kafka release; Maven resolves it from Maven
# Central into ~/.m2 (kept between runs where the machine keeps it) and
# copies it to tests/kafka/target/lib. Skipped when already built.
if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "kzproxy: the real-Kafka test bed needs a JDK 17 and Maven: apt-get install openjdk-17-jdk-headless maven" >&2
    exit 1
  fi
  echo "kzproxy: installing a JDK and Maven for the real-Kafka test bed"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jdk-headless maven >/dev/null
fi
# kz_mvn_module DIR WHAT JAR [FILE...]: mvn package in DIR unless target/JAR,
# target/lib and each target/FILE are there and JAR is newer than the pom
# and sources; offline first (a machine that keeps ~/.m2 needs no network),
# then online. A failure stops the script. The jar is touched after a
# build, so a touched pom that changes nothing does not rebuild every run.
kz_mvn_module() {
  kz_dir=$1 kz_what=$2
  shift 2
  kz_stale=$(find "$kz_dir/src" "$kz_dir/pom.xml" -newer "$kz_dir/target/$1" 2>/dev/null | head -1)
  [ -f "$kz_dir/target/$1" ] && [ -d "$kz_dir/target/lib" ] || kz_stale=missing
  for kz_f in "$@"; do
    [ -e "$kz_dir/target/$kz_f" ] || kz_stale=missing
  done
  if [ -n "$kz_stale" ]; then
    echo "kzproxy: building $kz_what"
    mvn -q -B -o -f "$kz_dir/pom.xml" package >/dev/null 2>&1 ||
      mvn -q -B -f "$kz_dir/pom.xml" package
    touch "$kz_dir/target/$1"
  fi
}
kz_mvn_module "$kz_top/tests/kafka" \
  "the real-Kafka test bed (mvn package in tests/kafka; the first run downloads Apache Kafka)" \
  kz-kafka-testbed-1.jar
# ---- end real Kafka ----

# ---- Kroxylicious: the benchmark's peer proxy ----
# tests/kroxylicious/pom.xml pins io.kroxylicious:kroxylicious-runtime (its
# own kafka-clients, hence a module apart from tests/kafka); Maven resolves it
# into ~/.m2 and builds the launcher tests/bench/bench_kroxy.py runs (a few
# seconds; the first run downloads about 70 MB). Skipped when already built.
# A failure stops here, as the real-Kafka step's does: the test suite's
# quick benchmark runs the peer whenever java and Maven are present.
kz_mvn_module "$kz_top/tests/kroxylicious" \
  "Kroxylicious for the benchmark (mvn package in tests/kroxylicious)" \
  kz-kroxylicious-1.jar classpath.txt
# ---- end Kroxylicious ----

# ---- more clients: franz-go, @platformatic/kafka, confluent-kafka from PyPI ----
# For tests/integration/test_clients.py (@platformatic/kafka comes with
# KafkaJS from tests/clients/package-lock.json above). Each step is skipped
# when its result is already there and up to date, so a second run is fast.
# franz-go: tests/clients/go (go.mod/go.sum pin it; the Go module proxy
# serves it) built into tests/clients/go/kzgo-roundtrip, rebuilt when a
# source is newer than the binary.
kz_go="$kz_top/tests/clients/go"
if ! command -v go >/dev/null 2>&1; then
  echo "kzproxy: no go on PATH: the franz-go client test (test_client_go.py) will be skipped" >&2
elif [ ! -x "$kz_go/kzgo-roundtrip" ] ||
     [ -n "$(find "$kz_go/main.go" "$kz_go/go.mod" "$kz_go/go.sum" -newer "$kz_go/kzgo-roundtrip" 2>/dev/null | head -1)" ]; then
  echo "kzproxy: building the franz-go client (go build in tests/clients/go)"
  (cd "$kz_go" && go build -buildvcs=false -o kzgo-roundtrip .)
fi
# confluent-kafka from PyPI (its wheel bundles a current librdkafka), beside
# Debian's python3-confluent-kafka: a venv in tests/clients/pyvenv made by the
# python3 first on PATH (pyenv's, not /usr/bin/python3), with the version
# tests/clients/requirements.txt pins; redone when that file changes or the
# venv's python no longer runs.
kz_venv="$kz_top/tests/clients/pyvenv"
kz_req="$kz_top/tests/clients/requirements.txt"
if ! "$kz_venv/bin/python" -c 'import confluent_kafka' >/dev/null 2>&1 ||
   ! cmp -s "$kz_req" "$kz_venv/kz-requirements.txt"; then
  echo "kzproxy: installing confluent-kafka from PyPI into tests/clients/pyvenv"
  if ! "$kz_venv/bin/python" -c '' >/dev/null 2>&1; then
    rm -rf "$kz_venv"
    python3 -m venv "$kz_venv" || {
      echo "kzproxy: '$(command -v python3) -m venv' failed: put pyenv's python3 first on PATH" >&2
      exit 1
    }
  fi
  "$kz_venv/bin/python" -m pip install --disable-pip-version-check --no-input -q --only-binary=:all: -r "$kz_req"
  cp "$kz_req" "$kz_venv/kz-requirements.txt"
fi
# ---- end more clients ----
