#!/usr/bin/env bash
# Usage: install-debian-tool.sh COMMAND PACKAGE
# Makes sure COMMAND is on PATH (or in /usr/sbin); installs Debian's PACKAGE with apt-get when
# it is missing, and does nothing when it is there. Needs root (or sudo) and a Debian mirror.
# Used by the benchmarks: install-h2load.sh, install-wrk.sh, install-nginx.sh.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 COMMAND DEBIAN-PACKAGE" >&2
  exit 2
fi
tool="$1"
package="$2"
found() { command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ]; }
if found; then
  exit 0
fi
echo "$tool not found: installing Debian's $package" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-debian-tool: $tool is missing, and this is not root and has no sudo." >&2
    echo "  Fix: as root, run: apt-get install -y --no-install-recommends $package" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-debian-tool: $tool is missing and there is no apt-get (not Debian?)." >&2
  echo "  Fix: install $tool (Debian package $package) and put it on PATH." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# A first try without `apt-get update` (fast when the lists are fresh), then with it.
$SUDO apt-get install -y --no-install-recommends "$package" ||
  { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends "$package"; } || {
  echo "install-debian-tool: apt-get could not install $package." >&2
  echo "  Fix: check the Debian mirror (apt-get update), then: apt-get install -y $package" >&2
  exit 1
}
found || {
  echo "install-debian-tool: $package was installed but $tool is still not on PATH or in /usr/sbin" >&2
  exit 1
}
