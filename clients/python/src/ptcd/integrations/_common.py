"""What the framework adapters share: the connection, the ``run_code`` definition, a run."""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._client import AsyncClient
from .._errors import PtcdError
from .._result import Limits, RunResult

RUN_CODE = "run_code"
CODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"code": {"type": "string", "description": "The Python script to run."}},
    "required": ["code"],
    "additionalProperties": False,
}


@dataclass
class Connection:
    """The ptcd connection an adapter uses: the given client, or one it opens on first use.

    A client of its own is opened lazily, on the event loop of the first call, and reconnects by
    itself after a daemon restart (see :class:`~ptcd.AsyncClient`). Runs of concurrent agent runs
    share it: each run serves only its own tool calls.
    """

    client: AsyncClient | None = None
    socket: str | None = None
    _own: AsyncClient | None = field(default=None, repr=False)
    _lock: asyncio.Lock | None = field(default=None, repr=False)

    async def get(self) -> AsyncClient:
        if self.client is not None:
            return self.client
        if self._own is None:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if self._own is None:
                    client = AsyncClient(self.socket)
                    await client.connect()
                    self._own = client
        return self._own

    async def aclose(self) -> None:
        """Close the connection this adapter opened itself (a given client is left alone)."""
        if self._own is not None:
            own, self._own = self._own, None
            await own.close()


@dataclass
class RunOptions:
    """How ``run_code`` runs the script (all optional; the daemon's defaults otherwise)."""

    policy: str | None = None
    limits: Limits | Mapping[str, Any] | None = None
    env: Mapping[str, str] | None = None
    #: MCP servers of the daemon's config attached to every run: their tools are namespaces in
    #: the script (``await sqlite.read_query(...)``), called by the daemon, not by the framework.
    mcp_servers: Sequence[str] | None = None


def server_list(mcp_servers: Sequence[str] | None) -> list[str] | None:
    """An adapter's ``mcp_servers=`` argument as a list (a lone string is a mistake, not a list)."""
    if mcp_servers is None:
        return None
    if isinstance(mcp_servers, str):
        raise TypeError(f"mcp_servers takes a list of server names, not a single string: use [{mcp_servers!r}]")
    return list(mcp_servers)


async def describe(
    connection: Connection, specs: Sequence[Mapping[str, Any]], mcp_servers: Sequence[str] | None = None
) -> str:
    """The daemon's ``run_code`` description for these tools and MCP servers (how to write the
    script + stubs)."""
    client = await connection.get()
    definitions = await client.tool_definitions(list(specs), format="openai", mcp_servers=mcp_servers)
    description: str = definitions["tools"][0]["function"]["description"]
    return description


async def run_code(
    connection: Connection,
    code: str,
    specs: Sequence[Mapping[str, Any]],
    call: Callable[[str, dict[str, Any]], Any],
    options: RunOptions,
) -> RunResult:
    """Run ``code`` with tools whose calls all go to ``call(name, arguments)``.

    Each call runs in a copy of the caller's context variables (the client serves tool calls
    from its own tasks), so what frameworks keep there (tracing, LangGraph's runtime and config)
    reaches the tools as if the agent had called them directly.
    """
    client = await connection.get()
    context = contextvars.copy_context()
    tools = [{**spec, "handler": _handler(call, str(spec["name"]), context)} for spec in specs]
    return await client.run(
        code,
        tools=tools,
        policy=options.policy,
        limits=options.limits,
        env=options.env,
        mcp_servers=options.mcp_servers,
    )


async def run_and_render(
    connection: Connection,
    code: str,
    specs: Sequence[Mapping[str, Any]],
    call: Callable[[str, dict[str, Any]], Any],
    options: RunOptions,
) -> str:
    """What ``run_code`` returns to the model: the rendered result (a failed script included), or,
    when the daemon refused the run or went away, what happened, in words the model can pass on."""
    try:
        result = await run_code(connection, code, specs, call, options)
    except PtcdError as exc:
        return f"run_code failed before the script could finish: {type(exc).__name__}: {exc.message}"
    return result.render()


def _handler(
    call: Callable[[str, dict[str, Any]], Any], name: str, context: contextvars.Context
) -> Callable[..., Any]:
    async def handler(**arguments: Any) -> Any:
        task = context.run(asyncio.ensure_future, call(name, arguments))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()
            raise

    return handler


def tool_spec(
    name: str, description: str | None, input_schema: Mapping[str, Any] | None, output_schema: Any = None
) -> dict[str, Any]:
    """A ptcd ToolSpec (without handler) from a framework tool's parts."""
    spec: dict[str, Any] = {"name": name}
    if description:
        spec["description"] = description
    if input_schema is not None:
        spec["input_schema"] = dict(input_schema)
    if isinstance(output_schema, Mapping) and output_schema:
        spec["output_schema"] = dict(output_schema)
    return spec


def parse_json_text(text: Any) -> Any:
    """A tool's text output as JSON when it is JSON (frameworks often serialise results)."""
    if isinstance(text, str):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text
