/**
 * The Vercel AI SDK adapter end to end: `generateText` driven by the AI SDK's own
 * offline `MockLanguageModelV3`, a `run_code` tool from `runCodeTool`, the real
 * daemon behind it. The mock model plays a model that writes one script, then
 * answers from the tool result it was given.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { generateText, stepCountIs, tool, type ToolExecutionOptions } from "ai";
import { MockLanguageModelV3 } from "ai/test";
import { z } from "zod";
import { connect, type Client } from "../src/index.js";
import { fromAiSdkTools, runCodeTool } from "../src/ai-sdk.js";
import { deferred, startDaemon, SUITE_TIMEOUT_MS, type Daemon } from "./daemon.js";

let daemon: Daemon;
let client: Client;

before(async () => {
  daemon = await startDaemon();
  client = await connect({ socket: daemon.socket });
}, { timeout: SUITE_TIMEOUT_MS });

after(async () => {
  await client?.close();
  await daemon?.stop();
});

type Prompt = Parameters<MockLanguageModelV3["doGenerate"]>[0]["prompt"];

/** What the model was given as the last tool result: the output part of the last `tool` message. */
function lastToolOutput(prompt: Prompt): { type: string; value: unknown } | undefined {
  const last = prompt.at(-1);
  if (last?.role !== "tool") return undefined;
  const part = last.content.find((p) => p.type === "tool-result");
  return part?.type === "tool-result" ? (part.output as { type: string; value: unknown }) : undefined;
}

const usage = {
  inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 10, text: 10, reasoning: undefined },
};

/**
 * The AI SDK's mock model scripted as a model would act: turn 1 calls `run_code` with
 * `code`; turn 2 answers with the text of the tool result it read.
 */
function scriptedModel(code: string) {
  const seen: { tools: string[]; description: string; outputs: { type: string; value: unknown }[] } = { tools: [], description: "", outputs: [] };
  const model = new MockLanguageModelV3({
    doGenerate: async ({ prompt, tools }) => {
      const output = lastToolOutput(prompt);
      if (!output) {
        seen.tools = (tools ?? []).map((t) => t.name);
        const runCode = tools?.find((t) => t.name === "run_code");
        seen.description = runCode && "description" in runCode ? (runCode.description ?? "") : "";
        return {
          content: [{ type: "tool-call", toolCallId: "call-1", toolName: "run_code", input: JSON.stringify({ code }) }],
          finishReason: { unified: "tool-calls", raw: undefined },
          usage,
          warnings: [],
        };
      }
      seen.outputs.push(output);
      return {
        content: [{ type: "text", text: `answer: ${String(output.value)}` }],
        finishReason: { unified: "stop", raw: undefined },
        usage,
        warnings: [],
      };
    },
  });
  return { model, seen };
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

describe("ai-sdk adapter (generateText + MockLanguageModelV3 + real daemon)", { timeout: SUITE_TIMEOUT_MS }, () => {
  it("one call gives a run_code tool; a script gathers 20 calls in one model turn", async () => {
    const cities = Array.from({ length: 20 }, (_, i) => `city-${i}`);
    const together = barrier(20);
    let executed = 0;
    const getWeather = tool({
      description: "Current weather in a city.",
      inputSchema: z.object({ city: z.string().describe("City name") }),
      outputSchema: z.object({ city: z.string(), temp_c: z.number() }),
      execute: async ({ city }) => {
        executed += 1;
        await together.arrive(); // all 20 calls are served concurrently, or this never resolves
        return { city, temp_c: Number(city.split("-")[1]) };
      },
    });
    const { model, seen } = scriptedModel(
      [
        `cities = ${JSON.stringify(cities)}`,
        "reports = await asyncio.gather(*(get_weather(city=c) for c in cities))",
        "hottest = max(reports, key=lambda r: r['temp_c'])",
        "f\"{hottest['city']} {hottest['temp_c']}\"",
      ].join("\n"),
    );

    const result = await generateText({
      model,
      tools: { run_code: await runCodeTool(client, { get_weather: getWeather }) },
      stopWhen: stepCountIs(5),
      prompt: "Which city is hottest?",
    });

    assert.equal(result.text, "answer: city-19 19");
    assert.equal(result.steps.length, 2, "two model turns: the script, then the answer");
    assert.equal(executed, 20);
    assert.deepEqual(seen.tools, ["run_code"], "the model sees one tool; get_weather is only callable from the script");
    assert.match(seen.description, /async def get_weather\(city: str/);
    const runOutput = result.steps[0]!.toolResults[0]!.output as { ok: boolean; toolCalls: number };
    assert.equal(runOutput.ok, true);
    assert.equal(runOutput.toolCalls, 20);
  });

  it("a throwing tool reaches the script as ToolError (never as data), and so do invalid arguments", async () => {
    const charge = tool({
      description: "Charge a card.",
      inputSchema: z.object({ cents: z.number().int().positive() }),
      execute: async ({ cents }): Promise<{ charged: number }> => {
        if (cents > 1000) throw new RangeError("quota exceeded");
        return { charged: cents };
      },
    });
    const { model, seen } = scriptedModel(
      [
        "out = []",
        "for amount in [500, 5000, -1]:",
        "    try:",
        "        r = await charge(cents=amount)",
        "        out.append(f\"ok {r['charged']}\")",
        "    except ToolError as e:",
        "        out.append(f\"caught {e.message}\")",
        "'; '.join(out)",
      ].join("\n"),
    );
    const result = await generateText({
      model,
      tools: { run_code: await runCodeTool(client, { charge }) },
      stopWhen: stepCountIs(5),
      prompt: "charge",
    });
    const [first, second, third] = String(seen.outputs[0]?.value).split("; ");
    assert.equal(first, "ok 500");
    assert.equal(second, "caught RangeError: quota exceeded");
    assert.match(third ?? "", /^caught TypeError: invalid arguments for charge: /);
    assert.equal(seen.outputs[0]?.type, "text");
    assert.match(result.text, /caught RangeError: quota exceeded/);
  });

  it("a failed script reaches the model as an error result with its traceback", async () => {
    const { model, seen } = scriptedModel("x = 1\ny = x / 0");
    await generateText({ model, tools: { run_code: await runCodeTool(client, {}) }, stopWhen: stepCountIs(5), prompt: "divide" });
    assert.equal(seen.outputs[0]?.type, "error-text");
    assert.match(String(seen.outputs[0]?.value), /error: ZeroDivisionError: division by zero/);
    assert.match(String(seen.outputs[0]?.value), /line 2/);
  });

  it("experimental_context, messages and an abort signal reach the tool's execute", async () => {
    let seenOptions: ToolExecutionOptions | undefined;
    const whoami = tool({
      description: "The user this agent acts for.",
      inputSchema: z.object({}),
      execute: async (_input, options) => {
        seenOptions = options;
        return (options.experimental_context as { userId: string }).userId;
      },
    });
    const { model } = scriptedModel("await whoami()");
    const result = await generateText({
      model,
      tools: { run_code: await runCodeTool(client, { whoami }) },
      experimental_context: { userId: "user-7" },
      stopWhen: stepCountIs(5),
      prompt: "who am I?",
    });
    assert.equal(result.text, "answer: user-7");
    assert.ok(seenOptions?.abortSignal instanceof AbortSignal);
    assert.match(seenOptions?.toolCallId ?? "", /^call-1\//);
    assert.ok(
      seenOptions?.messages.some((m) => m.role === "user" && JSON.stringify(m.content).includes("who am I?")),
      "the conversation so far reaches the tool",
    );
  });

  it("two concurrent agent runs over one connection keep their contexts apart", async () => {
    const both = barrier(2);
    const whoami = tool({
      description: "The user this agent acts for.",
      inputSchema: z.object({ n: z.number() }),
      execute: async ({ n }, options) => {
        if (n === 0) await both.arrive(); // both runs have a call in flight before either answers
        return `${(options.experimental_context as { userId: string }).userId}#${n}`;
      },
    });
    // One run_code tool, shared by both agents, as an app would build it once.
    const runCode = await runCodeTool(client, { whoami });
    const code = "'|'.join(await asyncio.gather(*(whoami(n=i) for i in range(5))))";
    const agent = (userId: string) =>
      generateText({
        model: scriptedModel(code).model,
        tools: { run_code: runCode },
        experimental_context: { userId },
        stopWhen: stepCountIs(5),
        prompt: "who am I?",
      });
    const [alice, bob] = await Promise.all([agent("alice"), agent("bob")]);
    assert.equal(alice.text, "answer: alice#0|alice#1|alice#2|alice#3|alice#4");
    assert.equal(bob.text, "answer: bob#0|bob#1|bob#2|bob#3|bob#4");
  });

  it("passes the tools' JSON Schemas through: zod input and output schemas become the stub's types", async () => {
    const [spec] = await fromAiSdkTools({
      list_orders: tool({
        description: "Orders of a customer.",
        inputSchema: z.object({ customer: z.string() }),
        outputSchema: z.array(z.object({ id: z.number(), status: z.enum(["open", "shipped"]) })),
        execute: async () => [],
      }),
    });
    assert.deepEqual(spec?.inputSchema?.required, ["customer"]);
    const items = (spec?.outputSchema as { items?: { properties?: Record<string, unknown> } }).items;
    assert.deepEqual(Object.keys(items?.properties ?? {}), ["id", "status"]);
    const defs = await client.toolDefinitions({ format: "anthropic", tools: spec ? [spec] : [] });
    assert.match(defs.stubs, /async def list_orders\(customer: str/);
  });

  it("refuses tools a script must not call: no execute, or needing approval", async () => {
    await assert.rejects(
      runCodeTool(client, { ask: tool({ description: "client-side", inputSchema: z.object({}), outputSchema: z.string() }) }),
      /ask has no execute function/,
    );
    await assert.rejects(
      runCodeTool(client, { pay: tool({ inputSchema: z.object({}), needsApproval: true, execute: async () => 1 }) }),
      /pay needs approval/,
    );
  });
});
