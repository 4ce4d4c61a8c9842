// Story 3: 10,000 log entries from a tool, filtered in the script to the last 10 errors.
//
// The tool returns about a megabyte of JSON. A one-call-per-turn loop pastes all
// of it into the model's context; the script keeps it in the sandbox and sends
// back ten lines.
import { tool } from "ptcd";
import { check, connectOrExplain, metered, report, rng, runOrExit } from "./_shared.mjs";

const rand = rng(2025);
const services = ["api", "billing", "auth", "search"];
const start = Date.parse("2025-06-01T00:00:00Z");
const logs = Array.from({ length: 10_000 }, (_, i) => {
  const r = rand();
  const level = r < 0.02 ? "ERROR" : r < 0.1 ? "WARN" : "INFO";
  const service = services[Math.floor(rand() * services.length)];
  return {
    ts: new Date(start + i * 1500).toISOString(),
    level,
    service,
    message: level === "ERROR" ? `${service}: request ${i} failed: upstream timeout after 30s` : `${service}: handled request ${i} in ${Math.floor(rand() * 300)} ms`,
  };
});

const { tools, stats } = metered([
  tool(
    {
      name: "get_logs",
      description: "Return the service logs of the last few hours, oldest first: [{ts, level, service, message}].",
      inputSchema: { type: "object", properties: {} },
      outputSchema: {
        type: "array",
        items: {
          type: "object",
          properties: {
            ts: { type: "string", description: "ISO 8601 timestamp" },
            level: { enum: ["INFO", "WARN", "ERROR"] },
            service: { enum: services },
            message: { type: "string" },
          },
          required: ["ts", "level", "service", "message"],
        },
      },
    },
    () => logs,
  ),
]);

const code = `
logs = await get_logs()
errors = [e for e in logs if e["level"] == "ERROR"][-10:]
for e in errors:
    print(e["ts"], e["service"], e["message"])
len(errors)
`.trimStart();

const client = await connectOrExplain();
try {
  const result = await runOrExit(client, code, tools);
  const expected = logs.filter((e) => e.level === "ERROR").slice(-10);
  check(result.stdout, expected.map((e) => `${e.ts} ${e.service} ${e.message}\n`).join(""), "logs");
  console.log(result.render());
  report({ rounds: 1, answer: `last error at ${expected.at(-1).ts} (${expected.at(-1).service})`, code, result, stats });
} finally {
  await client.close();
}
