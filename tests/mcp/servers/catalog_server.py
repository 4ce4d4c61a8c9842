"""A stdio MCP server with a large catalog: the 200 back-office tools of `catalog.py`.

Every call answers `{"tool": <name>, "arguments": <arguments>}` as structured content, so a test
can tell which tool ran. `--count N` serves only the first N tools (a catalog below the
discovery threshold).

Usage: catalog_server.py [--count N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mcp.types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

sys.path.insert(0, str(Path(__file__).resolve().parent))
import catalog  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=200)
    args = ap.parse_args()
    tools = [
        types.Tool(name=t["name"], description=t["description"], input_schema=t["inputSchema"])
        for t in catalog.parse()[: args.count]
    ]
    names = {t.name for t in tools}

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name not in names:
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=f"unknown tool {params.name}")], is_error=True
            )
        answer = {"tool": params.name, "arguments": params.arguments or {}}
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=str(answer))], structured_content=answer
        )

    server = Server("catalog", on_list_tools=list_tools, on_call_tool=call_tool)

    async def run() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    import anyio

    anyio.run(run)


if __name__ == "__main__":
    main()
