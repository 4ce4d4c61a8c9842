#!/usr/bin/env bash
# Installs the third-party MCP servers and the SDK that tests/mcp runs against, reproducibly
# (pinned versions; npm ci from the committed package-lock.json). Called by tests/run-all.sh;
# run it alone to prepare `pytest tests/mcp`. Needs python3 with venv/pip and node 20+ with npm.
#   target/test-venv          mcp (SDK 2.x), mcp-server-time, mcp-server-git   (requirements.txt)
#   target/mcp-sqlite-venv    mcp-server-sqlite with the SDK 1.x it needs       (requirements-sqlite.txt)
#   tests/mcp/servers/node_modules   server-everything, server-memory, server-filesystem
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
PIP_FLAGS=(--quiet --disable-pip-version-check)

venv() {
    [ -x "$1/bin/python" ] || python3 -m venv "$1"
}

VENV="$REPO/target/test-venv"
venv "$VENV"
"$VENV/bin/python" -m pip install "${PIP_FLAGS[@]}" -r tests/requirements.txt -r tests/mcp/requirements.txt

SQLITE_VENV="$REPO/target/mcp-sqlite-venv"
venv "$SQLITE_VENV"
"$SQLITE_VENV/bin/python" -m pip install "${PIP_FLAGS[@]}" -r tests/mcp/requirements-sqlite.txt

cd tests/mcp/servers
npm ci --no-audit --no-fund --loglevel=error
