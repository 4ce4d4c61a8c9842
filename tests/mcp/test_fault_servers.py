"""Our fault servers do what the daemon tests rely on, proven without the daemon.

They are driven the way the daemon drives a stdio server (handshake-era `initialize`, then
`tools/call`, one JSON line each way), by a small raw client here, and once by the official SDK
client. If one of these fails, the daemon tests that use that server prove nothing.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from daemon import wait_until
from mcp_setup import SERVERS, ours

INIT = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "ptcd-tests", "version": "1"},
}


class RawMcp:
    """A stdio MCP server driven line by line."""

    def __init__(self, table: dict, stderr=subprocess.DEVNULL) -> None:
        self.proc = subprocess.Popen(
            [table["command"], *table.get("args", [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        self.next_id = 1

    def send(self, msg: dict) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict) -> int:
        rid = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        return rid

    def recv(self) -> dict | None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def initialize(self) -> dict:
        self.request("initialize", INIT)
        reply = self.recv()
        assert reply is not None and "result" in reply, reply
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return reply["result"]

    def call(self, name: str, arguments: dict) -> dict:
        rid = self.request("tools/call", {"name": name, "arguments": arguments})
        reply = self.recv()
        assert reply is not None and reply.get("id") == rid, reply
        return reply["result"]

    def close(self) -> int:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def test_crash_server_exits_mid_call_without_answering(state: Path) -> None:
    s = RawMcp(ours("crash_server.py", "--state", str(state)))
    s.initialize()
    assert s.call("whoami", {})["structuredContent"]["starts"] == 1
    s.request("tools/call", {"name": "crash_now", "arguments": {}})
    assert s.recv() is None  # stdout closed, no answer
    assert s.close() == 3
    assert len((state / "pids").read_text().split()) == 1


def test_hang_server_records_the_request_never_answers_and_records_the_cancellation(state: Path) -> None:
    s = RawMcp(ours("hang_server.py", "--state", str(state)))
    s.initialize()
    rid = s.request("tools/call", {"name": "wait_forever", "arguments": {"tag": "t1"}})
    wait_until(lambda: (state / "t1.request").exists(), "the hang server to record the request")
    assert not (state / "t1.cancelled").exists()
    s.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": rid}})
    wait_until(lambda: (state / "t1.cancelled").exists(), "the cancellation marker")
    # Still serving, and the cancelled call was never answered: the next line is ping's.
    assert s.call("ping", {})["content"][0]["text"] == "pong"
    s.close()


def test_silent_server_never_answers_initialize(state: Path) -> None:
    s = RawMcp(ours("hang_server.py", "--state", str(state), "--silent"))
    s.request("initialize", INIT)
    wait_until(lambda: (state / "silent.started").exists(), "the silent server to start")
    assert s.proc.poll() is None
    assert s.close() == 0  # exits on EOF without ever writing a line
    assert s.proc.stdout is not None and s.proc.stdout.read() == b""


def test_flood_server_floods_stderr_and_answers_a_line_bigger_than_the_limit(state: Path, tmp_path: Path) -> None:
    err = open(tmp_path / "stderr", "wb")
    s = RawMcp(ours("flood_server.py", "--state", str(state)), stderr=err)
    s.initialize()
    assert s.call("flood_stderr", {"mib": 8})["content"][0]["text"] == "flooded"
    assert s.proc.stdout is not None
    s.request("tools/call", {"name": "huge_result", "arguments": {"mib": 2}})
    line = s.proc.stdout.readline()
    assert len(line) > 2 << 20
    s.close()
    err.close()
    assert (tmp_path / "stderr").stat().st_size >= 8 << 20


def test_results_server_answers_every_result_shape(state: Path) -> None:
    s = RawMcp(ours("results_server.py"))
    s.initialize()
    point = s.call("point", {"x": 2, "y": 3})
    assert point["structuredContent"] == {"x": 2, "y": 3, "sum": 5}
    assert s.call("structured_over_text", {})["structuredContent"] == {"answer": 42}
    for name in ("text_json", "text_plain", "text_almost_json", "text_blocks", "mixed", "image"):
        assert "structuredContent" not in s.call(name, {}), name
    assert [b["text"] for b in s.call("text_blocks", {})["content"]] == ["alpha", "[1, 2]", "7"]
    fail = s.call("fail", {"message": "no such table: users"})
    assert fail["isError"] is True and fail["content"][0]["text"] == "no such table: users"
    raised = s.call("raise_error", {"message": "quota exceeded"})
    assert raised["isError"] is True and "quota exceeded" in raised["content"][0]["text"]
    assert [b["type"] for b in s.call("mixed", {})["content"]] == ["text", "image"]
    assert s.call("resource_link", {})["content"][0]["type"] == "resource_link"
    assert s.call("embedded_resource", {})["content"][0]["resource"]["text"] == "the notes"
    s.close()


def test_catalog_server_lists_200_distinct_tools_with_the_sdk_client() -> None:
    from mcp import Client, StdioServerParameters

    async def main() -> list:
        params = StdioServerParameters(command=sys.executable, args=[str(SERVERS / "catalog_server.py")])
        async with Client(params) as c:
            tools = (await c.list_tools()).tools
            answer = await c.call_tool("billing_refund_payment", {"payment_id": "p-1"})
            assert answer.structured_content == {"tool": "billing_refund_payment", "arguments": {"payment_id": "p-1"}}
            return tools

    tools = asyncio.run(main())
    assert len({t.name for t in tools}) == 200
    assert len({t.description for t in tools}) == 200


def test_http_results_server_requires_the_bearer_token(state: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(SERVERS / "results_server.py"), "--http", "--state", str(state), "--token", "t0k"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: (state / "port").exists(), "the HTTP server to listen", timeout=30)
        url = f"http://127.0.0.1:{(state / 'port').read_text()}/mcp"
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT}).encode()
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        try:
            urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=10)
            raise AssertionError("no token: expected 401")
        except urllib.error.HTTPError as e:
            assert e.code == 401
        req = urllib.request.Request(url, body, {**headers, "authorization": "Bearer t0k"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
            assert b'"protocolVersion"' in resp.read()
    finally:
        proc.kill()
        proc.wait()
