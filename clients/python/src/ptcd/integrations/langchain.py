"""LangChain / LangGraph: tools become one ``run_code`` tool backed by ptcd.

    from langgraph.prebuilt import create_react_agent
    from ptcd.integrations.langchain import code_tool

    run_code = await code_tool([get_weather, get_forecast])   # BaseTool objects or functions
    agent = create_react_agent(model, [run_code])

The model sees one tool, ``run_code``, whose description carries the typed stubs of the wrapped
tools (their tool-call schemas; results typed from the functions' return annotations). Every call
the script makes is the tool's own ``ainvoke`` (its argument validation included) with the
``RunnableConfig`` of the ``run_code`` call, so ``configurable`` values, callbacks and tracing
reach the tools; under LangGraph, tools that take ``runtime: ToolRuntime`` (context, store, state)
or ``InjectedState`` / ``InjectedStore`` arguments get them from the graph run, as ``ToolNode``
would inject them; a tool taking ``InjectedToolCallId`` is invoked as a tool call, with an id per
call, and its message's content is what the script gets (parsed as JSON when it is JSON).

Errors: a tool's exception (``ToolException`` included) and invalid arguments reach the script as
``ToolError``, whatever ``handle_tool_error`` / ``handle_validation_error`` say (those turn errors
into strings the script would take for data). Each ``run_code`` call is its own ptcd run, so
concurrent agent runs sharing one connection keep their contexts apart.

Needs ``langchain-core`` (``pip install 'ptcd[langchain]'``, which adds LangGraph); tested with
langchain-core 1.8 and langgraph 1.2.
"""

from __future__ import annotations

import dataclasses
import itertools
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

try:
    from langchain_core.runnables import RunnableConfig
    from langchain_core.tools import BaseTool, StructuredTool
    from langchain_core.tools import tool as as_langchain_tool
    from langchain_core.utils.function_calling import convert_to_openai_tool
    from pydantic_core import to_jsonable_python
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("ptcd.integrations.langchain needs langchain-core: pip install 'ptcd[langchain]'") from exc

try:  # LangGraph is optional: without it there is no graph runtime to pass on.
    from langgraph.prebuilt import ToolRuntime
    from langgraph.prebuilt.tool_node import _get_all_injected_args
except ImportError:  # pragma: no cover - exercised only without langgraph
    ToolRuntime = None  # type: ignore[assignment,misc]
    _get_all_injected_args = None  # type: ignore[assignment]

from .._client import AsyncClient
from .._result import Limits
from .._schema import return_schema
from ._common import RUN_CODE, Connection, RunOptions, describe, parse_json_text, run_and_render, server_list, tool_spec

__all__ = ["code_tool"]

_call_ids = itertools.count(1)


def _raising(tool: BaseTool) -> BaseTool:
    """The same tool, but errors propagate instead of becoming string results."""
    return tool.model_copy(update={"handle_tool_error": False, "handle_validation_error": False})


def _output_schema(tool: BaseTool) -> dict[str, Any] | None:
    function = getattr(tool, "coroutine", None) or getattr(tool, "func", None)
    if function is None:
        return None
    try:
        hint = typing.get_type_hints(function).get("return")
    except Exception:
        return None
    return return_schema(hint) if hint is not None else None


def _spec(tool: BaseTool) -> dict[str, Any]:
    function = convert_to_openai_tool(tool)["function"]
    return tool_spec(tool.name, function.get("description"), function.get("parameters"), _output_schema(tool))


def _hidden_arguments(tool: BaseTool) -> set[str]:
    """Arguments of the tool that the model does not see (injected ones)."""
    try:
        schema = tool.get_input_schema()
        visible = tool.tool_call_schema
    except Exception:
        return set()
    fields = getattr(schema, "model_fields", None)
    shown = getattr(visible, "model_fields", None)
    if not isinstance(fields, dict) or not isinstance(shown, dict):
        return set()
    return set(fields) - set(shown)


def _injected(tool: BaseTool, runtime: Any, call_id: str) -> dict[str, Any]:
    """The graph-run arguments LangGraph's ToolNode would inject into this tool."""
    if runtime is None or _get_all_injected_args is None:
        return {}
    wanted = _get_all_injected_args(tool)
    values: dict[str, Any] = {}
    if wanted.runtime:
        values[wanted.runtime] = dataclasses.replace(runtime, tool_call_id=call_id)
    if wanted.store:
        values[wanted.store] = runtime.store
    state = runtime.state
    for argument, field in (wanted.state or {}).items():
        if not field:
            values[argument] = state
        elif isinstance(state, Mapping) and field in state:
            values[argument] = state[field]
        elif hasattr(state, field):
            values[argument] = getattr(state, field)
    return values


async def code_tool(
    tools: Sequence[BaseTool | Callable[..., Any]],
    *,
    client: AsyncClient | None = None,
    socket: str | None = None,
    policy: str | None = None,
    limits: Limits | Mapping[str, Any] | None = None,
    name: str = RUN_CODE,
    mcp_servers: Sequence[str] | None = None,
) -> StructuredTool:
    """A ``run_code`` tool whose scripts call ``tools`` (LangChain tools or plain functions) via ptcd.

    Async because the description (with the stubs) comes from the daemon. ``client``: an open
    :class:`~ptcd.AsyncClient` to share (else one is opened on first use, on ``socket`` or the
    default socket). ``policy`` / ``limits`` apply to every run. ``mcp_servers``: MCP servers
    of the daemon's config whose tools the script may call too (their stubs join the
    description; the daemon calls them, not the framework).
    """
    wrapped = [tool if isinstance(tool, BaseTool) else as_langchain_tool(tool) for tool in tools]
    by_name = {tool.name: _raising(tool) for tool in wrapped}
    specs = [_spec(tool) for tool in wrapped]
    connection = Connection(client=client, socket=socket)
    options = RunOptions(policy=policy, limits=limits, mcp_servers=server_list(mcp_servers))
    description = await describe(connection, specs, options.mcp_servers)

    async def run(code: str, config: RunnableConfig, runtime: ToolRuntime[Any, Any] = None) -> str:  # type: ignore[assignment]
        outer_id = getattr(runtime, "tool_call_id", None) or "run_code"

        async def call(tool_name: str, arguments: dict[str, Any]) -> Any:
            tool = by_name[tool_name]
            call_id = f"{outer_id}/{next(_call_ids)}"
            injected = _injected(tool, runtime, call_id)
            if _hidden_arguments(tool) - set(injected):
                # Arguments only langchain-core fills (InjectedToolCallId): invoke the tool as a
                # tool call, as ToolNode does, and read its message's content back.
                message = await tool.ainvoke(
                    {"type": "tool_call", "name": tool_name, "args": {**arguments, **injected}, "id": call_id},
                    config=config,
                )
                return to_jsonable_python(parse_json_text(getattr(message, "content", message)))
            return to_jsonable_python(await tool.ainvoke({**arguments, **injected}, config=config))

        return await run_and_render(connection, code, specs, call, options)

    if ToolRuntime is None:  # pragma: no cover - without langgraph
        async def run_plain(code: str, config: RunnableConfig) -> str:
            return await run(code, config)

        coroutine: Callable[..., Any] = run_plain
    else:
        coroutine = run
    run_code_tool = StructuredTool.from_function(
        coroutine=coroutine, name=name, description=description, infer_schema=True
    )
    run_code_tool.metadata = {**(run_code_tool.metadata or {}), "ptcd_connection": connection}
    return run_code_tool
