/** Tests of the pieces that need no daemon: framing, errors, rendering, tool specs, paths. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  connect,
  ConnectionClosedError,
  DaemonNotRunningError,
  defaultSocketPath,
  encodeLine,
  ErrorCode,
  errorFromRpc,
  InternalError,
  InvalidParamsError,
  InvalidRequestError,
  LimitsExceedPolicyError,
  LineDecoder,
  McpServerUnavailableError,
  MethodNotFoundError,
  OverloadedError,
  ParseError,
  PtcdError,
  pythonName,
  RunResult,
  SandboxUnavailableError,
  ShuttingDownError,
  tool,
  ToolError,
  toolErrorPayload,
  toWireSpec,
  UnknownPolicyError,
  UnknownRunError,
  UnknownSessionError,
  type WireRunResult,
} from "../src/index.js";
import { z } from "zod";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { after } from "node:test";
import { tmpdir } from "node:os";
import path from "node:path";

describe("framing", () => {
  it("splits lines across chunks, strips \\r, skips blank lines", () => {
    const d = new LineDecoder();
    assert.deepEqual(d.push('{"a":1}\n{"b"'), ['{"a":1}']);
    assert.deepEqual(d.push(':2}\r\n\n  \r\n{"c":3}'), ['{"b":2}']);
    assert.equal(d.pending, '{"c":3}');
    assert.deepEqual(d.push("\n"), ['{"c":3}']);
    assert.equal(d.pending, "");
  });

  it("encodes one message per line, even with newlines inside strings", () => {
    const line = encodeLine({ code: "print(1)\nprint(2)", s: "é🌍" });
    assert.equal(line.indexOf("\n"), line.length - 1);
    assert.deepEqual(JSON.parse(line), { code: "print(1)\nprint(2)", s: "é🌍" });
  });
});

describe("errors", () => {
  const cases: [number, new (...a: any[]) => PtcdError][] = [
    [-32700, ParseError],
    [-32600, InvalidRequestError],
    [-32601, MethodNotFoundError],
    [-32602, InvalidParamsError],
    [-32603, InternalError],
    [-32001, UnknownSessionError],
    [-32002, OverloadedError],
    [-32003, LimitsExceedPolicyError],
    [-32004, UnknownPolicyError],
    [-32005, UnknownRunError],
    [-32006, SandboxUnavailableError],
    [-32007, ShuttingDownError],
    [-32008, McpServerUnavailableError],
  ];
  for (const [code, Ctor] of cases) {
    it(`maps ${code} to ${Ctor.name}`, () => {
      const e = errorFromRpc({ code, message: "m", data: { x: 1 } });
      assert.ok(e instanceof Ctor);
      assert.ok(e instanceof PtcdError);
      assert.equal(e.code, code);
      assert.equal(e.name, Ctor.name);
      assert.equal(e.message, "m");
      assert.deepEqual(e.data, { x: 1 });
      assert.equal(new Ctor("x").code, code, "a directly built error carries its class's code");
    });
  }

  it("exposes data.field on InvalidParamsError", () => {
    const e = errorFromRpc({ code: -32602, message: "bad", data: { field: "limits.timeout_ms" } });
    assert.ok(e instanceof InvalidParamsError);
    assert.equal(e.field, "limits.timeout_ms");
    assert.equal(new InvalidParamsError("no data").field, undefined);
  });

  it("McpServerUnavailableError names the server: from data.server, else from the message", () => {
    const e = errorFromRpc({ code: -32008, message: "MCP server unavailable: my-db: spawn failed: No such file" });
    assert.ok(e instanceof McpServerUnavailableError);
    assert.equal(e.server, "my-db");
    assert.equal(ErrorCode.McpServerUnavailable, -32008);
    const withData = errorFromRpc({ code: -32008, message: "MCP server unavailable: x: y", data: { server: "from-data" } });
    assert.equal((withData as McpServerUnavailableError).server, "from-data");
    assert.equal(new McpServerUnavailableError("something else").server, undefined);
  });

  it("keeps unknown codes as a plain PtcdError", () => {
    const e = errorFromRpc({ code: -31999, message: "new" });
    assert.equal(e.constructor, PtcdError);
    assert.equal(e.code, -31999);
  });

  it("answers thrown handler errors as -32000 '<Name>: <message>'", () => {
    assert.deepEqual(toolErrorPayload(new RangeError("too far")), { code: -32000, message: "RangeError: too far" });
    class NotFound extends Error {
      override name = "NotFound";
    }
    assert.deepEqual(toolErrorPayload(new NotFound("no such user")), { code: -32000, message: "NotFound: no such user" });
    assert.deepEqual(toolErrorPayload("plain string"), { code: -32000, message: "Error: plain string" });
    assert.deepEqual(toolErrorPayload(new ToolError("quota", { code: 42, data: { retry: 5 } })), {
      code: 42,
      message: "quota",
      data: { retry: 5 },
    });
    assert.equal(ErrorCode.ToolError, -32000);
  });

  it("says how to start the daemon", () => {
    const e = new DaemonNotRunningError("/x/ptcd.sock");
    assert.match(e.message, /ptcd serve/);
    assert.equal(e.socketPath, "/x/ptcd.sock");
    assert.ok(new ConnectionClosedError() instanceof PtcdError);
  });
});

describe("RunResult", () => {
  const base: WireRunResult = {
    run_id: "r-1",
    status: "ok",
    stdout: "",
    stderr: "",
    truncated: { stdout: 0, stderr: 0 },
    value: null,
    error: null,
    tool_calls: 0,
    duration_ms: 1.5,
  };

  it("renders stdout then the value as JSON", () => {
    const r = new RunResult({ ...base, stdout: "hello\n", value: { top: "EMEA", total: 12.5 }, tool_calls: 3 });
    assert.equal(r.ok, true);
    assert.equal(r.render(), 'hello\n{"top":"EMEA","total":12.5}');
    assert.equal(r.text, r.render());
    assert.equal(String(r), r.render());
    assert.equal(r.toolCalls, 3);
    assert.equal(r.durationMs, 1.5);
    assert.equal(r.runId, "r-1");
  });

  it("omits a null value and says when there is no output", () => {
    assert.equal(new RunResult({ ...base, stdout: "x\n" }).render(), "x");
    assert.equal(new RunResult(base).render(), "(no output)");
    assert.equal(new RunResult({ ...base, value: 0 }).render(), "0");
    assert.equal(new RunResult({ ...base, value: "s" }).render(), "s", "strings as they are");
  });

  it("notes truncation", () => {
    const r = new RunResult({ ...base, stdout: "abc[…]\n", truncated: { stdout: 900, stderr: 0 } });
    assert.equal(r.render(), "abc[…]\n[stdout truncated: 900 bytes omitted]");
  });

  it("renders errors as '<status>: <type>: <message>' plus traceback, like the Python client", () => {
    const r = new RunResult({
      ...base,
      status: "error",
      stdout: "partial\n",
      stderr: "warn\n",
      truncated: { stdout: 0, stderr: 7 },
      error: {
        type: "ZeroDivisionError",
        message: "division by zero",
        traceback: 'Traceback (most recent call last):\n  File "<script>", line 2, in <module>\nZeroDivisionError: division by zero\n',
        line: 2,
      },
    });
    assert.equal(r.ok, false);
    assert.equal(
      r.render(),
      'partial\n[stderr]\nwarn\n[stderr truncated: 7 bytes omitted]\nerror: ZeroDivisionError: division by zero\nTraceback (most recent call last):\n  File "<script>", line 2, in <module>',
    );
    assert.equal(new RunResult({ ...base, status: "crashed" }).render(), "crashed");
    const t = new RunResult({ ...base, status: "timeout", error: { type: "Timeout", message: "run exceeded 1000 ms", traceback: "", line: null } });
    assert.equal(t.render(), "timeout: Timeout: run exceeded 1000 ms");
  });

  it("keeps stderr (warnings) on success, before the value, like the Python client", () => {
    const r = new RunResult({ ...base, stdout: "out\n", stderr: "<script>:2: UserWarning: rate is an estimate\n", value: 42 });
    assert.equal(r.render(), "out\n[stderr]\n<script>:2: UserWarning: rate is an estimate\n42");
  });

  it("shows a multi-line or module-qualified error once", () => {
    const multi = new RunResult({
      ...base,
      status: "error",
      error: {
        type: "ValueError",
        message: "first line\nsecond line",
        traceback: 'Traceback (most recent call last):\n  File "<script>", line 1, in <module>\nValueError: first line\nsecond line\n',
        line: 1,
      },
    });
    assert.equal(multi.render(), 'error: ValueError: first line\nsecond line\nTraceback (most recent call last):\n  File "<script>", line 1, in <module>');
    const qualified = new RunResult({
      ...base,
      status: "error",
      error: {
        type: "JSONDecodeError",
        message: "Expecting value: line 1 column 1 (char 0)",
        traceback: 'Traceback (most recent call last):\n  File "<script>", line 2, in <module>\njson.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)\n',
        line: 2,
      },
    });
    assert.equal(qualified.render().split("Expecting value").length - 1, 1, qualified.render());
    const bare = new RunResult({
      ...base,
      status: "error",
      error: { type: "KeyError", message: "", traceback: 'Traceback (most recent call last):\n  File "<script>", line 1, in <module>\n    raise KeyError\nKeyError\n', line: 1 },
    });
    assert.equal(bare.render(), 'error: KeyError\nTraceback (most recent call last):\n  File "<script>", line 1, in <module>\n    raise KeyError');
  });

  it("gives the wire form back from toJSON", () => {
    const r = new RunResult({ ...base, value: [1] });
    assert.deepEqual(JSON.parse(JSON.stringify(r)), { ...base, value: [1] });
  });
});

describe("tools", () => {
  const schema = { type: "object", properties: { sql: { type: "string" } }, required: ["sql"] };
  const h = () => 1;

  it("accepts camelCase, wire/Anthropic, MCP and OpenAI shapes", () => {
    const shapes = [
      tool({ name: "q", description: "d", inputSchema: schema }, h),
      tool({ name: "q", description: "d", input_schema: schema }, h),
      tool({ name: "q", description: "d", parameters: schema }, h),
      tool({ type: "function", function: { name: "q", description: "d", parameters: schema } }, h),
      tool({ name: "q", description: "d", inputSchema: schema, handler: h }),
    ];
    for (const t of shapes) {
      assert.deepEqual(toWireSpec(t), { name: "q", description: "d", input_schema: schema });
      assert.equal(t.handler, h);
    }
  });

  it("sends output schema and allowed callers in snake_case, never the handler", () => {
    const t = tool({ name: "x", outputSchema: { type: "number" }, allowedCallers: ["direct", "code_execution"] }, h);
    assert.deepEqual(toWireSpec(t), { name: "x", output_schema: { type: "number" }, allowed_callers: ["direct", "code_execution"] });
  });

  it("derives input and output JSON Schemas from zod schemas (nested objects, enums, optional keys)", () => {
    const Order = z.object({
      id: z.number().int(),
      status: z.enum(["open", "shipped"]).describe("where the order is"),
      customer: z.object({ name: z.string(), vip: z.boolean().default(false) }),
      note: z.string().optional(),
    });
    const t = tool({ name: "list_orders", inputSchema: z.object({ status: z.enum(["open", "shipped"]).optional() }), outputSchema: z.array(Order) }, () => []);
    const wire = toWireSpec(t);
    assert.deepEqual(wire.input_schema, {
      type: "object",
      properties: { status: { type: "string", enum: ["open", "shipped"] } },
    });
    const item = (wire.output_schema as { type: string; items: Record<string, any> }).items;
    assert.equal((wire.output_schema as { type: string }).type, "array");
    assert.deepEqual(item.required, ["id", "status", "customer"]);
    assert.deepEqual(item.properties.status, { type: "string", enum: ["open", "shipped"], description: "where the order is" });
    assert.equal(item.properties.customer.type, "object");
    assert.equal(item.properties.customer.properties.vip.default, false);
    assert.equal("$schema" in (wire.output_schema ?? {}), false, "no dialect URI in what the daemon and model read");
  });

  it("validates arguments with a zod input schema before the handler runs, and types them", async () => {
    const seen: number[] = [];
    const t = tool({ name: "double", inputSchema: z.object({ n: z.number() }) }, ({ n }) => {
      seen.push(n); // `n` is typed number from the schema
      return n * 2;
    });
    const ctx = { signal: new AbortController().signal, name: "double", runId: "r", callId: 0 };
    assert.equal(await t.handler({ n: 4 }, ctx), 8);
    await assert.rejects(Promise.resolve(t.handler({ n: "4" } as never, ctx)), (err: unknown) => {
      assert.ok(err instanceof TypeError);
      assert.match(err.message, /^invalid arguments for double: n: /);
      return true;
    });
    assert.deepEqual(seen, [4]);
  });

  it("says which schema cannot become JSON Schema instead of sending nonsense", () => {
    const noJson = { "~standard": { version: 1, vendor: "old-lib", validate: (v: unknown) => ({ value: v }) } };
    assert.throws(() => tool({ name: "x", outputSchema: noJson as never }, h), /tool x: outputSchema: this old-lib schema cannot give a JSON Schema/);
  });

  it("rejects definitions without a name or a handler", () => {
    assert.throws(() => tool({ description: "x" }, h), TypeError);
    assert.throws(() => tool({ name: "x" }), TypeError);
  });

  it("maps names to Python identifiers like the daemon", () => {
    assert.equal(pythonName("get-weather"), "get_weather");
    assert.equal(pythonName("class"), "class_");
    assert.equal(pythonName("a.b c"), "a_b_c");
    assert.equal(pythonName("3d"), "_3d");
  });
});

describe("connect", () => {
  const scratch = mkdtempSync(path.join(tmpdir(), "ptcd-node-unit-"));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it("resolves the default socket path: PTCD_SOCKET, then XDG_RUNTIME_DIR, then /tmp/ptcd-$UID", () => {
    assert.equal(defaultSocketPath({ PTCD_SOCKET: "/a.sock", XDG_RUNTIME_DIR: "/run/user/1" }), "/a.sock");
    assert.equal(defaultSocketPath({ XDG_RUNTIME_DIR: "/run/user/1" }), "/run/user/1/ptcd.sock");
    const fallback = defaultSocketPath({});
    assert.ok(fallback === "/run/ptcd/ptcd.sock" || fallback === `/tmp/ptcd-${process.getuid!()}/ptcd.sock`);
  });

  it("rejects with DaemonNotRunningError when no socket exists", async () => {
    const socket = path.join(mkdtempSync(path.join(scratch, "none-")), "ptcd.sock");
    await assert.rejects(connect({ socket }), (e: unknown) => {
      assert.ok(e instanceof DaemonNotRunningError);
      assert.equal(e.socketPath, socket);
      assert.match(e.message, /ptcd serve/);
      return true;
    });
  });

  it("rejects with DaemonNotRunningError when nothing listens on the path", async () => {
    const socket = path.join(mkdtempSync(path.join(scratch, "stale-")), "ptcd.sock");
    writeFileSync(socket, ""); // connect(2) on a non-listening path fails with ECONNREFUSED
    await assert.rejects(connect({ socket }), DaemonNotRunningError);
  });

  it("uses PTCD_SOCKET when no socket is given", async () => {
    const socket = path.join(mkdtempSync(path.join(scratch, "env-")), "ptcd.sock");
    const saved = process.env.PTCD_SOCKET;
    process.env.PTCD_SOCKET = socket;
    try {
      await assert.rejects(connect(), (e: unknown) => e instanceof DaemonNotRunningError && e.socketPath === socket);
    } finally {
      if (saved === undefined) delete process.env.PTCD_SOCKET;
      else process.env.PTCD_SOCKET = saved;
    }
  });
});
