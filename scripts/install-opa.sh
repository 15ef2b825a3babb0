#!/usr/bin/env bash
# Makes sure the OPA command-line tool is there: the opa adapter compiles Rego to
# WebAssembly with it, and `switchboard policy test` runs Rego unit tests with it.
# Idempotent. Uses $SWITCHBOARD_OPA when it names an executable; otherwise
# ~/.cache/switchboard/opa/bin/opa, built once with `go install` (5-6 minutes cold, about
# 60 MB) and reused — outside the clone, so a fresh clone (CI) finds it. Needs Go only to build.
set -euo pipefail
VERSION="v1.22.3"
DEFAULT="$HOME/.cache/switchboard/opa/bin/opa"

if [ -n "${SWITCHBOARD_OPA:-}" ] && [ -x "${SWITCHBOARD_OPA}" ]; then
  found="$("$SWITCHBOARD_OPA" version 2>/dev/null | sed -n 's/^Version: //p')"
  if [ "$found" != "${VERSION#v}" ]; then
    echo "install-opa: SWITCHBOARD_OPA=$SWITCHBOARD_OPA is opa ${found:-of an unknown version}; Switchboard is tested with $VERSION" >&2
  fi
  exit 0
fi

if [ -x "$DEFAULT" ] && [ "$("$DEFAULT" version 2>/dev/null | sed -n 's/^Version: //p')" = "${VERSION#v}" ]; then
  exit 0
fi

bash "$(dirname "$0")/install-go-tool.sh" opa "github.com/open-policy-agent/opa@$VERSION" "$(dirname "$DEFAULT")" \
  "or set SWITCHBOARD_OPA to an opa executable (several minutes the first time)"
"$DEFAULT" version | head -1 >&2
