// Where ptcd sits in an agent's message loop, for both common API shapes.
//
// A scripted model stands in for the LLM (no network, deterministic): it first
// answers with a `run_code` tool call holding a Python script, then reads the
// tool result and answers in prose. The loop is the same one you would write
// around a real OpenAI or Anthropic client: the model's `run_code` call goes to
// `client.run`, and `result.render()` goes back as the tool result. The
// ordinary tools never reach the model; the script calls them inside ptcd.
import { tool } from "ptcd";
import { connectOrExplain } from "./_shared.mjs";

const orders = [
  { id: 1, customer: "acme", total_cents: 120_00, status: "shipped" },
  { id: 2, customer: "globex", total_cents: 75_50, status: "pending" },
  { id: 3, customer: "acme", total_cents: 310_00, status: "shipped" },
  { id: 4, customer: "initech", total_cents: 42_00, status: "cancelled" },
  { id: 5, customer: "globex", total_cents: 199_99, status: "shipped" },
];
const tools = [
  tool(
    {
      name: "list_orders",
      description: "List orders, optionally only those with a given status.",
      inputSchema: { type: "object", properties: { status: { type: "string" } } },
    },
    ({ status }) => orders.filter((o) => status === undefined || o.status === status),
  ),
];

const QUESTION = "Which customer has the most revenue from shipped orders?";
const SCRIPT = `
orders = await list_orders(status="shipped")
by_customer = {}
for o in orders:
    by_customer[o["customer"]] = by_customer.get(o["customer"], 0) + o["total_cents"]
best = max(by_customer, key=by_customer.get)
{"customer": best, "revenue": by_customer[best] / 100}
`.trimStart();

/** The scripted "model": a tool call first, then an answer built from the tool result. */
function scriptedAnswer(toolResultText) {
  const { customer, revenue } = JSON.parse(toolResultText);
  return `${customer} has the most revenue from shipped orders: $${revenue.toFixed(2)}.`;
}

/** OpenAI Chat Completions shape: `tool_calls` on the assistant message, `role: "tool"` replies. */
const openaiModel = {
  async create({ messages }) {
    const last = messages.at(-1);
    if (last.role === "user") {
      return {
        role: "assistant",
        content: null,
        tool_calls: [{ id: "call_1", type: "function", function: { name: "run_code", arguments: JSON.stringify({ code: SCRIPT }) } }],
      };
    }
    return { role: "assistant", content: scriptedAnswer(last.content) };
  },
};

/** Anthropic Messages shape: `tool_use` content blocks, `tool_result` blocks in a user message. */
const anthropicModel = {
  async create({ messages }) {
    const last = messages.at(-1);
    const toolResult = Array.isArray(last.content) ? last.content.find((b) => b.type === "tool_result") : undefined;
    if (!toolResult) {
      return {
        role: "assistant",
        stop_reason: "tool_use",
        content: [
          { type: "text", text: "Let me compute that." },
          { type: "tool_use", id: "toolu_1", name: "run_code", input: { code: SCRIPT } },
        ],
      };
    }
    return { role: "assistant", stop_reason: "end_turn", content: [{ type: "text", text: scriptedAnswer(toolResult.content) }] };
  },
};

/**
 * What a real call passes as `tools`: the daemon's `tools/definition` gives one
 * `run_code` tool whose description shows `list_orders` as a typed Python stub.
 */
async function modelToolsFor(client, format) {
  return (await client.toolDefinitions({ format, tools })).tools;
}

async function openaiLoop(client) {
  const modelTools = await modelToolsFor(client, "openai");
  const codeTool = modelTools.find((t) => (t.function?.name ?? t.name) === "run_code");
  if (!codeTool) throw new Error(`no run_code tool in ${JSON.stringify(modelTools)}`);
  const messages = [{ role: "user", content: QUESTION }];
  for (;;) {
    const reply = await openaiModel.create({ messages, tools: modelTools });
    messages.push(reply);
    if (!reply.tool_calls?.length) return reply.content;
    for (const call of reply.tool_calls) {
      const { code } = JSON.parse(call.function.arguments);
      const result = await client.run(code, { tools });
      messages.push({ role: "tool", tool_call_id: call.id, content: result.render() });
      console.log(`[openai] run_code -> ${result.status}, ${result.toolCalls} tool calls, result for the model: ${result.render()}`);
    }
  }
}

async function anthropicLoop(client) {
  const modelTools = await modelToolsFor(client, "anthropic");
  if (!modelTools.some((t) => t.name === "run_code")) throw new Error(`no run_code tool in ${JSON.stringify(modelTools)}`);
  const messages = [{ role: "user", content: QUESTION }];
  for (;;) {
    const reply = await anthropicModel.create({ messages, tools: modelTools });
    messages.push({ role: "assistant", content: reply.content });
    if (reply.stop_reason !== "tool_use") return reply.content.filter((b) => b.type === "text").map((b) => b.text).join("");
    const results = [];
    for (const block of reply.content.filter((b) => b.type === "tool_use")) {
      const result = await client.run(block.input.code, { tools });
      results.push({ type: "tool_result", tool_use_id: block.id, content: result.render(), is_error: !result.ok });
      console.log(`[anthropic] run_code -> ${result.status}, ${result.toolCalls} tool calls, result for the model: ${result.render()}`);
    }
    messages.push({ role: "user", content: results });
  }
}

const client = await connectOrExplain();
try {
  const a = await openaiLoop(client);
  console.log(`[openai] answer: ${a}`);
  const b = await anthropicLoop(client);
  console.log(`[anthropic] answer: ${b}`);
  const expected = "acme has the most revenue from shipped orders: $430.00.";
  if (a !== expected || b !== expected) {
    console.error(`MISMATCH: expected ${expected}`);
    process.exit(1);
  }
} finally {
  await client.close();
}
