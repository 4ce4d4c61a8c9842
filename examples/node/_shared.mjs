// Helpers shared by the examples: deterministic fake data, byte accounting, reporting.
import { connect } from "ptcd";

/** Connects to ptcd (PTCD_SOCKET or the default path), explaining how to start it if it isn't running. */
export async function connectOrExplain() {
  try {
    return await connect();
  } catch (err) {
    console.error(String(err?.message ?? err));
    process.exit(2);
  }
}

/** Runs the story's script; a failed run prints what the model would have seen and exits. */
export async function runOrExit(client, code, tools) {
  const result = await client.run(code, { tools });
  if (!result.ok) {
    console.error(result.render());
    process.exit(1);
  }
  return result;
}

/** A small seeded PRNG (mulberry32) so every run of an example sees the same data. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const bytes = (s) => Buffer.byteLength(s, "utf8");

/**
 * Wraps tools so we can tell what a one-tool-call-per-turn loop would have put
 * in the model's context: every call's arguments and every full result.
 */
export function metered(tools) {
  const stats = { calls: 0, contextBytes: 0 };
  const wrapped = tools.map((t) => ({
    ...t,
    handler: async (args, ctx) => {
      const result = await t.handler(args, ctx);
      stats.calls += 1;
      stats.contextBytes += bytes(JSON.stringify({ name: t.name, arguments: args })) + bytes(JSON.stringify(result));
      return result;
    },
  }));
  return { tools: wrapped, stats };
}

/**
 * Counts a call this process did not serve (an MCP server's: the daemon calls it) in the same
 * stats: its arguments and a result of `resultBytes` bytes, as a one-call-per-turn loop would
 * have read it.
 */
export function recordExternal(stats, name, args, resultBytes) {
  stats.calls += 1;
  stats.contextBytes += bytes(JSON.stringify({ name, arguments: args })) + resultBytes;
}

/**
 * Prints the story's outcome: the answer, then model turns and bytes into the model's
 * context with ptcd and without it.
 *
 * With ptcd the model takes 2 turns (write the script; answer from its result) and reads
 * the script it wrote plus `result.render()`. Without it, every tool call and its full
 * result enter the context; a model that makes one tool call per turn needs
 * `calls + 1` turns, one that batches independent calls needs `rounds + 1`, where
 * `rounds` is the number of dependent steps in the story (given by each example).
 */
export function report({ answer, code, result, stats, rounds }) {
  const ptc = bytes(code) + bytes(result.render());
  console.log(`answer: ${answer}`);
  console.log(
    `model turns with ptcd: 2 (write the script, answer; ${plural(result.toolCalls, "tool call")} inside one run) | ` +
      `without: ${rounds + 1} with parallel tool calls, ${stats.calls + 1} with one tool call per turn`,
  );
  console.log(`bytes reached the model with ptcd: ${ptc} (script ${bytes(code)} + result ${bytes(result.render())})`);
  console.log(`bytes a one-tool-call-per-turn loop would have put in context: ${stats.contextBytes} (${plural(stats.calls, "tool call")} and their full results)`);
  console.log(`ratio: ${(stats.contextBytes / ptc).toFixed(1)}x less context with ptcd`);
}

/** Fails loudly when the script's answer is not what plain JS computes from the same data. */
export function check(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) {
    console.error(`MISMATCH in ${what}: script said ${a}, expected ${e}`);
    process.exit(1);
  }
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
