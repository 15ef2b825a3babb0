#!/usr/bin/env bash
# Compiles the RBAC example policy (examples/opa/rbac: rbac.rego and its data.json) into the
# precompiled bundle the example configuration runs (examples/opa/rbac.tar.gz), so that
# `switchboard server --config examples/config` needs no OPA compiler. Run it after changing
# the example: `npm run build:opa-example` (test/adapters/acl/opa/example.test.ts fails while
# the checked-in bundle is stale). Needs the compiler (scripts/install-opa.sh) and a build (dist/).
# Usage: build-opa-example.sh [OUTPUT]   (default examples/opa/rbac.tar.gz)
set -euo pipefail
cd "$(dirname "$0")/.."
OUTPUT="$(realpath -m "${1:-examples/opa/rbac.tar.gz}")"
OPA="${SWITCHBOARD_OPA:-$HOME/.cache/switchboard/opa/bin/opa}"
if [ ! -x "$OPA" ]; then OPA="$(command -v opa || true)"; fi
if [ -z "$OPA" ]; then
  echo "build-opa-example: the OPA compiler is missing; install it with: bash scripts/install-opa.sh" >&2
  exit 1
fi
# The capabilities the adapter compiles with: a bundle that passes them loads in the adapter.
CAPABILITIES="$(node -e "require('./dist/adapters/acl/opa/capabilities').capabilitiesFile().then((f) => console.log(f))")"
cd examples/opa/rbac
"$OPA" build -t wasm -e rbac/decision --capabilities "$CAPABILITIES" -o "$OUTPUT" rbac.rego data.json
echo "wrote $OUTPUT" >&2
