"""A MCP server answering with every result shape the daemon must map (contract v1.1, "MCP").

Structured (`structuredContent`, with and without an `outputSchema`), text that is JSON, plain
text, several text blocks, `isError`, an exception in the tool, image, embedded resource,
resource link and mixed content; plus `echo` and `add` for fan-out tests.

By default it serves stdio. `--http --state DIR` serves streamable HTTP on 127.0.0.1 on a port the
kernel picks, written to `<state>/port` once it listens; every request must carry
`Authorization: Bearer <--token>` (else 401), which proves the daemon sends the configured
headers.

Usage: results_server.py [--http --state DIR --token TOKEN]
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import (
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)
from pydantic import BaseModel

# A 1x1 PNG.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000005000177a1fe0e0000000049454e44ae426082"
    )
).decode()


class Point(BaseModel):
    x: int
    y: int
    sum: int


def text(t: str) -> TextContent:
    return TextContent(type="text", text=t)


def build() -> MCPServer:
    server = MCPServer("results")

    @server.tool()
    def point(x: int, y: int) -> Point:
        """A point and the sum of its coordinates (structured content with an output schema)."""
        return Point(x=x, y=y, sum=x + y)

    @server.tool()
    def structured_over_text() -> CallToolResult:
        """structuredContent next to a text block that says something else."""
        return CallToolResult(content=[text("the text block, not the answer")], structured_content={"answer": 42})

    @server.tool()
    def text_json() -> CallToolResult:
        """One text block holding JSON."""
        return CallToolResult(content=[text('{"rows": [1, 2, 3], "table": "orders"}')])

    @server.tool()
    def text_plain() -> CallToolResult:
        """One text block of plain words."""
        return CallToolResult(content=[text("plain words, not JSON")])

    @server.tool()
    def text_almost_json() -> CallToolResult:
        """One text block that starts like JSON but is not."""
        return CallToolResult(content=[text("[1, 2,")])

    @server.tool()
    def text_blocks() -> CallToolResult:
        """Three text blocks: a word, a JSON list, a JSON number."""
        return CallToolResult(content=[text("alpha"), text("[1, 2]"), text("7")])

    @server.tool()
    def fail(message: str) -> CallToolResult:
        """Answers isError: true with `message` as its text."""
        return CallToolResult(content=[text(message)], is_error=True)

    @server.tool()
    def raise_error(message: str) -> str:
        """Raises the SDK's ToolError in the tool (the SDK turns it into isError with its text)."""
        raise ToolError(message)

    @server.tool()
    def image() -> CallToolResult:
        """One PNG image block."""
        return CallToolResult(content=[ImageContent(type="image", data=PNG, mime_type="image/png")])

    @server.tool()
    def embedded_resource() -> CallToolResult:
        """One embedded text resource."""
        res = TextResourceContents(uri="file:///srv/notes.txt", mime_type="text/plain", text="the notes")
        return CallToolResult(content=[EmbeddedResource(type="resource", resource=res)])

    @server.tool()
    def resource_link() -> CallToolResult:
        """One link to a resource."""
        return CallToolResult(
            content=[ResourceLink(type="resource_link", uri="file:///srv/report.pdf", name="report.pdf")]
        )

    @server.tool()
    def mixed() -> CallToolResult:
        """A text block and an image block."""
        return CallToolResult(
            content=[text("caption"), ImageContent(type="image", data=PNG, mime_type="image/png")]
        )

    @server.tool(structured_output=False)
    def echo(message: str) -> str:
        """Answers `message` as text."""
        return message

    @server.tool()
    def add(a: int, b: int) -> int:
        """a + b (structured: {"result": a + b})."""
        return a + b

    return server


def serve_http(server: MCPServer, state: Path, token: str) -> None:
    import anyio
    import uvicorn
    from starlette.responses import PlainTextResponse

    app = server.streamable_http_app()
    inner = app

    async def guarded(scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization") != f"Bearer {token}".encode():
                await PlainTextResponse("missing or wrong bearer token", status_code=401)(scope, receive, send)
                return
        await inner(scope, receive, send)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    config = uvicorn.Config(guarded, log_level="warning", lifespan="on")
    config.load()
    # Starlette's lifespan (which starts the session manager) is run by uvicorn through `guarded`
    # forwarding every scope type but "http" unchanged.
    userver = uvicorn.Server(config)

    async def run() -> None:
        tmp = state / ".port.tmp"
        tmp.write_text(str(port))
        os.rename(tmp, state / "port")
        await userver.serve(sockets=[sock])

    anyio.run(run)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", action="store_true")
    ap.add_argument("--state", type=Path)
    ap.add_argument("--token", default="")
    args = ap.parse_args()
    server = build()
    if args.http:
        if args.state is None:
            ap.error("--http needs --state")
        args.state.mkdir(parents=True, exist_ok=True)
        serve_http(server, args.state, args.token)
    else:
        server.run()


if __name__ == "__main__":
    main()
