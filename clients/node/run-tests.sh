#!/usr/bin/env bash
# Builds the Node client and runs its tests (unit + end-to-end against the real
# daemon + every example). Needs a built daemon: PTCD_BIN, else <repo>/target/debug/ptcd.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export PTCD_BIN="${PTCD_BIN:-$repo/target/debug/ptcd}"

cd "$here"
npm ci --no-audit --no-fund
npm run build
# The examples depend on this package through a file: link, so install them after the build.
(cd "$repo/examples/node" && npm ci --no-audit --no-fund)
node --test --test-reporter=spec dist/test/*.test.js
