#!/usr/bin/env bash
# Makes sure h2load (Debian's nghttp2-client) is on PATH; installs it with apt when missing.
# Used by `npm run bench:check`. Needs root (or sudo) and a reachable Debian mirror.
set -euo pipefail
if command -v h2load >/dev/null 2>&1; then
  exit 0
fi
echo "h2load not found: installing Debian's nghttp2-client" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-h2load: not root and no sudo; install nghttp2-client yourself" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends nghttp2-client ||
  { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends nghttp2-client; }
command -v h2load >/dev/null 2>&1 || { echo "install-h2load: h2load still missing" >&2; exit 1; }
