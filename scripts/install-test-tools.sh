#!/usr/bin/env bash
# Installs what the tests start on loopback, when missing: Redis (redis-server,
# redis-sentinel, redis-cli) and openssl. Idempotent; needs root (or sudo) only when it
# has something to install. The tests start and stop their own servers; nothing here runs.
set -euo pipefail
cd "$(dirname "$0")"
bash ./install-redis.sh
if ! command -v openssl >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends openssl
fi
