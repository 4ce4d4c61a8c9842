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
# The compiled library is committed (so `npm install ./clients/node` needs no build step): it must
# match the sources.
if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
    if [ -n "$(git -C "$repo" status --porcelain -- clients/node/dist/src)" ]; then
        git -C "$repo" status --short -- clients/node/dist/src >&2
        echo "clients/node/dist/src is stale: run 'npm run build' in clients/node and commit it" >&2
        exit 1
    fi
fi
# The examples depend on this package through a file: link, so install them after the build.
(cd "$repo/examples/node" && npm ci --no-audit --no-fund)
node --test --test-reporter=spec dist/test/*.test.js
