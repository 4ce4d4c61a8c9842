"""Discovery for large catalogs (design: "Discovery") against a real 200-tool MCP server.

Above `discovery_threshold` code-callable tools, definitions list only `name — summary` lines
(kept under a stated byte budget) and the script gets `search_tools(query, limit=10)` and
`describe_tool(name)`, answered inside the daemon (no `tool/call` reaches the client).
"""

from __future__ import annotations

import json
import sys

import pytest

import mcp_setup as ms
from rpc import RpcClient

sys.path.insert(0, str(ms.SERVERS))
import catalog  # noqa: E402

# The whole `tools/definition` answer (openai format: the run_code tool with its description,
# and the stubs) for the 200-tool catalog, in bytes of JSON. The full typed stubs of the same
# catalog measure about 2.5x this (measured: 38.9 KB against 99.2 KB) (see test_summary_definitions_are_much_smaller_than_full_stubs).
DEFINITIONS_BUDGET_BYTES = 48 << 10


@pytest.fixture
def c(mcp_daemon, connect) -> RpcClient:
    return connect(
        mcp_daemon(
            {
                "catalog": ms.ours("catalog_server.py"),
                "small": ms.ours("catalog_server.py", "--count", "20"),
            }
        )
    )


def definitions(c: RpcClient, servers: list[str], fmt: str = "openai") -> dict:
    resp = c.call("tools/definition", {"format": fmt, "mcp_servers": servers})
    assert "result" in resp, resp
    return resp["result"]


def run(c: RpcClient, code: str, servers=("catalog",), **kw) -> dict:
    r = c.run(code, mcp_servers=list(servers), **kw)
    assert r["status"] == "ok", r
    return r


def test_definitions_of_a_200_tool_catalog_stay_under_the_byte_budget(c: RpcClient) -> None:
    for fmt in ("openai", "anthropic", "mcp"):
        d = definitions(c, ["catalog"], fmt)
        size = len(json.dumps(d).encode())
        assert size <= DEFINITIONS_BUDGET_BYTES, f"{fmt}: {size} bytes"
    stubs = definitions(c, ["catalog"])["stubs"]
    # Every tool is still named, with its one-line summary ...
    for t in catalog.parse():
        assert t["name"] in stubs, t["name"]
    assert "Refund a customer payment in full or in part to their card." in stubs
    # ... but not as full typed stubs, and the script is told how to find the rest.
    assert "async def billing_refund_payment(" not in stubs
    assert "search_tools" in stubs and "describe_tool" in stubs


def test_summary_definitions_are_much_smaller_than_full_stubs(mcp_daemon, connect) -> None:
    servers = {"catalog": ms.ours("catalog_server.py")}
    full = connect(mcp_daemon(servers, top={"discovery_threshold": 1000}))
    summary = connect(mcp_daemon(servers))
    full_size = len(json.dumps(definitions(full, ["catalog"])).encode())
    summary_size = len(json.dumps(definitions(summary, ["catalog"])).encode())
    assert "async def billing_refund_payment(" in definitions(full, ["catalog"])["stubs"]
    assert summary_size * 2 < full_size, (summary_size, full_size)


def test_small_catalog_gets_full_stubs_and_no_discovery_builtins(c: RpcClient) -> None:
    stubs = definitions(c, ["small"])["stubs"]
    assert "async def crm_create_contact(" in stubs
    r = c.run("await search_tools('contact')", mcp_servers=["small"])
    assert r["status"] == "error" and r["error"]["type"] == "NameError", r


def test_discovery_threshold_is_configurable(mcp_daemon, connect) -> None:
    c = connect(mcp_daemon({"small": ms.ours("catalog_server.py", "--count", "20")}, top={"discovery_threshold": 5}))
    assert c.call("initialize")["result"]["discovery_threshold"] == 5
    stubs = definitions(c, ["small"])["stubs"]
    assert "async def crm_create_contact(" not in stubs and "crm_create_contact" in stubs
    r = run(c, "await search_tools('new contact person', limit=1)", servers=["small"])
    assert r["value"][0]["name"] == "small.crm_create_contact"


def test_search_tools_finds_the_right_tool_for_natural_queries(c: RpcClient) -> None:
    queries = [q for q, _ in catalog.QUERIES]
    r = run(c, "[[h['name'] for h in await search_tools(q)] for q in queries]", inputs={"queries": queries})
    assert r["tool_calls"] == len(queries)
    top3, top10, misses = 0, 0, []
    for (query, want), hits in zip(catalog.QUERIES, r["value"]):
        assert len(hits) <= 10
        if f"catalog.{want}" in hits[:3]:
            top3 += 1
        else:
            misses.append((query, want, hits[:3]))
        top10 += f"catalog.{want}" in hits
    assert top10 == len(queries), misses
    assert top3 >= len(queries) - 2, misses


def test_search_results_name_wire_names_with_summaries_and_respect_the_limit(c: RpcClient) -> None:
    hits = run(c, "await search_tools('refund a payment', limit=2)")["value"]
    assert len(hits) == 2
    for h in hits:
        assert set(h) == {"name", "summary"}
        assert h["name"].startswith("catalog.")
    assert hits[0] == {"name": "catalog.billing_refund_payment",
                       "summary": "Refund a customer payment in full or in part to their card."}


def test_describe_tool_gives_the_full_typed_stub(c: RpcClient) -> None:
    stub = run(c, "await describe_tool('catalog.billing_refund_payment')")["value"]
    assert isinstance(stub, str)
    assert "async def billing_refund_payment(" in stub
    assert "payment_id: str" in stub and "amount: Optional[float] = None" in stub
    r = c.run("await describe_tool('catalog.no_such_tool')", mcp_servers=["catalog"])
    assert r["status"] == "error", r


def test_a_found_tool_is_called_through_its_namespace_without_a_client_round_trip(c: RpcClient) -> None:
    code = (
        "hit = (await search_tools('who is on call for a team'))[0]['name']\n"
        "ns, tool = hit.split('.')\n"
        "await getattr(globals()[ns], tool)(team='payments')"
    )
    # No handlers: any tool/call sent to this client would fail the test (KeyError).
    r = run(c, code)
    assert r["value"] == {"tool": "devops_who_is_on_call", "arguments": {"team": "payments"}}
    assert r["tool_calls"] == 2  # search_tools counts as a tool call


def test_discovery_calls_count_toward_max_tool_calls(c: RpcClient) -> None:
    r = c.run("for i in range(5):\n    await search_tools('invoice')", mcp_servers=["catalog"],
              limits={"max_tool_calls": 2})
    assert r["status"] == "limit_exceeded", r


def test_a_client_tool_named_search_tools_wins_over_the_builtin(c: RpcClient) -> None:
    r = c.run("await search_tools(query='x')", {"search_tools": lambda query: ["mine", query]}, mcp_servers=["catalog"])
    assert r["status"] == "ok" and r["value"] == ["mine", "x"], r


def test_session_over_a_large_catalog_lists_its_tools_and_searches(c: RpcClient) -> None:
    created = c.call("session/create", {"mcp_servers": ["catalog"]})["result"]
    assert "catalog.billing_refund_payment" in created["tools"]
    hits = run(c, "await search_tools('book a meeting room', limit=3)", servers=(), session_id=created["session_id"])
    assert "catalog.calendar_book_room" in [h["name"] for h in hits["value"]]
