"""How MCP results reach the script (design: "Results in the script"): structuredContent first,
else text parsed as JSON when it parses, else the text; several blocks → a list; images,
resources and links → described dicts; isError → ToolError with the server's text.
"""

from __future__ import annotations

import base64

import pytest

import mcp_setup as ms
from rpc import RpcClient


@pytest.fixture
def c(mcp_daemon, connect) -> RpcClient:
    return connect(mcp_daemon({"results": ms.ours("results_server.py")}))


def value(c: RpcClient, expr: str):
    r = c.run(expr, mcp_servers=["results"])
    assert r["status"] == "ok", r
    return r["value"]


def test_structured_content_is_the_result(c: RpcClient) -> None:
    assert value(c, "await results.point(x=2, y=3)") == {"x": 2, "y": 3, "sum": 5}


def test_structured_content_wins_over_the_text_blocks(c: RpcClient) -> None:
    assert value(c, "await results.structured_over_text()") == {"answer": 42}


def test_text_that_is_json_is_parsed(c: RpcClient) -> None:
    assert value(c, "await results.text_json()") == {"rows": [1, 2, 3], "table": "orders"}


def test_plain_text_stays_text(c: RpcClient) -> None:
    assert value(c, "await results.text_plain()") == "plain words, not JSON"
    assert value(c, "await results.text_almost_json()") == "[1, 2,"
    assert value(c, "await results.echo(message='42 apples')") == "42 apples"


def test_several_text_blocks_are_a_list_each_parsed(c: RpcClient) -> None:
    assert value(c, "await results.text_blocks()") == ["alpha", [1, 2], 7]


def test_is_error_raises_tool_error_with_the_servers_text(c: RpcClient) -> None:
    got = value(
        c,
        "try:\n"
        "    await results.fail(message='no such table: users')\n"
        "except ToolError as e:\n"
        "    out = (e.message, e.code, e.data)\n"
        "out",
    )
    assert got == ["no such table: users", -32000, {"server": "results", "tool": "fail"}]


def test_an_exception_in_the_tool_is_a_tool_error_too(c: RpcClient) -> None:
    r = c.run("await results.raise_error(message='quota exceeded')", mcp_servers=["results"])
    assert r["status"] == "error" and r["error"]["type"] == "ToolError", r
    assert "quota exceeded" in r["error"]["message"]
    assert c.run("1")["value"] == 1


def test_image_is_a_described_dict_with_base64_data(c: RpcClient) -> None:
    img = value(c, "await results.image()")
    assert set(img) == {"type", "mime_type", "data"}
    assert img["type"] == "image" and img["mime_type"] == "image/png"
    assert base64.b64decode(img["data"]).startswith(b"\x89PNG")


def test_resources_and_links_are_described_dicts(c: RpcClient) -> None:
    res = value(c, "await results.embedded_resource()")
    assert res == {"type": "resource", "uri": "file:///srv/notes.txt", "mime_type": "text/plain", "text": "the notes"}
    link = value(c, "await results.resource_link()")
    assert link["type"] == "resource_link" and link["uri"] == "file:///srv/report.pdf" and link["name"] == "report.pdf"


def test_mixed_content_is_a_list(c: RpcClient) -> None:
    mixed = value(c, "await results.mixed()")
    assert mixed[0] == "caption" and mixed[1]["type"] == "image"


def test_primitive_returns_of_sdk_servers_arrive_as_their_structured_wrapper(c: RpcClient) -> None:
    # MCPServer wraps a primitive return as structuredContent {"result": ...}; the daemon passes
    # structuredContent through unchanged.
    assert value(c, "await results.add(a=1, b=2)") == {"result": 3}


def test_wrong_arguments_raise_type_error_before_anything_is_sent(c: RpcClient) -> None:
    r = c.run("await results.point(x=1)", mcp_servers=["results"])
    assert r["status"] == "error" and r["error"]["type"] == "TypeError", r
    assert r["tool_calls"] == 0

