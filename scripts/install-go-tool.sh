#!/usr/bin/env bash
# Usage: install-go-tool.sh NAME PACKAGE@VERSION BIN-DIR [NOTE]
# Builds a Go command with `go install` into BIN-DIR (outside the clone, so a fresh clone
# finds it). NOTE is added to the message saying Go is missing (another way to get NAME).
# Used by install-opa.sh and install-h2spec.sh, which decide whether a build is needed.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 NAME PACKAGE@VERSION BIN-DIR [NOTE]" >&2
  exit 2
fi
name="$1"
package="$2"
bin="$3"
note="${4:-}"
if ! command -v go >/dev/null 2>&1; then
  echo "install-$name: building $package needs Go (https://go.dev/dl/, 1.23 or later)${note:+; $note}" >&2
  exit 1
fi
echo "install-$name: building $package into $bin (go install)" >&2
mkdir -p "$bin"
GOBIN="$bin" go install "$package"
