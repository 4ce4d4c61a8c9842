"""A minimal MCP server on stdio (stdlib only) for the run-side tests of `test_mcp_runs.py`:
newline-delimited JSON-RPC, `initialize`, `tools/list`, `tools/call`. Tools:
- `echo(**anything)`: text content holding the arguments as JSON (parsed back by the daemon);
- `add(a, b)`: `structuredContent` `{"sum": a + b}` (declares an `outputSchema`);
- `fail(why)`: `isError: true` with `why` as its text.
The real third-party servers are exercised by `tests/mcp/`.
"""

import json
import sys

TOOLS = [
    {"name": "echo", "description": "Echo the arguments back.",
     "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
    {"name": "add", "description": "Add two integers. Returns their sum.",
     "inputSchema": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                     "required": ["a", "b"]},
     "outputSchema": {"type": "object", "title": "Sum", "properties": {"sum": {"type": "integer"}},
                      "required": ["sum"]}},
    {"name": "fail", "description": "Always fails.",
     "inputSchema": {"type": "object", "properties": {"why": {"type": "string"}}, "required": ["why"]}},
]


def answer(msg):
    method, params = msg.get("method"), msg.get("params") or {}
    if method == "initialize":
        return {"protocolVersion": params.get("protocolVersion", "2025-06-18"),
                "capabilities": {"tools": {}}, "serverInfo": {"name": "fake", "version": "1"}}
    if method == "tools/list":
        return {"tools": TOOLS}
    if method == "ping":
        return {}
    if method == "tools/call":
        name, args = params.get("name"), params.get("arguments") or {}
        if name == "echo":
            return {"content": [{"type": "text", "text": json.dumps(args)}]}
        if name == "add":
            total = args["a"] + args["b"]
            return {"content": [{"type": "text", "text": str(total)}], "structuredContent": {"sum": total}}
        if name == "fail":
            return {"content": [{"type": "text", "text": args.get("why", "")}], "isError": True}
    raise KeyError(method)


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        if "id" not in msg or "method" not in msg:
            continue  # notifications and responses
        try:
            reply = {"jsonrpc": "2.0", "id": msg["id"], "result": answer(msg)}
        except Exception as exc:
            reply = {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": str(exc)}}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


main()
