#!/usr/bin/env bash
# Test entry point for the Python client: builds a venv, installs the package with its test
# extras, and runs pytest (unit tests, end-to-end tests against the real daemon, and the examples).
# The daemon binary is $PTCD_BIN if set, else <repo>/target/debug/ptcd.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$here[test]"

cd "$here"
status=0
"$venv/bin/python" -m pytest "$here/tests" "$@" || status=$?
exit "$status"
