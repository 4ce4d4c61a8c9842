"""`tools/definition` through the real socket: the tool list handed to the model, in each
provider's format, and the Python stubs of the code-callable tools.

Each test is named for the behaviour it proves.
"""

from __future__ import annotations

import inspect
import os
import typing
from pathlib import Path
from typing import Any

from rpc import RpcClient

WEATHER = {
    "name": "get-weather",
    "description": "Current weather of a city.",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name, in English"},
            "units": {"type": "string", "enum": ["c", "f"]},
            "days": {"type": ["integer", "null"]},
        },
        "required": ["city"],
    },
    "output_schema": {"type": "object"},
}
SEARCH = {  # offered to the model directly only
    "name": "web_search",
    "description": "Search the web.",
    "allowed_callers": ["direct"],
    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
}
BOTH = {"name": "lookup", "description": "Look a key up.", "allowed_callers": ["direct", "code_execution"],
        "parameters": {"type": "object", "properties": {"key": {"type": "string"}}}}


def definitions(client: RpcClient, **params: Any) -> dict:
    m = client.call("tools/definition", params)
    assert "result" in m, m
    return m["result"]


def names_and_schemas(fmt: str, tools: list[dict]) -> dict[str, dict]:
    """name → (description, schema) read the way that provider reads its tool list."""
    out = {}
    for t in tools:
        if fmt == "openai":
            assert t["type"] == "function"
            t = t["function"]
            out[t["name"]] = (t["description"], t["parameters"])
        elif fmt == "openai_responses":
            assert t["type"] == "function"
            out[t["name"]] = (t["description"], t["parameters"])
        elif fmt == "anthropic":
            out[t["name"]] = (t["description"], t["input_schema"])
        elif fmt == "gemini":
            out[t["name"]] = (t["description"], t["parameters"])
        elif fmt == "mcp":
            out[t["name"]] = (t["description"], t["inputSchema"])
    return out


def test_each_format_offers_run_code_and_the_direct_tools(client: RpcClient) -> None:
    for fmt in ("openai", "openai_responses", "anthropic", "gemini", "mcp"):
        d = definitions(client, format=fmt, tools=[WEATHER, SEARCH, BOTH])
        tools = names_and_schemas(fmt, d["tools"])
        assert list(tools) == ["run_code", "web_search", "lookup"], (fmt, d["tools"])
        description, schema = tools["run_code"]
        assert schema["required"] == ["code"] and schema["properties"]["code"]["type"] == "string"
        # The description teaches the script and shows the stubs.
        for lesson in ("await", "asyncio.gather", "ToolError", "print"):
            assert lesson in description, (fmt, lesson)
        assert d["stubs"] in description
        assert tools["web_search"] == (SEARCH["description"], SEARCH["input_schema"])
        assert tools["lookup"][1] == BOTH["parameters"]


def test_direct_only_tools_get_no_stub_and_code_only_tools_are_not_offered(client: RpcClient) -> None:
    d = definitions(client, format="anthropic", tools=[WEATHER, SEARCH, BOTH])
    stubs = d["stubs"]
    assert "async def get_weather(" in stubs
    assert "async def lookup(" in stubs
    assert "web_search" not in stubs
    offered = [t["name"] for t in d["tools"]]
    assert "get-weather" not in offered and "get_weather" not in offered


def test_stub_shows_python_name_wire_name_types_and_docstring(client: RpcClient) -> None:
    stubs = definitions(client, format="openai", tools=[WEATHER])["stubs"]
    assert '# tool/call name: "get-weather"' in stubs
    assert ('async def get_weather(city: str, units: Optional[Literal["c", "f"]] = None, '
            'days: Optional[int] = None) -> dict[str, Any]:') in stubs
    assert "Current weather of a city." in stubs
    assert "city: City name, in English" in stubs


def test_stubs_compile_and_show_the_positional_order_the_daemon_binds(client: RpcClient) -> None:
    spec = {"name": "move", "input_schema": {"type": "object", "properties": {
        "dx": {"type": "number"}, "dy": {"type": "number"}, "label": {"type": "string"}},
        "required": ["dx", "dy"]}}
    stubs = definitions(client, format="mcp", tools=[WEATHER, BOTH, spec])["stubs"]
    namespace: dict = {}
    exec(compile(stubs, "<stubs>", "exec"), namespace)
    assert list(inspect.signature(namespace["move"]).parameters) == ["dx", "dy", "label"]
    assert list(inspect.signature(namespace["get_weather"]).parameters) == ["city", "units", "days"]
    # The daemon binds positional arguments in the order the stub shows.
    seen = []
    r = client.run("await move(1.5, -2, 'here')", {"move": lambda **kw: seen.append(kw)}, tools=[spec])
    assert r["status"] == "ok", r
    assert seen == [{"dx": 1.5, "dy": -2, "label": "here"}]


def test_required_argument_after_an_optional_one_is_keyword_only(client: RpcClient) -> None:
    spec = {"name": "f", "input_schema": {"properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
                                          "required": ["b"]}}
    stubs = definitions(client, format="openai", tools=[spec])["stubs"]
    namespace: dict = {}
    exec(compile(stubs, "<stubs>", "exec"), namespace)
    params = inspect.signature(namespace["f"]).parameters
    assert params["b"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["a"].default is None


def test_session_tools_are_defined_and_request_tools_replace_them(client: RpcClient) -> None:
    sid = client.call("session/create", {"tools": [WEATHER, SEARCH]})["result"]["session_id"]
    d = definitions(client, format="gemini", session_id=sid)
    assert "async def get_weather(" in d["stubs"]
    assert [t["name"] for t in d["tools"]] == ["run_code", "web_search"]
    replaced = {"name": "get_weather", "description": "Replaced.", "input_schema": {"properties": {}}}
    d = definitions(client, format="gemini", session_id=sid, tools=[replaced])
    assert "Replaced." in d["stubs"] and "Current weather" not in d["stubs"]


def test_bad_definition_requests_name_the_field(client: RpcClient) -> None:
    m = client.call("tools/definition", {"format": "cohere", "tools": []})
    assert m["error"]["code"] == -32602 and m["error"]["data"]["field"] == "format"
    m = client.call("tools/definition", {"tools": []})
    assert m["error"]["code"] == -32602 and m["error"]["data"]["field"] == "format"
    m = client.call("tools/definition", {"format": "openai", "tools": [{"name": 1}]})
    assert m["error"]["data"]["field"] == "tools[0].name"
    m = client.call("tools/definition", {"format": "openai", "session_id": "s-nope"})
    assert m["error"]["code"] == -32001


# --- result shapes: object output schemas become TypedDict classes ------------------------------

GOLDEN = Path(__file__).parent / "golden"

ORDERS = {  # the shape pydantic emits for `list[Order]`: `$defs`, `$ref`, enums, optional keys
    "name": "list_orders",
    "description": "A customer's orders, newest first.",
    "input_schema": {"type": "object", "properties": {"customer": {"type": "string"}}, "required": ["customer"]},
    "output_schema": {
        "type": "array",
        "items": {"$ref": "#/$defs/Order"},
        "$defs": {
            "Order": {
                "type": "object", "title": "Order", "description": "One order.",
                "properties": {
                    "id": {"type": "integer"},
                    "status": {"$ref": "#/$defs/Status"},
                    "lines": {"type": "array", "items": {"$ref": "#/$defs/Line"}},
                    "shipping": {"anyOf": [{"$ref": "#/$defs/Address"}, {"type": "null"}], "default": None},
                    "note": {"type": "string", "description": "Free text from the customer.", "default": ""},
                },
                "required": ["id", "status", "lines"],
            },
            "Status": {"type": "string", "enum": ["open", "shipped", "cancelled"]},
            "Line": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string"},
                    "qty": {"type": "integer", "description": "Units ordered.", "default": 1},
                    "price": {"type": "object", "properties": {
                        "amount_cents": {"type": "integer"}, "currency": {"const": "EUR"}},
                        "required": ["amount_cents", "currency"]},
                },
                "required": ["sku", "price"],
            },
            "Address": {"type": "object", "title": "Address", "properties": {
                "city": {"type": "string"}, "country": {"type": "string", "description": "ISO 3166 code."}},
                "required": ["city", "country"]},
        },
    },
}
CATEGORIES = {  # a recursive shape, and a map of objects
    "name": "category_tree",
    "output_schema": {
        "$ref": "#/$defs/Category",
        "$defs": {"Category": {"type": "object", "title": "Category", "properties": {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/$defs/Category"}},
            "counts": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                "open": {"type": "integer"}, "done": {"type": "boolean"}}}},
        }, "required": ["name", "children"]}},
    },
}
HEADERS = {  # keys that are not Python identifiers
    "name": "fetch-headers",
    "output_schema": {"type": "object", "description": "Response headers.", "properties": {
        "content-type": {"type": "string"}, "x-request-id": {"type": ["string", "null"]}},
        "required": ["content-type"]},
}
UNTYPED = {"name": "raw_dump", "description": "Whatever the backend returns."}


def test_nested_output_schemas_become_typed_dicts_golden(client: RpcClient) -> None:
    stubs = definitions(client, format="openai", tools=[ORDERS, CATEGORIES, HEADERS, UNTYPED])["stubs"]
    golden = GOLDEN / "stubs_nested_outputs.py"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(stubs)
    assert stubs == golden.read_text(), f"stubs changed (UPDATE_GOLDEN=1 to accept):\n{stubs}"


def test_typed_dict_stubs_compile_and_describe_the_result_shape(client: RpcClient) -> None:
    stubs = definitions(client, format="openai", tools=[ORDERS, CATEGORIES, HEADERS, UNTYPED])["stubs"]
    namespace: dict = {}
    # dont_inherit: this module's `from __future__ import annotations` would turn the stubs'
    # annotations into strings, which hides NotRequired from TypedDict.
    exec(compile(stubs, "<stubs>", "exec", dont_inherit=True), namespace)
    order = namespace["Order"]
    assert order.__required_keys__ == {"id", "status", "lines"}
    assert order.__optional_keys__ == {"shipping", "note"}
    hints = typing.get_type_hints(order)
    assert hints["status"] == typing.Literal["open", "shipped", "cancelled"]
    assert hints["lines"] == list[namespace["Line"]]
    assert hints["shipping"] == typing.Optional[namespace["Address"]]
    assert typing.get_type_hints(namespace["Line"])["price"] is namespace["LinePrice"]
    assert typing.get_type_hints(namespace["list_orders"])["return"] == list[order]
    assert typing.get_type_hints(namespace["category_tree"])["return"] is namespace["Category"]
    assert namespace["FetchHeadersResult"].__required_keys__ == {"content-type"}
    # A tool without an output schema says so, so the model knows to look before it filters.
    assert "undocumented shape" in namespace["raw_dump"].__doc__
    assert "undocumented shape" not in namespace["list_orders"].__doc__


def test_persistent_session_description_says_variables_persist(client: RpcClient) -> None:
    persistent = client.call("session/create", {"tools": [UNTYPED], "persistent": True})["result"]["session_id"]
    plain = client.call("session/create", {"tools": [UNTYPED]})["result"]["session_id"]
    described = {sid: definitions(client, format="anthropic", session_id=sid)["tools"][0]["description"]
                 for sid in (persistent, plain)}
    assert "persist from one run to the next" in described[persistent]
    assert "persist" not in described[plain]
