"""The blocking facade: same features as the async client, driven from plain threads."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

import ptcd

SAFETY_S = 30


def test_run_value_output_and_error(sync_client: ptcd.Client) -> None:
    result = sync_client.run("print('hi')\n[1, 2]")
    assert result.ok and result.stdout == "hi\n" and result.value == [1, 2]
    failed = sync_client.run("raise ValueError('nope')")
    assert failed.status == "error" and failed.error is not None and failed.error.type == "ValueError"
    assert "error: ValueError: nope" in failed.render()


def test_initialize_and_status(sync_client: ptcd.Client) -> None:
    assert sync_client.initialize()["protocol_version"] == "1"
    assert isinstance(sync_client.status(), dict)


def test_sync_and_async_tools(sync_client: ptcd.Client) -> None:
    def get_team_members() -> list[str]:
        return ["ana", "bo"]

    async def get_expenses(member: str) -> list[float]:
        await asyncio.sleep(0)  # a real coroutine, running on the facade's private loop
        return {"ana": [10.0, 5.5], "bo": [99.0]}[member]

    code = (
        "import asyncio\n"
        "members = await get_team_members()\n"
        "totals = await asyncio.gather(*(get_expenses(m) for m in members))\n"
        "{m: sum(t) for m, t in zip(members, totals)}"
    )
    result = sync_client.run(code, tools=[get_team_members, get_expenses])
    assert result.value == {"ana": 15.5, "bo": 99.0}, result.render()


def test_100_concurrent_sync_calls(sync_client: ptcd.Client) -> None:
    cap = 50
    cond = threading.Condition()
    state = {"current": 0, "peak": 0, "arrived": 0}

    def echo(i: int) -> int:
        with cond:
            state["current"] += 1
            state["arrived"] += 1
            state["peak"] = max(state["peak"], state["current"])
            cond.notify_all()
            cond.wait_for(lambda: state["peak"] >= cap or state["arrived"] >= 100, timeout=SAFETY_S)
            state["current"] -= 1
        return i

    code = "import asyncio\nsum(await asyncio.gather(*(echo(i) for i in range(100))))"
    result = sync_client.run(code, tools=[echo], limits={"max_concurrent_tool_calls": cap})
    assert result.value == sum(range(100)), result.render()
    assert state["peak"] == cap


def test_handler_errors_and_unserializable_results(sync_client: ptcd.Client) -> None:
    def broken() -> None:
        raise ZeroDivisionError("oops")

    def weird() -> object:
        return object()

    code = (
        "out = []\n"
        "for f in (broken, weird):\n"
        "    try:\n"
        "        await f()\n"
        "    except ToolError as e:\n"
        "        out.append(str(e))\n"
        "out"
    )
    result = sync_client.run(code, tools=[broken, weird])
    assert result.value[0] == "ZeroDivisionError: oops"
    assert "not JSON-serializable" in result.value[1]


def test_on_output(sync_client: ptcd.Client) -> None:
    chunks: list[str] = []
    result = sync_client.run("print('a')\nprint('b')", on_output=lambda stream, text: chunks.append(text))
    assert "".join(chunks) == "a\nb\n" == result.stdout


def test_typed_errors(sync_client: ptcd.Client) -> None:
    with pytest.raises(ptcd.UnknownPolicy):
        sync_client.run("1", policy="no-such-policy")
    with pytest.raises(ptcd.InvalidParams) as info:
        sync_client.request("run", {})
    assert info.value.field == "code"


def test_daemon_not_running(tmp_path: Path) -> None:
    client = ptcd.Client(tmp_path / "absent.sock")
    with pytest.raises(ptcd.DaemonNotRunning, match="ptcd serve"):
        client.connect()
    assert client.closed


def test_close_from_another_thread_fails_the_pending_run(socket_path: str) -> None:
    started = threading.Event()
    release = threading.Event()

    def block() -> None:
        started.set()
        release.wait(SAFETY_S)

    client = ptcd.Client(socket_path)
    client.connect()
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            client.run("await block()", tools=[block])
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            outcome["error"] = exc

    runner = threading.Thread(target=run)
    runner.start()
    assert started.wait(SAFETY_S)
    client.close()
    runner.join(SAFETY_S)
    release.set()
    assert isinstance(outcome.get("error"), ptcd.ConnectionClosed)
    with pytest.raises(ptcd.ConnectionClosed):
        client.run("1")


def test_calling_the_sync_client_from_its_own_loop_is_refused(sync_client: ptcd.Client) -> None:
    async def reenter() -> str:
        try:
            sync_client.status()
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    result = sync_client.run("await reenter()", tools=[reenter])
    assert "own event loop thread" in result.value, result.render()
