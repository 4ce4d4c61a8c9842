"""The asyncio client: one Unix-socket connection, many runs in flight, tool calls served concurrently.

The connection is full duplex. A single reader task reads lines, classifies them with the sans-IO
core and routes them: answers complete the future of the request they belong to; ``tool/call``
requests are served concurrently (an async handler in a task of its own on this loop, a sync one
in a thread pool) and answered when they end; ``$/cancelRequest`` cancels the work serving that
call; ``run/output`` goes to the run's ``on_output`` callback. Requests are written through one
lock and answers are queued and written together at the end of the loop's turn, so lines never
interleave.

Ownership rules, so nothing leaks or hangs: a run that is cancelled by its caller hands its pending
answer to a small cleanup task that sends ``run/cancel`` and waits for the daemon's final
``cancelled`` answer; closing the client (or the daemon going away) fails every pending request with
:class:`~ptcd.ConnectionClosed` and cancels every tool task.

Reconnecting: when the daemon goes away (stopped, restarted), the runs in flight fail with
:class:`~ptcd.ConnectionClosed`, and the next call opens a new connection. Sessions do not survive
that (the daemon closed them), so their tools are forgotten too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from ._errors import (
    TOOL_ERROR_CODE,
    ConnectionClosed,
    DaemonNotRunning,
    InvalidRequest,
    PtcdError,
    ToolError,
    UnknownRun,
)
from ._protocol import (
    DEFAULT_MAX_LINE_BYTES,
    CancelRequested,
    Event,
    OutputReceived,
    ProtocolViolation,
    ResponseReceived,
    RpcCore,
    ToolCallRequested,
    UnhandledRequest,
)
from ._result import Limits, RunResult
from ._socket import resolve_socket_path
from ._tools import Tool, ToolLike, as_tool, to_json

__all__ = ["AsyncClient", "OutputCallback", "SessionInfo"]

log = logging.getLogger("ptcd")

#: ``on_output(stream, text)``: ``stream`` is ``"stdout"`` or ``"stderr"``. Called on the event loop
#: (for the sync :class:`~ptcd.Client`, on its private loop thread), so it must not block.
OutputCallback = Callable[[str, str], None]

_VERSION = "0.1.0"
# Answers queued beyond this many bytes are written without waiting for the loop's turn to end.
_WRITE_BATCH = 4096
# The most the reader takes from the connection's buffer at a time.
_READ_CHUNK = 1 << 20


@dataclass
class _RunState:
    tools: dict[str, Tool]
    on_output: OutputCallback | None
    sent: bool = False


@dataclass(frozen=True)
class SessionInfo:
    """A session created with :meth:`AsyncClient.create_session`."""

    session_id: str
    tools: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


#: Types of values that are never awaitable (a handler's usual return values).
_PLAIN_VALUES: frozenset[type] = frozenset({dict, list, str, int, float, bool, type(None)})


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _tool_map(tools: Iterable[ToolLike]) -> dict[str, Tool]:
    mapping: dict[str, Tool] = {}
    for item in tools:
        definition = as_tool(item)
        if definition.name in mapping:
            raise ValueError(f"two tools are named {definition.name!r}")
        mapping[definition.name] = definition
    return mapping


def _definition_spec(item: ToolLike) -> dict[str, Any]:
    """The ToolSpec of a tool for ``tools/definition``, where no handler is needed: a spec dict
    is sent as it is (minus any ``handler``)."""
    if isinstance(item, Mapping) and not callable(item.get("handler")):
        return {key: value for key, value in item.items() if key != "handler"}
    return as_tool(item).spec()


def _server_names(names: Iterable[str] | None) -> list[str] | None:
    """``mcp_servers`` as the wire's array of config names; a lone string is refused here (it
    would otherwise be sent as a list of its letters)."""
    if names is None:
        return None
    if isinstance(names, (str, bytes)):
        raise TypeError(f"mcp_servers takes a list of server names, not a single string: use [{names!r}]")
    return list(names)


def _limits_to_wire(limits: Limits | Mapping[str, Any]) -> dict[str, Any]:
    return limits.to_wire() if isinstance(limits, Limits) else dict(limits)


class AsyncClient:
    """A connection to the ptcd daemon.

    ``socket`` overrides the socket path (else ``PTCD_SOCKET``, else the daemon's default).
    ``max_line_bytes`` is the daemon's line limit: longer requests are refused locally, and a tool
    result that would exceed it becomes a tool error. ``max_tool_threads`` bounds how many sync
    tool handlers run at once.

    Use it as an async context manager, or call :meth:`connect` and :meth:`close` yourself.
    """

    def __init__(
        self,
        socket: str | os.PathLike[str] | None = None,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_tool_threads: int = 64,
    ) -> None:
        self.socket_path = resolve_socket_path(socket)
        self._core = RpcCore(max_line_bytes)
        self._max_tool_threads = max_tool_threads
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        # Lines queued in this turn of the loop, written to `_writer` together at its end: a
        # script's 1000 gathered calls get their answers in a few writes, not 1000.
        self._unsent: list[bytes] = []
        self._unsent_bytes = 0
        self._reader_task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._runs: dict[int, _RunState] = {}
        self._session_tools: dict[str, dict[str, Tool]] = {}
        self._tool_tasks: dict[Any, asyncio.Future[Any]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._closed_error: ConnectionClosed | None = None
        self._connected = False
        self._reconnect_lock = asyncio.Lock()
        self.reconnects = 0
        """How many times the client reconnected after losing the daemon."""

    # ------------------------------------------------------------------ lifecycle

    async def connect(self) -> None:
        """Open the connection; raises :class:`~ptcd.DaemonNotRunning` when nothing listens."""
        if self._connected:
            return
        await self._open()
        self._connected = True

    async def _open(self) -> None:
        path = self.socket_path
        hint = (
            f"Start the daemon with `ptcd serve` (or `ptcd serve --socket {path}`), "
            "or point PTCD_SOCKET / socket= at a running daemon."
        )
        try:
            self._reader, self._writer = await asyncio.open_unix_connection(
                path, limit=self._core.max_line_bytes * 4
            )
        except FileNotFoundError:
            raise DaemonNotRunning(f"no ptcd daemon is listening: {path} does not exist. {hint}", path=path) from None
        except ConnectionRefusedError:
            raise DaemonNotRunning(
                f"no ptcd daemon is listening on {path} (connection refused; the socket file may be stale). {hint}",
                path=path,
            ) from None
        except PermissionError as exc:
            raise PtcdError(f"permission denied connecting to {path}: {exc}") from None
        except OSError as exc:
            raise DaemonNotRunning(f"cannot connect to ptcd at {path}: {exc}. {hint}", path=path) from None
        self._closed_error = None
        self._reader_task = asyncio.create_task(self._read_loop(), name="ptcd-reader")

    async def close(self) -> None:
        """Close the connection. Pending requests fail with :class:`~ptcd.ConnectionClosed`.

        The daemon cancels this connection's runs and closes its sessions when it sees the
        disconnect.
        """
        if not self._connected:
            return
        self._connected = False
        self._fail_all(ConnectionClosed("the ptcd client was closed while this request was pending"))
        if self._writer is not None:
            self._write_unsent(self._writer)
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)
        tasks = list(self._tool_tasks.values()) + list(self._background)
        for key, work in list(self._tool_tasks.items()):
            self._cancel_tool_task(key, work)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def __aenter__(self) -> AsyncClient:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return not self._connected or self._closed_error is not None

    # ------------------------------------------------------------------ public API

    async def request(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Send any daemon method and return its result (errors raise their typed exception)."""
        request_id, future = await self._start(method, dict(params) if params is not None else None)
        try:
            return await future
        finally:
            self._pending.pop(request_id, None)
            self._core.forget(request_id)

    async def initialize(self, client_info: Mapping[str, str] | None = None) -> dict[str, Any]:
        """``initialize``: protocol version, sandbox features, Python, policies, and (contract v1.1)
        ``mcp_servers`` (the configured MCP server names, sorted) and ``discovery_threshold``."""
        info = dict(client_info) if client_info else {"name": "ptcd-python", "version": _VERSION}
        result: dict[str, Any] = await self.request("initialize", {"client_info": info})
        return result

    async def status(self) -> dict[str, Any]:
        """``daemon/status``: connection, run and tool-call counters, uptime."""
        result: dict[str, Any] = await self.request("daemon/status", {})
        return result

    async def run(
        self,
        code: str,
        tools: Iterable[ToolLike] = (),
        inputs: Mapping[str, Any] | None = None,
        policy: str | None = None,
        limits: Limits | Mapping[str, Any] | None = None,
        on_output: OutputCallback | None = None,
        *,
        session_id: str | None = None,
        env: Mapping[str, str] | None = None,
        mcp_servers: Iterable[str] | None = None,
    ) -> RunResult:
        """Run ``code`` in the daemon and serve its tool calls; returns the :class:`RunResult`.

        ``mcp_servers`` attaches MCP servers of the daemon's config by name: their tools are
        namespaces in the script (``await sqlite.read_query(query=...)``), called by the daemon
        itself, never sent to this client (in a session, added to the session's servers).

        A script that fails still returns a result (``ok`` is False); exceptions are for requests
        the daemon refused (typed, e.g. :class:`~ptcd.UnknownPolicy`, :class:`~ptcd.InvalidParams`
        for an unknown server, :class:`~ptcd.McpServerUnavailable` for one that cannot start) and
        for a lost connection. Cancelling the awaiting task sends ``run/cancel`` to the daemon.
        """
        tool_map = _tool_map(tools)
        params: dict[str, Any] = {"code": code}
        if tool_map:
            params["tools"] = [definition.spec() for definition in tool_map.values()]
        servers = _server_names(mcp_servers)
        if servers is not None:
            params["mcp_servers"] = servers
        if session_id is not None:
            params["session_id"] = session_id
        if policy is not None:
            params["policy"] = policy
        if limits is not None:
            params["limits"] = _limits_to_wire(limits)
        if inputs is not None:
            params["inputs"] = dict(inputs)
        if env is not None:
            params["env"] = dict(env)
        if on_output is not None:
            params["stream"] = True

        state = _RunState(tool_map, on_output)
        request_id, future = await self._start("run", params, state)
        try:
            raw = await asyncio.shield(future)
        except asyncio.CancelledError:
            if state.sent and not self.closed:
                # The daemon owns the run now: ask it to stop and let a cleanup task collect the
                # final answer, keeping the tools registered until the run has really ended.
                self._spawn(self._cancel_run(request_id, future))
            else:
                self._forget_run(request_id)
            raise
        except BaseException:
            self._forget_run(request_id)
            raise
        self._forget_run(request_id)
        return RunResult.from_wire(raw)

    async def create_session(
        self,
        tools: Iterable[ToolLike] = (),
        *,
        policy: str | None = None,
        limits: Limits | Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        persistent: bool = False,
        mcp_servers: Iterable[str] | None = None,
    ) -> SessionInfo:
        """``session/create``; the session's tools are served by this client for its lifetime.

        ``mcp_servers``: MCP servers (config names) attached to every run of the session; the
        result's ``tools`` lists their tools as ``"<namespace>.<tool>"``.
        """
        tool_map = _tool_map(tools)
        params: dict[str, Any] = {"persistent": persistent}
        if tool_map:
            params["tools"] = [definition.spec() for definition in tool_map.values()]
        if policy is not None:
            params["policy"] = policy
        if limits is not None:
            params["limits"] = _limits_to_wire(limits)
        if env is not None:
            params["env"] = dict(env)
        servers = _server_names(mcp_servers)
        if servers is not None:
            params["mcp_servers"] = servers
        result = await self.request("session/create", params)
        session_id = str(result["session_id"])
        self._session_tools[session_id] = tool_map
        return SessionInfo(session_id, list(result.get("tools") or []), dict(result))

    async def close_session(self, session_id: str) -> None:
        """``session/close``."""
        try:
            await self.request("session/close", {"session_id": session_id})
        finally:
            self._session_tools.pop(session_id, None)

    async def tool_definitions(
        self,
        tools: Iterable[ToolLike] = (),
        *,
        format: str = "openai",
        session_id: str | None = None,
        mcp_servers: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """``tools/definition``: the ``run_code`` tool (and direct tools) in a provider's format.

        ``tools`` may be functions, :class:`~ptcd.Tool` objects, or spec dicts with or without a
        ``handler`` (only the definitions are needed here). With ``session_id``, the session's
        tools are included, and ``tools`` of the same name replace them. ``mcp_servers`` adds the
        tools of those MCP servers, one namespace class per server in the stubs (above the
        daemon's ``discovery_threshold``, names and one-line summaries plus ``search_tools`` /
        ``describe_tool``).
        Returns ``{"tools": [...], "stubs": "<python source>"}``.
        """
        params: dict[str, Any] = {"format": format}
        if session_id is not None:
            params["session_id"] = session_id
        servers = _server_names(mcp_servers)
        if servers is not None:
            params["mcp_servers"] = servers
        specs = [_definition_spec(item) for item in tools]
        if specs or session_id is None:
            params["tools"] = specs
        result: dict[str, Any] = await self.request("tools/definition", params)
        return result

    # ------------------------------------------------------------------ requests

    def _check_open(self) -> None:
        if self._closed_error is not None:
            raise ConnectionClosed(self._closed_error.message)
        if not self._connected:
            raise ConnectionClosed("the ptcd client is not connected (use `async with` or connect())")

    async def _ensure_connection(self) -> None:
        """Reconnect if the daemon went away since the last call (not if the client was closed)."""
        if not self._connected or self._closed_error is None:
            return
        async with self._reconnect_lock:
            if self._closed_error is None:
                return  # another call reconnected first
            await self._drop_transport()
            self._session_tools.clear()  # the daemon closed them with the old connection
            await self._open()
            self.reconnects += 1
            log.info("reconnected to ptcd at %s", self.socket_path)

    async def _drop_transport(self) -> None:
        """Release the old connection's writer, reader task and tool tasks."""
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (ConnectionError, OSError):
                pass
            self._writer = None
        self._unsent.clear()  # lines for the old connection go nowhere else
        self._unsent_bytes = 0
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)
            self._reader_task = None
        tasks = list(self._tool_tasks.values())
        for key, work in list(self._tool_tasks.items()):
            self._cancel_tool_task(key, work)
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _start(
        self, method: str, params: dict[str, Any] | None, state: _RunState | None = None
    ) -> tuple[int, asyncio.Future[Any]]:
        """Register and send a request; returns its id and the future of its answer.

        A request that cannot be written because the connection is already gone (the daemon
        restarted while this client was idle) was never received by a live daemon: the client
        reconnects and sends it once more.
        """
        for attempt in (1, 2):
            await self._ensure_connection()
            self._check_open()
            request_id, line = self._core.request(method, params)
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._pending[request_id] = future
            if state is not None:
                state.sent = False
                self._runs[request_id] = state  # before sending: its first tool call may come at once
            try:
                await self._send(line, state)
            except ConnectionClosed as exc:
                self._forget_run(request_id)
                if attempt == 2 or not self._connected:
                    raise
                self._fail_all(exc)  # the old connection is dead: mark it, so the retry reconnects
                continue
            except BaseException:
                if state is None or not state.sent:
                    self._forget_run(request_id)
                raise
            return request_id, future
        raise AssertionError("unreachable")

    async def _send(self, line: bytes, state: _RunState | None = None, *, batched: bool = False) -> None:
        """Writes `line` after the queued ones. `batched` (answers to the daemon's tool calls):
        queue it for the end of this turn of the loop instead. A request is written at once, so
        that a connection found dead fails it here (and `_request` sends it again)."""
        async with self._write_lock:
            self._check_open()
            assert self._writer is not None
            if batched:
                self._queue_line(line)
            else:
                self._write_unsent(self._writer)
                self._writer.write(line)
            if state is not None:
                state.sent = True
            try:
                await self._writer.drain()
            except (ConnectionError, OSError) as exc:
                raise ConnectionClosed(f"lost the connection to the daemon: {exc}") from None

    def _queue_line(self, line: bytes) -> bool:
        """Queues `line` for the end of this turn of the loop; False if the connection is closed.

        Lines are never torn: the queue is written as a whole, after any line already written."""
        writer = self._writer
        if self._closed_error is not None or not self._connected or writer is None:
            return False
        if not self._unsent:
            asyncio.get_running_loop().call_soon(self._write_unsent, writer)
        self._unsent.append(line)
        self._unsent_bytes += len(line)
        if self._unsent_bytes >= _WRITE_BATCH:
            self._write_unsent(writer)  # the daemon starts on these meanwhile
        return True

    def _write_unsent(self, writer: asyncio.StreamWriter) -> None:
        """Hands the queued lines to `writer`, unless that connection has been dropped since."""
        if writer is not self._writer:
            return
        lines, self._unsent, self._unsent_bytes = self._unsent, [], 0
        if lines and not writer.is_closing():
            writer.write(b"".join(lines))

    async def _cancel_run(self, request_id: int, future: asyncio.Future[Any]) -> None:
        try:
            try:
                await self.request("run/cancel", {"request_id": request_id})
            except (UnknownRun, ConnectionClosed):
                pass  # it finished first, or the connection is gone (which cancels it too)
            except PtcdError as exc:
                log.warning("run/cancel for request %s failed: %s", request_id, exc)
            try:
                await future
            except PtcdError:
                pass
        finally:
            self._forget_run(request_id)

    def _forget_run(self, request_id: int) -> None:
        self._runs.pop(request_id, None)
        self._pending.pop(request_id, None)
        self._core.forget(request_id)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ incoming

    async def _read_loop(self) -> None:
        assert self._reader is not None
        error = ConnectionClosed(
            "the daemon closed the connection (stopped or restarted) while this request was pending; "
            "its outcome is unknown. The next call reconnects."
        )
        # What is read is split into lines here rather than by `readline` (one await per line): a
        # burst of 1000 tool calls is a few reads. Same rules as `readline` with the reader's limit:
        # a line (without its `\n`) longer than it drops the connection, after the lines before
        # it; an unterminated last line before EOF is still a line.
        limit = self._core.max_line_bytes * 4
        too_long = ConnectionClosed(f"the daemon sent a line over {limit} bytes; connection dropped")
        partial: list[bytes] = []  # the start of a line whose end has not arrived yet
        partial_bytes = 0
        receive = self._core.receive
        dispatch = self._dispatch
        try:
            while True:
                data = await self._reader.read(_READ_CHUNK)
                if not data:
                    if partial:
                        event = receive(b"".join(partial))
                        if event is not None:
                            dispatch(event)
                    break
                if b"\n" not in data:
                    partial.append(data)
                    partial_bytes += len(data)
                    if partial_bytes > limit:
                        error = too_long
                        break
                    continue
                lines = data.split(b"\n")
                if partial:
                    partial.append(lines[0])
                    lines[0] = b"".join(partial)
                tail = lines.pop()
                partial = [tail] if tail else []
                partial_bytes = len(tail)
                for line in lines:
                    if len(line) > limit:
                        error = too_long
                        return
                    event = receive(line)
                    if event is not None:
                        dispatch(event)
                if partial_bytes > limit:
                    error = too_long
                    break
        except (ConnectionError, OSError) as exc:
            error = ConnectionClosed(f"lost the connection to the daemon: {exc}. The next call reconnects.")
        finally:
            self._fail_all(error)

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, ToolCallRequested):  # the most frequent event by far
            self._start_tool_call(event)
        elif isinstance(event, ResponseReceived):
            future = self._pending.pop(event.id, None)
            if future is None or future.done():
                return
            if event.error is not None:
                future.set_exception(event.error)
            else:
                future.set_result(event.result)
        elif isinstance(event, CancelRequested):
            serving = self._tool_tasks.get(event.id)
            if serving is not None:
                self._cancel_tool_task(event.id, serving)
        elif isinstance(event, OutputReceived):
            state = self._runs.get(event.request_id) if isinstance(event.request_id, int) else None
            if state is not None and state.on_output is not None:
                try:
                    state.on_output(event.stream, event.text)
                except Exception:
                    log.exception("on_output callback failed")
        elif isinstance(event, UnhandledRequest):
            log.warning("daemon called unknown method %r; answered -32601", event.method)
            self._spawn(self._send_quietly(event.reply))
        elif isinstance(event, ProtocolViolation):
            log.warning("%s: %r", event.reason, event.line[:200])
            if event.reply is not None:
                self._spawn(self._send_quietly(event.reply))

    def _start_tool_call(self, event: ToolCallRequested) -> None:
        """Starts serving a ``tool/call``: an async handler in a task of its own, a sync one in the
        thread pool. Either is registered in ``_tool_tasks`` until it ends (so ``$/cancelRequest``,
        a lost connection or ``close`` cancel it) and answered once when it ends, unless it was
        cancelled; a call that fails before it starts (unknown tool, arguments that do not bind)
        is answered here.
        """
        # The run's tool, else the session's.
        state = self._runs.get(event.request_id) if isinstance(event.request_id, int) else None
        definition = state.tools.get(event.name) if state is not None else None
        if definition is None and event.session_id is not None:
            definition = self._session_tools.get(event.session_id, {}).get(event.name)
        if definition is None:
            self._queue_line(
                self._core.error(
                    event.id, TOOL_ERROR_CODE, f"LookupError: this client has no handler for tool {event.name!r}"
                )
            )
            return
        loop = asyncio.get_running_loop()
        work: asyncio.Future[Any]
        try:
            args, kwargs = definition.bind(event.arguments)
            if definition.is_async:
                work = loop.create_task(self._serve_async(event, definition.handler, args, kwargs, True))
            else:
                if self._executor is None:
                    self._executor = concurrent.futures.ThreadPoolExecutor(
                        max_workers=self._max_tool_threads, thread_name_prefix="ptcd-tool"
                    )
                context = contextvars.copy_context()
                work = loop.run_in_executor(
                    self._executor, functools.partial(context.run, definition.handler, *args, **kwargs)
                )
                work.add_done_callback(functools.partial(self._sync_call_done, event))
        except Exception as exc:
            self._queue_line(self._failure_reply(event, exc))
            return
        self._tool_tasks[event.id] = work

    async def _serve_async(
        self,
        event: ToolCallRequested,
        handler: Callable[..., Any],
        args: list[Any],
        kwargs: dict[str, Any],
        may_await: bool,
    ) -> None:
        """The task serving an async handler (or the awaitable a sync one returned): answers with
        its value or error; cancelled, it does not answer."""
        try:
            try:
                value = await handler(*args, **kwargs)
                if may_await and type(value) not in _PLAIN_VALUES and inspect.isawaitable(value):
                    value = await value
            except Exception as exc:
                reply = self._failure_reply(event, exc)
            else:
                reply = self._result_reply(event, value)
            self._queue_line(reply)
        finally:
            self._tool_tasks.pop(event.id, None)

    def _sync_call_done(self, event: ToolCallRequested, work: asyncio.Future[Any]) -> None:
        """Answers a sync handler's call when its thread is done; a cancelled one is not answered."""
        if self._tool_tasks.get(event.id) is work:
            del self._tool_tasks[event.id]
        if work.cancelled():
            return
        exc = work.exception()
        if exc is None:
            value = work.result()
            if type(value) not in _PLAIN_VALUES and inspect.isawaitable(value):
                # It returned an awaitable (a coroutine, say): awaited on the loop, its value is the answer.
                if self.closed:
                    if inspect.iscoroutine(value):
                        value.close()
                    return
                follow = asyncio.get_running_loop().create_task(self._serve_async(event, _await, [value], {}, False))
                self._tool_tasks[event.id] = follow
                return
            reply = self._result_reply(event, value)
        elif isinstance(exc, Exception):
            reply = self._failure_reply(event, exc)
        else:
            return  # KeyboardInterrupt and the like are the loop's business, not an answer
        self._queue_line(reply)

    def _cancel_tool_task(self, key: Any, work: asyncio.Future[Any]) -> None:
        """Cancels the work serving a tool call. A task cancelled before its first step never runs
        its own clean-up, so it also leaves ``_tool_tasks`` when done."""
        work.cancel()
        work.add_done_callback(functools.partial(self._forget_tool_task, key))

    def _forget_tool_task(self, key: Any, work: asyncio.Future[Any]) -> None:
        if self._tool_tasks.get(key) is work:
            del self._tool_tasks[key]

    def _failure_reply(self, event: ToolCallRequested, exc: Exception) -> bytes:
        if isinstance(exc, ToolError):
            return self._error_reply(event, exc.code, exc.message, exc.data)
        log.info("tool %r raised %s: %s", event.name, type(exc).__name__, exc)
        return self._error_reply(event, TOOL_ERROR_CODE, f"{type(exc).__name__}: {exc}")

    def _result_reply(self, event: ToolCallRequested, value: Any) -> bytes:
        try:
            payload = to_json(value)
        except (TypeError, ValueError) as exc:
            return self._error_reply(
                event,
                TOOL_ERROR_CODE,
                f"TypeError: tool {event.name!r} returned a value that is not JSON-serializable "
                f"({type(value).__name__}): {exc}",
            )
        try:
            return self._core.result(event.id, payload)
        except InvalidRequest as exc:
            return self._error_reply(event, TOOL_ERROR_CODE, f"ValueError: tool {event.name!r} result too large: {exc}")

    def _error_reply(self, event: ToolCallRequested, code: int, message: str, data: Any = None) -> bytes:
        try:
            return self._core.error(event.id, code, message, data)
        except (TypeError, ValueError, UnicodeError):
            safe = message.encode("utf-8", "replace").decode("utf-8")[:4096]
            return self._core.error(event.id, code, safe)

    async def _send_quietly(self, line: bytes) -> None:
        try:
            await self._send(line, batched=True)
        except ConnectionClosed:
            pass

    def _fail_all(self, error: ConnectionClosed) -> None:
        if self._closed_error is None:
            self._closed_error = error
        pending = list(self._pending.values())
        for request_id in self._pending:
            self._core.forget(request_id)
        self._pending.clear()
        for future in pending:
            if not future.done():
                future.set_exception(ConnectionClosed(error.message))
        for key, work in list(self._tool_tasks.items()):
            self._cancel_tool_task(key, work)
