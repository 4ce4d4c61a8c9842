"""The last 10 errors out of 10,000 log entries: filter in the script, not in the context window.

The story: ``get_logs()`` returns the service's 10,000 most recent log entries. A model calling it
directly would receive every one of them (about a megabyte) just to look for a handful of errors.
With ptcd the model's script receives them, keeps the last ten ``ERROR`` entries, and returns only
those: the model reads ten lines.

Run it against a local daemon (no network needed):  ptcd serve &  python recent_errors.py
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone
from typing import Literal, TypedDict

import ptcd
from _context import ContextMeter, report

Level = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class LogEntry(TypedDict):
    seq: int
    timestamp: str
    level: Level
    service: str
    message: str


def _make_logs(count: int = 10_000) -> list[LogEntry]:
    rng = random.Random(1234)
    start = datetime(2025, 11, 20, 8, 0, tzinfo=timezone.utc)
    services = ["api", "billing", "search", "auth", "worker"]
    levels: list[Level] = ["DEBUG", "INFO", "WARNING", "ERROR"]
    messages = {
        "DEBUG": "cache lookup key=user:{n} hit={hit}",
        "INFO": "request handled path=/v1/items/{n} status=200 duration_ms={ms}",
        "WARNING": "slow query on table orders took {ms} ms",
        "ERROR": "upstream timeout after {ms} ms calling inventory (attempt {n})",
    }
    logs: list[LogEntry] = []
    for seq in range(count):
        level = rng.choices(levels, weights=[30, 60, 8, 2])[0]
        logs.append({
            "seq": seq,
            "timestamp": (start + timedelta(milliseconds=seq * 750)).isoformat(),
            "level": level,
            "service": rng.choice(services),
            "message": messages[level].format(n=rng.randrange(1, 5000), hit=rng.random() < 0.8, ms=rng.randrange(5, 9000)),
        })
    return logs


LOGS = _make_logs()


def get_logs() -> list[LogEntry]:
    """The service's 10,000 most recent log entries, oldest first."""
    return LOGS


CODE = """
logs = await get_logs()
errors = [e for e in logs if e["level"] == "ERROR"][-10:]
for e in errors:
    print(e["timestamp"], e["service"], e["message"])
f"{len(errors)} most recent errors out of {len(logs)} entries"
"""


async def main() -> None:
    meter = ContextMeter()
    tools = [meter.metered(get_logs)]
    async with ptcd.AsyncClient() as client:
        result = await client.run(CODE, tools=tools)
        print(result.render())
        if not result.ok:
            raise SystemExit(1)
        await report(client, CODE, result, meter, tools)
    expected = [e for e in LOGS if e["level"] == "ERROR"][-10:]
    printed = result.stdout.splitlines()
    assert printed == [f"{e['timestamp']} {e['service']} {e['message']}" for e in expected]
    assert result.value == "10 most recent errors out of 10000 entries"


if __name__ == "__main__":
    asyncio.run(main())
