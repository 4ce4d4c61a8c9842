"""The client's reading of the connection, against a scripted peer instead of the daemon.

The real daemon writes whole, well-formed lines; these tests feed the client what the framing
rules also allow (a line split across reads, ``\\r\\n``, blank lines, a last line without its
``\\n`` before EOF) and what they forbid (a line over the limit). The peer waits for the client's
answers, never for time, so each step happens in the order written.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import ptcd

SAFETY_S = 30

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


def _tool_call(call_id: str, request_id: int, value: int) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": call_id,
        "method": "tool/call",
        "params": {"run_id": "r-1", "request_id": request_id, "name": "echo", "arguments": {"x": value}},
    }


async def _peer(tmp_path: Path, script: Script) -> tuple[str, asyncio.AbstractServer, asyncio.Future[None]]:
    """A listening socket that runs `script` on its first connection; its outcome is the future."""
    path = str(tmp_path / "peer.sock")
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(reader, writer)
        except BaseException as exc:  # reported to the test, not lost in the server
            if not done.done():
                done.set_exception(exc)
        else:
            if not done.done():
                done.set_result(None)
        finally:
            writer.close()

    server = await asyncio.start_unix_server(serve, path)
    return path, server, done


async def echo(x: int) -> int:
    return x


async def test_lines_split_across_reads_crlf_and_blank_lines_are_served(tmp_path: Path) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        run = json.loads(await reader.readline())
        assert run["method"] == "run"
        second = _line(_tool_call("t-2", run["id"], 2))
        # One write: a whole call (ending in \r\n), a blank line, and the first half of the next.
        writer.write(_line(_tool_call("t-1", run["id"], 1))[:-1] + b"\r\n\n" + second[:20])
        await writer.drain()
        first_answer = json.loads(await reader.readline())  # served before the second call is whole
        assert first_answer == {"jsonrpc": "2.0", "id": "t-1", "result": 1}
        writer.write(second[20:])
        await writer.drain()
        assert json.loads(await reader.readline()) == {"jsonrpc": "2.0", "id": "t-2", "result": 2}
        # The final answer has no \n: the connection's end completes it.
        final = {"jsonrpc": "2.0", "id": run["id"], "result": {"run_id": "r-1", "status": "ok", "value": 3}}
        writer.write(json.dumps(final).encode())
        await writer.drain()

    path, server, done = await _peer(tmp_path, script)
    async with server, ptcd.AsyncClient(path) as client:
        result = await asyncio.wait_for(client.run("...", tools=[echo]), SAFETY_S)
        await asyncio.wait_for(done, SAFETY_S)
    assert result.ok and result.value == 3


async def test_a_line_over_the_limit_drops_the_connection(tmp_path: Path) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        run = json.loads(await reader.readline())
        output = {"jsonrpc": "2.0", "method": "run/output",
                  "params": {"run_id": "r-1", "request_id": run["id"], "stream": "stdout", "text": "x" * 500}}
        line = _line(output)
        writer.write(line[:200])  # the limit is passed before the line's end arrives, or after
        await writer.drain()
        writer.write(line[200:])
        await writer.drain()
        await reader.read()  # until the client hangs up

    path, server, done = await _peer(tmp_path, script)
    async with server, ptcd.AsyncClient(path, max_line_bytes=100) as client:
        with pytest.raises(ptcd.ConnectionClosed, match="line over 400 bytes"):
            await asyncio.wait_for(client.run("..."), SAFETY_S)
        await client.close()
        await asyncio.wait_for(done, SAFETY_S)


async def test_a_call_cancelled_as_it_arrives_is_not_answered_and_not_kept(tmp_path: Path) -> None:
    async def stuck() -> None:
        await asyncio.Event().wait()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        run = json.loads(await reader.readline())
        call = _tool_call("t-1", run["id"], 0)
        call["params"].update(name="stuck", arguments={})
        cancel = {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": "t-1"}}
        # The cancellation comes with the call (usually in the same read: before its task starts).
        writer.write(_line(call) + _line(cancel) + _line(_tool_call("t-2", run["id"], 2)))
        await writer.drain()
        # The next answer is t-2's: t-1 gets none.
        assert json.loads(await reader.readline()) == {"jsonrpc": "2.0", "id": "t-2", "result": 2}
        final = {"jsonrpc": "2.0", "id": run["id"], "result": {"run_id": "r-1", "status": "ok", "value": 2}}
        writer.write(_line(final))
        await writer.drain()

    path, server, done = await _peer(tmp_path, script)
    async with server, ptcd.AsyncClient(path) as client:
        result = await asyncio.wait_for(client.run("...", tools=[echo, stuck]), SAFETY_S)
        await asyncio.wait_for(done, SAFETY_S)
        assert result.value == 2
        assert client._tool_tasks == {}
