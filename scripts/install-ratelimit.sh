#!/usr/bin/env bash
# Builds envoyproxy/ratelimit, the peer of `npm run bench:quota`, once into a cache folder
# outside the clone (SWITCHBOARD_RATELIMIT_DIR, default ~/.cache/switchboard/ratelimit) and
# reuses it while its recorded version is the one pinned here. Needs Go and the Go module
# proxy; about 3 minutes cold. Prints the binary's path.
#   --check   print the path and exit 0 when built at the pinned version; exit 1 otherwise
set -euo pipefail
VERSION="v1.4.1-0.20260122083618-3fb702589d36"
DIR="${SWITCHBOARD_RATELIMIT_DIR:-$HOME/.cache/switchboard/ratelimit}"
BIN="$DIR/bin/service_cmd"
built() { [ -x "$BIN" ] && [ "$(cat "$DIR/VERSION" 2>/dev/null)" = "$VERSION" ]; }
if built; then
  echo "$BIN"
  exit 0
fi
[ "${1:-}" = "--check" ] && exit 1
command -v go >/dev/null 2>&1 || { echo "install-ratelimit: go is not on PATH; install Go first" >&2; exit 1; }
mkdir -p "$DIR/bin"
echo "building envoyproxy/ratelimit $VERSION into $DIR/bin (about 3 min)" >&2
GOBIN="$DIR/bin" go install "github.com/envoyproxy/ratelimit/src/service_cmd@$VERSION" >&2
echo "$VERSION" > "$DIR/VERSION"
echo "$BIN"
