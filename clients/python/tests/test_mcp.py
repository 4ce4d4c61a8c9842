"""MCP servers through the client, end to end: the real daemon with the real ``mcp-server-sqlite``.

What the client adds is small (``mcp_servers=`` on ``run``, ``create_session`` and
``tool_definitions``; the typed ``McpServerUnavailable``), so these tests check that each of those
reaches the daemon and comes back as the contract says: the script calls the server's tools under
its namespace, mixed with this client's own tools (which alone are served here); an unknown name
is ``InvalidParams`` naming ``mcp_servers[i]``; a server that cannot start is
``McpServerUnavailable`` naming it, and the daemon goes on serving.
"""

from __future__ import annotations

import sqlite3

import pytest

import ptcd
from conftest import McpDaemon

ITEMS = [(1, "kettle", 2_499), (2, "teapot", 3_150), (3, "mug", 899), (4, "tray", 1_999)]


@pytest.fixture(scope="module", autouse=True)
def items_table(mcp_daemon: McpDaemon) -> None:
    """A table of our own in the server's database (the example test rewrites ``orders``)."""
    with sqlite3.connect(mcp_daemon.db) as db:
        db.execute("DROP TABLE IF EXISTS items")
        db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price_cents INTEGER NOT NULL)")
        db.executemany("INSERT INTO items VALUES (?, ?, ?)", ITEMS)


READ_ITEMS = """
import ast, asyncio
raw = await sqlite.read_query(query="SELECT id, name FROM items ORDER BY id")
rows = ast.literal_eval(raw) if isinstance(raw, str) else raw
stock = await asyncio.gather(*(stock_level(r["id"]) for r in rows))
[(r["name"], s) for r, s in zip(rows, stock)]
"""


async def test_initialize_lists_the_configured_mcp_servers(mcp_client: ptcd.AsyncClient) -> None:
    info = await mcp_client.initialize()
    assert info["mcp_servers"] == ["broken", "sqlite"]
    assert isinstance(info["discovery_threshold"], int) and info["discovery_threshold"] > 0


async def test_run_mixes_mcp_server_tools_and_client_tools_in_parallel(mcp_client: ptcd.AsyncClient) -> None:
    served: list[str] = []

    async def stock_level(item_id: int) -> int:
        """Units in stock of an item."""
        served.append(f"stock_level({item_id})")
        return item_id * 10

    result = await mcp_client.run(READ_ITEMS, tools=[stock_level], mcp_servers=["sqlite"])
    assert result.ok, result.render()
    assert result.value == [["kettle", 10], ["teapot", 20], ["mug", 30], ["tray", 40]]
    # The MCP call went from the daemon to the server; only the client's own tool came here.
    assert sorted(served) == [f"stock_level({i})" for i in range(1, 5)]
    assert result.tool_calls == 5


def test_sync_client_passes_mcp_servers(mcp_daemon: McpDaemon) -> None:
    with ptcd.Client(mcp_daemon.socket) as client:
        result = client.run(
            'await sqlite.read_query(query="SELECT COUNT(*) AS n FROM items")', mcp_servers=["sqlite"]
        )
        assert result.ok, result.render()
        assert "'n': 4" in result.value


@pytest.mark.parametrize("servers", [["nope"], ["sqlite", "nope"]])
async def test_unknown_mcp_server_is_invalid_params_naming_its_index(
    mcp_client: ptcd.AsyncClient, servers: list[str]
) -> None:
    field = f"mcp_servers[{len(servers) - 1}]"
    with pytest.raises(ptcd.InvalidParams) as run_error:
        await mcp_client.run("1", mcp_servers=servers)
    assert run_error.value.field == field
    assert "sqlite" in run_error.value.message  # the message lists the configured names
    with pytest.raises(ptcd.InvalidParams) as session_error:
        await mcp_client.create_session(mcp_servers=servers)
    assert session_error.value.field == field
    with pytest.raises(ptcd.InvalidParams) as definition_error:
        await mcp_client.tool_definitions(mcp_servers=servers)
    assert definition_error.value.field == field
    # The connection and the daemon are fine.
    assert (await mcp_client.run("6 * 7")).value == 42


async def test_a_server_that_cannot_start_is_mcp_server_unavailable_and_the_daemon_goes_on(
    mcp_client: ptcd.AsyncClient,
) -> None:
    with pytest.raises(ptcd.McpServerUnavailable) as error:
        await mcp_client.run("1", mcp_servers=["broken"])
    assert error.value.code == -32008
    assert error.value.server == "broken"
    assert error.value.message.startswith("MCP server unavailable: broken: ")
    assert isinstance(error.value, ptcd.PtcdError)
    result = await mcp_client.run('await sqlite.list_tables()', mcp_servers=["sqlite"])
    assert result.ok and "items" in result.value


async def test_a_lone_string_is_refused_before_anything_is_sent(mcp_client: ptcd.AsyncClient) -> None:
    with pytest.raises(TypeError, match=r"\['sqlite'\]"):
        await mcp_client.run("1", mcp_servers="sqlite")  # type: ignore[arg-type]
    assert (await mcp_client.run("1")).value == 1


async def test_tool_definitions_show_the_server_as_a_namespace_next_to_client_tools(
    mcp_client: ptcd.AsyncClient,
) -> None:
    spec = {"name": "stock_level", "description": "Units in stock of an item.",
            "input_schema": {"type": "object", "properties": {"item_id": {"type": "integer"}}, "required": ["item_id"]}}
    definitions = await mcp_client.tool_definitions([spec], format="anthropic", mcp_servers=["sqlite"])
    stubs = definitions["stubs"]
    assert "class sqlite" in stubs
    assert "async def read_query(" in stubs and "async def list_tables(" in stubs
    assert "async def stock_level(item_id: int)" in stubs
    [run_code] = definitions["tools"]
    assert run_code["name"] == "run_code" and "read_query" in run_code["description"]
    without = await mcp_client.tool_definitions([spec], format="anthropic")
    assert "read_query" not in without["stubs"]


async def test_session_with_mcp_servers_lists_their_tools_and_serves_every_run(
    mcp_client: ptcd.AsyncClient,
) -> None:
    async def stock_level(item_id: int) -> int:
        """Units in stock of an item."""
        return item_id * 10

    session = await mcp_client.create_session([stock_level], mcp_servers=["sqlite"])
    try:
        assert "sqlite.read_query" in session.tools and "stock_level" in session.tools
        for _ in range(2):
            result = await mcp_client.run(READ_ITEMS, session_id=session.session_id)
            assert result.ok, result.render()
            assert result.value[0] == ["kettle", 10]
        # A run in the session may attach more servers; an unusable one is refused at attach.
        with pytest.raises(ptcd.McpServerUnavailable):
            await mcp_client.run("1", session_id=session.session_id, mcp_servers=["broken"])
    finally:
        await mcp_client.close_session(session.session_id)


async def test_pydantic_ai_adapter_passes_mcp_servers_to_definitions_and_runs(mcp_client: ptcd.AsyncClient) -> None:
    pytest.importorskip("pydantic_ai")
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    from ptcd.integrations.pydantic_ai import code_mode

    descriptions: list[str] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        descriptions.extend(t.description or "" for t in info.function_tools)
        last = messages[-1]
        assert isinstance(last, ModelRequest)
        for part in last.parts:
            if isinstance(part, ToolReturnPart):
                return ModelResponse(parts=[TextPart(str(part.content))])
        return ModelResponse(parts=[ToolCallPart("run_code", {"code": READ_ITEMS})])

    def stock_level(item_id: int) -> int:
        """Units in stock of an item."""
        return item_id * 10

    agent = Agent(FunctionModel(model), toolsets=[code_mode([stock_level], client=mcp_client, mcp_servers=["sqlite"])])
    result = await agent.run("which items are in stock?")
    assert result.output == '[["kettle",10],["teapot",20],["mug",30],["tray",40]]'
    assert "class sqlite" in descriptions[0] and "async def stock_level(item_id: int)" in descriptions[0]


async def test_openai_agents_and_langchain_adapters_pass_mcp_servers(mcp_client: ptcd.AsyncClient) -> None:
    pytest.importorskip("agents")
    pytest.importorskip("langchain_core")
    from agents import function_tool
    from langchain_core.tools import tool as langchain_tool

    from ptcd.integrations import langchain as ptcd_langchain
    from ptcd.integrations import openai_agents as ptcd_agents

    def stock_level(item_id: int) -> int:
        """Units in stock of an item."""
        return item_id * 10

    agents_tool = await ptcd_agents.code_tool([function_tool(stock_level)], client=mcp_client, mcp_servers=["sqlite"])
    assert "class sqlite" in agents_tool.description and "stock_level(item_id: int)" in agents_tool.description
    lc_tool = await ptcd_langchain.code_tool([langchain_tool(stock_level)], client=mcp_client, mcp_servers=["sqlite"])
    assert "class sqlite" in lc_tool.description
    output = await lc_tool.ainvoke({"code": READ_ITEMS})
    assert output == '[["kettle",10],["teapot",20],["mug",30],["tray",40]]'
    with pytest.raises(TypeError, match="list of server names"):
        await ptcd_agents.code_tool([function_tool(stock_level)], client=mcp_client, mcp_servers="sqlite")
