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
import { type Tool as AiTool, type ToolExecutionOptions } from "ai";
import type { Client, Limits, OutputChunk } from "./client.js";
import type { RunResult } from "./result.js";
import type { Tool } from "./tools.js";
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
/**
 * The AI SDK tools (a `ToolSet`) as ptcd tools, for `client.run` or a session. Each
 * handler validates the script's arguments with the tool's own `inputSchema` and calls
 * its `execute`; `outer` gives the options of the call that started the script (its
 * `experimental_context`, `messages`, `abortSignal`), combined with ptcd's signal.
 * Tools without `execute`, provider-executed tools and tools that need approval are
 * refused with a `TypeError`.
 */
export declare function fromAiSdkTools(tools: Record<string, AiTool>, outer?: () => ToolExecutionOptions): Promise<Tool[]>;
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
export declare function runCodeTool(client: Client, tools: Record<string, AiTool>, options?: RunCodeToolOptions): Promise<AiTool<RunCodeInput, RunCodeOutput>>;
//# sourceMappingURL=ai-sdk.d.ts.map