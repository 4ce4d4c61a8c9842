/** Runs every example in examples/node against the real daemon; each checks its own answer. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { repoRoot, startDaemon, SUITE_TIMEOUT_MS, type Daemon } from "./daemon.js";

const run = promisify(execFile);
const examplesDir = path.join(repoRoot, "examples/node");
let daemon: Daemon;

before(async () => {
  daemon = await startDaemon();
}, { timeout: SUITE_TIMEOUT_MS });
after(async () => {
  await daemon?.stop();
});

async function runExample(file: string): Promise<string> {
  try {
    const { stdout } = await run(process.execPath, [file], {
      cwd: examplesDir,
      env: { ...process.env, PTCD_SOCKET: daemon.socket },
      timeout: 60_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    assert.fail(`${file} failed: ${e.message}\nstdout:\n${e.stdout}\nstderr:\n${e.stderr}`);
  }
}

/** Reads the bytes into the model's context, with ptcd and without, from an example's report. */
function contextBytes(out: string): { ptc: number; loop: number } {
  const ptc = /bytes reached the model with ptcd: (\d+)/.exec(out);
  const loop = /one-tool-call-per-turn loop would have put in context: (\d+)/.exec(out);
  assert.ok(ptc && loop, out);
  return { ptc: Number(ptc[1]), loop: Number(loop[1]) };
}

/** Reads the model turns: with ptcd, and without it (parallel tool calls, one call per turn). */
function modelTurns(out: string): { ptc: number; parallel: number; sequential: number } {
  const m = /model turns with ptcd: (\d+) .*\| without: (\d+) with parallel tool calls, (\d+) with one tool call per turn/.exec(out);
  assert.ok(m, out);
  return { ptc: Number(m[1]), parallel: Number(m[2]), sequential: Number(m[3]) };
}

describe("examples", { timeout: SUITE_TIMEOUT_MS }, () => {
  it("revenue.mjs: top region and total from an in-memory SQLite", async () => {
    const out = await runExample("revenue.mjs");
    assert.match(out, /top region: \S+/);
    assert.match(out, /^answer: /m);
    const { ptc, loop } = contextBytes(out);
    assert.ok(ptc * 10 < loop, out);
    assert.deepEqual(modelTurns(out), { ptc: 2, parallel: 2, sequential: 2 });
  });

  it("expenses.mjs: who is over budget", async () => {
    const out = await runExample("expenses.mjs");
    assert.match(out, /is over budget by/);
    const { ptc, loop } = contextBytes(out);
    assert.ok(ptc * 10 < loop, out);
    // 1 team call + 12 expense calls: 14 turns one call at a time, 3 with parallel calls, 2 with ptcd.
    assert.deepEqual(modelTurns(out), { ptc: 2, parallel: 3, sequential: 14 });
  });

  it("logs.mjs: the last 10 errors out of 10,000 entries", async () => {
    const out = await runExample("logs.mjs");
    assert.equal(out.split("\n").filter((l) => l.includes("failed: upstream timeout")).length, 10, out);
    const { ptc, loop } = contextBytes(out);
    assert.ok(ptc * 100 < loop, out);
    assert.deepEqual(modelTurns(out), { ptc: 2, parallel: 2, sequential: 2 });
  });

  it("ai-sdk.mjs: generateText with runCodeTool, turns and context measured on the mock model's prompts", async () => {
    const out = await runExample("ai-sdk.mjs");
    assert.match(out, /^answer: Over budget: \S/m);
    const turns = /model turns \(AI SDK steps\) with ptcd: (\d+) \| without: (\d+)/.exec(out);
    assert.ok(turns, out);
    assert.deepEqual([Number(turns[1]), Number(turns[2])], [2, 3]);
    const b = /context with ptcd: (\d+) \| without: (\d+)/.exec(out);
    assert.ok(b && Number(b[1]) * 10 < Number(b[2]), out);
  });

  it("openai-agents.mjs: the Agents SDK Runner with runCodeTool, turns and context measured on the model's input", async () => {
    const out = await runExample("openai-agents.mjs");
    assert.equal(out.split("\n").filter((l) => l.includes("failed: upstream timeout")).length, 5, out);
    const turns = /model turns \(Runner model calls\) with ptcd: (\d+) \| without: (\d+)/.exec(out);
    assert.ok(turns, out);
    assert.deepEqual([Number(turns[1]), Number(turns[2])], [2, 2]);
    const b = /context with ptcd: (\d+) \| without: (\d+)/.exec(out);
    assert.ok(b && Number(b[1]) * 100 < Number(b[2]), out);
  });

  it("message-loop.mjs: OpenAI- and Anthropic-style loops with a scripted model", async () => {
    const out = await runExample("message-loop.mjs");
    assert.match(out, /\[openai\] answer: acme has the most revenue/);
    assert.match(out, /\[anthropic\] answer: acme has the most revenue/);
  });
});
