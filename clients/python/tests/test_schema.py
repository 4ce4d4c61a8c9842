"""Schema derivation from signatures, hints and docstrings (no daemon needed)."""

from __future__ import annotations

import asyncio
import enum
import sys
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NewType, Optional, TypedDict, Union

import pytest

import ptcd
from ptcd._schema import SchemaBuilder, UnsupportedType, parse_docstring


def props(fn: Any) -> dict[str, Any]:
    return ptcd.as_tool(fn).spec()["input_schema"]["properties"]


def schema_of(hint: Any) -> dict[str, Any]:
    return SchemaBuilder().schema(hint)


# ------------------------------------------------------------------------- primitive hints


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (None, {"type": "null"}),
        (type(None), {"type": "null"}),
        (Any, {}),
    ],
)
def test_primitives(hint: Any, expected: dict[str, Any]) -> None:
    assert schema_of(hint) == expected


def test_unannotated_parameter_accepts_anything() -> None:
    def f(x):  # type: ignore[no-untyped-def]
        return x

    assert props(f) == {"x": {}}


def test_containers() -> None:
    assert schema_of(list) == {"type": "array"}
    assert schema_of(list[str]) == {"type": "array", "items": {"type": "string"}}
    assert schema_of(set[int]) == {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}
    assert schema_of(dict) == {"type": "object"}
    assert schema_of(dict[str, float]) == {"type": "object", "additionalProperties": {"type": "number"}}
    assert schema_of(tuple[int, ...]) == {"type": "array", "items": {"type": "integer"}}
    assert schema_of(tuple[str, int]) == {
        "type": "array",
        "prefixItems": [{"type": "string"}, {"type": "integer"}],
        "minItems": 2,
        "maxItems": 2,
    }
    assert schema_of(list[dict[str, list[int]]]) == {
        "type": "array",
        "items": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "integer"}}},
    }


def test_optional_and_union() -> None:
    assert schema_of(Optional[int]) == {"type": ["integer", "null"]}
    assert schema_of(int | None) == {"type": ["integer", "null"]}
    assert schema_of(Union[int, str]) == {"type": ["integer", "string"]}
    assert schema_of(Optional[list[str]]) == {
        "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]
    }


def test_literal() -> None:
    assert schema_of(Literal["asc", "desc"]) == {"type": "string", "enum": ["asc", "desc"]}
    assert schema_of(Literal[1, 2]) == {"type": "integer", "enum": [1, 2]}
    assert schema_of(Literal["a", 1]) == {"enum": ["a", 1]}


class Color(enum.Enum):
    """A primary color."""

    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


def test_enum() -> None:
    assert schema_of(Color) == {"type": "string", "enum": ["red", "green"], "description": "A primary color."}
    assert schema_of(Priority) == {"type": "integer", "enum": [1, 2]}


class Address(TypedDict):
    street: str
    zip_code: int


class PartialFilter(TypedDict, total=False):
    name: str


def test_typeddict() -> None:
    assert schema_of(Address) == {
        "type": "object",
        "title": "Address",
        "properties": {"street": {"type": "string"}, "zip_code": {"type": "integer"}},
        "required": ["street", "zip_code"],
    }
    assert "required" not in schema_of(PartialFilter)


@dataclass
class Point:
    """A point on the map.

    Attributes:
        x: Horizontal position.
        y: Vertical position.
    """

    x: float
    y: float = 0.0
    tags: list[str] = field(default_factory=list)


@dataclass
class TreeNode:
    value: int
    children: list[TreeNode] = field(default_factory=list)


def test_dataclass() -> None:
    assert schema_of(Point) == {
        "type": "object",
        "title": "Point",
        "description": "A point on the map.",
        "properties": {
            "x": {"type": "number", "description": "Horizontal position."},
            "y": {"type": "number", "description": "Vertical position.", "default": 0.0},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["x"],
    }


def test_recursive_dataclass_uses_defs() -> None:
    def plant(tree: TreeNode) -> None:
        """Plant a tree."""

    spec = ptcd.as_tool(plant).spec()["input_schema"]
    assert spec["properties"]["tree"] == {"$ref": "#/$defs/TreeNode"}
    node = spec["$defs"]["TreeNode"]
    assert node["properties"]["children"] == {"type": "array", "items": {"$ref": "#/$defs/TreeNode"}}


def test_annotated_and_newtype() -> None:
    UserId = NewType("UserId", int)
    assert schema_of(Annotated[str, "The city"]) == {"type": "string", "description": "The city"}
    assert schema_of(UserId) == {"type": "integer"}


try:
    import pydantic
except ImportError:  # pragma: no cover - pydantic is optional
    pydantic = None  # type: ignore[assignment]

if pydantic is not None:

    class Inner(pydantic.BaseModel):
        n: int

    class Query(pydantic.BaseModel):
        """A search query."""

        text: str
        inner: Inner


@pytest.mark.skipif(pydantic is None, reason="pydantic is not installed")
def test_pydantic_model_when_installed() -> None:
    def search(q: Query) -> None:
        """Search."""

    spec = ptcd.as_tool(search).spec()["input_schema"]
    assert spec["properties"]["q"]["properties"]["text"]["type"] == "string"
    assert spec["properties"]["q"]["properties"]["inner"] == {"$ref": "#/$defs/Inner"}
    assert spec["$defs"]["Inner"]["properties"]["n"]["type"] == "integer"
    definition = ptcd.as_tool(search)
    args, kwargs = definition.bind({"q": {"text": "x", "inner": {"n": 1}}})
    assert kwargs["q"] == Query(text="x", inner=Inner(n=1))


def test_unsupported_hint_names_the_tool_and_parameter() -> None:
    def upload(data: bytes) -> None:
        pass

    with pytest.raises(UnsupportedType, match=r"tool 'upload', parameter 'data'"):
        ptcd.as_tool(upload)

    def fmt(*values: int) -> None:
        pass

    with pytest.raises(TypeError, match=r"\*values"):
        ptcd.as_tool(fmt)


# ------------------------------------------------------------------------- whole functions


def test_signature_order_required_defaults_and_extra() -> None:
    def report(region: str, year: int, currency: str = "EUR", *, detailed: bool = False) -> None:
        pass

    schema = ptcd.as_tool(report).spec()["input_schema"]
    assert list(schema["properties"]) == ["region", "year", "currency", "detailed"]
    assert schema["required"] == ["region", "year"]
    assert schema["properties"]["currency"]["default"] == "EUR"
    assert schema["additionalProperties"] is False

    def loose(a: int, **rest: Any) -> None:
        pass

    assert "additionalProperties" not in ptcd.as_tool(loose).spec()["input_schema"]


def test_name_description_and_return_schema() -> None:
    async def get_expenses(member: str) -> list[dict[str, float]]:
        """List a team member's expenses.

        Returns every expense line of the current quarter.
        """
        return []

    spec = ptcd.as_tool(get_expenses).spec()
    assert spec["name"] == "get_expenses"
    assert spec["description"] == "List a team member's expenses.\n\nReturns every expense line of the current quarter."
    assert spec["output_schema"] == {
        "type": "array",
        "items": {"type": "object", "additionalProperties": {"type": "number"}},
    }


def test_decorator_overrides_and_keeps_function_callable() -> None:
    @ptcd.tool(name="search_wiki", description="Search the wiki.", allowed_callers=["code_execution", "direct"])
    def search(query: str) -> str:
        """Original docstring."""
        return query.upper()

    assert search("x") == "X"
    spec = ptcd.as_tool(search).spec()
    assert spec["name"] == "search_wiki"
    assert spec["description"] == "Search the wiki."
    assert spec["allowed_callers"] == ["code_execution", "direct"]

    @ptcd.tool
    def bare(a: int) -> int:
        return a

    assert ptcd.as_tool(bare).name == "bare"


def test_raw_spec_with_handler() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    definition = ptcd.as_tool({"name": "lookup", "parameters": schema, "handler": lambda q: q})
    assert definition.spec() == {"name": "lookup", "input_schema": schema}
    with pytest.raises(TypeError, match="handler"):
        ptcd.as_tool({"name": "nohandler"})


def test_lambda_needs_a_name() -> None:
    with pytest.raises(TypeError, match="name="):
        ptcd.as_tool(lambda: 1)
    assert ptcd.Tool.from_function(lambda: 1, name="one").name == "one"


# ------------------------------------------------------------------------- docstrings


def test_google_docstring() -> None:
    doc = parse_docstring(
        """Fetch rows.

        Args:
            sql (str): The query to run,
                over several lines.
            limit: Max rows.

        Returns:
            The rows.
        """
    )
    assert doc.description == "Fetch rows."
    assert doc.params == {"sql": "The query to run, over several lines.", "limit": "Max rows."}
    assert doc.returns == "The rows."


def test_numpy_docstring() -> None:
    doc = parse_docstring(
        """Fetch rows.

        Parameters
        ----------
        sql : str
            The query to run.
        limit : int, optional
            Max rows.

        Returns
        -------
        list
            The rows.
        """
    )
    assert doc.description == "Fetch rows."
    assert doc.params == {"sql": "The query to run.", "limit": "Max rows."}


def test_rest_docstring() -> None:
    doc = parse_docstring(
        """Fetch rows.

        :param sql: The query to run.
        :param int limit: Max rows,
            at most 1000.
        :returns: The rows.
        """
    )
    assert doc.description == "Fetch rows."
    assert doc.params == {"sql": "The query to run.", "limit": "Max rows, at most 1000."}
    assert doc.returns == "The rows."


def test_docstring_descriptions_reach_the_schema() -> None:
    def query_database(sql: str, limit: int = 100) -> list[dict[str, Any]]:
        """Run a read-only SQL query.

        :param sql: A SELECT statement.
        :param limit: Row cap.
        """
        return []

    p = props(query_database)
    assert p["sql"]["description"] == "A SELECT statement."
    assert p["limit"]["description"] == "Row cap."


# ------------------------------------------------------------------------- argument conversion


def test_arguments_are_converted_to_hinted_types() -> None:
    seen: dict[str, Any] = {}

    def paint(color: Color, where: Point, size: tuple[int, int], tags: set[str] | None = None) -> None:
        seen.update(color=color, where=where, size=size, tags=tags)

    definition = ptcd.as_tool(paint)
    asyncio.run(definition.invoke({"color": "red", "where": {"x": 1.5}, "size": [2, 3], "tags": ["a"]}))
    assert seen == {"color": Color.RED, "where": Point(x=1.5), "size": (2, 3), "tags": {"a"}}


def test_binding_errors_are_type_errors() -> None:
    def f(a: int) -> int:
        return a

    definition = ptcd.as_tool(f)
    with pytest.raises(TypeError, match="missing required argument"):
        definition.bind({})
    with pytest.raises(TypeError, match="unexpected argument"):
        definition.bind({"a": 1, "b": 2})


def test_positional_only_parameters() -> None:
    def f(a: int, /, b: int = 2) -> int:
        return a * 10 + b

    assert asyncio.run(ptcd.as_tool(f).invoke({"a": 3})) == 32


@pytest.mark.skipif(sys.version_info < (3, 10), reason="X | Y syntax")
def test_pep604_in_signature() -> None:
    def f(a: int | str, b: list[int] | None = None) -> None:
        pass

    p = props(f)
    assert p["a"] == {"type": ["integer", "string"]}
    assert p["b"]["default"] is None
