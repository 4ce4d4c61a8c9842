"""Scripts calling real third-party MCP servers through the real daemon (contract v1.1, "MCP").

Servers: `mcp-server-sqlite` (SDK 1.x), `mcp-server-time`, `mcp-server-git` (SDK 2.x) from PyPI;
`@modelcontextprotocol/server-everything`, `server-memory`, `server-filesystem` from npm. What
each test proves is its name; every test also checks the daemon still serves the next run.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import mcp_setup as ms
from daemon import Daemon
from rpc import RpcClient


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return ms.make_shop_db(tmp_path / "shop.db")


@pytest.fixture
def files(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    (root / "notes.txt").write_text("buy milk\ncall Ada\n")
    (root / "data.json").write_text('{"answer": 42}')
    return root


@pytest.fixture
def d(mcp_daemon, shop: Path, files: Path, tmp_path: Path) -> Daemon:
    return mcp_daemon(
        {
            "sqlite": ms.sqlite(shop),
            "clock": ms.time_server(),
            "everything": ms.everything(),
            "memory": ms.memory(tmp_path / "memory.jsonl"),
            "fs": ms.filesystem(files),
            "results": ms.ours("results_server.py"),
        }
    )


@pytest.fixture
def c(d: Daemon, connect) -> RpcClient:
    return connect(d)


def ok(r: dict) -> dict:
    assert r["status"] == "ok", json.dumps(r)
    return r


def still_serves(c: RpcClient) -> None:
    assert c.run("1 + 1")["value"] == 2


def test_initialize_lists_the_configured_servers_and_the_discovery_threshold(c: RpcClient) -> None:
    r = c.call("initialize", {"client_info": {"name": "t", "version": "1"}})["result"]
    assert r["mcp_servers"] == ["clock", "everything", "fs", "memory", "results", "sqlite"]
    assert r["discovery_threshold"] == 30


def test_definitions_show_each_attached_server_as_a_namespace_of_typed_tools(c: RpcClient) -> None:
    r = c.call("tools/definition", {"format": "openai", "mcp_servers": ["sqlite", "clock", "everything"]})
    d = r["result"]
    stubs = d["stubs"]
    for ns in ("sqlite", "clock", "everything"):
        assert f"class {ns}" in stubs, stubs
    assert "async def read_query(" in stubs and "query: str" in stubs
    # MCP names that are not identifiers get Python names (get-sum → get_sum).
    assert "async def get_sum(" in stubs
    # outputSchema gives the return type (mcp-server-time's TimeResult), not Any.
    assert "async def get_current_time(timezone: str) -> TimeResult:" in stubs
    assert "class TimeResult(TypedDict):" in stubs
    namespace: dict = {}
    exec(compile(stubs, "<stubs>", "exec"), namespace)  # the stubs are valid Python
    # The code-execution tool's description carries the stubs.
    assert stubs in d["tools"][0]["function"]["description"]
    # Servers not attached are not shown.
    assert "class memory" not in stubs and "class fs" not in stubs


def test_script_queries_the_sqlite_server(c: RpcClient) -> None:
    r = ok(c.run(
        "rows = await sqlite.read_query(query='SELECT name FROM customers ORDER BY id')\n"
        "tables = await sqlite.list_tables()\n"
        "(rows, tables)",
        mcp_servers=["sqlite"],
    ))
    rows, tables = r["value"]
    # mcp-server-sqlite answers with the text of a Python list (not JSON): the script gets the text.
    assert isinstance(rows, str) and "Ada" in rows and "Dennis" in rows
    assert "customers" in str(tables) and "orders" in str(tables)
    assert r["tool_calls"] == 2
    still_serves(c)


def test_sqlite_server_reports_sql_errors_as_plain_text(c: RpcClient) -> None:
    # mcp-server-sqlite answers a failed query with a text block, not isError: the script gets
    # the text (the daemon does not guess errors from words).
    r = ok(c.run("await sqlite.read_query(query='SELECT * FROM no_such_table')", mcp_servers=["sqlite"]))
    assert r["value"] == "Database error: no such table: no_such_table"
    still_serves(c)


def test_third_party_is_error_is_a_tool_error_naming_server_and_tool(c: RpcClient) -> None:
    r = ok(c.run(
        "try:\n"
        "    await fs.read_text_file(path='/etc/passwd')\n"
        "except ToolError as e:\n"
        "    out = (str(e), e.code, e.data)\n"
        "out",
        mcp_servers=["fs"],
    ))
    message, code, data = r["value"]
    assert "outside allowed directories" in message or "denied" in message.lower(), message
    assert code == -32000
    assert data == {"server": "fs", "tool": "read_text_file"}


def test_structured_content_of_a_third_party_server_reaches_the_script(c: RpcClient) -> None:
    r = ok(c.run(
        "t = await clock.get_current_time(timezone='Europe/Paris')\n"
        "w = await everything.get_structured_content(location='Chicago')\n"
        "(t, w)",
        mcp_servers=["clock", "everything"],
    ))
    t, w = r["value"]
    assert t["timezone"] == "Europe/Paris" and set(t) == {"timezone", "datetime", "day_of_week", "is_dst"}
    assert set(w) == {"temperature", "conditions", "humidity"}


def test_fifty_gathered_calls_to_one_server_all_answer(c: RpcClient, d: Daemon) -> None:
    r = ok(c.run(
        "rs = await asyncio.gather(*(everything.get_sum(a=i, b=1) for i in range(50)))\nrs",
        mcp_servers=["everything"],
    ))
    assert r["value"] == [f"The sum of {i} and 1 is {i + 1}." for i in range(50)]
    assert r["tool_calls"] == 50
    status = c.call("daemon/status")["result"]["mcp_servers"]["everything"]
    assert status["calls_total"] == 50
    still_serves(c)


def test_client_tools_and_mcp_tools_mix_in_one_gather(c: RpcClient) -> None:
    seen = []

    def lookup(customer: str) -> dict:
        seen.append(customer)
        return {"customer": customer, "vip": customer == "Ada"}

    code = (
        "rows, t, s, mine = await asyncio.gather(\n"
        "    sqlite.read_query(query='SELECT count(*) AS n FROM orders'),\n"
        "    clock.get_current_time(timezone='UTC'),\n"
        "    results.add(a=2, b=3),\n"
        "    lookup(customer='Ada'))\n"
        "(rows, t['timezone'], s, mine)"
    )
    r = ok(c.run(code, {"lookup": lookup}, mcp_servers=["sqlite", "clock", "results"]))
    rows, tz, s, mine = r["value"]
    assert "12" in rows and tz == "UTC" and s == {"result": 5}
    assert mine == {"customer": "Ada", "vip": True} and seen == ["Ada"]
    assert r["tool_calls"] == 4


def test_memory_server_keeps_state_across_runs(c: RpcClient, tmp_path: Path) -> None:
    ok(c.run(
        "await memory.create_entities(entities=[{'name': 'Ada', 'entityType': 'person',"
        " 'observations': ['wrote the first program']}])",
        mcp_servers=["memory"],
    ))
    r = ok(c.run("await memory.search_nodes(query='Ada')", mcp_servers=["memory"]))
    assert r["value"]["entities"][0]["observations"] == ["wrote the first program"]
    # The table's `env` reached the server: it stored the graph where MEMORY_FILE_PATH said.
    assert "wrote the first program" in (tmp_path / "memory.jsonl").read_text()


def test_filesystem_server_reads_and_lists_its_root(c: RpcClient, files: Path) -> None:
    r = ok(c.run(
        f"text = await fs.read_text_file(path={str(files / 'notes.txt')!r})\n"
        f"listing = await fs.list_directory(path={str(files)!r})\n"
        "(text, listing)",
        mcp_servers=["fs"],
    ))
    text, listing = r["value"]
    assert text == {"content": "buy milk\ncall Ada\n"}
    assert "notes.txt" in str(listing) and "data.json" in str(listing)
    # Outside its root the server refuses: isError → ToolError.
    r = c.run("await fs.read_text_file(path='/etc/passwd')", mcp_servers=["fs"])
    assert r["status"] == "error" and r["error"]["type"] == "ToolError", r
    still_serves(c)


def test_mcp_calls_count_toward_max_tool_calls(c: RpcClient) -> None:
    r = c.run(
        "for i in range(10):\n    await results.add(a=i, b=i)",
        mcp_servers=["results"],
        limits={"max_tool_calls": 3},
    )
    assert r["status"] == "limit_exceeded", r
    assert "max_tool_calls" in r["error"]["message"]
    still_serves(c)


def test_status_reports_each_server_state_tools_and_calls(c: RpcClient) -> None:
    before = c.call("daemon/status")["result"]["mcp_servers"]
    assert set(before) == {"clock", "everything", "fs", "memory", "results", "sqlite"}
    assert before["sqlite"]["state"] == "idle"  # lazy: nothing attached it yet
    ok(c.run("await sqlite.list_tables()\nawait sqlite.list_tables()", mcp_servers=["sqlite"]))
    s = c.call("daemon/status")["result"]["mcp_servers"]["sqlite"]
    assert (s["state"], s["tools"], s["calls_total"], s["restarts"]) == ("running", 6, 2, 0)
    assert c.call("daemon/status")["result"]["mcp_servers"]["memory"]["state"] == "idle"


def test_session_with_mcp_servers_lists_and_calls_them(c: RpcClient) -> None:
    created = c.call("session/create", {"mcp_servers": ["sqlite"], "tools": [{"name": "note"}]})["result"]
    sid = created["session_id"]
    assert "sqlite.read_query" in created["tools"] and "note" in created["tools"]
    r = ok(c.run("await sqlite.read_query(query='SELECT count(*) AS n FROM customers')", session_id=sid))
    assert "5" in r["value"]
    # A session run's servers are the session's plus the run's.
    r = ok(c.run("(await sqlite.list_tables(), await results.add(a=1, b=1))", session_id=sid, mcp_servers=["results"]))
    assert r["value"][1] == {"result": 2}
    c.call("session/close", {"session_id": sid})
    still_serves(c)


def test_a_persistent_session_keeps_the_namespace_across_runs(c: RpcClient) -> None:
    sid = c.call("session/create", {"mcp_servers": ["results"], "persistent": True})["result"]["session_id"]
    ok(c.run("f = results.add", session_id=sid))
    assert ok(c.run("await f(a=20, b=22)", session_id=sid))["value"] == {"result": 42}
    c.call("session/close", {"session_id": sid})


def test_git_server_reads_a_repository(mcp_daemon, tmp_path: Path, connect) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=T", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "README").write_text("hello\n")
    subprocess.run(git + ["add", "README"], check=True)
    subprocess.run(git + ["commit", "-qm", "first commit"], check=True)
    c = connect(mcp_daemon({"git": ms.git_server(repo)}))
    r = ok(c.run(f"await git.git_log(repo_path={str(repo)!r})", mcp_servers=["git"]))
    assert "first commit" in str(r["value"])


def test_query_the_database_then_look_up_each_row_in_parallel(c: RpcClient) -> None:
    # The flow: one MCP query, then a client tool per row, all lookups in flight at once.
    looked_up = []

    def crm_lookup(name: str) -> dict:
        looked_up.append(name)
        return {"name": name, "tier": "gold" if name in ("Ada", "Grace") else "silver"}

    code = (
        "import ast\n"
        "rows = ast.literal_eval(await sqlite.read_query(query="
        "'SELECT c.name, sum(o.total) AS spent FROM customers c JOIN orders o ON o.customer_id = c.id "
        "GROUP BY c.id ORDER BY spent DESC'))\n"
        "infos = await asyncio.gather(*(crm_lookup(name=r['name']) for r in rows))\n"
        "[(r['name'], r['spent'], i['tier']) for r, i in zip(rows, infos)]"
    )
    r = ok(c.run(code, {"crm_lookup": crm_lookup}, mcp_servers=["sqlite"]))
    assert len(r["value"]) == 5 and sorted(looked_up) == ["Ada", "Dennis", "Grace", "Linus", "Margaret"]
    assert r["value"][0][2] in ("gold", "silver") and r["tool_calls"] == 6
