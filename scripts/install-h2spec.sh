#!/usr/bin/env bash
# Makes sure h2spec (HTTP/2 conformance, github.com/summerwind/h2spec) is there for the
# proxy's conformance test (test/proxy/h2spec.test.ts): ~/.cache/switchboard/h2spec/bin/h2spec,
# built once with `go install` (about 10 s, 9 MB) and reused — outside the clone, so a fresh
# clone (CI) finds it. Idempotent. Needs Go only to build.
set -euo pipefail
VERSION="v2.2.1+incompatible"
DEFAULT="$HOME/.cache/switchboard/h2spec/bin/h2spec"

if [ -x "$DEFAULT" ] && go version -m "$DEFAULT" 2>/dev/null | grep -qF "$VERSION"; then
  exit 0
fi
if [ -x "$DEFAULT" ] && ! command -v go >/dev/null 2>&1; then
  exit 0
fi
bash "$(dirname "$0")/install-go-tool.sh" h2spec "github.com/summerwind/h2spec/cmd/h2spec@$VERSION" "$(dirname "$DEFAULT")"
