#!/usr/bin/env bash
# Makes sure nginx (Debian's nginx, 1.22) is installed; installs it with apt when missing.
# Used by `npm run bench:proxy`, which runs its own nginx processes on loopback ports with its
# own configuration files and stops them by PID. The package's own service is not used: on a
# machine without /usr/sbin/policy-rc.d denying it, the package may start one on port 80 —
# stop that one yourself if you do not want it.
# Needs root (or sudo) and a reachable Debian mirror.
set -euo pipefail
exec bash "$(dirname "$0")/install-debian-tool.sh" nginx nginx
