"""A streamable HTTP MCP server for the daemon's own tests (needs the `mcp` package).

Usage: http_server.py PORT. Tools: add(a, b). Every request must carry `X-Test-Token: t`
(proves the table's headers are sent); others get 401.
"""
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.responses import PlainTextResponse

server = MCPServer("http-test")


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


app = server.streamable_http_app()


async def require_token(scope, receive, send):
    if scope["type"] == "http":
        headers = dict(scope.get("headers") or [])
        if headers.get(b"x-test-token") != b"t":
            await PlainTextResponse("missing X-Test-Token", status_code=401)(scope, receive, send)
            return
    await app(scope, receive, send)


uvicorn.run(require_token, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
