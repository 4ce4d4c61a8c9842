"""An MCP server over streamable HTTP on 127.0.0.1, with the table's `headers` (a bearer token
the server requires)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

import mcp_setup as ms
from daemon import wait_until


@pytest.fixture
def http_server(state: Path) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(ms.SERVERS / "results_server.py"), "--http", "--state", str(state), "--token", "s3cret"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: (state / "port").exists(), "the HTTP server to listen", timeout=30)
        yield f"http://127.0.0.1:{(state / 'port').read_text()}/mcp"
    finally:
        proc.kill()
        proc.wait()


def test_streamable_http_server_lists_and_calls_with_the_configured_headers(mcp_daemon, connect, http_server: str) -> None:
    c = connect(mcp_daemon({
        "web": {"url": http_server, "headers": {"Authorization": "Bearer s3cret"}},
        "nokey": {"url": http_server},
    }))
    stubs = c.call("tools/definition", {"format": "openai", "mcp_servers": ["web"]})["result"]["stubs"]
    assert "class web" in stubs and "async def point(" in stubs
    r = c.run(
        "await asyncio.gather(web.point(x=1, y=2), web.text_json(), *(web.add(a=i, b=i) for i in range(20)))",
        mcp_servers=["web"],
    )
    assert r["status"] == "ok", r
    assert r["value"][0] == {"x": 1, "y": 2, "sum": 3}
    assert r["value"][1] == {"rows": [1, 2, 3], "table": "orders"}
    assert r["value"][2:] == [{"result": 2 * i} for i in range(20)]
    r = c.run("await web.fail(message='over HTTP')", mcp_servers=["web"])
    assert r["status"] == "error" and r["error"]["type"] == "ToolError" and "over HTTP" in r["error"]["message"]
    # Without the header the server answers 401: the server is unavailable at attach, named.
    resp = c.call("run", {"code": "1", "mcp_servers": ["nokey"]})
    assert resp["error"]["code"] == -32008 and "nokey" in resp["error"]["message"], resp
    assert c.run("1 + 1")["value"] == 2


def test_http_server_gone_is_a_tool_error_naming_it(mcp_daemon, connect, state: Path) -> None:
    # Nothing listens on this port (a bound but never listening socket reserves it).
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    try:
        url = f"http://127.0.0.1:{s.getsockname()[1]}/mcp"
        c = connect(mcp_daemon({"gone": {"url": url, "startup_timeout_ms": 3000}}))
        resp = c.call("run", {"code": "1", "mcp_servers": ["gone"]})
        assert resp["error"]["code"] == -32008 and "gone" in resp["error"]["message"], resp
        assert c.run("1 + 1")["value"] == 2
    finally:
        s.close()


def listening_ports(pid: int) -> set[int]:
    """TCP ports `pid` listens on (its socket inodes matched against /proc/net/tcp{,6})."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_server_everything_over_streamable_http(mcp_daemon, connect) -> None:
    # PORT=0: the kernel picks a free port; it is read back from the process's listening socket.
    proc = subprocess.Popen(
        [ms.require(ms.NODE_BIN / "mcp-server-everything"), "streamableHttp"],
        env={**os.environ, "PORT": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: proc.poll() is None and listening_ports(proc.pid), "server-everything to listen", timeout=30)
        (port,) = listening_ports(proc.pid)
        c = connect(mcp_daemon({"everything": {"url": f"http://127.0.0.1:{port}/mcp"}}))
        r = c.run(
            "await asyncio.gather(*(everything.get_sum(a=i, b=i) for i in range(10)),"
            " everything.get_structured_content(location='Chicago'))",
            mcp_servers=["everything"],
        )
        assert r["status"] == "ok", r
        assert r["value"][:10] == [f"The sum of {i} and {i} is {2 * i}." for i in range(10)]
        assert set(r["value"][10]) == {"temperature", "conditions", "humidity"}
    finally:
        proc.kill()
        proc.wait()
