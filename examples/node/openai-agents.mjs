// The OpenAI Agents JS SDK with ptcd: one import, one call.
//
// The agent's function tools (zod parameters, execute with the run's context) stay as
// they are; `runCodeTool(client, tools)` turns them into one `run_code` tool whose script
// calls them. The SDK's Runner drives a scripted implementation of its own `Model`
// interface (no network, no API key) through the recent-errors story twice:
//   - with ptcd: the script fetches the logs and keeps the last five errors;
//   - without: the model calls get_logs itself and every entry enters its context.
// Turns are the model calls the Runner made; bytes are measured on the input it was sent.
import { Agent, Runner, tool, Usage } from "@openai/agents-core";
import { z } from "zod";
import { runCodeTool } from "ptcd/openai-agents";
import { bytes, connectOrExplain, rng } from "./_shared.mjs";

const rand = rng(5);
const services = ["api", "billing", "auth"];
const logs = Array.from({ length: 2000 }, (_, i) => {
  const level = rand() < 0.03 ? "ERROR" : "INFO";
  const service = services[Math.floor(rand() * services.length)];
  return { ts: new Date(Date.UTC(2025, 5, 1) + i * 2000).toISOString(), level, service, message: `${service}: request ${i} ${level === "ERROR" ? "failed: upstream timeout" : "ok"}` };
});

const getLogs = tool({
  name: "get_logs",
  description: "The service's recent log entries, oldest first.",
  parameters: z.object({ service: z.string().nullable().describe("only this service; null for all") }),
  outputSchema: z.array(z.object({ ts: z.string(), level: z.enum(["INFO", "ERROR"]), service: z.string(), message: z.string() })),
  // The run's context reaches tools called from the script, as it does for direct calls.
  execute: async ({ service }, runContext) => {
    if (!runContext?.context.mayReadLogs) throw new Error("not allowed to read logs");
    return logs.filter((e) => service === null || e.service === service);
  },
});

const SCRIPT = `
entries = await get_logs(service=None)
errors = [e for e in entries if e["level"] == "ERROR"][-5:]
"\\n".join(f"{e['ts']} {e['message']}" for e in errors)
`.trimStart();

const usage = new Usage();
const message = (text) => ({ type: "message", role: "assistant", status: "completed", content: [{ type: "output_text", text }] });
const call = (name, args) => ({ type: "function_call", callId: `call-${name}`, name, arguments: JSON.stringify(args), status: "completed" });
const lastFive = (entries) => entries.filter((e) => e.level === "ERROR").slice(-5).map((e) => `${e.ts} ${e.message}`).join("\n");

/** A `Model` that acts as `turn(items)` says and records the input it was sent. */
class ScriptedModel {
  inputs = [];
  constructor(turn) {
    this.turn = turn;
  }
  async getResponse(request) {
    const items = Array.isArray(request.input) ? request.input : [];
    this.inputs.push(items);
    return { usage, output: [this.turn(items)] };
  }
  async *getStreamedResponse() {
    throw new Error("not used");
  }
}

const outputOf = (items) => {
  const r = items.findLast((i) => i.type === "function_call_result");
  return r && (typeof r.output === "string" ? r.output : r.output.text);
};
const withPtcd = new ScriptedModel((items) => (outputOf(items) === undefined ? call("run_code", { code: SCRIPT }) : message(outputOf(items))));
const withoutPtcd = new ScriptedModel((items) =>
  outputOf(items) === undefined ? call("get_logs", { service: null }) : message(lastFive(JSON.parse(outputOf(items)))),
);

/** Bytes of tool calls and their results in the last input the model was sent. */
const contextBytes = (items) =>
  items.reduce((n, i) => n + (i.type === "function_call" ? bytes(i.arguments) : i.type === "function_call_result" ? bytes(JSON.stringify(i.output)) : 0), 0);

const client = await connectOrExplain();
try {
  const runner = new Runner({ tracingDisabled: true });
  const context = { mayReadLogs: true };
  const a = await runner.run(new Agent({ name: "ops", model: withPtcd, tools: [await runCodeTool(client, [getLogs])] }), "Last five errors?", { context });
  const b = await runner.run(new Agent({ name: "ops", model: withoutPtcd, tools: [getLogs] }), "Last five errors?", { context });
  if (a.finalOutput !== b.finalOutput || a.finalOutput !== lastFive(logs)) {
    console.error(`MISMATCH:\nwith ptcd:\n${a.finalOutput}\nwithout:\n${b.finalOutput}`);
    process.exit(1);
  }
  const ptcBytes = contextBytes(withPtcd.inputs.at(-1));
  const loopBytes = contextBytes(withoutPtcd.inputs.at(-1));
  console.log(a.finalOutput);
  console.log(`model turns (Runner model calls) with ptcd: ${withPtcd.inputs.length} | without: ${withoutPtcd.inputs.length}`);
  console.log(`bytes of tool calls and results in the model's context with ptcd: ${ptcBytes} | without: ${loopBytes}`);
  console.log(`ratio: ${(loopBytes / ptcBytes).toFixed(1)}x less context with ptcd`);
} finally {
  await client.close();
}
