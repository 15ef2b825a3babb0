#!/usr/bin/env bash
# Makes sure wrk (Debian's wrk, 4.1) is on PATH; installs it with apt when missing.
# Used by `npm run bench:proxy`. Needs root (or sudo) and a reachable Debian mirror.
set -euo pipefail
exec bash "$(dirname "$0")/install-debian-tool.sh" wrk wrk
