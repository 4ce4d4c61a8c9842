"""JSON Schema and descriptions derived from Python signatures, type hints and docstrings.

A model writes better code against a tool whose arguments are typed and described, and the
daemon turns each ToolSpec's ``input_schema`` into a typed ``async def`` stub for the script (it
also uses the schema's property order for positional arguments). Writing those schemas by hand
duplicates what the function already says, so this module reads it off the function instead:

* types from the hints: ``str``, ``int``, ``float``, ``bool``, ``None``, ``list``/``set``/``tuple``/
  ``dict`` (bare or parameterised), ``Optional``/``Union``/``X | Y``, ``Literal``, ``Enum``,
  ``TypedDict``, dataclasses, ``Annotated[X, "description"]``, ``NewType``, and pydantic models
  when pydantic is installed (without importing pydantic otherwise);
* descriptions from the docstring: the summary for the tool, and per-argument text from Google
  (``Args:``), NumPy (``Parameters`` + dashes) or reST (``:param x:``) sections.

A hint with no JSON counterpart (``bytes``, arbitrary classes) is an error at definition time,
with the tool and parameter named, rather than a schema that silently accepts anything.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import inspect
import json
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Docstring", "parse_docstring", "SchemaBuilder", "UnsupportedType"]


class UnsupportedType(TypeError):
    """A type hint that has no JSON Schema counterpart."""


# ------------------------------------------------------------------------------------ docstrings


@dataclass
class Docstring:
    """What a docstring says: the summary/body, per-parameter descriptions, and the return text."""

    description: str = ""
    params: dict[str, str] = field(default_factory=dict)
    returns: str | None = None


_GOOGLE_PARAM_SECTIONS = {
    "args", "arguments", "parameters", "params", "attributes", "keyword args", "keyword arguments",
    "other parameters",
}
_GOOGLE_RETURN_SECTIONS = {"returns", "return", "yields"}
_GOOGLE_SECTIONS = _GOOGLE_PARAM_SECTIONS | _GOOGLE_RETURN_SECTIONS | {
    "raises", "example", "examples", "note", "notes", "see also", "warning", "warnings", "references",
    "todo",
}
_REST_FIELD = re.compile(r"^:(\w+)(?:\s+([^:]*?))?:\s*(.*)$")
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_NUMPY_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?::\s*(.*))?$")


def _join(lines: list[str]) -> str:
    """Join wrapped lines into paragraphs: single newlines become spaces, blank lines stay."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def parse_docstring(doc: str | None) -> Docstring:
    """Parse a Google, NumPy or reST docstring (or plain prose) into a :class:`Docstring`."""
    if not doc:
        return Docstring()
    lines = inspect.cleandoc(doc).splitlines()
    result = Docstring()
    body: list[str] = []
    i = 0
    seen_section = False
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        header = stripped.rstrip(":").lower()

        # NumPy: a header line underlined with dashes.
        if (
            i + 1 < len(lines)
            and stripped
            and re.fullmatch(r"-{3,}", lines[i + 1].strip())
        ):
            seen_section = True
            i = _numpy_section(lines, i + 2, stripped.lower(), result)
            continue

        # Google: "Args:" and friends at the docstring's own indentation.
        if stripped.endswith(":") and header in _GOOGLE_SECTIONS and _indent(line) == 0:
            seen_section = True
            i = _google_section(lines, i + 1, header, result)
            continue

        # reST field lists.
        match = _REST_FIELD.match(stripped)
        if match and _indent(line) == 0:
            seen_section = True
            i = _rest_field(lines, i, match, result)
            continue

        if not seen_section:
            body.append(line)
        i += 1
    result.description = _join(body)
    return result


def _collect_block(lines: list[str], start: int, min_indent: int) -> tuple[list[str], int]:
    """Lines from ``start`` indented at least ``min_indent`` (blank lines included), and where it ends."""
    block: list[str] = []
    i = start
    while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) >= min_indent):
        # A blank line followed by a dedented line ends the block.
        if not lines[i].strip():
            j = i
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j >= len(lines) or _indent(lines[j]) < min_indent:
                return block, j
        block.append(lines[i])
        i += 1
    return block, i


def _google_section(lines: list[str], start: int, header: str, result: Docstring) -> int:
    block, end = _collect_block(lines, start, 1)
    if not block:
        return end
    base = min(_indent(line) for line in block if line.strip())
    if header in _GOOGLE_RETURN_SECTIONS:
        result.returns = _join([line for line in block])
        return end
    if header not in _GOOGLE_PARAM_SECTIONS:
        return end
    _collect_params(block, base, _GOOGLE_ENTRY, 3, result)
    return end


def _collect_params(
    block: list[str], indent: int, entry: re.Pattern[str], first_text: int | None, result: Docstring
) -> None:
    """Parameter entries start at `indent` (name matched by `entry`, group 1; the description's
    first words in group `first_text`, if any); deeper lines continue the entry before them."""
    name: str | None = None
    text: list[str] = []
    for line in block + [""]:
        if line.strip() and _indent(line) == indent:
            if name is not None:
                result.params.setdefault(name, _join(text))
            match = entry.match(line.strip())
            if match is None:
                name, text = None, []
            else:
                name, text = match.group(1), [match.group(first_text)] if first_text else []
        elif name is not None:
            text.append(line)
    if name is not None:
        result.params.setdefault(name, _join(text))


def _numpy_section(lines: list[str], start: int, header: str, result: Docstring) -> int:
    # The section runs until the next underlined header.
    end = start
    while end < len(lines) and not (
        end + 1 < len(lines) and lines[end].strip() and re.fullmatch(r"-{3,}", lines[end + 1].strip())
    ):
        end += 1
    block = lines[start:end]
    if header in _GOOGLE_RETURN_SECTIONS:
        result.returns = _join(block)
        return end
    if header not in _GOOGLE_PARAM_SECTIONS:
        return end
    _collect_params(block, 0, _NUMPY_ENTRY, None, result)
    return end


def _rest_field(lines: list[str], start: int, match: re.Match[str], result: Docstring) -> int:
    kind, arg, text = match.group(1), (match.group(2) or "").split(), match.group(3)
    block, end = _collect_block(lines, start + 1, 1)
    full = _join([text, *block])
    if kind in ("param", "parameter", "arg", "argument", "key", "keyword") and arg:
        result.params.setdefault(arg[-1], full)
    elif kind in ("returns", "return"):
        result.returns = full
    return end


# ---------------------------------------------------------------------------------------- schema

_NoneType = type(None)
_UNION_TYPES: tuple[Any, ...] = (typing.Union, types.UnionType)
_SEQUENCE_ORIGINS = {
    list, collections.abc.Sequence, collections.abc.MutableSequence, collections.abc.Iterable,
    collections.abc.Collection,
}
_SET_ORIGINS = {set, frozenset, collections.abc.Set, collections.abc.MutableSet}
_MAPPING_ORIGINS = {dict, collections.abc.Mapping, collections.abc.MutableMapping}
_PRIMITIVES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _key_qualifiers() -> set[Any]:
    """``Required`` / ``NotRequired`` / ``ReadOnly`` from typing and typing_extensions, where present."""
    found: set[Any] = set()
    for module in (typing, sys.modules.get("typing_extensions")):
        for name in ("Required", "NotRequired", "ReadOnly"):
            qualifier = getattr(module, name, None) if module is not None else None
            if qualifier is not None:
                found.add(qualifier)
    return found



def is_pydantic_model(tp: Any) -> bool:
    """True for pydantic ``BaseModel`` subclasses, without importing pydantic when it is absent."""
    pydantic = sys.modules.get("pydantic")
    if pydantic is None or not isinstance(tp, type):
        return False
    return issubclass(tp, pydantic.BaseModel)


def _is_typeddict(tp: Any) -> bool:
    if not isinstance(tp, type):
        return False
    extensions = sys.modules.get("typing_extensions")  # its TypedDict differs from typing's before 3.11
    return typing.is_typeddict(tp) or bool(extensions is not None and extensions.is_typeddict(tp))


def _class_doc(cls: type) -> Docstring:
    doc = cls.__dict__.get("__doc__")
    if not doc:
        return Docstring()
    # Dataclasses synthesise "Name(a: int, ...)"; Enum's default text says nothing either.
    if doc.startswith(f"{cls.__name__}(") or doc.strip() in ("An enumeration.",):
        return Docstring()
    return parse_docstring(doc)


class SchemaBuilder:
    """Builds JSON Schemas for type hints, collecting shared/recursive definitions in ``defs``.

    One builder serves one root schema: recursive dataclasses/TypedDicts and pydantic models put
    their definitions in ``defs``, which the caller places under the root's ``$defs``.
    """

    def __init__(self) -> None:
        self.defs: dict[str, Any] = {}
        self._building: set[type] = set()
        self._recursive: set[type] = set()

    def schema(self, hint: Any) -> dict[str, Any]:
        """The JSON Schema for ``hint``; raises :class:`UnsupportedType` when there is none."""
        if hint is inspect.Parameter.empty or hint is Any or hint is object:
            return {}
        if hint is None or hint is _NoneType:
            return {"type": "null"}
        if isinstance(hint, str):
            raise UnsupportedType(
                f"unresolved forward reference {hint!r} (types named in string annotations must be "
                "importable from the function's module, e.g. not defined inside another function)"
            )
        if isinstance(hint, typing.TypeVar):
            return {}
        supertype = getattr(hint, "__supertype__", None)  # typing.NewType
        if supertype is not None:
            return self.schema(supertype)

        origin = typing.get_origin(hint)
        args = typing.get_args(hint)

        if origin is not None and origin in _key_qualifiers():  # TypedDict's NotRequired[X] etc.
            return self.schema(args[0])
        if origin is typing.Annotated:
            schema = dict(self.schema(args[0]))
            for meta in args[1:]:
                text = meta if isinstance(meta, str) else getattr(meta, "description", None)
                if isinstance(text, str) and text:
                    schema["description"] = text
                    break
            return schema
        if origin is typing.Literal:
            return _enum_schema(list(args))
        if origin in _UNION_TYPES:
            return self._union(args)
        if hint in _PRIMITIVES:
            return {"type": _PRIMITIVES[hint]}
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            schema = _enum_schema([member.value for member in hint])
            doc = _class_doc(hint)
            if doc.description:
                schema["description"] = doc.description
            return schema
        if is_pydantic_model(hint):
            return self._pydantic(hint)
        if _is_typeddict(hint) or (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            return self._structured(hint)

        container = origin if origin is not None else hint
        if container is tuple:
            if not args:
                return {"type": "array"}
            if len(args) == 2 and args[1] is Ellipsis:
                return {"type": "array", "items": self.schema(args[0])}
            if args == ((),):
                return {"type": "array", "maxItems": 0}
            return {
                "type": "array",
                "prefixItems": [self.schema(arg) for arg in args],
                "minItems": len(args),
                "maxItems": len(args),
            }
        if container in _SEQUENCE_ORIGINS or container in _SET_ORIGINS:
            array: dict[str, Any] = {"type": "array"}
            if args:
                array["items"] = self.schema(args[0])
            if container in _SET_ORIGINS:
                array["uniqueItems"] = True
            return array
        if container in _MAPPING_ORIGINS:
            mapping: dict[str, Any] = {"type": "object"}
            if args:
                key = args[0]
                if key not in (str, Any) and not (isinstance(key, type) and issubclass(key, (str, enum.Enum))) \
                        and typing.get_origin(key) is not typing.Literal:
                    raise UnsupportedType(f"JSON object keys are strings; {key!r} cannot be a key type")
                mapping["additionalProperties"] = self.schema(args[1])
            return mapping
        raise UnsupportedType(f"no JSON Schema for type {hint!r}")

    def _union(self, args: tuple[Any, ...]) -> dict[str, Any]:
        options = [self.schema(arg) for arg in args]
        # Plain primitive members collapse into one "type" list, which reads better in stubs.
        if all(set(option) == {"type"} and isinstance(option["type"], str) for option in options):
            kinds = list(dict.fromkeys(option["type"] for option in options))
            return {"type": kinds[0] if len(kinds) == 1 else kinds}
        return {"anyOf": options}

    def _structured(self, cls: type) -> dict[str, Any]:
        name = cls.__name__
        if cls in self._building:
            self._recursive.add(cls)
            return {"$ref": f"#/$defs/{name}"}
        self._building.add(cls)
        try:
            hints = typing.get_type_hints(cls, include_extras=True)
            doc = _class_doc(cls)
            properties: dict[str, Any] = {}
            required: list[str] = []
            if _is_typeddict(cls):
                required_keys = getattr(cls, "__required_keys__", frozenset(hints))
                for key, hint in hints.items():
                    properties[key] = self._described(hint, doc.params.get(key))
                    # The hint says it when the class's own bookkeeping cannot (string
                    # annotations hide NotRequired from TypedDict before Python 3.12).
                    qualifier = getattr(typing.get_origin(hint), "_name", None)
                    if qualifier == "Required" or (qualifier != "NotRequired" and key in required_keys):
                        required.append(key)
            else:
                for item in dataclasses.fields(cls):
                    if not item.init:
                        continue
                    prop = self._described(hints.get(item.name, Any), doc.params.get(item.name))
                    if item.default is not dataclasses.MISSING:
                        _set_default(prop, item.default)
                    elif item.default_factory is dataclasses.MISSING:
                        required.append(item.name)
                    properties[item.name] = prop
            schema: dict[str, Any] = {"type": "object", "title": name, "properties": properties}
            if required:
                schema["required"] = required
            if doc.description:
                schema["description"] = doc.description
        finally:
            self._building.discard(cls)
        if cls in self._recursive:
            self.defs[name] = schema
            return {"$ref": f"#/$defs/{name}"}
        return schema

    def _pydantic(self, model: Any) -> dict[str, Any]:
        schema = dict(model.model_json_schema(ref_template="#/$defs/{model}"))
        self.defs.update(schema.pop("$defs", {}))
        return schema

    def _described(self, hint: Any, description: str | None) -> dict[str, Any]:
        schema = dict(self.schema(hint))
        if description and "description" not in schema:
            schema["description"] = description
        return schema

    def finish(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Attach collected ``$defs`` to the root schema."""
        if self.defs:
            schema = {**schema, "$defs": dict(self.defs)}
        return schema


def _set_default(schema: dict[str, Any], default: Any) -> None:
    if isinstance(default, enum.Enum):
        default = default.value
    try:
        json.dumps(default, allow_nan=False)
    except (TypeError, ValueError):
        return
    schema["default"] = default


def _enum_schema(values: list[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"enum": values}
    kinds = {_PRIMITIVES.get(type(value)) or ("null" if value is None else None) for value in values}
    if len(kinds) == 1 and None not in kinds:
        schema = {"type": kinds.pop(), "enum": values}
    return schema


def signature_schema(
    fn: Any, signature: inspect.Signature, hints: dict[str, Any], doc: Docstring, tool_name: str
) -> dict[str, Any]:
    """The ``input_schema`` of a function: one property per parameter, in signature order."""
    builder = SchemaBuilder()
    properties: dict[str, Any] = {}
    required: list[str] = []
    accepts_extra = False
    for param in signature.parameters.values():
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            raise UnsupportedType(
                f"tool {tool_name!r}: *{param.name} cannot be expressed as named JSON arguments"
            )
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            accepts_extra = True
            continue
        hint = hints.get(param.name, param.annotation)
        try:
            prop = builder._described(hint, doc.params.get(param.name))
        except UnsupportedType as exc:
            raise UnsupportedType(f"tool {tool_name!r}, parameter {param.name!r}: {exc}") from None
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
        else:
            _set_default(prop, param.default)
        properties[param.name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if not accepts_extra:
        schema["additionalProperties"] = False
    return builder.finish(schema)


def return_schema(hint: Any) -> dict[str, Any] | None:
    """The ``output_schema`` for a return hint, or ``None`` when there is nothing useful to say."""
    if hint is inspect.Signature.empty or hint is Any or hint is None or hint is _NoneType:
        return None
    origin = typing.get_origin(hint)
    if origin is not None and origin in (collections.abc.Awaitable, collections.abc.Coroutine):
        args = typing.get_args(hint)
        return return_schema(args[-1]) if args else None
    builder = SchemaBuilder()
    try:
        schema = builder.schema(hint)
    except UnsupportedType:
        return None
    return builder.finish(schema) if schema else None
