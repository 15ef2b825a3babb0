#!/usr/bin/env bash
# Makes sure h2load (Debian's nghttp2-client) is on PATH; installs it with apt when missing.
# Used by `npm run bench:check` and `npm run bench:proxy`. Needs root (or sudo) and a reachable Debian mirror.
set -euo pipefail
exec bash "$(dirname "$0")/install-debian-tool.sh" h2load nghttp2-client
