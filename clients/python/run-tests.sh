#!/usr/bin/env bash
# Test entry point for the Python client: builds a venv, installs the package with its test
# extras (the adapters' frameworks at their pinned ranges), and runs pytest (unit tests, end-to-end
# tests against the real daemon, the framework adapters, MCP servers through the real
# mcp-server-sqlite, and the examples) and mypy --strict. Then it builds the
# sdist and wheel, checks their metadata, and installs the wheel in a bare venv to prove the core
# client needs nothing else. The daemon binary is $PTCD_BIN if set, else <repo>/target/debug/ptcd.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$here[test]"

# The MCP tests and example run the real third-party server mcp-server-sqlite, in a venv of its own
# (as a user would install it with pipx), pinned to the release they were written against, with the
# 1.x MCP SDK it needs (it fails at start with 2.x).
# A preset PTCD_TEST_MCP_SQLITE (an installed server) is used as it is.
if [[ -z "${PTCD_TEST_MCP_SQLITE:-}" ]]; then
    mcp_venv="$here/.mcp-venv"
    if [[ ! -x "$mcp_venv/bin/python" ]]; then
        python3 -m venv "$mcp_venv"
    fi
    "$mcp_venv/bin/python" -m pip install --quiet --disable-pip-version-check "mcp-server-sqlite==2025.4.25" "mcp==1.30.0"
    export PTCD_TEST_MCP_SQLITE="$mcp_venv/bin/mcp-server-sqlite"
fi

cd "$here"
status=0
"$venv/bin/python" -m pytest "$here/tests" "$@" || status=$?

# Typed package: the core client and the adapters, against the frameworks' own types (those need
# Python 3.11+, as the frameworks' current releases do; on 3.10 the core alone is checked).
if "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    "$venv/bin/python" -m mypy --strict "$here/src/ptcd" || status=$?
else
    "$venv/bin/python" -m mypy --strict "$here/src/ptcd" \
        --exclude 'integrations/(pydantic_ai|openai_agents|langchain)\.py' || status=$?
fi

# The publishable artifacts: build, metadata check, and a bare install of the wheel.
dist="$(mktemp -d)"
trap 'rm -rf "$dist"' EXIT
"$venv/bin/python" -m build --no-isolation --outdir "$dist/out" "$here" >"$dist/build.log" 2>&1 \
    || { cat "$dist/build.log"; exit 1; }
"$venv/bin/python" -m twine check --strict "$dist"/out/*
python3 -m venv "$dist/bare"
"$dist/bare/bin/python" -m pip install --quiet --disable-pip-version-check --no-index "$dist"/out/*.whl
"$dist/bare/bin/python" - <<'PY'
import importlib.metadata, ptcd
assert importlib.metadata.requires("ptcd") is None or all("extra ==" in r for r in importlib.metadata.requires("ptcd")), \
    importlib.metadata.requires("ptcd")
for adapter in ("pydantic_ai", "openai_agents", "langchain"):
    try:
        __import__(f"ptcd.integrations.{adapter}")
    except ImportError as exc:
        assert "pip install 'ptcd[" in str(exc), exc
    else:
        raise AssertionError(f"ptcd.integrations.{adapter} imported without its framework")
print(f"artifacts ok: ptcd {ptcd.__version__} wheel installs with no dependencies; adapters say what to install")
PY
exit "$status"
