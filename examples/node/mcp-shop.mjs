// Story: query the shop database through an MCP server, then look up each row in the CRM.
//
// The orders live in SQLite, served by the stock MCP server `mcp-server-sqlite` that the
// daemon's config declares ([mcp_servers.sqlite] in mcp-shop.toml next to this file); the
// customer records live in a CRM this process serves as an ordinary tool, `lookup_customer`.
// A one-call-per-turn loop queries the database, then looks the customers up one turn each,
// every CRM record landing in the model's context. With ptcd the model writes one script: one
// `await sqlite.read_query(...)` (the daemon calls the MCP server itself; nothing goes through
// this process), then every row's `lookup_customer` at once, and prints three lines.
//
//   pip install mcp-server-sqlite 'mcp<2'   # its last release needs the 1.x MCP SDK
//   ptcd serve --config mcp-shop.toml &
//   node mcp-shop.mjs
//
// SHOP_DB (default /tmp/ptcd-example/shop.db) is where the database is written: it must be the
// --db-path of the config. It is built with sql.js (WebAssembly) and written to that file.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import initSqlJs from "sql.js";
import { InvalidParamsError, McpServerUnavailableError, tool } from "ptcd";
import { check, connectOrExplain, metered, recordExternal, report, rng } from "./_shared.mjs";

const dbPath = process.env.SHOP_DB ?? "/tmp/ptcd-example/shop.db";
const month = "2025-11";
const top = 10;

// The shop's orders (deterministic contents), rewritten on every run.
const SQL = await initSqlJs();
const db = new SQL.Database();
db.run("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, day TEXT NOT NULL, total_cents INTEGER NOT NULL)");
const rand = rng(5);
const insert = db.prepare("INSERT INTO orders (customer_id, day, total_cents) VALUES (?, ?, ?)");
for (let i = 0; i < 800; i++) {
  const day = `2025-${rand() < 0.5 ? 10 : 11}-${String(1 + Math.floor(rand() * 28)).padStart(2, "0")}`;
  insert.run([1 + Math.floor(rand() * 60), day, 1500 + Math.floor(rand() * 88_500)]);
}
insert.free();
mkdirSync(path.dirname(dbPath), { recursive: true });
writeFileSync(dbPath, db.export());

// The CRM: one record per customer, with the notes and tickets a CRM record carries.
const pick = (items) => items[Math.floor(rand() * items.length)];
const crm = new Map(
  Array.from({ length: 60 }, (_, i) => {
    const id = i + 1;
    return [
      id,
      {
        id,
        name: `${pick(["Ada", "Bea", "Cyd", "Dov", "Eun", "Fay", "Gil", "Hal", "Ida", "Jun", "Kai", "Lev"])} ${pick(["Lindqvist", "Okafor", "Moreau", "Tanaka", "Silva", "Novak"])}`,
        email: `customer${id}@example.com`,
        phone: `+49 30 ${1_000_000 + Math.floor(rand() * 8_999_999)}`,
        tier: rand() < 0.2 ? "gold" : rand() < 0.5 ? "silver" : "bronze",
        country: pick(["DE", "FR", "NL", "SE", "PL", "ES", "IT"]),
        account_manager: pick(["Rosa", "Tomek", "Ingrid", "Malik"]),
        addresses: ["billing", "shipping", "warehouse"].map((kind) => ({
          kind,
          street: `${1 + Math.floor(rand() * 199)} ${pick(["Hauptstrasse", "Rue de la Paix", "Kerkstraat"])}`,
          city: pick(["Berlin", "Lyon", "Utrecht", "Malmo", "Krakow", "Valencia", "Turin"]),
          postcode: String(10_000 + Math.floor(rand() * 89_999)),
        })),
        notes:
          `Customer ${id}: prefers invoices by email, ships to two warehouses, asked about volume discounts at the last ` +
          "quarterly review; payment terms net 30; call before deliveries over 50 kg; has a standing order for " +
          "packaging material at the start of each month.",
        recent_tickets: Array.from({ length: 3 + Math.floor(rand() * 5) }, (_, t) => ({
          id: id * 100 + t,
          subject: pick(["late delivery", "invoice copy", "damaged item", "address change", "bulk order quote"]),
          status: pick(["open", "closed"]),
        })),
      },
    ];
  }),
);

const { tools, stats } = metered([
  tool(
    {
      name: "lookup_customer",
      description: "The CRM record of a customer: name, tier, country, account manager, notes, recent tickets.",
      inputSchema: {
        type: "object",
        properties: { customer_id: { type: "integer", description: "orders.customer_id in the shop database" } },
        required: ["customer_id"],
      },
      outputSchema: {
        type: "object",
        properties: {
          id: { type: "integer" },
          name: { type: "string" },
          tier: { enum: ["gold", "silver", "bronze"] },
          country: { type: "string" },
          account_manager: { type: "string" },
        },
      },
    },
    ({ customer_id }) => {
      const record = crm.get(customer_id);
      if (!record) throw new Error(`no customer ${customer_id}`);
      return record;
    },
  ),
]);

const query =
  "SELECT customer_id, COUNT(*) AS orders, SUM(total_cents) AS spent_cents FROM orders " +
  `WHERE day LIKE '${month}-%' GROUP BY customer_id ORDER BY spent_cents DESC, customer_id LIMIT ${top}`;

// What the model writes (Python: that is what the daemon runs).
const code = `
import ast, asyncio
raw = await sqlite.read_query(query="${query}")
# mcp-server-sqlite answers with the text of the rows' Python repr, not JSON
rows = ast.literal_eval(raw) if isinstance(raw, str) else raw
customers = await asyncio.gather(*(lookup_customer(r["customer_id"]) for r in rows))
spent = sum(r["spent_cents"] for r in rows)
print(f"Top {len(rows)} customers in ${month} spent \${spent / 100:,.2f} in {sum(r['orders'] for r in rows)} orders")
candidates = [(c, r) for c, r in zip(customers, rows) if c["tier"] != "gold"]
print(f"Not on the gold tier yet: {len(candidates)} of {len(rows)}")
for c, r in candidates:
    print(f"- {c['name']} (#{c['id']}, {c['country']}, {c['tier']}, manager {c['account_manager']}): \${r['spent_cents'] / 100:,.2f}")
`.trimStart();

const client = await connectOrExplain();
try {
  let result;
  try {
    result = await client.run(code, { tools, mcpServers: ["sqlite"] });
  } catch (err) {
    if (err instanceof InvalidParamsError) {
      console.error(`${err.message}\nStart the daemon with the config next to this example: ptcd serve --config mcp-shop.toml`);
      process.exit(2);
    }
    if (err instanceof McpServerUnavailableError) {
      console.error(`${err.message}\nIs mcp-server-sqlite installed (pip install mcp-server-sqlite 'mcp<2')?`);
      process.exit(2);
    }
    throw err;
  }
  if (!result.ok) {
    console.error(result.render());
    process.exit(1);
  }
  console.log(result.render());

  // Ground truth: the same query on the same database, the same CRM.
  const stmt = db.prepare(query);
  const ids = [];
  while (stmt.step()) ids.push(stmt.getAsObject().customer_id);
  stmt.free();
  const expected = ids.filter((id) => crm.get(id).tier !== "gold");
  const listed = [...result.stdout.matchAll(/\(#(\d+), /g)].map((m) => Number(m[1]));
  check(listed, expected, "customers not on the gold tier");

  // What a one-call-per-turn loop would also have read: the query's full result, measured by
  // fetching the same rows through the server once more.
  const size = await client.run(`len((await sqlite.read_query(query="${query}")).encode())`, { mcpServers: ["sqlite"] });
  if (!size.ok || typeof size.value !== "number") throw new Error(`measuring the query's result failed: ${size.render()}`);
  recordExternal(stats, "sqlite.read_query", { query }, size.value);
  report({ rounds: 2, answer: expected.map((id) => crm.get(id).name).join(", ") || "every top customer is gold", code, result, stats });
} finally {
  await client.close();
}
