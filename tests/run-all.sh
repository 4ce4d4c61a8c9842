#!/usr/bin/env bash
# Runs every test of the repository, installing what it needs first. This is the README's test
# command and what CI runs (`.ci/run`). Works from a fresh clone; needs cargo, python3 (3.10+)
# with venv/pip, node 20+ with npm, and /usr/bin/python3 (the interpreter the daemon confines).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

step "build the daemon"
cargo build --locked
export PTCD_BIN="$REPO/target/debug/ptcd"

step "format and lint"
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
python3 tests/module_layers.py

step "daemon unit tests and the in-process harness (daemon/tests/server.rs)"
cargo test --locked

step "python test environment"
VENV="$REPO/target/test-venv"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt

step "MCP servers for tests/mcp (pinned PyPI and npm packages)"
bash tests/mcp/install.sh
# The clients' suites run the same pinned mcp-server-sqlite (instead of installing their own).
export PTCD_TEST_MCP_SQLITE="$REPO/target/mcp-sqlite-venv/bin/mcp-server-sqlite"

step "shim tests"
"$VENV/bin/python" -m pytest -q daemon/src/shim/test_shim.py

step "end-to-end and escape tests (real daemon, real socket)"
"$VENV/bin/python" -m pytest -q tests

# The fork server (issue #14), whatever the daemons' default of the main pass: the escape suite with
# every eligible run forked (`require`), the hardening suite with runs forked and with none.
# tests/escape/test_fork_server.py and tests/hardening/test_fork_server_faults.py run in every
# pass (their fork-specific asserts skip where runs are not forked). The soak is shorter here.
step "escape tests with --fork-server require"
PTCD_FORK_SERVER=require "$VENV/bin/python" -m pytest -q tests/escape
for mode in require off; do
    step "hardening tests with --fork-server $mode"
    PTCD_FORK_SERVER=$mode PTCD_SOAK_RUNS=${PTCD_SOAK_RUNS:-600} "$VENV/bin/python" -m pytest -q tests/hardening
done

# The escape suite again as older kernels see it (--landlock-max-abi): Ubuntu 22.04 (5.15: ABI 1),
# Debian 12 (6.1: ABI 2), Ubuntu 24.04 (6.8: ABI 4), Linux 6.12 (ABI 6). ~1 min per level.
for abi in 1 2 4 6; do
    step "escape tests at Landlock ABI $abi"
    PTCD_ESCAPE_LANDLOCK_MAX_ABI=$abi "$VENV/bin/python" -m pytest -q tests/escape
done

# And against an unprivileged daemon (uid nobody, no capabilities: a per-user service) on an
# Ubuntu 24.04-like ABI, where signals are scoped by the compensating seccomp rule. ~1 min.
if [ "$(id -u)" = 0 ]; then
    step "escape tests against an unprivileged daemon at Landlock ABI 4"
    PTCD_ESCAPE_UNPRIVILEGED=1 PTCD_ESCAPE_LANDLOCK_MAX_ABI=4 "$VENV/bin/python" -m pytest -q -rs tests/escape
fi

step "python client"
bash clients/python/run-tests.sh

step "node client"
bash clients/node/run-tests.sh

printf '\nall test suites passed\n'
