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


def report(code: str, result: ptcd.RunResult, meter: ContextMeter) -> None:
    """Print the context cost of the run next to the classic loop's."""
    rendered = len(result.render().encode())
    written = len(json.dumps({"code": code}).encode())
    print()
    print(f"ptcd: {rendered:,} bytes of tool result reached the model "
          f"(+ {written:,} bytes of code it wrote; 1 run_code call, {_n(result.tool_calls, 'tool call')} inside it)")
    print(f"one tool call per turn: {meter.bytes:,} bytes of tool calls and results in the context "
          f"({_n(meter.calls, 'call')}, {_n(meter.calls, 'model turn')})")
