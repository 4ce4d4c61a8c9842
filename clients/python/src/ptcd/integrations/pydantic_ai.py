"""pydantic-ai: an agent's tools become one ``run_code`` tool backed by ptcd.

    from pydantic_ai import Agent
    from ptcd.integrations.pydantic_ai import code_mode

    agent = Agent(model, deps_type=Deps, toolsets=[code_mode([get_weather, get_forecast])])

:func:`code_mode` wraps a toolset (or a list of tools / functions, as ``Agent(tools=...)`` takes
them) in a :class:`CodeModeToolset`. The model sees one tool, ``run_code``, whose description
carries the typed stubs of the wrapped tools (parameters from their JSON schemas, results from
their return types). Every call the script makes goes through pydantic-ai itself: a nested
``ToolManager`` validates the arguments with the tool's own validator and runs the tool with the
agent run's ``RunContext`` (so ``ctx.deps`` reaches it), capability hooks included. A
``ModelRetry``, a validation error or any exception a tool raises reaches the script as
``ToolError``. Each ``run_code`` call is its own ptcd run, so concurrent agent runs sharing one
connection never see each other's context.

Needs ``pydantic-ai-slim`` (``pip install 'ptcd[pydantic-ai]'``); tested with 2.6x.
"""

from __future__ import annotations

import itertools
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

try:
    from pydantic import ValidationError
    from pydantic_ai import ModelRetry, RunContext
    from pydantic_ai.messages import ToolCallPart, ToolReturn
    from pydantic_ai.tool_manager import ToolManager
    from pydantic_ai.tools import Tool, ToolDefinition
    from pydantic_ai.toolsets import AbstractToolset, FunctionToolset
    from pydantic_ai.toolsets.abstract import ToolsetTool
    from pydantic_ai.toolsets.function import FunctionToolsetTool
    from pydantic_ai.toolsets.wrapper import WrapperToolset
    from pydantic_core import SchemaValidator, core_schema, to_jsonable_python
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "ptcd.integrations.pydantic_ai needs pydantic-ai: pip install 'ptcd[pydantic-ai]'"
    ) from exc

from .._client import AsyncClient
from .._errors import ToolError
from .._result import Limits
from .._schema import return_schema
from ._common import (
    CODE_SCHEMA,
    RUN_CODE,
    Connection,
    RunOptions,
    describe,
    run_and_render,
    server_list,
    tool_spec,
)

__all__ = ["CodeModeToolset", "code_mode"]

_CODE_VALIDATOR = SchemaValidator(
    core_schema.typed_dict_schema(
        {"code": core_schema.typed_dict_field(core_schema.str_schema())}, extra_behavior="forbid"
    )
)
_call_ids = itertools.count(1)


@dataclass
class CodeModeToolset(WrapperToolset[Any]):
    """Offers the wrapped toolset's tools to the model as one ``run_code`` tool run by ptcd."""

    connection: Connection = field(default_factory=Connection)
    options: RunOptions = field(default_factory=RunOptions)
    tool_name: str = RUN_CODE
    max_retries: int = 1
    _descriptions: dict[str, str] = field(default_factory=dict, repr=False)

    async def get_tools(self, ctx: RunContext[Any]) -> dict[str, ToolsetTool[Any]]:
        inner = await self.wrapped.get_tools(ctx)
        specs = _specs(inner)
        key = repr(specs)
        if key not in self._descriptions:
            self._descriptions[key] = await describe(self.connection, specs, self.options.mcp_servers)
        definition = ToolDefinition(
            name=self.tool_name, description=self._descriptions[key], parameters_json_schema=CODE_SCHEMA
        )
        return {
            self.tool_name: ToolsetTool(
                toolset=self, tool_def=definition, max_retries=self.max_retries, args_validator=_CODE_VALIDATOR
            )
        }

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
    ) -> Any:
        if name != self.tool_name:  # pragma: no cover - the model only sees run_code
            raise ModelRetry(f"unknown tool {name!r}; call {self.tool_name!r} with Python code")
        inner = await self.wrapped.get_tools(ctx)
        manager = await ToolManager(self.wrapped).for_run_step(replace(ctx, tool_name=None, tool_call_id=None))
        run_tag = f"{ctx.tool_call_id or 'run'}"

        async def call(tool_name: str, arguments: dict[str, Any]) -> Any:
            part = ToolCallPart(tool_name=tool_name, args=arguments, tool_call_id=f"{run_tag}/{next(_call_ids)}")
            try:
                value = await manager.handle_call(part, wrap_validation_errors=False)
            except ModelRetry as exc:
                raise ToolError(str(exc.message)) from None
            except ValidationError as exc:
                raise ToolError(f"invalid arguments for {tool_name}: {exc}") from None
            if isinstance(value, ToolReturn):
                value = value.return_value
            return to_jsonable_python(value)

        return await run_and_render(self.connection, tool_args["code"], _specs(inner), call, self.options)


def _specs(tools: Mapping[str, ToolsetTool[Any]]) -> list[dict[str, Any]]:
    return [
        tool_spec(name, t.tool_def.description, t.tool_def.parameters_json_schema, _output_schema(t))
        for name, t in tools.items()
    ]


def _output_schema(tool: ToolsetTool[Any]) -> dict[str, Any] | None:
    """pydantic-ai's return schema, else the function's return hint read by ptcd (pydantic cannot
    build one for a ``typing.TypedDict`` before Python 3.12, which ptcd's reader handles)."""
    if tool.tool_def.return_schema:
        return dict(tool.tool_def.return_schema)
    toolset = tool.toolset
    if isinstance(toolset, FunctionToolset) and isinstance(tool, FunctionToolsetTool):
        source = toolset.tools.get(tool.original_name or tool.tool_def.name)
        if source is not None:
            try:
                hint = typing.get_type_hints(source.function).get("return")
            except Exception:
                return None
            return return_schema(hint) if hint is not None else None
    return None


def code_mode(
    tools: AbstractToolset[Any] | Sequence[Tool[Any] | Callable[..., Any]],
    *,
    client: AsyncClient | None = None,
    socket: str | None = None,
    policy: str | None = None,
    limits: Limits | Mapping[str, Any] | None = None,
    tool_name: str = RUN_CODE,
    mcp_servers: Sequence[str] | None = None,
) -> CodeModeToolset:
    """Wrap ``tools`` (a toolset, or tools/functions as ``Agent(tools=...)`` takes them) so the model
    calls them from one Python script run by ptcd.

    ``client``: an open :class:`~ptcd.AsyncClient` to share (else one is opened on first use, on
    ``socket`` or the default socket). ``policy`` / ``limits`` apply to every run.
    ``mcp_servers``: MCP servers of the daemon's config whose tools the script may call too
    (their stubs join the description; the daemon calls them, not pydantic-ai).
    """
    toolset = tools if isinstance(tools, AbstractToolset) else FunctionToolset(list(tools))
    return CodeModeToolset(
        wrapped=toolset,
        connection=Connection(client=client, socket=socket),
        options=RunOptions(policy=policy, limits=limits, mcp_servers=server_list(mcp_servers)),
        tool_name=tool_name,
    )
