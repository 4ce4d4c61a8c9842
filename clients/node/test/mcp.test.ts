/**
 * MCP servers through the client, end to end: the real daemon, configured with the config
 * shipped next to the MCP example (examples/node/mcp-shop.toml: the real `mcp-server-sqlite`
 * from PyPI, on a database in a temporary directory) plus a `broken` server whose command does
 * not exist; and the example itself, run as a user would.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import {
  connect,
  InvalidParamsError,
  McpServerUnavailableError,
  PtcdError,
  tool,
  type Client,
  type Tool,
} from "../src/index.js";
import { runCodeTool } from "../src/ai-sdk.js";
import { runCodeTool as agentsRunCodeTool } from "../src/openai-agents.js";
import { packageRoot, repoRoot, startDaemon, SUITE_TIMEOUT_MS, type Daemon } from "./daemon.js";

const examplesDir = path.join(repoRoot, "examples/node");
/** The example's config names the server and the database like this; the tests swap in theirs. */
const EXAMPLE_COMMAND = 'command = "mcp-server-sqlite"';
const EXAMPLE_DB = "/tmp/ptcd-example/shop.db";

/** The real `mcp-server-sqlite`: $PTCD_TEST_MCP_SQLITE (run-tests.sh installs it into clients/node/.mcp-venv and sets it), else that venv's. */
function mcpSqliteCommand(): string {
  const configured = process.env.PTCD_TEST_MCP_SQLITE;
  if (configured) return configured;
  const venv = path.join(packageRoot, ".mcp-venv/bin/mcp-server-sqlite");
  if (existsSync(venv)) return venv;
  throw new Error("mcp-server-sqlite is not installed: run clients/node/run-tests.sh (it installs it into clients/node/.mcp-venv) or set PTCD_TEST_MCP_SQLITE");
}

let dir: string;
let db: string;
let daemon: Daemon;
let client: Client;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "ptcd-node-mcp-"));
  db = path.join(dir, "shop.db");
  const shipped = readFileSync(path.join(examplesDir, "mcp-shop.toml"), "utf8");
  assert.ok(shipped.includes(EXAMPLE_COMMAND) && shipped.includes(EXAMPLE_DB), "the example's config changed: update this test");
  const config =
    shipped.replace(EXAMPLE_COMMAND, `command = ${JSON.stringify(mcpSqliteCommand())}`).replace(EXAMPLE_DB, db) +
    '\n[mcp_servers.broken]\ncommand = "/nonexistent/ptcd-test/mcp-server"\nstartup_timeout_ms = 5000\n';
  writeFileSync(path.join(dir, "config.toml"), config);
  daemon = await startDaemon(["--config", path.join(dir, "config.toml")]);
  client = await connect({ socket: daemon.socket });
  // A table of the tests' own (the example rewrites the whole file, so it runs last).
  const r = await client.run(
    [
      'await sqlite.write_query(query="DROP TABLE IF EXISTS items")',
      'await sqlite.create_table(query="CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")',
      "for i, n in enumerate(['kettle', 'teapot', 'mug', 'tray'], 1):",
      '    await sqlite.write_query(query=f"INSERT INTO items VALUES ({i}, \'{n}\')")',
    ].join("\n"),
    { mcpServers: ["sqlite"] },
  );
  assert.ok(r.ok, r.render());
}, { timeout: SUITE_TIMEOUT_MS });

after(async () => {
  await client?.close();
  await daemon?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const READ_ITEMS = `
import ast, asyncio
raw = await sqlite.read_query(query="SELECT id, name FROM items ORDER BY id")
rows = ast.literal_eval(raw) if isinstance(raw, str) else raw
stock = await asyncio.gather(*(stock_level(r["id"]) for r in rows))
[(r["name"], s) for r, s in zip(rows, stock)]
`;

function stockLevel(served: string[] = []): Tool {
  return tool(
    {
      name: "stock_level",
      description: "Units in stock of an item.",
      inputSchema: { type: "object", properties: { item_id: { type: "integer" } }, required: ["item_id"] },
    },
    ({ item_id }: { item_id: number }) => {
      served.push(`stock_level(${item_id})`);
      return item_id * 10;
    },
  );
}

describe("MCP servers", { timeout: SUITE_TIMEOUT_MS }, () => {
  it("initialize lists the configured servers and the discovery threshold", async () => {
    const info = await client.initialize();
    assert.deepEqual(info.mcpServers, ["broken", "sqlite"]);
    assert.ok(typeof info.discoveryThreshold === "number" && info.discoveryThreshold > 0);
  });

  it("a run mixes an MCP server's tools and client tools, in parallel; only client tools come here", async () => {
    const served: string[] = [];
    const r = await client.run(READ_ITEMS, { tools: [stockLevel(served)], mcpServers: ["sqlite"] });
    assert.ok(r.ok, r.render());
    assert.deepEqual(r.value, [["kettle", 10], ["teapot", 20], ["mug", 30], ["tray", 40]]);
    assert.deepEqual(served.sort(), [1, 2, 3, 4].map((i) => `stock_level(${i})`));
    assert.equal(r.toolCalls, 5);
  });

  for (const servers of [["nope"], ["sqlite", "nope"]]) {
    it(`an unknown server (${JSON.stringify(servers)}) is InvalidParamsError naming mcp_servers[${servers.length - 1}]`, async () => {
      const field = `mcp_servers[${servers.length - 1}]`;
      const isIt = (e: unknown): boolean => {
        assert.ok(e instanceof InvalidParamsError, String(e));
        assert.equal(e.field, field);
        assert.match(e.message, /sqlite/); // the message lists the configured names
        return true;
      };
      await assert.rejects(client.run("1", { mcpServers: servers }), isIt);
      await assert.rejects(client.createSession({ mcpServers: servers }), isIt);
      await assert.rejects(client.toolDefinitions({ format: "openai", mcpServers: servers }), isIt);
      assert.equal((await client.run("6 * 7")).value, 42);
    });
  }

  it("a server that cannot start is McpServerUnavailableError naming it; the daemon goes on", async () => {
    await assert.rejects(client.run("1", { mcpServers: ["broken"] }), (e: unknown) => {
      assert.ok(e instanceof McpServerUnavailableError && e instanceof PtcdError, String(e));
      assert.equal(e.code, -32008);
      assert.equal(e.server, "broken");
      assert.match(e.message, /^MCP server unavailable: broken: /);
      return true;
    });
    const r = await client.run("await sqlite.list_tables()", { mcpServers: ["sqlite"] });
    assert.ok(r.ok && String(r.value).includes("items"), r.render());
  });

  it("a lone string is refused before anything is sent", async () => {
    await assert.rejects(client.run("1", { mcpServers: "sqlite" as unknown as string[] }), TypeError);
    assert.equal((await client.run("1")).value, 1);
  });

  it("tools/definition shows the server as a namespace next to client tools", async () => {
    const spec = { name: "stock_level", description: "Units in stock of an item.", inputSchema: { type: "object", properties: { item_id: { type: "integer" } }, required: ["item_id"] } };
    const defs = await client.toolDefinitions({ format: "anthropic", tools: [spec], mcpServers: ["sqlite"] });
    assert.match(defs.stubs, /class sqlite/);
    assert.match(defs.stubs, /async def read_query\(/);
    assert.match(defs.stubs, /async def stock_level\(item_id: int\)/);
    assert.equal(defs.tools.length, 1);
    assert.equal(defs.tools[0]!.name, "run_code");
    assert.match(defs.tools[0]!.description, /read_query/);
    const without = await client.toolDefinitions({ format: "anthropic", tools: [spec] });
    assert.doesNotMatch(without.stubs, /read_query/);
  });

  it("a session with mcpServers lists their tools and serves every run", async () => {
    const session = await client.createSession({ tools: [stockLevel()], mcpServers: ["sqlite"] });
    try {
      assert.ok(session.pythonNames.includes("sqlite.read_query"), String(session.pythonNames));
      for (let i = 0; i < 2; i++) {
        const r = await session.run(READ_ITEMS);
        assert.ok(r.ok, r.render());
        assert.deepEqual((r.value as unknown[])[0], ["kettle", 10]);
      }
      await assert.rejects(session.run("1", { mcpServers: ["broken"] }), McpServerUnavailableError);
    } finally {
      await session.close();
    }
  });

  it("the AI SDK adapter passes mcpServers to the description and to every run", async () => {
    const { tool: aiTool, jsonSchema } = await import("ai");
    const stock = aiTool({
      description: "Units in stock of an item.",
      inputSchema: jsonSchema<{ item_id: number }>({ type: "object", properties: { item_id: { type: "integer" } }, required: ["item_id"] }),
      execute: async ({ item_id }) => item_id * 10,
    });
    const runCode = await runCodeTool(client, { stock_level: stock }, { mcpServers: ["sqlite"] });
    assert.match(runCode.description ?? "", /class sqlite/);
    const out = (await runCode.execute!({ code: READ_ITEMS }, { toolCallId: "t1", messages: [] })) as { ok: boolean; text: string };
    assert.ok(out.ok, out.text);
    assert.equal(out.text, '[["kettle",10],["teapot",20],["mug",30],["tray",40]]');
  });

  it("the OpenAI Agents adapter passes mcpServers to the description", async () => {
    const { tool: agentsTool } = await import("@openai/agents-core");
    const stock = agentsTool({
      name: "stock_level",
      description: "Units in stock of an item.",
      parameters: { type: "object", properties: { item_id: { type: "integer" } }, required: ["item_id"], additionalProperties: false },
      strict: true,
      execute: async (input: unknown) => (input as { item_id: number }).item_id * 10,
    });
    const runCode = await agentsRunCodeTool(client, [stock], { mcpServers: ["sqlite"] });
    assert.match(runCode.description, /class sqlite/);
    assert.match(runCode.description, /async def stock_level\(item_id: int\)/);
  });
});

describe("the MCP example", { timeout: SUITE_TIMEOUT_MS }, () => {
  it("mcp-shop.mjs: one sqlite.read_query through the real server, then lookup_customer for each row", async () => {
    let stdout: string;
    try {
      ({ stdout } = await promisify(execFile)(process.execPath, ["mcp-shop.mjs"], {
        cwd: examplesDir,
        env: { ...process.env, PTCD_SOCKET: daemon.socket, SHOP_DB: db },
        timeout: 60_000,
      }));
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      assert.fail(`mcp-shop.mjs failed: ${e.message}\nstdout:\n${e.stdout}\nstderr:\n${e.stderr}\ndaemon:\n${daemon.stderr().slice(-4000)}`);
    }
    assert.match(stdout, /Top 10 customers in 2025-11 spent \$[\d,.]+ in \d+ orders/);
    assert.match(stdout, /^Not on the gold tier yet: \d+ of 10$/m);
    const turns = /model turns with ptcd: (\d+) \(write the script, answer; (\d+) tool calls inside one run\) \| without: (\d+) with parallel tool calls, (\d+) with one tool call per turn/.exec(stdout);
    assert.ok(turns, stdout);
    // 1 query through the MCP server + 10 lookups served by the example.
    assert.deepEqual(turns.slice(1).map(Number), [2, 11, 3, 12]);
    const ptc = Number(/bytes reached the model with ptcd: (\d+)/.exec(stdout)?.[1]);
    const loop = Number(/one-tool-call-per-turn loop would have put in context: (\d+)/.exec(stdout)?.[1]);
    assert.ok(ptc > 0 && ptc * 5 < loop, stdout);
  });
});
