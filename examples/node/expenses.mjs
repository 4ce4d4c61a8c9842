// Story 2: team expenses. Who is over budget?
//
// One call to list the team, then one call per member for their expense lines:
// in a one-call-per-turn loop that is 1 + N model turns, each pasting every
// expense line into the context. In a ptcd script the per-member calls run
// concurrently (asyncio.gather) and only the names over budget come back.
import { tool } from "ptcd";
import { check, connectOrExplain, metered, report, rng, runOrExit } from "./_shared.mjs";

const rand = rng(7);
const names = ["Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "Edsger", "Radia", "Guido", "Anita"];
const categories = ["travel", "meals", "software", "hardware", "training"];
const team = names.map((name, i) => ({ name, role: i % 3 === 0 ? "lead" : "engineer", budget_cents: i % 3 === 0 ? 450_000 : 400_000 }));
const expenses = new Map(
  team.map((m) => [
    m.name,
    Array.from({ length: 40 + Math.floor(rand() * 20) }, (_, j) => ({
      date: `2025-${String(1 + (j % 12)).padStart(2, "0")}-${String(1 + (j % 28)).padStart(2, "0")}`,
      category: categories[Math.floor(rand() * categories.length)],
      amount_cents: 500 + Math.floor(rand() * 15_000),
      description: `expense line ${j} for ${m.name}: receipt attached, approved by manager`,
    })),
  ]),
);

const { tools, stats } = metered([
  tool(
    {
      name: "get_team_members",
      description: "List the team with each member's yearly budget in cents.",
      inputSchema: { type: "object", properties: {} },
      // The result's shape, so the model's stub shows the keys it can filter on.
      outputSchema: {
        type: "array",
        items: {
          type: "object",
          properties: { name: { type: "string" }, role: { enum: ["lead", "engineer"] }, budget_cents: { type: "integer" } },
          required: ["name", "role", "budget_cents"],
        },
      },
    },
    () => team,
  ),
  tool(
    {
      name: "get_expenses",
      description: "All expense lines of one team member this year.",
      inputSchema: { type: "object", properties: { member: { type: "string" } }, required: ["member"] },
      outputSchema: {
        type: "array",
        items: {
          type: "object",
          properties: {
            date: { type: "string", description: "YYYY-MM-DD" },
            category: { enum: categories },
            amount_cents: { type: "integer" },
            description: { type: "string" },
          },
          required: ["date", "category", "amount_cents", "description"],
        },
      },
    },
    async ({ member }) => {
      const lines = expenses.get(member);
      if (!lines) throw new Error(`no such team member: ${member}`);
      return lines;
    },
  ),
]);

const code = `
import asyncio
team = await get_team_members()
all_lines = await asyncio.gather(*(get_expenses(m["name"]) for m in team))
over = []
for m, lines in zip(team, all_lines):
    spent = sum(l["amount_cents"] for l in lines)
    if spent > m["budget_cents"]:
        over.append({"name": m["name"], "over_by_cents": spent - m["budget_cents"]})
for o in over:
    print(f"{o['name']} is over budget by {o['over_by_cents'] / 100:,.2f}")
`.trimStart();

const client = await connectOrExplain();
try {
  const result = await runOrExit(client, code, tools);
  const expected = team
    .map((m) => ({ name: m.name, over_by_cents: expenses.get(m.name).reduce((s, l) => s + l.amount_cents, 0) - m.budget_cents }))
    .filter((o) => o.over_by_cents > 0);
  check(result.stdout, expected.map((o) => `${o.name} is over budget by ${(o.over_by_cents / 100).toLocaleString("en-US", { minimumFractionDigits: 2 })}\n`).join(""), "expenses");
  console.log(result.render());
  report({ rounds: 2, answer: expected.map((o) => o.name).join(", ") || "nobody", code, result, stats });
} finally {
  await client.close();
}
