"""A stdio MCP server whose tools never answer on their own: the hang and cancellation faults.

`wait_forever(tag)` records that the request arrived (`<state>/<tag>.request`), then waits
forever; `slow(tag, seconds)` does the same but answers after `seconds`. When the client cancels
the call (`notifications/cancelled`, which the SDK turns into cancelling the handler's task),
the tool writes `<state>/<tag>.cancelled` before it unwinds: the test's proof that the
cancellation reached the server. `ping()` answers at once.

`--silent`: never answers anything, not even `initialize` (a server that cannot start); it still
reads stdin so the daemon's writes do not fail, and records `<state>/silent.started`. Started
again after that (a restart), it exits at once: a test that kills it is never left waiting out
`startup_timeout_ms` for a second silent start.

Usage: hang_server.py --state DIR [--silent]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import anyio


def touch(state: Path, name: str, text: str = "") -> None:
    """Writes a marker atomically (write then rename), so a poller never sees half a file."""
    tmp = state / f".{name}.tmp"
    tmp.write_text(text)
    os.rename(tmp, state / name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True, type=Path)
    ap.add_argument("--silent", action="store_true")
    args = ap.parse_args()
    state: Path = args.state
    state.mkdir(parents=True, exist_ok=True)

    if args.silent:
        if (state / "silent.started").exists():
            sys.exit(3)
        touch(state, "silent.started", str(os.getpid()))
        for _ in sys.stdin.buffer:
            pass
        return

    from mcp.server.mcpserver import MCPServer

    server = MCPServer("hang")

    async def wait(tag: str, seconds: float | None) -> str:
        touch(state, f"{tag}.request", str(os.getpid()))
        try:
            if seconds is None:
                await anyio.sleep_forever()
            else:
                await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            touch(state, f"{tag}.cancelled")
            raise
        touch(state, f"{tag}.done")
        return f"{tag} done"

    @server.tool()
    async def wait_forever(tag: str) -> str:
        """Records the request, then never answers (until cancelled)."""
        return await wait(tag, None)

    @server.tool()
    async def slow(tag: str, seconds: float = 60.0) -> str:
        """Records the request, answers after `seconds` unless cancelled first."""
        return await wait(tag, seconds)

    @server.tool()
    def ping() -> str:
        """Answers "pong" at once."""
        return "pong"

    server.run()


if __name__ == "__main__":
    main()
