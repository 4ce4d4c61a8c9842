#!/usr/bin/env bash
# Builds the Node client and runs its tests (unit + end-to-end against the real
# daemon, MCP servers through the real mcp-server-sqlite + every example). Needs a
# built daemon: PTCD_BIN, else <repo>/target/debug/ptcd.
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
# The package as it would be published: `npm pack`, install the tarball into an empty project
# (with the AI SDK next to it, from the cache `npm ci` just filled) and import both entry points.
pack_dir="$(mktemp -d)"
trap 'rm -rf "$pack_dir"' EXIT
npm pack --silent --pack-destination "$pack_dir" >/dev/null
tarball="$(ls "$pack_dir"/ptcd-*.tgz)"
node scripts/check-pack.mjs "$tarball"
(
    cd "$pack_dir"
    echo '{"name": "pack-check", "private": true, "type": "module"}' >package.json
    ai_version="$(node -p "require('$here/node_modules/ai/package.json').version")"
    zod_version="$(node -p "require('$here/node_modules/zod/package.json').version")"
    agents_version="$(node -p "require('$here/node_modules/@openai/agents-core/package.json').version")"
    # First the core alone: it must import with no framework installed.
    npm install --no-audit --no-fund --prefer-offline --silent "$tarball"
    node --input-type=module -e '
        import { connect, tool, VERSION, ToolError } from "ptcd";
        if (typeof connect !== "function" || tool({ name: "x" }, () => 1).name !== "x" || !VERSION || !ToolError) process.exit(1);
    '
    npm install --no-audit --no-fund --prefer-offline --silent "ai@$ai_version" "zod@$zod_version" "@openai/agents-core@$agents_version"
    node --input-type=module -e '
        import { VERSION } from "ptcd";
        import * as aiSdk from "ptcd/ai-sdk";
        import * as agents from "ptcd/openai-agents";
        if (typeof aiSdk.runCodeTool !== "function" || typeof agents.runCodeTool !== "function") process.exit(1);
        console.log(`packed ptcd ${VERSION}: the core imports alone, the adapters next to their frameworks`);
    '
)
# The examples depend on this package through a file: link, so install them after the build.
(cd "$repo/examples/node" && npm ci --no-audit --no-fund)
# The MCP tests and example run the real third-party server mcp-server-sqlite (PyPI), in a venv of
# its own (as a user would install it with pipx), pinned to the release they were written against,
# with the 1.x MCP SDK it needs (it fails at start with 2.x).
# A preset PTCD_TEST_MCP_SQLITE (an installed server) is used as it is.
if [ -z "${PTCD_TEST_MCP_SQLITE:-}" ]; then
    mcp_venv="$here/.mcp-venv"
    if [ ! -x "$mcp_venv/bin/python" ]; then
        python3 -m venv "$mcp_venv"
    fi
    "$mcp_venv/bin/python" -m pip install --quiet --disable-pip-version-check "mcp-server-sqlite==2025.4.25" "mcp==1.30.0"
    export PTCD_TEST_MCP_SQLITE="$mcp_venv/bin/mcp-server-sqlite"
fi
node --test --test-reporter=spec dist/test/*.test.js
