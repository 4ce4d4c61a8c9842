"""A pydantic-ai agent with and without ptcd: model turns and bytes sent to the model, measured
by pydantic-ai itself.

The same agent answers "who on my team is over budget?" twice, with the team-expense tools:

* as pydantic-ai offers them by default, one tool call per model turn (9 tool calls → 10 turns,
  every expense line of every member in the context);
* through ``ptcd.integrations.pydantic_ai.code_mode`` — one import, one call: the model sees a
  single ``run_code`` tool with typed stubs, writes one script, and reads only what it printed.

pydantic-ai's ``FunctionModel`` stands in for the LLM so it runs offline and deterministically; it
sees exactly what a real model would be sent (messages and tool definitions), which is what is
measured. Run it against a local daemon (no network needed):
    ptcd serve &  python pydantic_ai_agent.py        (needs: pip install "./clients/python[pydantic-ai]")
"""

from __future__ import annotations

import asyncio
import json
import warnings
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

import ptcd
from ptcd.integrations.pydantic_ai import code_mode
from team_expenses import CODE, get_expenses, get_team_members, over_budget

# pydantic cannot build a schema for a `typing.TypedDict` result before Python 3.12 and says so; ptcd
# reads the same return hint itself, so the stubs still show `list[Expense]`.
warnings.filterwarnings("ignore", message="Could not generate return schema")

QUESTION = "Which members of my team are over their expense budget this quarter?"


@dataclass
class Meter:
    """What the model was sent: one entry per model turn (request bytes: messages + tool definitions)."""

    requests: list[int] = field(default_factory=list)

    def record(self, messages: list[ModelMessage], info: AgentInfo) -> None:
        tools = [{"name": t.name, "description": t.description, "parameters": t.parameters_json_schema}
                 for t in info.function_tools]
        self.requests.append(len(ModelMessagesTypeAdapter.dump_json(messages)) + len(json.dumps(tools).encode()))


def _returns(messages: list[ModelMessage]) -> list[ToolReturnPart]:
    return [p for m in messages if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, ToolReturnPart)]


def one_call_per_turn(meter: Meter):  # type: ignore[no-untyped-def]
    """A model that calls one tool per turn, then adds the numbers up itself."""

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        meter.record(messages, info)
        returns = _returns(messages)
        if not returns:
            return ModelResponse(parts=[ToolCallPart("get_team_members", {})])
        members = returns[0].content
        done = len(returns) - 1
        if done < len(members):
            return ModelResponse(parts=[ToolCallPart("get_expenses", {"member": members[done]["name"]})])
        over = [m["name"] for m, r in zip(members, returns[1:])
                if sum(e["amount_cents"] for e in r.content) > m["budget_cents"]]
        return ModelResponse(parts=[TextPart("over budget: " + ", ".join(over))])

    return model


def writes_a_script(meter: Meter):  # type: ignore[no-untyped-def]
    """A model that writes one script against the run_code stubs, then answers from its output."""

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        meter.record(messages, info)
        returns = _returns(messages)
        if not returns:
            assert [t.name for t in info.function_tools] == ["run_code"]
            assert "async def get_expenses(member: str) -> list[Expense]:" in (info.function_tools[0].description or "")
            return ModelResponse(parts=[ToolCallPart("run_code", {"code": CODE})])
        printed = str(returns[-1].content)
        over = [line.split(":")[0] for line in printed.splitlines() if ": spent " in line]
        return ModelResponse(parts=[TextPart("over budget: " + ", ".join(sorted(over, key=over_budget().index)))])

    return model


async def main() -> None:
    classic, coded = Meter(), Meter()
    plain = Agent(FunctionModel(one_call_per_turn(classic)), tools=[get_team_members, get_expenses])
    answer_plain = (await plain.run(QUESTION)).output

    async with ptcd.AsyncClient() as client:
        with_ptcd = Agent(FunctionModel(writes_a_script(coded)),
                          toolsets=[code_mode([get_team_members, get_expenses], client=client)])
        answer_ptcd = (await with_ptcd.run(QUESTION)).output

    expected = "over budget: " + ", ".join(over_budget())
    assert answer_plain == expected, answer_plain
    assert answer_ptcd == expected, answer_ptcd
    print(answer_ptcd)
    print()
    print(f"pydantic-ai with ptcd: {len(coded.requests)} model turns, last request {coded.requests[-1]:,} bytes, "
          f"{sum(coded.requests):,} bytes sent in all")
    print(f"pydantic-ai, one tool call per turn: {len(classic.requests)} model turns, last request "
          f"{classic.requests[-1]:,} bytes, {sum(classic.requests):,} bytes sent in all")
    print(f"saved: {1 - coded.requests[-1] / classic.requests[-1]:.1%} of the last request, "
          f"{1 - sum(coded.requests) / sum(classic.requests):.1%} of all bytes sent, "
          f"{len(classic.requests) - len(coded.requests)} model turns")


if __name__ == "__main__":
    asyncio.run(main())
