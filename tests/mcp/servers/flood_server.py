"""A stdio MCP server that floods: the output-volume faults.

`flood_stderr(mib)` writes `mib` MiB of log lines to stderr, then answers "flooded": the daemon
must drain stderr (else the server blocks on a full pipe and the call hangs) without keeping it
(it keeps only a short tail). `huge_result(mib)` answers with one text block of `mib` MiB: one
JSON-RPC line far longer than the daemon's line limit, which the daemon must refuse without
buffering it. `ping()` answers at once. Every start appends its pid to `<state>/pids`.

Usage: flood_server.py --state DIR
"""

from __future__ import annotations

import sys

from _starts import record_start
from mcp.server.mcpserver import MCPServer

LINE = b"flood " + b"x" * 1017 + b"\n"  # 1 KiB


def main() -> None:
    record_start()

    server = MCPServer("flood")

    @server.tool(structured_output=False)
    def flood_stderr(mib: int) -> str:
        """Writes `mib` MiB to stderr, then answers "flooded"."""
        chunk = LINE * 1024
        for _ in range(mib):
            sys.stderr.buffer.write(chunk)
        sys.stderr.buffer.flush()
        return "flooded"

    @server.tool(structured_output=False)
    def huge_result(mib: int) -> str:
        """Answers with a text of `mib` MiB."""
        return "y" * (mib << 20)

    @server.tool()
    def ping() -> str:
        """Answers "pong" at once."""
        return "pong"

    server.run()


if __name__ == "__main__":
    main()
