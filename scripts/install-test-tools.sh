#!/usr/bin/env bash
# Installs what the tests start on loopback, when missing: Redis (redis-server,
# redis-sentinel, redis-cli), openssl, the OPA compiler (opa, built with Go into
# ~/.cache/switchboard/opa; see install-opa.sh), the Kafka broker's jars (from Maven
# Central into ~/.cache/switchboard/kafka) with kcat (see install-kafka.sh),
# Elasticsearch 8.19 (from Maven Central into ~/.cache/switchboard/elasticsearch, with the
# system user it runs as; see install-elasticsearch.sh), and h2spec (HTTP/2 conformance,
# built with Go into ~/.cache/switchboard/h2spec; see install-h2spec.sh). Idempotent;
# needs root (or sudo) only when it has something to install from Debian. The tests start and stop their own servers;
# nothing here runs.
set -euo pipefail
cd "$(dirname "$0")"
bash ./install-redis.sh
bash ./install-opa.sh
bash ./install-kafka.sh
bash ./install-elasticsearch.sh
bash ./install-h2spec.sh
if ! command -v openssl >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends openssl
fi
