"""End-to-end tests of the async client against the real daemon.

Synchronisation is by events and conditions the tools themselves signal (a handler that has
started, output that has arrived), never by sleeping. Timeouts appear only as safety nets so a bug
fails a test instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import enum
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import ptcd

SAFETY_S = 30  # upper bound for anything awaited in a test; never reached when things work


# ------------------------------------------------------------------------- basics


async def test_initialize_and_status(client: ptcd.AsyncClient) -> None:
    info = await client.initialize()
    assert info["protocol_version"] == "1"
    assert info["server_info"]["name"] == "ptcd"
    assert isinstance(info["policies"], list) and info["default_policy"] in info["policies"]
    status = await client.status()
    assert isinstance(status, dict) and status


async def test_run_returns_output_and_value(client: ptcd.AsyncClient) -> None:
    result = await client.run("print('hello')\n6 * 7")
    assert result.ok, result.render()
    assert result.status == "ok"
    assert result.stdout == "hello\n"
    assert result.value == 42
    assert result.run_id
    assert result.tool_calls == 0
    assert result.duration_ms > 0
    assert result.render() == "hello\n42"


async def test_script_exception_is_a_result_with_traceback(client: ptcd.AsyncClient) -> None:
    result = await client.run("x = 1\nprint('before')\nx / 0\n")
    assert not result.ok
    assert result.status == "error"
    assert result.error is not None
    assert result.error.type == "ZeroDivisionError"
    assert result.error.line == 3
    text = result.render()
    assert text.startswith("before\nerror: ZeroDivisionError: division by zero")
    assert "line 3" in text


async def test_inputs_are_bound_as_globals(client: ptcd.AsyncClient) -> None:
    result = await client.run("sum(numbers) * factor", inputs={"numbers": [1, 2, 3], "factor": 10})
    assert result.value == 60, result.render()


async def test_typed_limits_are_accepted(client: ptcd.AsyncClient) -> None:
    result = await client.run("'fine'", limits=ptcd.Limits(timeout_ms=5_000))
    assert result.ok and result.value == "fine"


async def test_top_level_timeout_status(client: ptcd.AsyncClient) -> None:
    result = await client.run("while True:\n    pass\n", limits={"timeout_ms": 300})
    assert result.status == "timeout"
    assert result.render().startswith("timeout")


# ------------------------------------------------------------------------- tools


class Unit(enum.Enum):
    CELSIUS = "C"
    FAHRENHEIT = "F"


@dataclass
class City:
    name: str
    country: str = "FR"


async def test_sync_and_async_tools_with_typed_arguments(client: ptcd.AsyncClient) -> None:
    seen_threads: dict[str, str] = {}

    async def get_temperature(city: City, unit: Unit = Unit.CELSIUS) -> dict[str, Any]:
        """Current temperature in a city."""
        assert isinstance(city, City) and isinstance(unit, Unit)
        seen_threads["async"] = threading.current_thread().name
        return {"city": city.name, "temp": 18 if unit is Unit.CELSIUS else 64, "unit": unit.value}

    def to_kelvin(celsius: float) -> float:
        """Convert Celsius to Kelvin."""
        seen_threads["sync"] = threading.current_thread().name
        return celsius + 273.15

    code = (
        "t = await get_temperature({'name': 'Paris'})\n"
        "f = await get_temperature({'name': 'Lyon'}, unit='F')\n"
        "k = await to_kelvin(t['temp'])\n"
        "[t, f['temp'], k]"
    )
    result = await client.run(code, tools=[get_temperature, to_kelvin])
    assert result.ok, result.render()
    assert result.value == [{"city": "Paris", "temp": 18, "unit": "C"}, 64, 291.15]
    assert result.tool_calls == 3
    assert seen_threads["async"] == threading.current_thread().name  # on the loop
    assert seen_threads["sync"].startswith("ptcd-tool")  # in the tool thread pool


async def test_raw_spec_and_decorated_tools(client: ptcd.AsyncClient) -> None:
    @ptcd.tool(name="shout", description="Upper-case a word.")
    def make_loud(word: str) -> str:
        return word.upper()

    raw = {
        "name": "add",
        "description": "Add two integers.",
        "input_schema": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
        "handler": lambda a, b: a + b,
    }
    result = await client.run("[await shout('hi'), await add(2, b=3)]", tools=[make_loud, raw])
    assert result.value == ["HI", 5], result.render()


class InFlight:
    """Counts concurrent handler executions and releases them once ``target`` are running at once.

    If the client served calls one at a time, ``target`` would never be reached and the run would
    end by its timeout: the test then fails on the result instead of passing by luck.
    """

    def __init__(self, target: int, total: int) -> None:
        self.target, self.total = target, total
        self.current = self.peak = self.arrived = 0
        self.cond = threading.Condition()

    def enter(self) -> None:
        with self.cond:
            self.current += 1
            self.arrived += 1
            self.peak = max(self.peak, self.current)
            self.cond.notify_all()

    def released(self) -> bool:
        return self.peak >= self.target or self.arrived >= self.total

    def leave(self) -> None:
        with self.cond:
            self.current -= 1


# The default policy caps concurrent tool calls per run; 50 is under that cap, and asking for it
# explicitly keeps the test meaningful even if the default changes.
CAP = 50
GATHER_100 = "import asyncio\nr = await asyncio.gather(*(echo(i) for i in range(100)))\nr == list(range(100))"


async def test_100_concurrent_calls_async_handlers(client: ptcd.AsyncClient) -> None:
    gate = InFlight(CAP, 100)
    ready = asyncio.Event()

    async def echo(i: int) -> int:
        gate.enter()
        if gate.released():
            ready.set()
        await ready.wait()
        gate.leave()
        return i

    result = await asyncio.wait_for(
        client.run(GATHER_100, tools=[echo], limits={"max_concurrent_tool_calls": CAP, "timeout_ms": 20_000}),
        SAFETY_S,
    )
    assert result.ok and result.value is True, result.render()
    assert result.tool_calls == 100
    assert gate.peak == CAP


async def test_100_concurrent_calls_sync_handlers(client: ptcd.AsyncClient) -> None:
    gate = InFlight(CAP, 100)

    def echo(i: int) -> int:
        gate.enter()
        with gate.cond:
            gate.cond.wait_for(gate.released, timeout=SAFETY_S)
        gate.leave()
        return i

    result = await client.run(
        GATHER_100, tools=[echo], limits={"max_concurrent_tool_calls": CAP, "timeout_ms": 20_000}
    )
    assert result.ok and result.value is True, result.render()
    assert gate.peak == CAP


async def test_async_tools_are_answered_whether_they_return_at_once_or_suspend(client: ptcd.AsyncClient) -> None:
    released = asyncio.Event()
    suspended: list[int] = []

    async def echo(i: int, wait: bool) -> int:
        if wait:
            suspended.append(i)
            await released.wait()
        return i

    async def release() -> int:
        released.set()  # the last call of the gather: the waiting ones resume after it
        return len(suspended)

    code = (
        "import asyncio\n"
        "r = await asyncio.gather(*(echo(i, i % 2 == 1) for i in range(20)), release())\n"
        "r"
    )
    result = await asyncio.wait_for(client.run(code, tools=[echo, release]), SAFETY_S)
    assert result.ok, result.render()
    assert result.value[:20] == list(range(20))
    assert sorted(suspended) == list(range(1, 20, 2))
    assert client._tool_tasks == {}  # every served call has left the registry


async def test_a_sync_tool_returning_a_coroutine_is_answered_with_its_value(client: ptcd.AsyncClient) -> None:
    async def doubled(x: int) -> int:
        return 2 * x

    def deferred(x: int) -> Any:
        return doubled(x)  # awaited on the loop by the client

    result = await client.run("[await deferred(4), await deferred(5)]", tools=[deferred])
    assert result.value == [8, 10], result.render()


async def test_arguments_the_handler_cannot_take_are_a_tool_error(client: ptcd.AsyncClient) -> None:
    # Schemas looser than the handlers, so that the script's stubs let the calls through.
    raw = {
        "name": "pick",
        "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}}},
        "handler": lambda a: a,
    }

    async def needs(a: int, b: int) -> int:
        return a + b

    typed = ptcd.Tool.from_function(needs)
    typed.input_schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a"],
    }
    code = (
        "out = []\n"
        "for call in (lambda: pick(), lambda: needs(a=1), lambda: needs(a=1, b=2)):\n"
        "    try:\n"
        "        out.append(await call())\n"
        "    except ToolError as e:\n"
        "        out.append(str(e))\n"
        "out"
    )
    result = await client.run(code, tools=[raw, typed])
    assert result.ok, result.render()
    assert result.value[0].startswith("TypeError:") and "'a'" in result.value[0]
    assert result.value[1:] == ["TypeError: needs() missing required argument: 'b'", 3]


async def test_a_suspended_tool_call_is_cancelled_and_unanswered_calls_do_not_linger(
    client: ptcd.AsyncClient,
) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def quick(i: int) -> int:
        return i

    async def stuck() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    code = "import asyncio\nawait asyncio.gather(quick(1), quick(2), stuck())"
    result = await client.run(code, tools=[quick, stuck], limits={"timeout_ms": 2000})
    assert not result.ok and started.is_set()
    await asyncio.wait_for(cancelled.wait(), SAFETY_S)
    assert client._tool_tasks == {}  # the cancelled task left the registry as it ended
    assert (await client.run("await quick(3)", tools=[quick])).value == 3


async def test_handler_exception_becomes_tool_error(client: ptcd.AsyncClient) -> None:
    def lookup(key: str) -> str:
        raise KeyError(f"no entry {key}")

    async def validate(value: int) -> bool:
        raise ValueError("value must be positive")

    code = (
        "out = []\n"
        "for call in (lambda: lookup('k'), lambda: validate(-1)):\n"
        "    try:\n"
        "        await call()\n"
        "    except ToolError as e:\n"
        "        out.append([e.code, str(e)])\n"
        "out"
    )
    result = await client.run(code, tools=[lookup, validate])
    assert result.ok, result.render()
    assert result.value == [
        [ptcd.TOOL_ERROR_CODE, "KeyError: 'no entry k'"],
        [ptcd.TOOL_ERROR_CODE, "ValueError: value must be positive"],
    ]


async def test_uncaught_tool_error_fails_the_script(client: ptcd.AsyncClient) -> None:
    async def fail() -> None:
        raise RuntimeError("backend down")

    result = await client.run("await fail()", tools=[fail])
    assert result.status == "error"
    assert result.error is not None and result.error.type == "ToolError"
    assert "RuntimeError: backend down" in result.render()


async def test_explicit_tool_error_keeps_code_message_and_data(client: ptcd.AsyncClient) -> None:
    def charge(amount: int) -> None:
        raise ptcd.ToolError("card declined", code=402, data={"retry": False})

    code = "try:\n    await charge(5)\nexcept ToolError as e:\n    r = [e.code, e.message, e.data]\nr"
    result = await client.run(code, tools=[charge])
    assert result.value == [402, "card declined", {"retry": False}], result.render()


async def test_unserializable_result_is_a_clear_tool_error(client: ptcd.AsyncClient) -> None:
    def make_set() -> Any:
        return {1, 2, 3}

    def make_object() -> Any:
        return object()

    def make_nan() -> float:
        return float("nan")

    code = (
        "msgs = []\n"
        "for f in (make_set, make_object, make_nan):\n"
        "    try:\n"
        "        await f()\n"
        "    except ToolError as e:\n"
        "        msgs.append(str(e))\n"
        "msgs"
    )
    result = await client.run(code, tools=[make_set, make_object, make_nan])
    assert result.ok, result.render()
    assert len(result.value) == 3
    for message in result.value:
        assert "not JSON-serializable" in message
    assert "set" in result.value[0]
    # The connection is still healthy afterwards.
    assert (await client.run("1 + 1")).value == 2


try:
    import pydantic
except ImportError:  # pragma: no cover - pydantic is optional
    pydantic = None  # type: ignore[assignment]

if pydantic is not None:

    class Order(pydantic.BaseModel):
        sku: str
        quantity: int = 1


@pytest.mark.skipif(pydantic is None, reason="pydantic is not installed")
async def test_pydantic_models_in_and_out(client: ptcd.AsyncClient) -> None:
    def place(order: Order) -> Order:
        assert isinstance(order, Order)
        return Order(sku=order.sku.upper(), quantity=order.quantity * 2)

    result = await client.run("await place({'sku': 'abc', 'quantity': 2})", tools=[place])
    assert result.value == {"sku": "ABC", "quantity": 4}, result.render()


async def test_dataclass_results_are_serialized(client: ptcd.AsyncClient) -> None:
    def where() -> City:
        return City("Nice")

    result = await client.run("await where()", tools=[where])
    assert result.value == {"name": "Nice", "country": "FR"}, result.render()


# ------------------------------------------------------------------------- streaming


async def test_on_output_streams_while_the_run_goes_on(client: ptcd.AsyncClient) -> None:
    chunks: list[tuple[str, str]] = []
    first_line_seen = asyncio.Event()

    def on_output(stream: str, text: str) -> None:
        chunks.append((stream, text))
        if "first" in "".join(t for s, t in chunks if s == "stdout"):
            first_line_seen.set()

    async def wait_for_first_line() -> bool:
        # Returns only once the client has received the first line: proof it was streamed live.
        await asyncio.wait_for(first_line_seen.wait(), SAFETY_S)
        return True

    code = "import sys\nprint('first', flush=True)\nawait wait_for_first_line()\nprint('oops', file=sys.stderr)\nprint('second')"
    result = await client.run(code, tools=[wait_for_first_line], on_output=on_output)
    assert result.ok, result.render()
    streamed = "".join(text for stream, text in chunks if stream == "stdout")
    assert streamed == "first\nsecond\n" == result.stdout
    assert "".join(text for stream, text in chunks if stream == "stderr") == "oops\n"


# ------------------------------------------------------------------------- cancellation


async def test_cancelling_the_run_task_cancels_the_run(client: ptcd.AsyncClient) -> None:
    started = asyncio.Event()
    handler_cancelled = asyncio.Event()

    async def wait_forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            handler_cancelled.set()  # the daemon sent $/cancelRequest for this call
            raise

    task = asyncio.create_task(client.run("await wait_forever()", tools=[wait_forever]))
    await asyncio.wait_for(started.wait(), SAFETY_S)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(handler_cancelled.wait(), SAFETY_S)
    # The connection is still usable, and the daemon counted the run as cancelled.
    assert (await client.run("'still here'")).value == "still here"


@pytest.mark.skipif(not hasattr(asyncio, "timeout"), reason="asyncio.timeout is Python 3.11+")
async def test_asyncio_timeout_cancels_the_run(client: ptcd.AsyncClient) -> None:
    started = asyncio.Event()
    handler_cancelled = asyncio.Event()

    async def slow() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            handler_cancelled.set()
            raise

    async def expire_once_started(timeout: asyncio.Timeout) -> None:
        await started.wait()
        timeout.reschedule(asyncio.get_running_loop().time())  # the deadline passes now

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(None) as timeout:
            watcher = asyncio.create_task(expire_once_started(timeout))
            await client.run("await slow()", tools=[slow])
    await watcher
    await asyncio.wait_for(handler_cancelled.wait(), SAFETY_S)


async def test_run_deadline_cancels_pending_tool_calls(client: ptcd.AsyncClient) -> None:
    handler_cancelled = asyncio.Event()

    async def never_answers() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            handler_cancelled.set()  # $/cancelRequest arrived when the run's deadline passed
            raise

    result = await client.run("await never_answers()", tools=[never_answers], limits={"timeout_ms": 3000})
    assert not result.ok
    await asyncio.wait_for(handler_cancelled.wait(), SAFETY_S)


async def test_close_fails_pending_runs(socket_path: str) -> None:
    started = asyncio.Event()

    async def block() -> None:
        started.set()
        await asyncio.Event().wait()

    client = ptcd.AsyncClient(socket_path)
    await client.connect()
    run = asyncio.create_task(client.run("await block()", tools=[block]))
    await asyncio.wait_for(started.wait(), SAFETY_S)
    await client.close()
    with pytest.raises(ptcd.ConnectionClosed, match="closed"):
        await run
    with pytest.raises(ptcd.ConnectionClosed):
        await client.run("1")


async def test_many_runs_in_flight_on_one_connection(client: ptcd.AsyncClient) -> None:
    async def double(x: int) -> int:
        return 2 * x

    results = await asyncio.gather(*(client.run(f"await double({i})", tools=[double]) for i in range(8)))
    assert [r.value for r in results] == [2 * i for i in range(8)]


# ------------------------------------------------------------------------- errors


async def test_daemon_not_running_says_how_to_start_it(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.sock"
    with pytest.raises(ptcd.DaemonNotRunning, match="ptcd serve") as info:
        async with ptcd.AsyncClient(missing):
            pass
    assert str(missing) in str(info.value)

    stale = tmp_path / "stale.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(stale))  # bound but never listening: connection refused
    try:
        with pytest.raises(ptcd.DaemonNotRunning, match="ptcd serve"):
            await ptcd.AsyncClient(stale).connect()
    finally:
        listener.close()


async def test_socket_from_environment(socket_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTCD_SOCKET", socket_path)
    async with ptcd.AsyncClient() as client:
        assert client.socket_path == socket_path
        assert (await client.run("3")).value == 3


async def test_unknown_policy(client: ptcd.AsyncClient) -> None:
    with pytest.raises(ptcd.UnknownPolicy) as info:
        await client.run("1", policy="no-such-policy")
    assert info.value.code == -32004


async def test_limits_exceeding_policy(client: ptcd.AsyncClient) -> None:
    with pytest.raises(ptcd.LimitsExceedPolicy) as info:
        await client.run("1", limits={"timeout_ms": 10**12})
    assert info.value.code == -32003


async def test_invalid_params_names_the_field(client: ptcd.AsyncClient) -> None:
    with pytest.raises(ptcd.InvalidParams) as info:
        await client.request("run", {"code": 5})
    assert info.value.code == -32602
    assert info.value.field == "code"


async def test_method_not_found(client: ptcd.AsyncClient) -> None:
    with pytest.raises(ptcd.MethodNotFound):
        await client.request("no/such/method", {})


async def test_unknown_run(client: ptcd.AsyncClient) -> None:
    with pytest.raises(ptcd.UnknownRun):
        await client.request("run/cancel", {"request_id": 987654})


async def test_unknown_session(client: ptcd.AsyncClient) -> None:
    with pytest.raises(ptcd.UnknownSession):
        await client.run("1", session_id="s-does-not-exist")


async def test_errors_do_not_disturb_other_runs(client: ptcd.AsyncClient) -> None:
    good = asyncio.create_task(client.run("'ok'"))
    with pytest.raises(ptcd.UnknownPolicy):
        await client.run("1", policy="nope")
    assert (await good).value == "ok"


# ------------------------------------------------------------------------- sessions, definitions


async def test_session_tools_are_served(client: ptcd.AsyncClient) -> None:
    counter = {"n": 0}

    def bump() -> int:
        counter["n"] += 1
        return counter["n"]

    session = await client.create_session(tools=[bump], persistent=True)
    try:
        assert "bump" in session.tools
        first = await client.run("x = await bump()\nx", session_id=session.session_id)
        second = await client.run("x + await bump()", session_id=session.session_id)
        assert first.value == 1, first.render()
        assert second.value == 3, second.render()
    finally:
        await client.close_session(session.session_id)
    with pytest.raises(ptcd.UnknownSession):
        await client.run("1", session_id=session.session_id)


async def test_tool_definitions_for_providers(client: ptcd.AsyncClient) -> None:
    def get_team_members(team: str) -> list[str]:
        """Names of a team's members."""
        return []

    for fmt in ("openai", "anthropic"):
        definitions = await client.tool_definitions([get_team_members], format=fmt)
        assert "get_team_members" in definitions["stubs"]
        assert "run_code" in str(definitions["tools"])
