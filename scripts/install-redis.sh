#!/usr/bin/env bash
# Makes sure redis-server, redis-sentinel, redis-cli and redis-benchmark are on PATH;
# installs Debian's redis-server, redis-sentinel and redis-tools with apt when one is
# missing. Used by the tests (test/support/redis-servers.ts starts and stops its own
# servers on free loopback ports) and by `npm run bench:quota`. Needs root (or sudo).
set -euo pipefail
missing=0
for tool in redis-server redis-sentinel redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null 2>&1 || missing=1
done
[ "$missing" -eq 0 ] && exit 0
echo "Redis tools missing: installing Debian's redis-server, redis-sentinel, redis-tools" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-redis: not root and no sudo; install redis-server, redis-sentinel and redis-tools yourself" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
packages="redis-server redis-sentinel redis-tools"
# shellcheck disable=SC2086
$SUDO apt-get install -y --no-install-recommends $packages ||
  { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends $packages; }
# Debian's package may start a system-wide server on 6379; the tests never use it.
for tool in redis-server redis-sentinel redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null 2>&1 || { echo "install-redis: $tool still missing" >&2; exit 1; }
done
