"""OpenAI Agents SDK + ptcd end to end: a real Agent and Runner, driven by the SDK's own
ScriptedModel (agents.testing), whose function tools are offered as one ``run_code`` tool run by
the real daemon."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel

pytest.importorskip("agents")

from agents import Agent, RunContextWrapper, Runner, function_tool  # noqa: E402
from agents.testing import ModelCall, ModelStep, ScriptedModel, assistant_message, function_call  # noqa: E402

import ptcd  # noqa: E402
from agents import set_tracing_disabled  # noqa: E402
from ptcd.integrations.openai_agents import code_tool  # noqa: E402

set_tracing_disabled(True)  # offline: no trace export


@dataclass
class Account:
    tenant: str


class Invoice(BaseModel):
    id: int
    tenant: str
    paid: bool
    amount_cents: int


@function_tool(output_type=Invoice)
async def get_invoice(ctx: RunContextWrapper[Account], invoice_id: int) -> Invoice:
    """Look an invoice up by id."""
    await asyncio.sleep(0)
    return Invoice(id=invoice_id, tenant=ctx.context.tenant, paid=invoice_id % 3 == 0, amount_cents=250 * invoice_id)


@function_tool
def charge(card: str) -> str:
    """Charge a card (always declined here)."""
    raise RuntimeError(f"card {card} declined")


def _text(item: Any) -> str | None:
    item = item if isinstance(item, dict) else item.model_dump()
    if item.get("type") == "function_call_output":
        return str(item["output"])
    return None


def script_writer() -> ScriptedModel:
    """Turn 1: run the user's message as a script; turn 2: answer with what the script printed."""

    def respond(call: ModelCall) -> ModelStep:
        items = call.input if isinstance(call.input, list) else [{"role": "user", "content": call.input}]
        output = _text(items[-1])
        if output is not None:
            return ModelStep(output=[assistant_message(output)])
        prompt = next(i["content"] for i in items if isinstance(i, dict) and i.get("role") == "user")
        return ModelStep(output=[function_call("run_code", {"code": prompt}, call_id="call-1")])

    return ScriptedModel([ModelStep.respond(respond), ModelStep.respond(respond)])


async def make_agent(client: ptcd.AsyncClient) -> tuple[Agent[Account], ScriptedModel]:
    model = script_writer()
    run_code = await code_tool([get_invoice, charge], client=client)
    return Agent[Account](name="billing", model=model, tools=[run_code]), model


async def test_gather_over_20_calls_in_one_model_turn_with_typed_stubs(client: ptcd.AsyncClient) -> None:
    agent, model = await make_agent(client)
    code = (
        "rows = await asyncio.gather(*(get_invoice(i) for i in range(1, 21)))\n"
        "unpaid = [r for r in rows if not r['paid']]\n"
        "print(len(rows), len(unpaid), sum(r['amount_cents'] for r in unpaid), rows[0]['tenant'])"
    )
    result = await Runner.run(agent, code, context=Account("acme"))
    assert result.final_output.strip() == "20 14 36750 acme"
    assert len(model.calls) == 2
    [tool] = model.calls[0].tools
    assert tool.name == "run_code"
    assert "async def get_invoice(invoice_id: int) -> Invoice:" in tool.description
    assert "class Invoice(TypedDict):" in tool.description and "    paid: bool" in tool.description
    # A tool without an output type says its result shape is unknown.
    assert "async def charge(card: str) -> Any:" in tool.description


async def test_tool_errors_reach_the_script_as_tool_error_not_as_data(client: ptcd.AsyncClient) -> None:
    agent, _ = await make_agent(client)
    code = (
        "try:\n"
        "    r = await charge('4242')\n"
        "    print('got data:', r)\n"
        "except ToolError as e:\n"
        "    print('caught:', e.message)\n"
        "try:\n"
        "    await get_invoice('seven')\n"
        "except ToolError as e:\n"
        "    print('invalid arguments caught')"
    )
    result = await Runner.run(agent, code, context=Account("acme"))
    assert result.final_output.splitlines() == ["caught: RuntimeError: card 4242 declined", "invalid arguments caught"]


async def test_two_concurrent_agent_runs_keep_their_contexts_apart(client: ptcd.AsyncClient) -> None:
    first_agent, _ = await make_agent(client)
    second_agent, _ = await make_agent(client)
    code = "rows = await asyncio.gather(*(get_invoice(i) for i in range(10)))\nprint(sorted({r['tenant'] for r in rows}))"
    first, second = await asyncio.gather(
        Runner.run(first_agent, code, context=Account("acme")),
        Runner.run(second_agent, code, context=Account("globex")),
    )
    assert first.final_output.strip() == "['acme']" and second.final_output.strip() == "['globex']"


async def test_a_run_the_daemon_refuses_is_explained_to_the_model(client: ptcd.AsyncClient) -> None:
    run_code = await code_tool([get_invoice], client=client, limits={"timeout_ms": 10**9})
    agent = Agent[Account](name="billing", model=script_writer(), tools=[run_code])
    result = await Runner.run(agent, "1 + 1", context=Account("acme"))
    assert result.final_output.startswith("run_code failed before the script could finish: LimitsExceedPolicy: ")
