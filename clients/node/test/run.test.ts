/**
 * End-to-end tests against the real daemon binary: every feature of the client
 * over a real Unix socket. Ordering between the script, the daemon and the
 * handlers is established with promises (deferreds), never with sleeps.
 */
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { z } from "zod";
import { after, before, describe, it } from "node:test";
import {
  connect,
  ConnectionClosedError,
  DaemonNotRunningError,
  InvalidParamsError,
  LimitsExceedPolicyError,
  MethodNotFoundError,
  PtcdError,
  tool,
  ToolError,
  UnknownPolicyError,
  UnknownSessionError,
  type Client,
  type OutputChunk,
} from "../src/index.js";
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

describe("handshake", { timeout: SUITE_TIMEOUT_MS }, () => {
  it("initialize reports protocol, sandbox, python and policies", async () => {
    const info = await client.initialize({ name: "node-tests", version: "0" });
    assert.equal(info.protocolVersion, "1");
    assert.equal(info.serverInfo.name, "ptcd");
    assert.equal(typeof info.sandbox.seccomp, "boolean");
    assert.ok(Array.isArray(info.policies) && info.policies.length > 0);
    assert.ok(info.policies.includes(info.defaultPolicy));
    assert.equal(typeof info.python.version, "string");
  });

  it("status returns counters", async () => {
    const s = await client.status();
    assert.equal(typeof s, "object");
    assert.ok(s !== null && Object.keys(s).length > 0);
  });
});

describe("run", { timeout: SUITE_TIMEOUT_MS }, () => {
  it("returns stdout, the last expression's value and counters", async () => {
    const r = await client.run("print('hi')\n6 * 7");
    assert.equal(r.status, "ok", r.render());
    assert.equal(r.ok, true);
    assert.equal(r.stdout, "hi\n");
    assert.equal(r.value, 42);
    assert.equal(r.toolCalls, 0);
    assert.equal(typeof r.runId, "string");
    assert.ok(r.durationMs >= 0);
    assert.equal(r.render(), "hi\n42");
  });

  it("binds inputs as globals", async () => {
    const r = await client.run("{'n': n + 1, 'name': name.upper()}", { inputs: { n: 1, name: "ada" } });
    assert.deepEqual(r.value, { n: 2, name: "ADA" });
  });

  it("passes env to the child", async () => {
    const r = await client.run("import os\nos.environ['GREETING']", { env: { GREETING: "salut" } });
    assert.equal(r.value, "salut", r.render());
  });

  it("reports a script exception as a result, not a rejection", async () => {
    const r = await client.run("x = 1\nraise ValueError('bad input')");
    assert.equal(r.status, "error");
    assert.equal(r.ok, false);
    assert.equal(r.error?.type, "ValueError");
    assert.equal(r.error?.message, "bad input");
    assert.equal(r.error?.line, 2);
    assert.match(r.render(), /^error: ValueError: bad input/);
    assert.match(r.render(), /line 2/);
  });

  it("what the model reads: warnings kept on success, a multi-line error shown once", async () => {
    const warned = await client.run("import warnings\nwarnings.warn('rate is an estimate')\n41 + 1");
    assert.equal(warned.ok, true, warned.render());
    assert.equal(warned.render().split("\n")[0], "[stderr]");
    assert.match(warned.render(), /UserWarning: rate is an estimate/);
    assert.match(warned.render(), /\n42$/);
    const multi = await client.run("raise ValueError('first line\\nsecond line')");
    assert.ok(multi.render().startsWith("error: ValueError: first line\nsecond line\nTraceback"), multi.render());
    assert.equal(multi.render().split("\n").filter((l) => l === "second line").length, 1, multi.render());
  });

  it("carries multi-byte text intact through stdout, inputs and tools", async () => {
    const big = "héllo wörld 🌍 ".repeat(20_000);
    const echo = tool({ name: "echo" }, ({ s }: { s: string }) => s);
    const r = await client.run("r = await echo(s=s)\nprint(len(r))\nr == s", { inputs: { s: big }, tools: [echo] });
    assert.equal(r.status, "ok", r.render());
    assert.equal(r.value, true);
    assert.equal(r.stdout, `${[...big].length}\n`);
  });

  it("notes truncated output", async () => {
    const r = await client.run("print('x' * 10000)", { limits: { maxOutputBytes: 1000 } });
    assert.ok(r.truncated.stdout > 0, JSON.stringify(r));
    assert.match(r.render(), /\[stdout truncated: \d+ bytes omitted\]/);
  });

  it("streams output to onOutput while the run goes on", async () => {
    const chunks: OutputChunk[] = [];
    const r = await client.run("import sys\nfor i in range(3):\n    print(i, flush=True)\nprint('oops', file=sys.stderr, flush=True)", {
      onOutput: (c) => chunks.push(c),
    });
    assert.equal(r.status, "ok", r.render());
    const streamed = (s: string) => chunks.filter((c) => c.stream === s).map((c) => c.text).join("");
    assert.equal(streamed("stdout"), r.stdout);
    assert.equal(streamed("stderr"), r.stderr);
    assert.ok(chunks.every((c) => c.runId === r.runId));
  });

  it("runs several scripts at once on one connection, each with its own tools", async () => {
    const runs = Array.from({ length: 5 }, (_, i) =>
      client.run("await who()", { tools: [tool({ name: "who" }, () => `run ${i}`)] }),
    );
    const results = await Promise.all(runs);
    assert.deepEqual(
      results.map((r) => r.value),
      results.map((_, i) => `run ${i}`),
    );
  });
});

describe("tools", { timeout: SUITE_TIMEOUT_MS }, () => {
  it("calls a tool with keyword and positional arguments and returns its value", async () => {
    const calls: unknown[] = [];
    const add = tool(
      {
        name: "add",
        description: "Add two numbers.",
        inputSchema: { type: "object", properties: { a: { type: "number" }, b: { type: "number" } }, required: ["a", "b"] },
        outputSchema: { type: "number" },
      },
      (args: { a: number; b: number }, ctx) => {
        calls.push({ args, name: ctx.name, hasSignal: ctx.signal instanceof AbortSignal });
        return args.a + args.b;
      },
    );
    const r = await client.run("x = await add(1, 2)\ny = await add(a=x, b=10)\ny", { tools: [add] });
    assert.equal(r.status, "ok", r.render());
    assert.equal(r.value, 13);
    assert.equal(r.toolCalls, 2);
    assert.deepEqual(calls, [
      { args: { a: 1, b: 2 }, name: "add", hasSignal: true },
      { args: { a: 3, b: 10 }, name: "add", hasSignal: true },
    ]);
  });

  it("maps tool names that are not Python identifiers", async () => {
    const t = tool({ name: "get-user" }, ({ id }: { id: number }) => ({ id, name: "ada" }));
    const r = await client.run("(await get_user(id=7))['name']", { tools: [t] });
    assert.equal(r.status, "ok", r.render());
    assert.equal(r.value, "ada");
  });

  it("serves 100 concurrent tool calls concurrently", async () => {
    // Every handler waits until 10 calls are in flight at once: this only
    // completes if the client serves calls concurrently (a serial client deadlocks).
    let inFlight = 0;
    let maxInFlight = 0;
    const gate = deferred();
    const double = tool({ name: "double" }, async ({ i }: { i: number }) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      if (inFlight >= 10) gate.resolve();
      await gate.promise;
      inFlight--;
      return i * 2;
    });
    const code = "import asyncio\nrs = await asyncio.gather(*(double(i=i) for i in range(100)))\nrs";
    const r = await client.run(code, { tools: [double] });
    assert.equal(r.status, "ok", r.render());
    assert.deepEqual(r.value, Array.from({ length: 100 }, (_, i) => i * 2));
    assert.equal(r.toolCalls, 100);
    assert.ok(maxInFlight >= 10, `max in flight ${maxInFlight}`);
  });

  it("turns a thrown handler error into a ToolError the script can catch", async () => {
    class NotFound extends Error {
      override name = "NotFound";
    }
    const lookup = tool({ name: "lookup" }, ({ id }: { id: number }) => {
      if (id === 0) throw new NotFound("no user 0");
      return { id };
    });
    const code = [
      "try:",
      "    await lookup(id=0)",
      "except ToolError as e:",
      "    caught = (type(e).__name__, str(e))",
      "[caught, await lookup(id=1)]",
    ].join("\n");
    const r = await client.run(code, { tools: [lookup] });
    assert.equal(r.status, "ok", r.render());
    const [[typeName, message], second] = r.value as [[string, string], unknown];
    assert.equal(typeName, "ToolError");
    assert.match(message, /NotFound: no user 0/);
    assert.deepEqual(second, { id: 1 });
  });

  it("an uncaught tool error fails the run with ToolError", async () => {
    const fail = tool({ name: "fail" }, async () => {
      throw new RangeError("out of range");
    });
    const r = await client.run("await fail()", { tools: [fail] });
    assert.equal(r.status, "error");
    assert.equal(r.error?.type, "ToolError");
    assert.match(r.error?.message ?? "", /RangeError: out of range/);
  });

  it("a thrown ToolError chooses the code the script sees", async () => {
    const quota = tool({ name: "quota" }, () => {
      throw new ToolError("quota exceeded", { code: 4029, data: { retry_after: 5 } });
    });
    const r = await client.run("try:\n    await quota()\nexcept ToolError as e:\n    res = [e.code, str(e)]\nres", { tools: [quota] });
    assert.equal(r.status, "ok", r.render());
    const [code, message] = r.value as [number, string];
    assert.equal(code, 4029);
    assert.match(message, /quota exceeded/);
  });

  it("a non-JSON result becomes a tool error instead of hanging the script", async () => {
    const bad = tool({ name: "bad" }, () => 10n);
    const r = await client.run("await bad()", { tools: [bad] });
    assert.equal(r.status, "error");
    assert.match(r.error?.message ?? "", /not JSON-serializable/);
  });

  it("aborts a handler's signal when the run times out ($/cancelRequest)", async () => {
    const cancelled = deferred<unknown>();
    const hang = tool({ name: "hang" }, (_args, { signal }) => {
      signal.addEventListener("abort", () => cancelled.resolve(signal.reason), { once: true });
      return new Promise(() => {});
    });
    const r = await client.run("await hang()", { tools: [hang], limits: { timeoutMs: 1000 } });
    assert.equal(r.status, "timeout", r.render());
    const reason = await cancelled.promise;
    assert.ok(reason instanceof PtcdError);
  });
});

describe("cancellation and errors", { timeout: SUITE_TIMEOUT_MS }, () => {
  it("an AbortSignal cancels the run with run/cancel and keeps output so far", async () => {
    const controller = new AbortController();
    const handlerCancelled = deferred();
    const wait = tool({ name: "wait" }, (_args, { signal }) => {
      signal.addEventListener("abort", () => handlerCancelled.resolve(), { once: true });
      controller.abort(); // the script is now blocked on this call
      return new Promise(() => {});
    });
    const r = await client.run("print('before', flush=True)\nawait wait()\nprint('after')", {
      tools: [wait],
      signal: controller.signal,
    });
    assert.equal(r.status, "cancelled", r.render());
    assert.equal(r.stdout, "before\n");
    await handlerCancelled.promise;
  });

  it("an already aborted signal rejects without starting a run", async () => {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(client.run("1", { signal: controller.signal }), { name: "AbortError" });
  });

  it("maps looser limits to LimitsExceedPolicyError", async () => {
    await assert.rejects(client.run("1", { limits: { timeoutMs: 10 ** 12 } }), LimitsExceedPolicyError);
  });

  it("maps an unknown policy to UnknownPolicyError", async () => {
    await assert.rejects(client.run("1", { policy: "no-such-policy" }), UnknownPolicyError);
  });

  it("maps invalid params to InvalidParamsError with the field", async () => {
    await assert.rejects(client.run(42 as unknown as string), (e: unknown) => {
      assert.ok(e instanceof InvalidParamsError, String(e));
      assert.equal(e.field, "code");
      return true;
    });
  });

  it("maps an unknown method to MethodNotFoundError", async () => {
    await assert.rejects(client.request("no/such-method", {}), MethodNotFoundError);
  });

  it("closing the client rejects pending runs and aborts handlers", async () => {
    const c = await connect({ socket: daemon.socket });
    const called = deferred();
    const handlerAborted = deferred();
    const hang = tool({ name: "hang" }, (_a, { signal }) => {
      signal.addEventListener("abort", () => handlerAborted.resolve(), { once: true });
      called.resolve();
      return new Promise(() => {});
    });
    const pending = c.run("await hang()", { tools: [hang] });
    await called.promise;
    const rejected = assert.rejects(pending, ConnectionClosedError); // attached before close() rejects it
    await c.close();
    await rejected;
    await handlerAborted.promise;
    assert.equal(c.closed, true);
    await assert.rejects(c.run("1"), ConnectionClosedError);
  });
});

describe("sessions and definitions", { timeout: SUITE_TIMEOUT_MS }, () => {
  it("a persistent session keeps globals and its tools across runs", async () => {
    const session = await client.createSession({ persistent: true, tools: [tool({ name: "get-count" }, () => 5)] });
    try {
      assert.ok(session.pythonNames.includes("get_count"), JSON.stringify(session.pythonNames));
      const a = await session.run("x = await get_count()\nx");
      assert.equal(a.value, 5, a.render());
      const b = await session.run("x + 1");
      assert.equal(b.value, 6, b.render());
    } finally {
      await session.close();
    }
    await assert.rejects(session.run("1"), UnknownSessionError);
  });

  it("tools/definition gives a run_code tool in the provider's format", async () => {
    const defs = await client.toolDefinitions({
      format: "anthropic",
      tools: [tool({ name: "query_database", description: "Run SQL.", inputSchema: { type: "object", properties: { sql: { type: "string" } } } }, () => [])],
    });
    const names = defs.tools.map((t) => t.name); // typed per format: AnthropicToolDefinition[]
    assert.ok(names.includes("run_code"), JSON.stringify(defs.tools));
    assert.equal(defs.tools[0]?.input_schema.type, "object");
    assert.match(defs.stubs, /async def query_database/);
    // Specs without handlers are enough to build definitions.
    const bare = await client.toolDefinitions({ format: "openai_responses", tools: [{ name: "lookup", description: "Look up.", inputSchema: { type: "object", properties: { key: { type: "string" } } } }] });
    assert.match(bare.tools[0]?.description ?? "", /async def lookup\(key:/);
    const openai = await client.toolDefinitions({ format: "openai", tools: [] });
    assert.equal(openai.tools[0]?.function.name, "run_code"); // OpenAIChatToolDefinition[]
    const mcp = await client.toolDefinitions({ format: "mcp", tools: [] });
    assert.equal(mcp.tools[0]?.inputSchema.type, "object");
  });

  it("a zod-typed tool: the script's bad arguments come back as ToolError, good ones reach the handler", async () => {
    const double = tool({ name: "double", inputSchema: z.object({ n: z.number() }), outputSchema: z.object({ doubled: z.number() }) }, ({ n }) => ({ doubled: n * 2 }));
    const r = await client.run(
      "ok = await double(n=21)\ntry:\n    await double(n='x')\nexcept ToolError as e:\n    bad = e.message\n[ok['doubled'], bad]",
      { tools: [double] },
    );
    assert.equal(r.status, "ok", r.render());
    const [doubled, bad] = r.value as [number, string];
    assert.equal(doubled, 42);
    assert.match(bad, /^TypeError: invalid arguments for double: n: /);
  });
});

describe("daemon goes away", { timeout: SUITE_TIMEOUT_MS }, () => {
  it("rejects pending runs with ConnectionClosedError when the daemon dies", async () => {
    const d = await startDaemon();
    try {
      const c = await connect({ socket: d.socket });
      const called = deferred();
      const hang = tool({ name: "hang" }, () => {
        called.resolve();
        return new Promise(() => {});
      });
      const pending = c.run("await hang()", { tools: [hang] });
      await called.promise;
      d.process.kill("SIGKILL");
      await assert.rejects(pending, ConnectionClosedError);
      assert.equal(c.connected, false);
      assert.equal(c.closed, false); // not closed by us: the next call would reconnect
      await c.close(); // idempotent after the daemon hung up
      assert.equal(c.closed, true);
      await assert.rejects(c.run("1"), ConnectionClosedError);
    } finally {
      await d.stop();
    }
  });

  it("reconnects on the next call after a daemon restart; in-flight runs fail clearly, nothing leaks", async () => {
    const first = await startDaemon();
    let second: Daemon | undefined;
    try {
      const c = await connect({ socket: first.socket });
      assert.equal((await c.run("1 + 1")).value, 2);
      const session = await c.createSession({ persistent: true });

      // A run in flight, with a tool call being served and an AbortSignal listening.
      const called = deferred();
      let handlerSignal: AbortSignal | undefined;
      const hang = tool({ name: "hang" }, (_args, { signal }) => {
        handlerSignal = signal;
        called.resolve();
        return new Promise(() => {});
      });
      const abort = new AbortController();
      const pending = c.run("await hang()", { tools: [hang], signal: abort.signal });
      await called.promise;
      assert.equal(getEventListeners(abort.signal, "abort").length, 1);

      const failed = assert.rejects(pending, (err: unknown) => {
        assert.ok(err instanceof ConnectionClosedError);
        assert.match(err.message, /in flight; the next call reconnects/);
        return true;
      });
      first.process.kill("SIGKILL");
      await first.exited;
      await failed;
      assert.equal(handlerSignal?.aborted, true, "the handler's signal is aborted when the connection is lost");
      assert.equal(getEventListeners(abort.signal, "abort").length, 0, "no abort listener left behind");
      assert.equal(c.connected, false);

      // While nothing listens, a call says so (and does not poison the client).
      await assert.rejects(c.run("1"), DaemonNotRunningError);
      await session.close(); // gone with the old connection: closing it is a no-op, not an error

      second = await startDaemon([], { socket: first.socket });
      // Two calls at once share one reconnection.
      const [a, b] = await Promise.all([c.run("'again'"), c.run("await add(a=2, b=3)", { tools: [tool({ name: "add" }, ({ a, b }: { a: number; b: number }) => a + b)] })]);
      assert.equal(a.value, "again", a.render());
      assert.equal(b.value, 5, b.render());
      assert.equal(c.connected, true);
      await assert.rejects(session.run("1"), UnknownSessionError); // sessions do not survive a restart
      await c.close();
    } finally {
      await second?.stop();
      await first.stop();
    }
  });
});
