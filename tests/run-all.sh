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

step "shim tests"
"$VENV/bin/python" -m pytest -q daemon/src/shim/test_shim.py

step "end-to-end and escape tests (real daemon, real socket)"
"$VENV/bin/python" -m pytest -q tests

step "python client"
bash clients/python/run-tests.sh

step "node client"
bash clients/node/run-tests.sh

printf '\nall test suites passed\n'
