/**
 * The OpenAI Agents JS SDK adapter end to end: the SDK's own `Runner` and `Agent`, driven
 * offline by a scripted implementation of the SDK's `Model` interface (the SDK ships no
 * fake model), with a `run_code` tool from `runCodeTool` and the real daemon behind it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Agent, Runner, tool, Usage, type Model, type ModelRequest, type ModelResponse, type RunContext } from "@openai/agents-core";
import { z } from "zod";
import { connect, type Client } from "../src/index.js";
import { runCodeTool } from "../src/openai-agents.js";
import { deferred, startDaemon, SUITE_TIMEOUT_MS, type Daemon } from "./daemon.js";

let daemon: Daemon;
let client: Client;
const runner = new Runner({ tracingDisabled: true });

before(async () => {
  daemon = await startDaemon();
  client = await connect({ socket: daemon.socket });
}, { timeout: SUITE_TIMEOUT_MS });

after(async () => {
  await client?.close();
  await daemon?.stop();
});

/** A model that writes `code` into one `run_code` call, then answers with the tool's output. */
class ScriptedModel implements Model {
  readonly requests: ModelRequest[] = [];
  constructor(readonly code: string) {}

  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    this.requests.push(request);
    const items = Array.isArray(request.input) ? request.input : [];
    const result = [...items].reverse().find((i) => i.type === "function_call_result");
    if (!result || result.type !== "function_call_result") {
      return {
        usage: new Usage(),
        output: [{ type: "function_call", callId: "call-1", name: "run_code", arguments: JSON.stringify({ code: this.code }), status: "completed" }],
      };
    }
    const text = typeof result.output === "string" ? result.output : "text" in result.output ? String(result.output.text) : JSON.stringify(result.output);
    return {
      usage: new Usage(),
      output: [{ type: "message", role: "assistant", status: "completed", content: [{ type: "output_text", text: `answer: ${text}` }] }],
    };
  }

  // eslint-disable-next-line require-yield
  async *getStreamedResponse(): AsyncIterable<never> {
    throw new Error("not used by these tests");
  }
}

/** Resolves once `n` arrivals happened: proves calls are in flight together, without timing. */
function barrier(n: number): { arrive(): Promise<void> } {
  let count = 0;
  const all = deferred();
  return {
    arrive() {
      count += 1;
      if (count === n) all.resolve();
      return all.promise;
    },
  };
}

describe("openai-agents adapter (Runner + scripted Model + real daemon)", { timeout: SUITE_TIMEOUT_MS }, () => {
  it("one call gives a run_code tool; a script gathers 20 calls in one model turn", async () => {
    const together = barrier(20);
    const getWeather = tool({
      name: "get_weather",
      description: "Current weather in a city.",
      parameters: z.object({ city: z.string() }),
      execute: async ({ city }) => {
        await together.arrive();
        return { city, temp_c: Number(city.split("-")[1]) };
      },
    });
    const model = new ScriptedModel(
      "r = await asyncio.gather(*(get_weather(city=f'city-{i}') for i in range(20)))\nmax(x['temp_c'] for x in r)",
    );
    const agent = new Agent({ name: "weather", model, tools: [await runCodeTool(client, [getWeather])] });
    const result = await runner.run(agent, "hottest?");
    assert.equal(result.finalOutput, "answer: 19");
    assert.equal(model.requests.length, 2, "two model turns");
    const offered = model.requests[0]!.tools as unknown as { name: string; description?: string }[];
    assert.deepEqual(offered.map((t) => t.name), ["run_code"], "the model sees one tool; get_weather is only callable from the script");
    assert.match(offered[0]?.description ?? "", /async def get_weather\(city: str/);
  });

  it("tool errors reach the script as ToolError, even through the SDK's default errorFunction", async () => {
    const plain = tool({
      name: "plain",
      description: "Fails; default errorFunction (the SDK would turn this into a string).",
      parameters: z.object({}),
      execute: async (): Promise<string> => {
        throw new Error("backend down");
      },
    });
    const loud = tool({
      name: "loud",
      description: "Fails; errorFunction: null passes the error on.",
      parameters: z.object({}),
      execute: async (): Promise<string> => {
        throw new RangeError("quota exceeded");
      },
      errorFunction: null,
    });
    const model = new ScriptedModel(
      [
        "out = []",
        "for f in (plain, loud):",
        "    try:",
        "        out.append(f'data: {await f()}')",
        "    except ToolError as e:",
        "        out.append(f'caught: {e.message}')",
        "'\\n'.join(out)",
      ].join("\n"),
    );
    const agent = new Agent({ name: "errors", model, tools: [await runCodeTool(client, [plain, loud])] });
    const result = await runner.run(agent, "go");
    const [first, second] = String(result.finalOutput).replace(/^answer: /, "").split("\n");
    assert.match(first ?? "", /^caught: Error: plain failed: An error occurred while running the tool/);
    assert.equal(second, "caught: RangeError: quota exceeded");
  });

  it("the agent run's context reaches tools called from the script; two concurrent runs keep theirs apart", async () => {
    const both = barrier(2);
    const whoami = tool({
      name: "whoami",
      description: "The user this agent acts for.",
      parameters: z.object({ n: z.number() }),
      execute: async ({ n }, runContext?: RunContext<{ userId: string }>) => {
        if (n === 0) await both.arrive(); // both runs have a call in flight before either answers
        return `${runContext?.context.userId}#${n}`;
      },
    });
    const runCode = await runCodeTool<{ userId: string }>(client, [whoami]);
    const code = "'|'.join(await asyncio.gather(*(whoami(n=i) for i in range(3))))";
    const go = (userId: string) =>
      runner.run(new Agent<{ userId: string }>({ name: "me", model: new ScriptedModel(code), tools: [runCode] }), "who?", { context: { userId } });
    const [alice, bob] = await Promise.all([go("alice"), go("bob")]);
    assert.equal(alice.finalOutput, "answer: alice#0|alice#1|alice#2");
    assert.equal(bob.finalOutput, "answer: bob#0|bob#1|bob#2");
  });

  it("a tool that needs approval is refused from a script, and a failed script reaches the model with its traceback", async () => {
    const pay = tool({
      name: "pay",
      description: "Pays.",
      parameters: z.object({ cents: z.number() }),
      needsApproval: async (_ctx, { cents }) => cents > 100,
      execute: async ({ cents }) => `paid ${cents}`,
    });
    const model = new ScriptedModel("print(await pay(cents=5))\nawait pay(cents=500)");
    const agent = new Agent({ name: "pay", model, tools: [await runCodeTool(client, [pay])] });
    const result = await runner.run(agent, "pay");
    const out = String(result.finalOutput);
    assert.match(out, /paid 5/);
    assert.match(out, /error: ToolError: Error: pay needs approval for these arguments/);
    assert.match(out, /line 2/);
  });

  it("a run the daemon refuses reaches the model as what happened, not the SDK's generic error", async () => {
    const model = new ScriptedModel("1");
    const agent = new Agent({ name: "refused", model, tools: [await runCodeTool(client, [], { policy: "no-such-policy" })] });
    const result = await runner.run(agent, "go");
    assert.match(String(result.finalOutput), /^answer: run_code failed before the script could finish: UnknownPolicyError: /);
  });
});
