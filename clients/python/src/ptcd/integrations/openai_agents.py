"""OpenAI Agents SDK: an agent's function tools become one ``run_code`` tool backed by ptcd.

    from agents import Agent
    from ptcd.integrations.openai_agents import code_tool

    run_code = await code_tool([get_weather, get_forecast])   # @function_tool objects
    agent = Agent(name="assistant", tools=[run_code])

The model sees one tool, ``run_code``, whose description carries the typed stubs of the wrapped
tools (their ``params_json_schema`` and, when the SDK derived one, their output schema). Every call
the script makes runs the SDK's own ``FunctionTool.on_invoke_tool`` (its argument parsing and
validation) with a ``ToolContext`` made from the agent run's context, so the run's ``context``
object reaches the tool. A tool that needs approval cannot be called from a script (the run cannot
pause mid-script): such a call raises ``ToolError``.

Errors: by default the SDK turns a tool's exception into an ordinary string result
(``failure_error_function``), which a script would silently take for data. The adapter invokes a
copy of each tool with that formatter turned off, so the exception reaches the script as
``ToolError`` (``"<Type>: <message>"``) that it can catch. Each ``run_code`` call is its own ptcd
run, so concurrent agent runs sharing one connection keep their contexts apart.

Needs ``openai-agents`` (``pip install 'ptcd[openai-agents]'``); tested with 0.24.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

try:
    from agents import FunctionTool
    from agents.tool import set_function_tool_failure_error_function
    from agents.tool_context import ToolContext
    from pydantic_core import to_jsonable_python
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "ptcd.integrations.openai_agents needs the OpenAI Agents SDK: pip install 'ptcd[openai-agents]'"
    ) from exc

from .._client import AsyncClient
from .._errors import ToolError
from .._result import Limits
from ._common import RUN_CODE, Connection, RunOptions, describe, parse_json_text, run_and_render, server_list, tool_spec

__all__ = ["code_tool"]

_call_ids = itertools.count(1)
_CODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"code": {"type": "string", "description": "The Python script to run."}},
    "required": ["code"],
    "additionalProperties": False,
}


def _raising_copy(tool: FunctionTool) -> FunctionTool:
    """The same tool, but its exceptions propagate instead of becoming string results."""
    copy = dataclasses.replace(tool)
    set_function_tool_failure_error_function(copy, None)
    return copy


def _spec(tool: FunctionTool) -> dict[str, Any]:
    return tool_spec(tool.name, tool.description, tool.params_json_schema, tool.output_json_schema)


async def code_tool(
    tools: Sequence[FunctionTool],
    *,
    client: AsyncClient | None = None,
    socket: str | None = None,
    policy: str | None = None,
    limits: Limits | Mapping[str, Any] | None = None,
    name: str = RUN_CODE,
    mcp_servers: Sequence[str] | None = None,
) -> FunctionTool:
    """A ``run_code`` :class:`agents.FunctionTool` whose scripts call ``tools`` through ptcd.

    Async because the description (with the stubs) comes from the daemon. ``client``: an open
    :class:`~ptcd.AsyncClient` to share (else one is opened on first use, on ``socket`` or the
    default socket). ``policy`` / ``limits`` apply to every run. ``mcp_servers``: MCP servers
    of the daemon's config whose tools the script may call too (their stubs join the
    description; the daemon calls them, not the framework).
    """
    for tool in tools:
        if not isinstance(tool, FunctionTool):
            raise TypeError(f"code_tool takes FunctionTool objects (@function_tool), not {tool!r}")
    by_name = {tool.name: _raising_copy(tool) for tool in tools}
    specs = [_spec(tool) for tool in tools]
    connection = Connection(client=client, socket=socket)
    options = RunOptions(policy=policy, limits=limits, mcp_servers=server_list(mcp_servers))
    description = await describe(connection, specs, options.mcp_servers)

    async def invoke(ctx: ToolContext[Any], input_json: str) -> str:
        code = json.loads(input_json or "{}").get("code")
        if not isinstance(code, str):
            return "run_code needs a string argument `code`"

        async def call(tool_name: str, arguments: dict[str, Any]) -> Any:
            tool = by_name[tool_name]
            if tool.needs_approval is not False:
                raise ToolError(f"{tool_name} needs approval and cannot be called from a script")
            arguments_json = json.dumps(arguments)
            inner = ToolContext.from_agent_context(
                ctx,
                tool_call_id=f"{ctx.tool_call_id}/{next(_call_ids)}",
                agent=ctx.agent,
                tool_name=tool_name,
                tool_arguments=arguments_json,
                run_config=ctx.run_config,
            )
            return to_jsonable_python(parse_json_text(await tool.on_invoke_tool(inner, arguments_json)))

        return await run_and_render(connection, code, specs, call, options)

    run_code_tool = FunctionTool(
        name=name,
        description=description,
        params_json_schema=_CODE_SCHEMA,
        on_invoke_tool=invoke,
        strict_json_schema=True,
    )
    run_code_tool.ptcd_connection = connection  # type: ignore[attr-defined]
    return run_code_tool

