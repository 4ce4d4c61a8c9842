"""MCP servers attached to runs, sessions and `tools/definition`, and tool discovery, through the
real socket — the parts that need no running MCP server (the suite in `tests/mcp/` drives real
third-party servers).

Discovery is exercised over a catalog of *client* tools larger than the default
`discovery_threshold` (30): `tools/definition` switches to summary mode and stays under a stated
byte budget, and the script's `search_tools` / `describe_tool` are answered by the daemon
itself (no `tool/call` reaches the client). Each test is named for the behaviour it proves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rpc import RpcClient

THRESHOLD = 30  # the daemon's default discovery_threshold

# 200 plausible client tools: 40 objects x 5 verbs.
OBJECTS = [
    "ticket", "invoice", "project", "task", "document", "note", "contact", "lead", "deal", "report",
    "dashboard", "metric", "alert", "log", "user", "group", "role", "webhook", "secret", "backup",
    "snapshot", "bucket", "queue", "job", "pipeline", "build", "release", "deployment", "cluster",
    "node", "payment", "comment", "order", "customer", "product", "coupon", "shipment", "refund",
    "forecast", "calendar_event",
]
VERBS = {"get": "Get one {o} by its id.", "list": "List {o}s, newest first.",
         "create": "Create a new {o}.", "update": "Update fields of a {o}.", "delete": "Delete a {o}."}


def catalog(n: int = 200) -> list[dict]:
    tools = []
    for o in OBJECTS:
        for v, d in VERBS.items():
            tools.append({
                "name": f"{v}_{o}",
                "description": d.format(o=o.replace("_", " ")) + " Long explanation follows. " * 8,
                "input_schema": {"type": "object", "properties": {
                    f"{o}_id": {"type": "string", "description": f"The {o}'s id."},
                    "fields": {"type": "object", "description": "Fields to set."}},
                    "required": [f"{o}_id"]},
                "output_schema": {"type": "object", "title": f"{o.title()}{v.title()}",
                                  "properties": {"id": {"type": "string"}, "ok": {"type": "boolean"}}},
            })
    return tools[:n]


def error_of(m: dict) -> tuple[int, str | None]:
    assert "error" in m, m
    return m["error"]["code"], (m["error"].get("data") or {}).get("field")


def alive(client: RpcClient) -> None:
    r = client.run("1 + 1")
    assert (r["status"], r["value"]) == ("ok", 2), r


# --- attaching: validation --------------------------------------------------------------------


def test_initialize_lists_configured_mcp_servers_and_the_discovery_threshold(client: RpcClient) -> None:
    r = client.call("initialize", {})["result"]
    assert r["mcp_servers"] == []
    assert r["discovery_threshold"] == THRESHOLD


@pytest.mark.parametrize("method,params", [
    ("run", {"code": "1"}),
    ("session/create", {}),
    ("tools/definition", {"format": "anthropic"}),
])
def test_unknown_mcp_server_is_refused_naming_its_index(client: RpcClient, method: str, params: dict) -> None:
    m = client.call(method, {**params, "mcp_servers": ["nope"]})
    assert error_of(m) == (-32602, "mcp_servers[0]")
    assert "unknown MCP server \"nope\"" in m["error"]["message"]
    assert "none are configured" in m["error"]["message"]
    alive(client)


@pytest.mark.parametrize("value,field", [
    ("sqlite", "mcp_servers"),
    ({"sqlite": True}, "mcp_servers"),
    (["ok", 3], "mcp_servers[1]"),
])
def test_mcp_servers_that_is_not_an_array_of_names_is_refused(client: RpcClient, value: Any, field: str) -> None:
    for method, params in [("run", {"code": "1"}), ("session/create", {}),
                           ("tools/definition", {"format": "openai"})]:
        m = client.call(method, {**params, "mcp_servers": value})
        assert error_of(m) == (-32602, field), (method, m)
    alive(client)


def test_empty_and_null_mcp_servers_attach_nothing(client: RpcClient) -> None:
    assert client.run("1", mcp_servers=[])["status"] == "ok"
    assert client.run("1", mcp_servers=None)["status"] == "ok"
    m = client.call("session/create", {"mcp_servers": [], "tools": [{"name": "a"}]})
    assert m["result"]["tools"] == ["a"]


# --- discovery over a large catalog -----------------------------------------------------------

# What the model is handed for 200 tools in summary mode: ~50 bytes a tool plus the run_code
# instructions (measured: 10.3 KB; the full stubs of only 30 of these tools are 16 KB).
SUMMARY_BUDGET = 12 * 1024


def test_definitions_of_200_tools_are_summaries_under_the_byte_budget(client: RpcClient) -> None:
    tools = catalog(200)
    r = client.call("tools/definition", {"format": "anthropic", "tools": tools})["result"]
    stubs = r["stubs"]
    description = r["tools"][0]["description"]
    assert len(description.encode()) < SUMMARY_BUDGET, len(description.encode())
    assert "200 tools" in stubs
    assert "#   get_invoice — Get one invoice by its id." in stubs
    assert "async def search_tools(query: str, limit: int = 10)" in stubs
    assert "async def describe_tool(name: str) -> str:" in stubs
    assert "async def get_invoice(" not in stubs  # no full stub in summary mode
    compile(stubs, "<stubs>", "exec")  # still valid Python
    full = client.call("tools/definition", {"format": "anthropic", "tools": tools[:THRESHOLD]})["result"]
    assert "async def get_ticket(ticket_id: str" in full["stubs"]
    assert "search_tools" not in full["stubs"]


def test_script_finds_and_describes_tools_without_a_client_round_trip(client: RpcClient) -> None:
    tools = catalog(40)
    code = (
        "hits = await search_tools('remove an invoice', limit=3)\n"
        "stub = await describe_tool(hits[0]['name'])\n"
        "[h['name'] for h in hits], stub"
    )
    called: list[str] = []

    def unexpected(**kw: Any) -> None:
        called.append("client tool")

    r = client.run(code, {t["name"]: unexpected for t in tools}, tools=tools)
    assert r["status"] == "ok", r
    names, stub = r["value"]
    assert names[0] == "delete_invoice", names
    assert "async def delete_invoice(invoice_id: str" in stub, stub
    assert "class InvoiceDelete(TypedDict):" in stub, stub
    assert r["tool_calls"] == 2
    assert called == []
    alive(client)


def test_discovery_builtins_check_their_arguments(client: RpcClient) -> None:
    tools = catalog(40)
    code = (
        "out = []\n"
        "for call in (lambda: search_tools(3), lambda: search_tools('x', limit=0),\n"
        "             lambda: describe_tool('no_such_tool')):\n"
        "    try:\n"
        "        await call()\n"
        "    except ToolError as e:\n"
        "        out.append(e.message)\n"
        "out"
    )
    r = client.run(code, tools=tools)
    assert r["status"] == "ok", r
    assert "query must be a string" in r["value"][0]
    assert "limit must be an integer from 1 to 50" in r["value"][1]
    assert "no tool named \"no_such_tool\"" in r["value"][2]


def test_a_client_tool_named_search_tools_wins_over_the_builtin(client: RpcClient) -> None:
    tools = catalog(40) + [{"name": "search_tools", "input_schema": {
        "type": "object", "properties": {"query": {"type": "string"}}}}]
    r = client.run("[await search_tools('x'), len(await describe_tool('get_ticket'))]",
                   {"search_tools": lambda query: ["from the client", query]}, tools=tools)
    assert r["status"] == "ok", r
    assert r["value"][0] == ["from the client", "x"]
    assert r["value"][1] > 0  # describe_tool is still the daemon's
    d = client.call("tools/definition", {"format": "openai", "tools": tools})["result"]
    assert "async def describe_tool" in d["stubs"]
    assert "async def search_tools(query: str, limit" not in d["stubs"]


def test_small_catalogs_get_no_discovery_builtins(client: RpcClient) -> None:
    r = client.run("search_tools", tools=catalog(THRESHOLD))
    assert r["status"] == "error"
    assert r["error"]["type"] == "NameError"


def test_session_runs_discover_the_session_tools_and_their_own(client: RpcClient) -> None:
    tools = catalog(40)
    sid = client.call("session/create", {"tools": tools[:35]})["result"]["session_id"]
    extra = {"name": "launch_rocket", "description": "Launch the rocket to orbit.",
             "input_schema": {"type": "object", "properties": {"target": {"type": "string"}}}}
    r = client.run("[h['name'] for h in await search_tools('rocket launch')][:1] + "
                   "[await describe_tool('get_ticket')]", session_id=sid, tools=[extra])
    assert r["status"] == "ok", r
    assert r["value"][0] == "launch_rocket"
    assert "async def get_ticket(ticket_id: str" in r["value"][1]
    alive(client)


def test_concurrent_session_runs_with_discovery_hold_no_value_trees_of_the_session_specs(daemon) -> None:
    """Each run builds its search index from the session's specs one spec at a time: 6 runs at
    once over sessions of 1.5 MB of specs each grew the daemon by 26-64 MB when each run held all
    of its specs as `Value`s; now by 0-13 MB (each run's index holds these tools' full stubs,
    ~2 MB). Bound: 20 MiB."""
    def heavy(i: int) -> dict:
        props = {f"p{j}": {"type": "integer", "enum": list(range(20))} for j in range(60)}
        return {"name": f"tool_{i}", "description": "word " * 200,
                "input_schema": {"type": "object", "properties": props}}

    tools = [heavy(i) for i in range(200)]
    clients = [daemon.connect() for _ in range(6)]
    try:
        sids = []
        for c in clients:
            m = c.call("session/create", {"tools": tools})
            sids.append(m["result"]["session_id"])
        before = daemon.rss_kib()
        for c, sid in zip(clients, sids):
            c.send({"jsonrpc": "2.0", "id": "r", "method": "run", "params": {
                "code": "len(await search_tools('word', limit=50))", "session_id": sid}})
        for c in clients:
            m = c.wait_response("r")
            assert (m["result"]["status"], m["result"]["value"]) == ("ok", 50), m
        grown = daemon.rss_kib() - before
        assert grown < 20 * 1024, f"daemon RSS grew by {grown} KiB"
        alive(clients[0])
    finally:
        for c in clients:
            c.close()


# --- a configured server (a minimal stdio fake; real servers: tests/mcp/) ---------------------

FAKE = Path(__file__).with_name("fake_mcp_server.py")


def fake_daemon_client(start_daemon, tmp_path: Path, head: str = ""):
    """A daemon with `[mcp_servers.fake-db]` (the stdio fake) and one `broken` server whose
    command does not exist. Skipped while the daemon's config has no `mcp_servers` tables."""
    config = tmp_path / "ptcd.toml"
    config.write_text(
        head +
        "[mcp_servers.fake-db]\n"
        f"command = \"/usr/bin/python3\"\nargs = [\"-I\", \"{FAKE}\"]\n"
        "[mcp_servers.broken]\n"
        "command = \"/nonexistent/mcp-server\"\nstartup_timeout_ms = 2000\n"
    )
    try:
        d = start_daemon("--config", str(config), name="mcp")
    except Exception as exc:  # the config has no [mcp_servers] yet (mcp-core not merged)
        pytest.skip(f"this daemon does not take [mcp_servers] tables: {exc}")
    return d.connect()


@pytest.fixture
def fake_client(start_daemon, tmp_path: Path):
    c = fake_daemon_client(start_daemon, tmp_path)
    yield c
    c.close()


def test_script_calls_a_namespaced_mcp_tool_mixed_with_client_tools_in_parallel(fake_client: RpcClient) -> None:
    code = (
        "r = await asyncio.gather(fake_db.add(1, 2), fake_db.echo(text='hi'), weather(city='Paris'),\n"
        "                         *[fake_db.add(a=i, b=i) for i in range(10)])\n"
        "[r[0], r[1], r[2], [x['sum'] for x in r[3:]], repr(fake_db)]"
    )
    r = fake_client.run(code, {"weather": lambda city: {"city": city, "temp_c": 18}},
                        mcp_servers=["fake-db"])
    assert r["status"] == "ok", r
    assert r["value"] == [{"sum": 3}, {"text": "hi"}, {"city": "Paris", "temp_c": 18},
                          [2 * i for i in range(10)], "<namespace fake_db: add, echo, fail>"]
    assert r["tool_calls"] == 13


def test_mcp_is_error_raises_tool_error_and_bad_arguments_raise_type_error(fake_client: RpcClient) -> None:
    code = (
        "out = []\n"
        "try:\n    await fake_db.fail(why='no rows')\nexcept ToolError as e:\n    out.append(e.message)\n"
        "try:\n    await fake_db.add(1)\nexcept TypeError as e:\n    out.append(str(e))\n"
        "out"
    )
    r = fake_client.run(code, mcp_servers=["fake-db"])
    assert r["status"] == "ok", r
    assert "no rows" in r["value"][0]
    assert "fake_db.add() missing 1 required argument: 'b'" in r["value"][1]


def test_session_with_an_mcp_server_lists_its_tools_and_rebinds_per_run(fake_client: RpcClient) -> None:
    m = fake_client.call("session/create", {"mcp_servers": ["fake-db"], "persistent": True,
                                            "tools": [{"name": "local"}]})
    assert m["result"]["tools"] == ["local", "fake_db.echo", "fake_db.add", "fake_db.fail"], m
    sid = m["result"]["session_id"]
    r = fake_client.run("kept = (await fake_db.add(2, 3))['sum']\nkept", session_id=sid)
    assert (r["status"], r["value"]) == ("ok", 5), r
    d = fake_client.call("tools/definition", {"format": "anthropic", "session_id": sid})["result"]
    assert "class Sum(TypedDict):" in d["stubs"]
    assert "class fake_db:" in d["stubs"]
    assert "    @staticmethod\n    async def add(a: int, b: int) -> Sum:" in d["stubs"]


def test_a_name_error_lists_mcp_tools_qualified(fake_client: RpcClient) -> None:
    r = fake_client.run("await add(1, 2)", mcp_servers=["fake-db"])
    assert r["error"]["type"] == "NameError"
    assert "fake_db.add, fake_db.echo, fake_db.fail" in r["error"]["message"]


def test_a_server_that_cannot_start_refuses_the_run_with_32008_naming_it(fake_client: RpcClient) -> None:
    for method, params in [("run", {"code": "1"}), ("session/create", {}),
                           ("tools/definition", {"format": "mcp"})]:
        m = fake_client.call(method, {**params, "mcp_servers": ["broken"]})
        assert m.get("error", {}).get("code") == -32008, (method, m)
        assert m["error"]["message"].startswith("MCP server unavailable: broken: "), m
    alive(fake_client)


def test_a_client_tool_named_like_a_namespace_is_refused(fake_client: RpcClient) -> None:
    m = fake_client.call("run", {"code": "1", "mcp_servers": ["fake-db"], "tools": [{"name": "fake_db"}]})
    assert error_of(m) == (-32602, "tools[0].name")


def test_mcp_tools_over_the_threshold_are_found_and_described_in_the_script(start_daemon, tmp_path: Path) -> None:
    c = fake_daemon_client(start_daemon, tmp_path, head="discovery_threshold = 2\n")
    try:
        d = c.call("tools/definition", {"format": "mcp", "mcp_servers": ["fake-db"]})["result"]
        assert "#   fake_db.add — Add two integers." in d["stubs"], d["stubs"]
        assert "async def add(" not in d["stubs"]
        code = (
            "hits = await search_tools('sum of two numbers')\n"
            "stub = await describe_tool(hits[0]['name'])\n"
            "[hits[0]['name'], stub, (await fake_db.add(a=4, b=5))['sum']]"
        )
        r = c.run(code, mcp_servers=["fake-db"])
        assert r["status"] == "ok", r
        name, stub, total = r["value"]
        assert name == "fake_db.add"
        assert "class fake_db:" in stub and "async def add(a: int, b: int) -> Sum:" in stub, stub
        assert total == 9
        assert r["tool_calls"] == 3
    finally:
        c.close()


def test_a_session_runs_bad_server_name_is_named_by_the_runs_own_index(fake_client: RpcClient) -> None:
    sid = fake_client.call("session/create", {"mcp_servers": ["fake-db"]})["result"]["session_id"]
    m = fake_client.call("run", {"code": "1", "session_id": sid, "mcp_servers": ["nope"]})
    assert error_of(m) == (-32602, "mcp_servers[0]")
    m = fake_client.call("tools/definition", {"format": "mcp", "session_id": sid, "mcp_servers": ["nope"]})
    assert error_of(m) == (-32602, "mcp_servers[0]")
    r = fake_client.run("(await fake_db.add(1, 1))['sum']", session_id=sid, mcp_servers=["fake-db"])
    assert (r["status"], r["value"]) == ("ok", 2), r
