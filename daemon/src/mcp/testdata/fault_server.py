"""A misbehaving stdio MCP server for the daemon's own MCP tests (no dependencies).

Tools: echo (answers its arguments as structuredContent), crash (exits at once), hang (never
answers), cancelled (the request ids cancelled so far), flood (N MiB to stderr, then answers),
big (one line of N bytes on stdout, then nothing), grow (adds a tool and sends
notifications/tools/list_changed). MODE=no_init never answers initialize;
MODE=endless_list pages tools/list forever; MODE=slow_init answers initialize after 1 s.
"""
import json
import os
import sys
import time

cancelled = []
extra = []
if os.environ.get("PIDFILE"):
    with open(os.environ["PIDFILE"], "w") as f:
        f.write(str(os.getpid()))


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def tool(name):
    return {"name": name, "description": f"the {name} tool", "inputSchema": {"type": "object"}}


def answer(rid, result):
    send({"jsonrpc": "2.0", "id": rid, "result": result})


for line in sys.stdin:
    msg = json.loads(line)
    method, rid, params = msg.get("method"), msg.get("id"), msg.get("params") or {}
    if method == "initialize":
        if os.environ.get("MODE") == "no_init":
            continue
        if os.environ.get("MODE") == "slow_init":
            time.sleep(1)
        answer(rid, {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "fault", "version": "1"},
        })
    elif method == "tools/list":
        if os.environ.get("MODE") == "endless_list":
            page = int(params.get("cursor") or 0)
            tools = [dict(tool(f"t{page}_{i}"), description="d" * 1000) for i in range(50)]
            answer(rid, {"tools": tools, "nextCursor": str(page + 1)})
            continue
        names = ["echo", "crash", "hang", "cancelled", "flood", "big", "grow"] + extra
        answer(rid, {"tools": [tool(n) for n in names]})
    elif method == "notifications/cancelled":
        cancelled.append(params.get("requestId"))
    elif method == "tools/call":
        name, args = params.get("name"), params.get("arguments") or {}
        if name == "echo":
            answer(rid, {"content": [], "structuredContent": args})
        elif name == "crash":
            sys.stderr.write("fault server: crashing on purpose\n")
            sys.stderr.flush()
            os._exit(3)
        elif name == "hang":
            pass
        elif name == "grow":
            extra.append(f"grown{len(extra)}")
            send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
            answer(rid, {"content": [{"type": "text", "text": "grown"}]})
        elif name == "cancelled":
            answer(rid, {"content": [{"type": "text", "text": json.dumps(cancelled)}]})
        elif name == "flood":
            chunk = "E" * (1 << 20)
            for _ in range(int(args.get("mib", 1))):
                sys.stderr.write(chunk)
            sys.stderr.write("\nflood done\n")
            sys.stderr.flush()
            answer(rid, {"content": [{"type": "text", "text": "flooded"}]})
        elif name == "big":
            sys.stdout.write('{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"%s"}]}}\n'
                             % (json.dumps(rid), "b" * int(args.get("bytes", 1 << 20))))
            sys.stdout.flush()
        else:
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32602, "message": f"no tool {name}"}})
    elif rid is not None:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": method}})
