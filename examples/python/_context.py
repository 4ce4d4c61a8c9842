"""Shared by the examples: measure what reaches the model, with ptcd and without.

With ptcd the model sees one thing per run: ``result.render()``, the compact text of what the
script printed or returned. In a classic one-tool-call-per-turn loop every tool call the model
makes, and every tool result, goes into the context verbatim. ``ContextMeter`` wraps a tool so
each call it serves is also counted the way that classic loop would have counted it.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from typing import Any, TypeVar

import ptcd

F = TypeVar("F", bound=Callable[..., Any])


class ContextMeter:
    """Counts the bytes a one-tool-call-per-turn loop would have put in the model's context."""

    def __init__(self) -> None:
        self.calls = 0
        self.bytes = 0

    def _record(self, name: str, arguments: dict[str, Any], result: Any) -> Any:
        self.calls += 1
        call = json.dumps({"name": name, "arguments": arguments})  # the model's tool_use turn
        self.bytes += len(call.encode()) + len(json.dumps(result).encode())  # + the tool result
        return result

    def record_external(self, name: str, arguments: dict[str, Any], result_bytes: int) -> None:
        """Count a call this program did not serve (an MCP server's, called by the daemon) whose
        result was ``result_bytes`` long."""
        self.calls += 1
        self.bytes += len(json.dumps({"name": name, "arguments": arguments}).encode()) + result_bytes

    def metered(self, fn: F) -> F:
        """The same tool (same name, signature, docstring), counting every call it serves."""
        signature = inspect.signature(fn)

        def arguments(*args: Any, **kwargs: Any) -> dict[str, Any]:
            return dict(signature.bind(*args, **kwargs).arguments)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return self._record(fn.__name__, arguments(*args, **kwargs), await fn(*args, **kwargs))

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return self._record(fn.__name__, arguments(*args, **kwargs), fn(*args, **kwargs))

        return wrapper  # type: ignore[return-value]


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _openai_tools(tools: list[Any]) -> list[dict[str, Any]]:
    """The tools as a classic loop hands them to the model (OpenAI function format)."""
    out = []
    for item in tools:
        spec = ptcd.as_tool(item).spec()
        out.append({"type": "function", "function": {
            "name": spec["name"], "description": spec.get("description", ""),
            "parameters": spec.get("input_schema", {"type": "object", "properties": {}})}})
    return out


async def report(
    client: ptcd.AsyncClient,
    code: str,
    result: ptcd.RunResult,
    meter: ContextMeter,
    tools: list[Any],
    mcp_servers: list[str] | None = None,
) -> None:
    """Print model turns and the bytes that reached the model's context, with ptcd and without.

    Both sides count the tool definitions the model is given, then what each turn adds: with ptcd,
    the script the model writes (one ``run_code`` call) and the rendered result; in a classic
    loop, every tool call and its full result, one per model turn. Each side ends with one more
    turn in which the model answers. With ``mcp_servers``, the ``run_code`` definition carries
    their stubs too, while the classic side counts only this program's tool definitions (not the
    MCP servers' own), which understates what ptcd saves.
    """
    run_code = (await client.tool_definitions(tools, format="openai", mcp_servers=mcp_servers))["tools"]
    ptcd_definition = len(json.dumps(run_code).encode())
    classic_definitions = len(json.dumps(_openai_tools(tools)).encode())
    rendered = len(result.render().encode())
    written = len(json.dumps({"code": code}).encode())
    ptcd_total = ptcd_definition + written + rendered
    classic_total = classic_definitions + meter.bytes
    print()
    print(f"ptcd: {ptcd_total:,} bytes into the model's context in 2 model turns "
          f"(run_code definition with typed stubs {ptcd_definition:,} + script {written:,} + result {rendered:,}; "
          f"{_n(result.tool_calls, 'tool call')} ran inside one run_code call)")
    print(f"one tool call per turn: {classic_total:,} bytes into the model's context in "
          f"{_n(meter.calls + 1, 'model turn')} (tool definitions {classic_definitions:,} + "
          f"{_n(meter.calls, 'tool call')} with results {meter.bytes:,})")
    print(f"saved: {1 - ptcd_total / classic_total:.1%} of the bytes, {_n(meter.calls - 1, 'model turn')}")
