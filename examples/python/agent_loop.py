"""Where ptcd sits in a model's tool loop, OpenAI-style and Anthropic-style.

The model is offered one tool, ``run_code``. When it calls it, the host passes the code to
``client.run`` (with the host's real tools: here the team-expense tools), and hands
``result.render()`` back as that call's tool result. Everything else about the loop stays the same.

A scripted model stands in for the LLM so the example runs offline and deterministically: on the
first turn it "writes" a script, on the second it answers from the tool result it was given. Swap
``ScriptedModel`` for a real SDK call (``client.chat.completions.create`` or
``client.messages.create``) and the loop does not change.

Run it against a local daemon (no network needed):  ptcd serve &  python agent_loop.py
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import ptcd
from team_expenses import get_expenses, get_team_members, over_budget

QUESTION = "Which members of my team are over their expense budget this quarter?"
TOOLS = [get_team_members, get_expenses]

MODEL_CODE = """
import asyncio
members = await get_team_members()
spent = await asyncio.gather(*(get_expenses(m["name"]) for m in members))
over = [m["name"] for m, lines in zip(members, spent) if sum(e["amount_cents"] for e in lines) > m["budget_cents"]]
print("over budget:", ", ".join(over) if over else "nobody")
"""


class ScriptedModel:
    """A stand-in for the LLM: first it writes code, then it answers from the tool result."""

    def __init__(self) -> None:
        self.turn = 0

    def next_step(self, last_tool_result: str | None) -> tuple[str | None, str]:
        """Returns ``(code, text)``: code to run (or None when answering) and the message text."""
        self.turn += 1
        if last_tool_result is None:
            return MODEL_CODE, "I'll compute that with a short script over the expense tools."
        names = last_tool_result.split("over budget:", 1)[-1].strip()
        return None, f"These team members are over budget: {names}."

    # OpenAI Chat Completions shape ---------------------------------------------------------
    def chat_completion(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
        assert any(_tool_name(t) == "run_code" for t in tools), "the model must be offered run_code"
        last = messages[-1]["content"] if messages[-1]["role"] == "tool" else None
        code, text = self.next_step(last)
        if code is None:
            return {"role": "assistant", "content": text}
        call = {
            "id": f"call_{self.turn}",
            "type": "function",
            "function": {"name": "run_code", "arguments": json.dumps({"code": code})},
        }
        return {"role": "assistant", "content": text, "tool_calls": [call]}

    # Anthropic Messages shape --------------------------------------------------------------
    def message(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
        assert any(_tool_name(t) == "run_code" for t in tools), "the model must be offered run_code"
        last_content = messages[-1]["content"]
        last = None
        if isinstance(last_content, list):
            last = next(block["content"] for block in last_content if block["type"] == "tool_result")
        code, text = self.next_step(last)
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        if code is None:
            return {"role": "assistant", "content": content, "stop_reason": "end_turn"}
        content.append({"type": "tool_use", "id": f"toolu_{self.turn}", "name": "run_code", "input": {"code": code}})
        return {"role": "assistant", "content": content, "stop_reason": "tool_use"}


def _tool_name(definition: dict[str, Any]) -> str | None:
    return definition.get("name") or definition.get("function", {}).get("name")


async def tool_definitions(client: ptcd.AsyncClient, fmt: str) -> list[dict[str, Any]]:
    """The ``run_code`` tool in the provider's format, with stubs of our tools in its description."""
    return (await client.tool_definitions(TOOLS, format=fmt))["tools"]


async def openai_style(client: ptcd.AsyncClient) -> tuple[str, list[dict[str, Any]]]:
    tools = await tool_definitions(client, "openai")
    model = ScriptedModel()
    messages: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    while True:
        reply = model.chat_completion(messages, tools)
        messages.append(reply)
        if not reply.get("tool_calls"):
            return str(reply["content"]), messages
        for call in reply["tool_calls"]:
            code = json.loads(call["function"]["arguments"])["code"]
            result = await client.run(code, tools=TOOLS)  # <- ptcd runs the script, serves its tool calls
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": result.render()})


async def anthropic_style(client: ptcd.AsyncClient) -> tuple[str, list[dict[str, Any]]]:
    tools = await tool_definitions(client, "anthropic")
    model = ScriptedModel()
    messages: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    while True:
        reply = model.message(messages, tools)
        messages.append({"role": "assistant", "content": reply["content"]})
        if reply["stop_reason"] != "tool_use":
            return " ".join(block["text"] for block in reply["content"] if block["type"] == "text"), messages
        results = []
        for block in reply["content"]:
            if block["type"] == "tool_use":
                result = await client.run(block["input"]["code"], tools=TOOLS)
                results.append({
                    "type": "tool_result",
                    "tool_use_id": block["id"],
                    "content": result.render(),
                    "is_error": not result.ok,
                })
        messages.append({"role": "user", "content": results})


async def main() -> None:
    async with ptcd.AsyncClient() as client:
        openai_answer, openai_messages = await openai_style(client)
        anthropic_answer, anthropic_messages = await anthropic_style(client)
    print("OpenAI-style loop:   ", openai_answer)
    print("Anthropic-style loop:", anthropic_answer)
    for style, messages in (("OpenAI", openai_messages), ("Anthropic", anthropic_messages)):
        size = len(json.dumps(messages).encode())
        print(f"{style}-style transcript: {len(messages)} messages, {size:,} bytes in the model's context")
    expected = ", ".join(over_budget())
    assert openai_answer == anthropic_answer == f"These team members are over budget: {expected}."


if __name__ == "__main__":
    asyncio.run(main())
