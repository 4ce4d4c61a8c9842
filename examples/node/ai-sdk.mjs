// The Vercel AI SDK with ptcd: one import, one call.
//
// Your AI SDK tools (zod schemas, execute, experimental_context) stay as they are;
// `runCodeTool(client, tools)` turns them into one `run_code` tool whose script calls
// them. The model here is the AI SDK's own offline MockLanguageModelV3, scripted to act
// like a model would, so the example runs without a network or an API key. It answers
// the team-expenses question twice, through the same agent loop (generateText):
//   - with ptcd: one script fans out over every member inside one run;
//   - without: the model calls the tools itself, every expense line entering its context.
// Turns are the AI SDK's own steps; bytes are measured on the prompts the model received.
import { generateText, stepCountIs, tool } from "ai";
import { MockLanguageModelV3 } from "ai/test";
import { z } from "zod";
import { runCodeTool } from "ptcd/ai-sdk";
import { bytes, connectOrExplain, rng } from "./_shared.mjs";

// --- the app's own AI SDK tools -------------------------------------------------------
const rand = rng(11);
const names = ["Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances"];
const team = names.map((name, i) => ({ name, budget_cents: i % 2 === 0 ? 350_000 : 300_000 }));
const expenses = new Map(
  team.map((m) => [m.name, Array.from({ length: 40 }, (_, j) => ({ amount_cents: 500 + Math.floor(rand() * 15_000), note: `line ${j}: receipt attached` }))]),
);

const tools = {
  get_team_members: tool({
    description: "The team, with each member's yearly budget in cents.",
    inputSchema: z.object({}),
    outputSchema: z.array(z.object({ name: z.string(), budget_cents: z.number().int() })),
    // experimental_context reaches tools called from the script, as it does for direct calls.
    execute: async (_input, { experimental_context }) => team.filter((m) => experimental_context.canSee(m.name)),
  }),
  get_expenses: tool({
    description: "All expense lines of one team member this year.",
    inputSchema: z.object({ member: z.string() }),
    outputSchema: z.array(z.object({ amount_cents: z.number().int(), note: z.string() })),
    execute: async ({ member }) => {
      const lines = expenses.get(member);
      if (!lines) throw new Error(`no such team member: ${member}`);
      return lines;
    },
  }),
};
const context = { canSee: () => true };

// --- a scripted model --------------------------------------------------------------------
const usage = { inputTokens: { total: 0, noCache: 0, cacheRead: undefined, cacheWrite: undefined }, outputTokens: { total: 0, text: 0, reasoning: undefined } };
const call = (id, toolName, input) => ({ type: "tool-call", toolCallId: id, toolName, input: JSON.stringify(input) });
const reply = (content) => ({ content, finishReason: { unified: content[0].type === "text" ? "stop" : "tool-calls", raw: undefined }, usage, warnings: [] });
/** The tool results in a prompt, each with the input of the call it answers. */
function toolResults(prompt) {
  const inputs = new Map();
  for (const m of prompt) if (m.role === "assistant") for (const p of m.content) if (p.type === "tool-call") inputs.set(p.toolCallId, p.input);
  return prompt
    .filter((m) => m.role === "tool")
    .flatMap((m) => m.content.filter((p) => p.type === "tool-result"))
    .map((r) => ({ ...r, input: inputs.get(r.toolCallId) }));
}

/** A model that acts as `turns(prompt)` says; records what it was sent. */
function mockModel(turns) {
  const seen = { prompts: [] };
  const model = new MockLanguageModelV3({
    doGenerate: async ({ prompt }) => {
      seen.prompts.push(prompt);
      return reply(turns(prompt));
    },
  });
  return { model, seen };
}

const SCRIPT = `
team = await get_team_members()
spent = await asyncio.gather(*(get_expenses(m["name"]) for m in team))
over = [m["name"] for m, lines in zip(team, spent) if sum(l["amount_cents"] for l in lines) > m["budget_cents"]]
", ".join(over) or "nobody"
`.trimStart();

const withPtcd = mockModel((prompt) => {
  const [result] = toolResults(prompt);
  return result ? [{ type: "text", text: `Over budget: ${result.output.value}` }] : [call("c1", "run_code", { code: SCRIPT })];
});

const withoutPtcd = mockModel((prompt) => {
  const results = toolResults(prompt);
  if (results.length === 0) return [call("c1", "get_team_members", {})];
  const members = results.find((r) => r.toolName === "get_team_members").output.value;
  if (results.length === 1) return members.map((m, i) => call(`e${i}`, "get_expenses", { member: m.name }));
  const over = members.filter((m) => {
    const lines = results.find((r) => r.toolName === "get_expenses" && r.input.member === m.name).output.value;
    return lines.reduce((s, l) => s + l.amount_cents, 0) > m.budget_cents;
  });
  return [{ type: "text", text: `Over budget: ${over.map((m) => m.name).join(", ") || "nobody"}` }];
});

/** Bytes of tool calls and tool results in the last prompt: what the tools put into the context. */
function contextBytes(prompt) {
  let n = 0;
  for (const m of prompt) {
    if (m.role === "assistant") for (const p of m.content) if (p.type === "tool-call") n += bytes(JSON.stringify(p.input));
    if (m.role === "tool") for (const p of m.content) if (p.type === "tool-result") n += bytes(JSON.stringify(p.output.value));
  }
  return n;
}

// --- the agent loop, both ways -----------------------------------------------------------
const client = await connectOrExplain();
try {
  const a = await generateText({
    model: withPtcd.model,
    tools: { run_code: await runCodeTool(client, tools) }, // <- the one call
    experimental_context: context,
    stopWhen: stepCountIs(10),
    prompt: "Who on the team is over budget?",
  });
  const b = await generateText({
    model: withoutPtcd.model,
    tools,
    experimental_context: context,
    stopWhen: stepCountIs(10),
    prompt: "Who on the team is over budget?",
  });
  if (a.text !== b.text) {
    console.error(`MISMATCH: with ptcd "${a.text}", without "${b.text}"`);
    process.exit(1);
  }
  const ptcBytes = contextBytes(withPtcd.seen.prompts.at(-1));
  const loopBytes = contextBytes(withoutPtcd.seen.prompts.at(-1));
  console.log(`answer: ${a.text}`);
  console.log(`model turns (AI SDK steps) with ptcd: ${a.steps.length} | without: ${b.steps.length} (parallel tool calls)`);
  console.log(`bytes of tool calls and results in the model's context with ptcd: ${ptcBytes} | without: ${loopBytes}`);
  console.log(`ratio: ${(loopBytes / ptcBytes).toFixed(1)}x less context with ptcd`);
} finally {
  await client.close();
}
