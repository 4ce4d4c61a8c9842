"""Who on the team is over budget? Fan out over members in a script, not over model turns.

The story: the model has ``get_team_members()`` and ``get_expenses(member)``. In a classic loop it
calls the first, then the second once per member, turn after turn, with every expense line
(dates, categories, descriptions) piling up in its context, and then still has to add the numbers
in its head. With ptcd it writes one script that fetches all members' expenses concurrently, sums
them exactly, and prints only the people over budget.

Run it against a local daemon (no network needed):  ptcd serve &  python team_expenses.py
"""

from __future__ import annotations

import asyncio
import random
from typing import TypedDict

import ptcd
from _context import ContextMeter, report


class Member(TypedDict):
    name: str
    role: str
    budget_cents: int


class Expense(TypedDict):
    date: str
    category: str
    description: str
    amount_cents: int


_rng = random.Random(7)
MEMBERS: list[Member] = [
    {"name": name, "role": role, "budget_cents": budget * 100}
    for name, role, budget in [
        ("Ana", "engineer", 3_000), ("Bo", "designer", 2_500), ("Chen", "engineer", 3_000),
        ("Dara", "manager", 5_000), ("Eli", "sales", 6_000), ("Femi", "engineer", 3_000),
        ("Gus", "support", 1_500), ("Hana", "sales", 6_000),
    ]
]
_CATEGORIES = ["travel", "meals", "software", "hardware", "training", "office"]
EXPENSES: dict[str, list[Expense]] = {
    member["name"]: [
        {
            "date": f"2025-{_rng.randrange(7, 10):02d}-{_rng.randrange(1, 29):02d}",
            "category": (category := _rng.choice(_CATEGORIES)),
            "description": f"{category} expense #{i} for {member['name']}, see receipt attached to the claim",
            "amount_cents": _rng.randrange(1_000, 45_000),
        }
        for i in range(_rng.randrange(15, 35))
    ]
    for member in MEMBERS
}


async def get_team_members() -> list[Member]:
    """List the team: each member's name, role and quarterly budget in cents."""
    return MEMBERS


async def get_expenses(member: str) -> list[Expense]:
    """All expense lines a team member filed this quarter.

    Args:
        member: The member's name, as returned by get_team_members.
    """
    if member not in EXPENSES:
        raise KeyError(f"no team member named {member!r}")
    return EXPENSES[member]


CODE = """
import asyncio
members = await get_team_members()
expenses = await asyncio.gather(*(get_expenses(m["name"]) for m in members))
over = []
for m, lines in zip(members, expenses):
    spent = sum(e["amount_cents"] for e in lines)
    if spent > m["budget_cents"]:
        over.append((spent - m["budget_cents"], m["name"], spent, m["budget_cents"]))
for excess, name, spent, budget in sorted(over, reverse=True):
    print(f"{name}: spent ${spent / 100:,.2f} of ${budget / 100:,.2f} (over by ${excess / 100:,.2f})")
print(f"{len(over)} of {len(members)} members are over budget")
"""


def over_budget() -> list[str]:
    """Ground truth, computed directly."""
    return [
        member["name"]
        for member in MEMBERS
        if sum(e["amount_cents"] for e in EXPENSES[member["name"]]) > member["budget_cents"]
    ]


async def main() -> None:
    meter = ContextMeter()
    tools = [meter.metered(get_team_members), meter.metered(get_expenses)]
    async with ptcd.AsyncClient() as client:
        result = await client.run(CODE, tools=tools)
        print(result.render())
        if not result.ok:
            raise SystemExit(1)
        await report(client, CODE, result, meter, tools)
    expected = over_budget()
    assert f"{len(expected)} of {len(MEMBERS)} members are over budget" in result.stdout
    for name in expected:
        assert f"\n{name}: spent" in "\n" + result.stdout, f"{name} should be listed"


if __name__ == "__main__":
    asyncio.run(main())
