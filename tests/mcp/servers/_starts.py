"""What the crash and flood servers share: a `--state DIR` argument, and every start of the
server appending its pid to `<state>/pids` (so a test can count starts and check that none is
left running after the daemon stops)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def record_start() -> int:
    """Parses `--state DIR`, records this start there; returns how many starts it has seen."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True, type=Path)
    state: Path = ap.parse_args().state
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "pids", "a") as f:
        f.write(f"{os.getpid()}\n")
    return len((state / "pids").read_text().split())
