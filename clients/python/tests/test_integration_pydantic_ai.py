"""pydantic-ai + ptcd end to end: a real Agent, driven by pydantic-ai's own FunctionModel, whose
tools are offered as one ``run_code`` tool run by the real daemon."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

import pytest
from pydantic import BaseModel

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent, ModelRetry, RunContext  # noqa: E402
from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart  # noqa: E402
from pydantic_ai.models.function import AgentInfo, FunctionModel  # noqa: E402

import ptcd  # noqa: E402
from ptcd.integrations.pydantic_ai import code_mode  # noqa: E402


@dataclass
class Deps:
    tenant: str


class Order(BaseModel):
    """One order of the tenant."""

    id: int
    tenant: str
    status: Literal["open", "shipped"]
    total_cents: int


async def get_order(ctx: RunContext[Deps], order_id: int) -> Order:
    """Look an order up by id."""
    await asyncio.sleep(0)  # a real await: calls interleave
    return Order(id=order_id, tenant=ctx.deps.tenant, status="open" if order_id % 2 else "shipped",
                 total_cents=100 * order_id)


def flaky(ctx: RunContext[Deps], what: str) -> str:
    """Fails on purpose."""
    if what == "retry":
        raise ModelRetry("the backend is busy, try later")
    raise ValueError(f"no such thing: {what}")


class ScriptWriter:
    """A FunctionModel whose 'model' writes the user prompt as its script, then reports the result."""

    def __init__(self) -> None:
        self.seen_tools: list[list[str]] = []
        self.descriptions: list[str] = []
        self.tool_results: list[str] = []

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.seen_tools.append([t.name for t in info.function_tools])
        self.descriptions.extend(t.description or "" for t in info.function_tools)
        last = messages[-1]
        assert isinstance(last, ModelRequest)
        for part in last.parts:
            if isinstance(part, ToolReturnPart):
                self.tool_results.append(str(part.content))
                return ModelResponse(parts=[TextPart(str(part.content))])
        prompt = next(p.content for p in last.parts if getattr(p, "part_kind", "") == "user-prompt")
        return ModelResponse(parts=[ToolCallPart("run_code", {"code": prompt})])


def make_agent(client: ptcd.AsyncClient) -> tuple[Agent[Deps, str], ScriptWriter]:
    writer = ScriptWriter()
    agent = Agent(FunctionModel(writer), deps_type=Deps, toolsets=[code_mode([get_order, flaky], client=client)])
    return agent, writer


GATHER = """
orders = await asyncio.gather(*(get_order(i) for i in range(1, 21)))
open_orders = [o for o in orders if o["status"] == "open"]
print(len(orders), len(open_orders), sum(o["total_cents"] for o in open_orders), orders[0]["tenant"])
"""


async def test_gather_over_20_calls_in_one_model_turn_with_typed_stubs(client: ptcd.AsyncClient) -> None:
    agent, writer = make_agent(client)
    result = await agent.run(GATHER, deps=Deps("acme"))
    assert result.output.strip() == "20 10 10000 acme"
    assert writer.seen_tools == [["run_code"], ["run_code"]]  # 2 model turns, one tool
    description = writer.descriptions[0]
    assert "async def get_order(order_id: int) -> Order:" in description
    assert "class Order(TypedDict):" in description and 'status: Literal["open", "shipped"]' in description
    assert "async def flaky(what: str) -> str:" in description


async def test_tool_errors_reach_the_script_as_tool_error(client: ptcd.AsyncClient) -> None:
    agent, _ = make_agent(client)
    code = """
for what in ["retry", "boom"]:
    try:
        await flaky(what)
    except ToolError as e:
        print("caught:", e.message)
try:
    await get_order("not a number")
except ToolError as e:
    print("invalid:", "order_id" in e.message)
"""
    result = await agent.run(code, deps=Deps("acme"))
    assert result.output.splitlines() == [
        "caught: the backend is busy, try later",
        "caught: ValueError: no such thing: boom",
        "invalid: True",
    ]


async def test_an_uncaught_tool_error_is_shown_to_the_model_not_raised(client: ptcd.AsyncClient) -> None:
    agent, _ = make_agent(client)
    result = await agent.run("await flaky('boom')", deps=Deps("acme"))
    assert result.output.startswith("error: ToolError: ValueError: no such thing: boom")


async def test_two_concurrent_agent_runs_keep_their_deps_apart(client: ptcd.AsyncClient) -> None:
    agent, _ = make_agent(client)
    code = "rows = await asyncio.gather(*(get_order(i) for i in range(10)))\nsorted({r['tenant'] for r in rows})"
    first, second = await asyncio.gather(agent.run(code, deps=Deps("acme")), agent.run(code, deps=Deps("globex")))
    assert first.output == '["acme"]' and second.output == '["globex"]'


async def test_the_adapter_opens_its_own_connection_when_given_none(socket_path: str) -> None:
    toolset = code_mode([get_order], socket=socket_path)
    writer = ScriptWriter()
    agent = Agent(FunctionModel(writer), deps_type=Deps, toolsets=[toolset])
    try:
        result = await agent.run("(await get_order(3))['total_cents']", deps=Deps("acme"))
    finally:
        await toolset.connection.aclose()
    assert result.output == "300"


async def test_a_run_the_daemon_refuses_is_explained_to_the_model(client: ptcd.AsyncClient) -> None:
    agent = Agent(FunctionModel(ScriptWriter()), deps_type=Deps,
                  toolsets=[code_mode([get_order], client=client, policy="no-such-policy")])
    result = await agent.run("1 + 1", deps=Deps("acme"))
    assert result.output.startswith("run_code failed before the script could finish: UnknownPolicy: ")
