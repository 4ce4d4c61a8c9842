"""The client survives a daemon restart, and tool definitions need no handlers.

Each restart test starts its own daemon (not the shared session daemon) on a private socket, stops
it with a run in flight, and starts a new one on the same socket.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import ptcd
from conftest import _wait_until_ready, daemon_binary

SAFETY_S = 30.0


class Restartable:
    """A daemon on a fixed socket that can be stopped and started again."""

    def __init__(self, root: Path) -> None:
        self.socket = str(root / "ptcd.sock")
        self.root = root
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.root / f"daemon{self.starts}.log"
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [str(daemon_binary()), "serve", "--socket", self.socket],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        _wait_until_ready(self.process, self.socket, log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # as abrupt as a crash; the socket file stays behind
            self.process.wait()


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[Restartable]:
    daemon = Restartable(tmp_path)
    daemon.start()
    yield daemon
    daemon.stop()


async def test_next_call_reconnects_after_a_daemon_restart_and_in_flight_runs_fail_clearly(
    restartable: Restartable,
) -> None:
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    async def echo(text: str) -> str:
        return text

    async with ptcd.AsyncClient(restartable.socket) as client:
        assert (await client.run("1 + 1")).value == 2
        in_flight = asyncio.create_task(client.run("await slow()", tools=[slow]))
        await asyncio.wait_for(started.wait(), SAFETY_S)
        restartable.stop()
        with pytest.raises(ptcd.ConnectionClosed, match="stopped or restarted.*next call reconnects"):
            await asyncio.wait_for(in_flight, SAFETY_S)
        # Nothing of the lost connection is left behind: no pending answers, no tool tasks.
        assert client._pending == {} and client._core.pending == {}
        assert client._tool_tasks == {}

        # While the daemon is down, calls say so (and keep trying on the next call).
        with pytest.raises(ptcd.DaemonNotRunning):
            await client.run("1")
        restartable.start()
        result = await client.run("await echo('back')", tools=[echo])
        assert result.ok and result.value == "back"
        assert client.reconnects == 1
        # Concurrent calls after a second restart, while the client was idle, reconnect once.
        restartable.stop()
        restartable.start()
        results = await asyncio.gather(*(client.run(f"{i} * 2") for i in range(5)))
        assert [r.value for r in results] == [0, 2, 4, 6, 8]
        assert client.reconnects == 2


async def test_a_closed_client_does_not_reconnect(restartable: Restartable) -> None:
    client = ptcd.AsyncClient(restartable.socket)
    await client.connect()
    await client.close()
    with pytest.raises(ptcd.ConnectionClosed, match="closed"):
        await client.run("1")


def test_sync_client_reconnects_after_a_daemon_restart(restartable: Restartable) -> None:
    with ptcd.Client(restartable.socket) as client:
        assert client.run("21 * 2").value == 42
        restartable.stop()
        restartable.start()
        assert client.run("'again'").value == "again"


async def test_tool_definitions_need_no_handlers(client: ptcd.AsyncClient) -> None:
    spec = {"name": "lookup", "description": "Look a key up.",
            "input_schema": {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]},
            "output_schema": {"type": "object", "title": "Entry",
                              "properties": {"key": {"type": "string"}, "hits": {"type": "integer"}},
                              "required": ["key", "hits"]}}
    definitions = await client.tool_definitions([spec], format="anthropic")
    assert "async def lookup(key: str) -> Entry:" in definitions["stubs"]
    assert "class Entry(TypedDict):" in definitions["stubs"]
    assert definitions["tools"][0]["name"] == "run_code"


async def test_tool_definitions_of_a_session_plus_extra_tools(client: ptcd.AsyncClient) -> None:
    def first(x: int) -> int:
        return x

    session = await client.create_session([first])
    definitions = await client.tool_definitions(
        [{"name": "second", "input_schema": {"type": "object", "properties": {}}}],
        session_id=session.session_id,
    )
    assert "async def first(" in definitions["stubs"] and "async def second(" in definitions["stubs"]
