"""Tools: a ToolSpec for the daemon plus the handler that answers the script's calls.

Any plain function is a tool: :meth:`Tool.from_function` reads its name, docstring and type hints
(see ``_schema``). ``@ptcd.tool(...)`` overrides the derived name/description, and a raw spec dict
with a ``"handler"`` key covers tools whose schema already exists (MCP or OpenAI definitions).

Calling the handler is also the tool's job, because the same hints that built the schema say how to
turn JSON arguments back into Python values (an ``Enum`` member, a dataclass instance, a pydantic
model) and how to turn the handler's return value into JSON. Async handlers run on the event loop;
sync handlers run in the client's thread pool so a slow one never stalls the connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import enum
import functools
import inspect
import json
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from ._schema import (
    _UNION_TYPES,
    Docstring,
    is_pydantic_model,
    parse_docstring,
    return_schema,
    signature_schema,
)

__all__ = ["Tool", "tool", "as_tool", "ToolLike", "to_json"]

F = TypeVar("F", bound=Callable[..., Any])
_ATTR = "__ptcd_tool__"


@dataclass
class Tool:
    """One tool: what the daemon is told about it (:meth:`spec`) and the code that answers calls.

    Build one with :meth:`from_function` (or ``@ptcd.tool``), or directly with an explicit
    ``input_schema``; the handler is then called with the arguments as keyword arguments.
    """

    name: str
    handler: Callable[..., Any]
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    allowed_callers: list[str] | None = None
    input_examples: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _signature: inspect.Signature | None = field(default=None, repr=False, compare=False)
    _hints: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # Per-call work done once: whether `handler` is async (for the handler it was computed for)
    # and how to bind arguments (for the signature and hints it was computed from).
    _async_for: Any = field(default=None, init=False, repr=False, compare=False)
    _async: bool = field(default=False, init=False, repr=False, compare=False)
    _plan_for: Any = field(default=None, init=False, repr=False, compare=False)
    _plan: _BindPlan | None = field(default=None, init=False, repr=False, compare=False)

    # ---- construction

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        allowed_callers: Iterable[str] | None = None,
        input_examples: list[dict[str, Any]] | None = None,
    ) -> Tool:
        """Derive a tool from ``fn``'s name, docstring, signature and type hints."""
        tool_name = name or getattr(fn, "__name__", None)
        if not tool_name or tool_name == "<lambda>":
            raise TypeError(f"cannot name a tool after {fn!r}; pass name= (e.g. @ptcd.tool(name='...'))")
        signature = inspect.signature(fn)
        try:
            hints = typing.get_type_hints(fn, include_extras=True)
        except Exception:  # unresolvable forward references: fall back to the raw annotations
            hints = {}
        doc: Docstring = parse_docstring(inspect.getdoc(fn))
        return cls(
            name=tool_name,
            handler=fn,
            description=description if description is not None else (doc.description or None),
            input_schema=signature_schema(fn, signature, hints, doc, tool_name),
            output_schema=return_schema(hints.get("return", signature.return_annotation)),
            allowed_callers=list(allowed_callers) if allowed_callers is not None else None,
            input_examples=input_examples,
            _signature=signature,
            _hints=hints,
        )

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], handler: Callable[..., Any] | None = None) -> Tool:
        """A tool from a raw ToolSpec dict; the handler is ``handler`` or the dict's ``"handler"``."""
        spec = dict(spec)
        handler = handler or spec.pop("handler", None)
        if not callable(handler):
            raise TypeError(f"tool spec {spec.get('name')!r} needs a callable 'handler'")
        name = spec.pop("name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"tool spec needs a non-empty string 'name': {spec!r}")
        input_schema = spec.pop("input_schema", None)
        for alias in ("inputSchema", "parameters"):
            if input_schema is None and alias in spec:
                input_schema = spec.pop(alias)
        output_schema = spec.pop("output_schema", None) or spec.pop("outputSchema", None)
        return cls(
            name=name,
            handler=handler,
            description=spec.pop("description", None),
            input_schema=input_schema,
            output_schema=output_schema,
            allowed_callers=spec.pop("allowed_callers", None),
            input_examples=spec.pop("input_examples", None),
            extra=spec,
        )

    # ---- wire

    def spec(self) -> dict[str, Any]:
        """The ToolSpec sent to the daemon."""
        spec: dict[str, Any] = {"name": self.name}
        if self.description:
            spec["description"] = self.description
        if self.input_schema is not None:
            spec["input_schema"] = self.input_schema
        if self.output_schema is not None:
            spec["output_schema"] = self.output_schema
        if self.allowed_callers is not None:
            spec["allowed_callers"] = list(self.allowed_callers)
        if self.input_examples is not None:
            spec["input_examples"] = self.input_examples
        spec.update(self.extra)
        return spec

    # ---- calling

    @property
    def is_async(self) -> bool:
        handler = self.handler
        if self._async_for is not handler:
            self._async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
                getattr(handler, "__call__", None)
            )
            self._async_for = handler
        return self._async

    def bind(self, arguments: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Turn the JSON arguments into ``(args, kwargs)`` for the handler, converting typed values."""
        if self._signature is None:
            return [], dict(arguments)
        plan = self._plan
        if self._plan_for is not self._signature or (plan is not None and plan.hints is not self._hints):
            plan = self._plan = _BindPlan.build(self._signature, self._hints)
            self._plan_for = self._signature
        if plan is not None:
            keys = arguments.keys()
            if keys >= plan.required and (plan.var_keyword or keys <= plan.names):
                # Every parameter is passed by keyword and takes its JSON value as it is, the
                # required ones are there and no unknown one is: the general loop would produce
                # exactly these kwargs.
                return [], dict(arguments)
        return self._bind_general(arguments)

    def _bind_general(self, arguments: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        assert self._signature is not None
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        remaining = dict(arguments)
        var_keyword = False
        for param in self._signature.parameters.values():
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                var_keyword = True
                continue
            if param.name in remaining:
                value = _from_json(remaining.pop(param.name), self._hints.get(param.name, Any))
            elif param.default is not inspect.Parameter.empty:
                if param.kind is inspect.Parameter.POSITIONAL_ONLY:
                    args.append(param.default)
                continue
            else:
                raise TypeError(f"{self.name}() missing required argument: {param.name!r}")
            if param.kind is inspect.Parameter.POSITIONAL_ONLY:
                args.append(value)
            else:
                kwargs[param.name] = value
        if remaining:
            if not var_keyword:
                unknown = ", ".join(repr(key) for key in remaining)
                raise TypeError(f"{self.name}() got unexpected argument(s): {unknown}")
            kwargs.update(remaining)
        return args, kwargs

    async def invoke(
        self,
        arguments: Mapping[str, Any],
        executor: concurrent.futures.Executor | None = None,
    ) -> Any:
        """Call the handler with ``arguments``: async on the loop, sync in ``executor``."""
        args, kwargs = self.bind(arguments)
        if self.is_async:
            result = await self.handler(*args, **kwargs)
        else:
            loop = asyncio.get_running_loop()
            context = contextvars.copy_context()
            call = functools.partial(context.run, self.handler, *args, **kwargs)
            result = await loop.run_in_executor(executor, call)
        if inspect.isawaitable(result):
            result = await result
        return result


ToolLike = typing.Union[Tool, Callable[..., Any], Mapping[str, Any]]

#: Hints whose parameters ``_from_json`` hands the JSON value unchanged.
_PASS_THROUGH: frozenset[Any] = frozenset({Any, None, int, float, str, bool, dict, list})


def _passes_through(hint: Any) -> bool:
    """True when ``_from_json(value, hint)`` returns ``value`` itself for every JSON value."""
    try:
        if hint in _PASS_THROUGH:
            return True
    except TypeError:  # an unhashable hint
        return False
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return _passes_through(args[0])
    if origin in _UNION_TYPES:
        candidates = [arg for arg in args if arg is not type(None)]
        return len(candidates) != 1 or _passes_through(candidates[0])
    return False


@dataclass(frozen=True)
class _BindPlan:
    """The fast way to bind a signature whose parameters are all passed by keyword and converted by
    no hint: the JSON arguments are the kwargs once the required ones are there and no unknown one
    is (else the general binding runs, and raises its error). See :meth:`Tool.bind`."""

    hints: dict[str, Any]
    names: frozenset[str]
    required: frozenset[str]
    var_keyword: bool

    @classmethod
    def build(cls, signature: inspect.Signature, hints: dict[str, Any]) -> _BindPlan | None:
        names: list[str] = []
        required: list[str] = []
        var_keyword = False
        for param in signature.parameters.values():
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                var_keyword = True
                continue
            if param.kind not in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
                return None
            if not _passes_through(hints.get(param.name, Any)):
                return None
            names.append(param.name)
            if param.default is inspect.Parameter.empty:
                required.append(param.name)
        return cls(hints, frozenset(names), frozenset(required), var_keyword)



@overload
def tool(fn: F, /) -> F: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    allowed_callers: Iterable[str] | None = None,
    input_examples: list[dict[str, Any]] | None = None,
) -> Callable[[F], F]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    allowed_callers: Iterable[str] | None = None,
    input_examples: list[dict[str, Any]] | None = None,
) -> Any:
    """Mark a function as a tool and override what would be derived from it.

    Works bare (``@ptcd.tool``) or with arguments (``@ptcd.tool(name="search")``). The function is
    returned unchanged (still directly callable); the tool definition rides along on it. The
    schema is derived right away, so an unsupported type hint fails at import time.
    """

    def decorate(func: F) -> F:
        definition = Tool.from_function(
            func,
            name=name,
            description=description,
            allowed_callers=allowed_callers,
            input_examples=input_examples,
        )
        try:
            setattr(func, _ATTR, definition)
        except (AttributeError, TypeError):
            raise TypeError(f"cannot attach a tool definition to {func!r}; use ptcd.Tool.from_function") from None
        return func

    if fn is not None:
        return decorate(fn)
    return decorate


def as_tool(obj: ToolLike) -> Tool:
    """Normalise what a user passes in ``tools=[...]`` into a :class:`Tool`."""
    if isinstance(obj, Tool):
        return obj
    if isinstance(obj, Mapping):
        return Tool.from_spec(obj)
    definition = getattr(obj, _ATTR, None)
    if isinstance(definition, Tool):
        return definition
    if callable(obj):
        return Tool.from_function(obj)
    raise TypeError(f"not a tool: {obj!r} (pass a function, a ptcd.Tool, or a spec dict with a handler)")


# --------------------------------------------------------------------------- value conversion


def _from_json(value: Any, hint: Any) -> Any:
    """Best-effort conversion of a JSON value to the Python type a parameter asks for.

    Only types that JSON cannot represent directly are converted (Enum, dataclass, pydantic model,
    tuple, set), recursively through containers; anything else is passed through unchanged.
    """
    if hint is Any or hint is None:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return _from_json(value, args[0])
    if origin in _UNION_TYPES:
        if value is None:
            return None
        candidates = [arg for arg in args if arg is not type(None)]
        return _from_json(value, candidates[0]) if len(candidates) == 1 else value
    if isinstance(hint, type):
        if issubclass(hint, enum.Enum) and not isinstance(value, hint):
            return hint(value)
        if is_pydantic_model(hint):
            return hint.model_validate(value)  # type: ignore[attr-defined]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            hints = typing.get_type_hints(hint)
            converted = {key: _from_json(item, hints.get(key, Any)) for key, item in value.items()}
            return hint(**converted)
    container = origin or hint
    if isinstance(value, list):
        if container is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_from_json(item, args[0]) for item in value)
            if args and len(args) == len(value):
                return tuple(_from_json(item, arg) for item, arg in zip(value, args))
            return tuple(value)
        if container in (set, frozenset):
            items = [_from_json(item, args[0]) for item in value] if args else value
            return container(items)
        if container is list and args:
            return [_from_json(item, args[0]) for item in value]
    if isinstance(value, dict) and container is dict and len(args) == 2:
        return {key: _from_json(item, args[1]) for key, item in value.items()}
    return value


def _to_json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if is_pydantic_model(type(value)):
        return value.model_dump(mode="json")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_to_json_default)
_encode = _ENCODER.encode
_CONSTANTS: dict[Any, str] = {None: "null", True: "true", False: "false"}


def to_json(value: Any) -> str:
    """Encode a handler's result as compact JSON (dataclasses, enums and pydantic models allowed).

    Raises ``TypeError``/``ValueError`` for anything JSON cannot carry (sets, arbitrary objects, NaN).
    """
    # Exactly what `json` writes for these, without setting up an encoding pass.
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if value is None or kind is bool:
        return _CONSTANTS[value]
    return _encode(value)

