"""LangChain / LangGraph + ptcd end to end: a real LangGraph ReAct agent, driven by a LangChain fake
chat model with tool binding, whose tools are offered as one ``run_code`` tool run by the real
daemon."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

import pytest

pytest.importorskip("langgraph")

from langchain_core.language_models.chat_models import BaseChatModel  # noqa: E402
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: E402
from langchain_core.runnables import RunnableConfig  # noqa: E402
from langchain_core.tools import InjectedToolCallId, StructuredTool, ToolException, tool  # noqa: E402
from langchain_core.utils.function_calling import convert_to_openai_tool  # noqa: E402
from langchain.agents import create_agent  # noqa: E402
from langgraph.prebuilt import ToolRuntime  # noqa: E402

import ptcd  # noqa: E402
from ptcd.integrations.langchain import code_tool  # noqa: E402


@dataclass
class Tenant:
    name: str


class Ticket(TypedDict):
    id: int
    tenant: str
    priority: str
    open: bool


@tool
async def get_ticket(ticket_id: int, runtime: ToolRuntime[Tenant]) -> Ticket:
    """Look a support ticket up by id."""
    await asyncio.sleep(0)
    return {"id": ticket_id, "tenant": runtime.context.name, "priority": "high" if ticket_id % 4 == 0 else "low",
            "open": ticket_id % 2 == 1}


@tool
def region(config: RunnableConfig) -> str:
    """The deployment region of this conversation."""
    return str(config["configurable"]["region"])


@tool
def audit(note: str, call_id: Annotated[str, InjectedToolCallId]) -> dict[str, str]:
    """Record an audit note; says which tool call recorded it."""
    return {"note": note, "recorded_by": call_id}


def _escalate(ticket_id: int) -> str:
    """Escalate a ticket (fails here)."""
    raise ToolException(f"ticket {ticket_id} is locked")


# handle_tool_error=True: on its own, the tool would return the error as a string.
escalate = StructuredTool.from_function(_escalate, name="escalate", handle_tool_error=True)


class ScriptWriterChat(BaseChatModel):
    """A fake chat model with tool binding: runs the human message as a script, then answers with
    the script's output. ``bound`` records the tools it was bound to, as a provider would get them."""

    bound: list[dict[str, Any]] = []

    @property
    def _llm_type(self) -> str:
        return "script-writer"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        self.bound[:] = [convert_to_openai_tool(t) for t in tools]
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            reply = AIMessage(content=str(last.content))
        else:
            code = next(m.content for m in messages if isinstance(m, HumanMessage))
            reply = AIMessage(content="", tool_calls=[{"name": "run_code", "args": {"code": code}, "id": "call-1"}])
        return ChatResult(generations=[ChatGeneration(message=reply)])


async def make_agent(client: ptcd.AsyncClient) -> tuple[Any, ScriptWriterChat]:
    model = ScriptWriterChat()
    run_code = await code_tool([get_ticket, region, escalate, audit], client=client)
    return create_agent(model, [run_code], context_schema=Tenant), model


async def ask(agent: Any, code: str, tenant: str = "acme", region: str = "eu-west") -> str:
    state = await agent.ainvoke({"messages": [HumanMessage(code)]}, context=Tenant(tenant),
                                config={"configurable": {"region": region}})
    return str(state["messages"][-1].content)


async def test_gather_over_20_calls_in_one_model_turn_with_typed_stubs(client: ptcd.AsyncClient) -> None:
    agent, model = await make_agent(client)
    code = (
        "rows = await asyncio.gather(*(get_ticket(i) for i in range(1, 21)))\n"
        "urgent = [r['id'] for r in rows if r['open'] or r['priority'] == 'high']\n"
        "print(len(rows), len(urgent), rows[0]['tenant'], await region())"
    )
    assert (await ask(agent, code)).strip() == "20 15 acme eu-west"
    [bound] = model.bound
    assert bound["function"]["name"] == "run_code"
    assert bound["function"]["parameters"]["required"] == ["code"]
    assert list(bound["function"]["parameters"]["properties"]) == ["code"]
    description = bound["function"]["description"]
    assert "async def get_ticket(ticket_id: int) -> Ticket:" in description
    assert "class Ticket(TypedDict):" in description and "    open: bool" in description


async def test_tool_errors_reach_the_script_as_tool_error_not_as_data(client: ptcd.AsyncClient) -> None:
    agent, _ = await make_agent(client)
    code = (
        "try:\n"
        "    print('got data:', await escalate(7))\n"
        "except ToolError as e:\n"
        "    print('caught:', e.message)\n"
        "try:\n"
        "    await get_ticket('seven')\n"
        "except ToolError as e:\n"
        "    print('invalid arguments caught')"
    )
    assert (await ask(agent, code)).splitlines() == ["caught: ToolException: ticket 7 is locked",
                                                     "invalid arguments caught"]


async def test_two_concurrent_agent_runs_keep_context_and_config_apart(client: ptcd.AsyncClient) -> None:
    agent, _ = await make_agent(client)
    code = "rows = await asyncio.gather(*(get_ticket(i) for i in range(10)))\nprint(sorted({r['tenant'] for r in rows}), await region())"
    first, second = await asyncio.gather(ask(agent, code, "acme", "eu-west"), ask(agent, code, "globex", "us-east"))
    assert first.strip() == "['acme'] eu-west" and second.strip() == "['globex'] us-east"


async def test_run_code_works_as_a_plain_langchain_tool_outside_a_graph(client: ptcd.AsyncClient) -> None:
    run_code = await code_tool([region], client=client)
    assert list(run_code.tool_call_schema.model_json_schema()["properties"]) == ["code"]
    out = await run_code.ainvoke({"code": "await region()"}, config={"configurable": {"region": "ap-south"}})
    assert out == "ap-south"


async def test_a_run_the_daemon_refuses_is_explained_to_the_model(client: ptcd.AsyncClient) -> None:
    run_code = await code_tool([region], client=client, policy="no-such-policy")
    out = await run_code.ainvoke({"code": "1 + 1"})
    assert out.startswith("run_code failed before the script could finish: UnknownPolicy: ")


async def test_a_tool_with_an_injected_tool_call_id_gets_one_per_call(client: ptcd.AsyncClient) -> None:
    agent, model = await make_agent(client)
    code = "rows = await asyncio.gather(audit('a'), audit('b'))\nprint([r['note'] for r in rows], len({r['recorded_by'] for r in rows}))"
    assert (await ask(agent, code)).strip() == "['a', 'b'] 2"
    assert "async def audit(note: str)" in model.bound[0]["function"]["description"]
