"""A blocking facade over :class:`~ptcd.AsyncClient` for code that is not async.

Rather than a second implementation of the protocol, :class:`Client` runs the async client on a
private event loop in a background thread and waits for each call's result. Tool handlers keep the
same behaviour as with the async client: async handlers run on the private loop, sync handlers in
the tool thread pool, so a script's concurrent tool calls are still served concurrently.

Interrupting a blocking :meth:`Client.run` (Ctrl-C, ``KeyboardInterrupt``) cancels the run on the
daemon, as cancelling the task does in async code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from ._client import AsyncClient, OutputCallback, SessionInfo
from ._errors import ConnectionClosed
from ._protocol import DEFAULT_MAX_LINE_BYTES
from ._result import Limits, RunResult
from ._tools import ToolLike

__all__ = ["Client"]

T = TypeVar("T")


class Client:
    """Blocking client; same arguments and methods as :class:`~ptcd.AsyncClient`.

    ``with ptcd.Client() as client: result = client.run(code, tools=[...])``. ``on_output``
    callbacks and async tool handlers run on the client's private loop thread.
    """

    def __init__(
        self,
        socket: str | os.PathLike[str] | None = None,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_tool_threads: int = 64,
    ) -> None:
        self._client = AsyncClient(socket, max_line_bytes=max_line_bytes, max_tool_threads=max_tool_threads)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def socket_path(self) -> str:
        return self._client.socket_path

    @property
    def closed(self) -> bool:
        return self._loop is None or self._client.closed

    # ------------------------------------------------------------------ lifecycle

    def connect(self) -> None:
        """Start the private loop and connect; raises :class:`~ptcd.DaemonNotRunning` if nobody listens."""
        if self._loop is not None:
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="ptcd-client-loop", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self._call(self._client.connect())
        except BaseException:
            self._stop_loop()
            raise

    def close(self) -> None:
        """Close the connection and stop the private loop. Pending runs fail with ConnectionClosed."""
        if self._loop is None:
            return
        try:
            self._call(self._client.close())
        finally:
            self._stop_loop()

    def __enter__(self) -> Client:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join()
        loop.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise ConnectionClosed("the ptcd client is not connected (use `with` or connect())")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(
                "ptcd.Client was called from its own event loop thread (an async tool handler or "
                "on_output callback); use ptcd.AsyncClient there"
            )
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except BaseException:
            # KeyboardInterrupt and friends: cancel the coroutine (a run sends run/cancel).
            if not future.done():
                future.cancel()
            raise

    # ------------------------------------------------------------------ API

    def request(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Send any daemon method and return its result."""
        return self._call(self._client.request(method, params))

    def initialize(self, client_info: Mapping[str, str] | None = None) -> dict[str, Any]:
        """``initialize``."""
        return self._call(self._client.initialize(client_info))

    def status(self) -> dict[str, Any]:
        """``daemon/status``."""
        return self._call(self._client.status())

    def run(
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
        """Run ``code`` and serve its tool calls; see :meth:`AsyncClient.run`."""
        return self._call(
            self._client.run(
                code,
                tools=list(tools),
                inputs=inputs,
                policy=policy,
                limits=limits,
                on_output=on_output,
                session_id=session_id,
                env=env,
                mcp_servers=mcp_servers,
            )
        )

    def create_session(
        self,
        tools: Iterable[ToolLike] = (),
        *,
        policy: str | None = None,
        limits: Limits | Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        persistent: bool = False,
        mcp_servers: Iterable[str] | None = None,
    ) -> SessionInfo:
        """``session/create``."""
        return self._call(
            self._client.create_session(
                list(tools), policy=policy, limits=limits, env=env, persistent=persistent, mcp_servers=mcp_servers
            )
        )

    def close_session(self, session_id: str) -> None:
        """``session/close``."""
        self._call(self._client.close_session(session_id))

    def tool_definitions(
        self,
        tools: Iterable[ToolLike] = (),
        *,
        format: str = "openai",
        session_id: str | None = None,
        mcp_servers: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """``tools/definition``."""
        return self._call(
            self._client.tool_definitions(list(tools), format=format, session_id=session_id, mcp_servers=mcp_servers)
        )
