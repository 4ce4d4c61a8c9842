"""A stdio MCP server that dies in the middle of a call: the crash fault.

`crash_now()` exits the process (`os._exit(3)`, no reply, no cleanup) while the call is in
flight; `whoami()` answers with the server's pid and how many times this state dir has seen a
server start (`<state>/starts`), so a test can tell a restarted server from the first one;
`ping()` answers at once. Every start appends its pid to `<state>/pids` so a test can check that
none is left running after the daemon stops.

Usage: crash_server.py --state DIR
"""

from __future__ import annotations

import os

from _starts import record_start
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel


class Who(BaseModel):
    pid: int
    starts: int


def main() -> None:
    starts = record_start()

    server = MCPServer("crash")

    @server.tool()
    def whoami() -> Who:
        """The server process's pid and the number of server starts so far."""
        return Who(pid=os.getpid(), starts=starts)

    @server.tool()
    def ping() -> str:
        """Answers "pong" at once."""
        return "pong"

    @server.tool()
    def crash_now() -> str:
        """Exits the server process without answering."""
        os._exit(3)

    server.run()


if __name__ == "__main__":
    main()
