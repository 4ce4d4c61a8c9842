// Story 1: revenue by region from a database.
//
// The model wants the top region by 2025 revenue. Without ptcd it would call
// `query_database` and read every row back through its context; with ptcd it
// writes one script that queries and aggregates, and only the answer comes back.
// The database is an in-memory SQLite (sql.js, WebAssembly: no native build, no network).
import initSqlJs from "sql.js";
import { tool } from "ptcd";
import { check, connectOrExplain, metered, report, rng, runOrExit } from "./_shared.mjs";

const SQL = await initSqlJs();
const db = new SQL.Database();
db.run("CREATE TABLE sales (id INTEGER PRIMARY KEY, region TEXT, product TEXT, amount_cents INTEGER, sold_at TEXT)");
const regions = ["EMEA", "North America", "LATAM", "APAC"];
const products = ["basic", "pro", "enterprise"];
const rand = rng(42);
const insert = db.prepare("INSERT INTO sales (region, product, amount_cents, sold_at) VALUES (?, ?, ?, ?)");
for (let i = 0; i < 3000; i++) {
  const month = String(1 + Math.floor(rand() * 12)).padStart(2, "0");
  const year = rand() < 0.7 ? 2025 : 2024;
  insert.run([regions[Math.floor(rand() * regions.length)], products[Math.floor(rand() * 3)], 1000 + Math.floor(rand() * 200000), `${year}-${month}-15`]);
}
insert.free();

/** Runs a read-only query and returns the rows as objects (what a real DB tool would do). */
function queryDatabase({ sql }) {
  if (!/^\s*select\b/i.test(sql)) throw new Error("only SELECT statements are allowed");
  const stmt = db.prepare(sql);
  const rows = [];
  while (stmt.step()) rows.push(stmt.getAsObject());
  stmt.free();
  return rows;
}

const { tools, stats } = metered([
  tool(
    {
      name: "query_database",
      description: "Run a read-only SQL query against the sales database. Table sales(id, region, product, amount_cents, sold_at TEXT 'YYYY-MM-DD').",
      inputSchema: { type: "object", properties: { sql: { type: "string" } }, required: ["sql"] },
      outputSchema: { type: "array", items: { type: "object" } },
    },
    queryDatabase,
  ),
]);

// What the model writes (Python: that is what the daemon runs).
const code = `
rows = await query_database("SELECT region, amount_cents FROM sales WHERE sold_at >= '2025-01-01'")
totals = {}
for r in rows:
    totals[r["region"]] = totals.get(r["region"], 0) + r["amount_cents"]
top = max(totals, key=totals.get)
print(f"top region: {top} with {totals[top] / 100:,.2f} of {sum(totals.values()) / 100:,.2f} total")
{"top_region": top, "region_cents": totals[top], "total_cents": sum(totals.values())}
`.trimStart();

const client = await connectOrExplain();
try {
  const result = await runOrExit(client, code, tools);
  const [expected] = queryDatabase({
    sql: "SELECT region, SUM(amount_cents) AS c, (SELECT SUM(amount_cents) FROM sales WHERE sold_at >= '2025-01-01') AS t FROM sales WHERE sold_at >= '2025-01-01' GROUP BY region ORDER BY c DESC LIMIT 1",
  });
  check(result.value, { top_region: expected.region, region_cents: expected.c, total_cents: expected.t }, "revenue");
  console.log(result.render());
  report({ rounds: 1, answer: `${result.value.top_region} (${result.value.region_cents / 100} of ${result.value.total_cents / 100})`, code, result, stats });
} finally {
  await client.close();
}
