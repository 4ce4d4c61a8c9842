/**
 * OpenAI Agents JS SDK adapter (`@openai/agents-core` 0.20.x, also what `@openai/agents`
 * re-exports): one call turns your agent's function tools into one `run_code` tool
 * backed by ptcd. Every tool the script `await`s runs through the tool's own `invoke`
 * (its zod or JSON Schema parsing, `execute`, timeout, output validation) with the
 * agent run's `RunContext`, so `runContext.context` reaches it.
 *
 * ```ts
 * import { Agent, run } from "@openai/agents";
 * import { connect } from "ptcd";
 * import { runCodeTool } from "ptcd/openai-agents";
 *
 * const client = await connect();
 * const agent = new Agent({ name: "analyst", tools: [await runCodeTool(client, [getWeather, queryDatabase])] });
 * const result = await run(agent, "…", { context: { userId } });
 * ```
 *
 * Tool errors: the SDK's default `errorFunction` turns a thrown error into the string
 * "An error occurred while running the tool. Please try again." — a script would get it
 * as *data*. This adapter recognises that string and raises `ToolError` in the script
 * instead; give your tools `errorFunction: null` to pass the error's own message on too.
 */
import { type FunctionTool, type RunContext, type Tool as AgentsTool } from "@openai/agents-core";
import type { Client, Limits, OutputChunk } from "./client.js";
import type { RunResult } from "./result.js";
import type { Tool } from "./tools.js";
/** What the SDK's default `errorFunction` returns for any error (so, never real data). */
export declare const AGENTS_DEFAULT_TOOL_ERROR = "An error occurred while running the tool. Please try again.";
export interface RunCodeToolOptions {
    /** Name of the tool the model sees (default `run_code`). */
    name?: string;
    policy?: string;
    limits?: Limits;
    env?: Record<string, string>;
    inputs?: Record<string, unknown>;
    sessionId?: string;
    onOutput?: (chunk: OutputChunk) => void;
    /** MCP servers of the daemon's config whose tools the script may call too (their stubs join the description; the daemon calls them). */
    mcpServers?: readonly string[];
    /** Called with every finished run (logging, metrics). */
    onRun?: (result: RunResult, code: string) => void;
}
/**
 * The agent's function tools as ptcd tools bound to one agent run: each call goes
 * through the tool's own `invoke` with that run's `RunContext`; the outer call's
 * abort signal and ptcd's are both honoured. A tool whose `needsApproval` says yes
 * for these arguments is refused (a script cannot stop for a human).
 */
export declare function fromAgentsTools<Context>(tools: readonly AgentsTool<Context>[], runContext: RunContext<Context>, outerSignal?: AbortSignal): Tool[];
/**
 * One Agents SDK function tool that runs the model's Python script in ptcd with `tools`
 * callable from it; its description is the daemon's `run_code` description with every
 * tool as a typed stub. The model reads `RunResult.render()` (for a failed script: the
 * error and the script's traceback). Each agent run's `RunContext` goes to the tools its
 * scripts call, so concurrent runs sharing one client keep their contexts apart.
 */
export declare function runCodeTool<Context = unknown>(client: Client, tools: readonly AgentsTool<Context>[], options?: RunCodeToolOptions): Promise<FunctionTool<Context, any, string>>;
//# sourceMappingURL=openai-agents.d.ts.map