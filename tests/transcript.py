"""Replaying console transcripts: the socat sessions of the docs, as tests.

A transcript is a `.jsonl` file, one step per line:
- `{"send": <message>}`: the person types this line;
- `{"expect": <pattern>}`: the daemon writes a message matching the pattern.

A pattern matches a message when both have the same keys and every value matches; the string
`"*"` matches any value (for `run_id`, `duration_ms`, …). Lines starting with `//` are comments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rpc import RpcClient


def matches(pattern: Any, value: Any) -> bool:
    if pattern == "*":
        return True
    if isinstance(pattern, dict):
        return isinstance(value, dict) and pattern.keys() == value.keys() and all(
            matches(pattern[k], value[k]) for k in pattern
        )
    if isinstance(pattern, list):
        return isinstance(value, list) and len(pattern) == len(value) and all(
            matches(p, v) for p, v in zip(pattern, value)
        )
    return pattern == value


def replay(client: RpcClient, path: Path) -> None:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("//"):
            continue
        step = json.loads(line)
        if "send" in step:
            client.send(step["send"])
        else:
            got = client.recv()
            assert matches(step["expect"], got), f"{path.name}:{number}: expected {step['expect']}, got {got}"
