/**
 * Vercel AI SDK adapter (`ai` 6.x): one call turns your AI SDK tools into one
 * `run_code` tool backed by ptcd. The model writes a Python script; every tool it
 * `await`s runs *your* AI SDK tool here — its own schema validation, `execute`,
 * `experimental_context`, `messages` and abort signal — and only the script's
 * output goes back into the model's context.
 *
 * ```ts
 * import { generateText, stepCountIs } from "ai";
 * import { connect } from "ptcd";
 * import { runCodeTool } from "ptcd/ai-sdk";
 *
 * const client = await connect();
 * const { text } = await generateText({
 *   model,
 *   tools: { run_code: await runCodeTool(client, { getWeather, queryDatabase }) },
 *   stopWhen: stepCountIs(5),
 *   prompt: "…",
 * });
 * ```
 *
 * Imported only through the `ptcd/ai-sdk` entry point: the core package does not
 * depend on `ai`, which is an optional peer dependency.
 */
import { asSchema, jsonSchema, tool as aiTool, type Tool as AiTool, type ToolExecutionOptions } from "ai";
import type { Client, Limits, OutputChunk, RunOptions } from "./client.js";
import type { RunResult } from "./result.js";
import type { JsonSchema, Tool, ToolCallContext } from "./tools.js";

/** What the model sends to `run_code`. */
export interface RunCodeInput {
  code: string;
}

export interface RunCodeToolOptions {
  /** Policy name for the runs (default: the daemon's default policy). */
  policy?: string;
  /** Limits for each run; may only tighten the policy's. */
  limits?: Limits;
  /** Extra environment variables for the child. */
  env?: Record<string, string>;
  /** Bound as globals in every script (name → JSON value). */
  inputs?: Record<string, unknown>;
  /** Run in this daemon session (its tools are added; persistent sessions keep variables). */
  sessionId?: string;
  /** Streams the script's output while it runs. */
  onOutput?: (chunk: OutputChunk) => void;
  /** MCP servers of the daemon's config whose tools the script may call too (their stubs join the description; the daemon calls them). */
  mcpServers?: readonly string[];
  /** Called with every finished run (logging, metrics). */
  onRun?: (result: RunResult, input: RunCodeInput) => void;
}

/** What `run_code` returns (the tool result in the AI SDK's steps); the model reads `text`. */
export interface RunCodeOutput {
  /** True when the script ran to completion without raising. */
  ok: boolean;
  status: RunResult["status"];
  /** `RunResult.render()`: stdout and the last value, or the error and the script's traceback. */
  text: string;
  /** How many tool calls the script made. */
  toolCalls: number;
}

/** An AI SDK tool checked and converted once; its handler is bound per `run_code` call. */
interface Prepared {
  spec: Omit<Tool, "handler">;
  bind(outer: (() => ToolExecutionOptions) | undefined): Tool;
}

async function prepare(tools: Record<string, AiTool>): Promise<Prepared[]> {
  const out: Prepared[] = [];
  for (const [name, t] of Object.entries(tools)) {
    if (t.type === "provider") {
      throw new TypeError(`ptcd: ${name} is a provider-executed tool; only tools with an execute function can be called from a script`);
    }
    const execute = t.execute;
    if (typeof execute !== "function") {
      throw new TypeError(`ptcd: ${name} has no execute function (a client-side tool); only tools with one can be called from a script`);
    }
    if (t.needsApproval !== undefined && t.needsApproval !== false) {
      throw new TypeError(`ptcd: ${name} needs approval before it runs; calls from a script would skip that, so offer it to the model directly instead`);
    }
    const input = asSchema(t.inputSchema);
    const spec: Omit<Tool, "handler"> = { name, inputSchema: (await input.jsonSchema) as JsonSchema };
    if (t.description !== undefined) spec.description = t.description;
    if (t.outputSchema !== undefined) spec.outputSchema = (await asSchema(t.outputSchema).jsonSchema) as JsonSchema;
    const bind = (outer: (() => ToolExecutionOptions) | undefined): Tool => ({
      ...spec,
      handler: async (args: unknown, ctx: ToolCallContext) => {
        let value: unknown = args;
        if (input.validate) {
          const checked = await input.validate(args);
          if (!checked.success) throw new TypeError(`invalid arguments for ${name}: ${checked.error.message}`);
          value = checked.value;
        }
        const base = outer?.();
        const signal = base?.abortSignal ? AbortSignal.any([base.abortSignal, ctx.signal]) : ctx.signal;
        const options: ToolExecutionOptions = {
          toolCallId: `${base?.toolCallId ?? "run_code"}/${ctx.runId}/${ctx.callId}`,
          messages: base?.messages ?? [],
          abortSignal: signal,
          ...(base && "experimental_context" in base ? { experimental_context: base.experimental_context } : {}),
        };
        return lastValue(await execute(value as never, options));
      },
    });
    out.push({ spec, bind });
  }
  return out;
}

/**
 * The AI SDK tools (a `ToolSet`) as ptcd tools, for `client.run` or a session. Each
 * handler validates the script's arguments with the tool's own `inputSchema` and calls
 * its `execute`; `outer` gives the options of the call that started the script (its
 * `experimental_context`, `messages`, `abortSignal`), combined with ptcd's signal.
 * Tools without `execute`, provider-executed tools and tools that need approval are
 * refused with a `TypeError`.
 */
export async function fromAiSdkTools(tools: Record<string, AiTool>, outer?: () => ToolExecutionOptions): Promise<Tool[]> {
  return (await prepare(tools)).map((p) => p.bind(outer));
}

/**
 * One AI SDK tool that runs the model's Python script in ptcd with `tools` callable
 * from it. Its description is the daemon's `run_code` description: how to write the
 * script, and every tool as a typed Python stub (result shapes from `outputSchema`).
 *
 * The model reads the run's compact rendering (`RunResult.render()`): stdout and the
 * last expression's value, or, for a failed run, as an error result, the error and
 * the script's traceback, so it can fix its script.
 *
 * Each `run_code` call passes its own options to the tools its script calls, so
 * concurrent agent runs sharing one client keep their contexts apart.
 */
export async function runCodeTool(
  client: Client,
  tools: Record<string, AiTool>,
  options: RunCodeToolOptions = {},
): Promise<AiTool<RunCodeInput, RunCodeOutput>> {
  const prepared = await prepare(tools);
  const defs = await client.toolDefinitions({
    format: "openai",
    tools: prepared.map((p) => p.spec),
    ...(options.sessionId !== undefined ? { sessionId: options.sessionId } : {}),
    ...(options.mcpServers !== undefined ? { mcpServers: options.mcpServers } : {}),
  });
  const runCode = defs.tools.find((d) => d.function.name === "run_code");
  if (!runCode) throw new Error("ptcd: tools/definition returned no run_code tool");

  return aiTool<RunCodeInput, RunCodeOutput>({
    description: runCode.function.description,
    inputSchema: jsonSchema<RunCodeInput>(runCode.function.parameters as Parameters<typeof jsonSchema>[0], {
      validate: (value) =>
        typeof value === "object" && value !== null && typeof (value as { code?: unknown }).code === "string"
          ? { success: true, value: value as RunCodeInput }
          : { success: false, error: new TypeError("run_code needs {code: string}") },
    }),
    execute: async (input, callOptions) => {
      const runOptions: RunOptions = { tools: prepared.map((p) => p.bind(() => callOptions)) };
      if (options.policy !== undefined) runOptions.policy = options.policy;
      if (options.limits !== undefined) runOptions.limits = options.limits;
      if (options.env !== undefined) runOptions.env = options.env;
      if (options.inputs !== undefined) runOptions.inputs = options.inputs;
      if (options.sessionId !== undefined) runOptions.sessionId = options.sessionId;
      if (options.onOutput !== undefined) runOptions.onOutput = options.onOutput;
      if (options.mcpServers !== undefined) runOptions.mcpServers = options.mcpServers;
      if (callOptions.abortSignal !== undefined) runOptions.signal = callOptions.abortSignal;
      const result = await client.run(input.code, runOptions);
      options.onRun?.(result, input);
      return { ok: result.ok, status: result.status, text: result.render(), toolCalls: result.toolCalls };
    },
    toModelOutput: ({ output }) => ({ type: output.ok ? "text" : "error-text", value: output.text }),
  });
}

/** A tool's `execute` may stream preliminary results (an async iterable): the last one is the result. */
async function lastValue(result: unknown): Promise<unknown> {
  if (result !== null && typeof result === "object" && Symbol.asyncIterator in result) {
    let last: unknown = null;
    for await (const chunk of result as AsyncIterable<unknown>) last = chunk;
    return last;
  }
  return result;
}
