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
import { invokeFunctionTool, tool as agentsTool } from "@openai/agents-core";
/** What the SDK's default `errorFunction` returns for any error (so, never real data). */
export const AGENTS_DEFAULT_TOOL_ERROR = "An error occurred while running the tool. Please try again.";
function functionTools(tools) {
    return tools.map((t) => {
        if (t.type !== "function") {
            throw new TypeError(`ptcd: ${t.name} is a ${t.type} tool; only function tools can be called from a script`);
        }
        return t;
    });
}
function specOf(t) {
    const spec = { name: t.name, inputSchema: t.parameters };
    if (t.description)
        spec.description = t.description;
    const output = t.outputSchema;
    if (output && typeof output === "object")
        spec.outputSchema = output;
    return spec;
}
/**
 * The agent's function tools as ptcd tools bound to one agent run: each call goes
 * through the tool's own `invoke` with that run's `RunContext`; the outer call's
 * abort signal and ptcd's are both honoured. A tool whose `needsApproval` says yes
 * for these arguments is refused (a script cannot stop for a human).
 */
export function fromAgentsTools(tools, runContext, outerSignal) {
    return functionTools(tools).map((t) => ({
        ...specOf(t),
        handler: async (args, ctx) => {
            const callId = `ptcd-${ctx.runId}-${ctx.callId}`;
            if (await t.needsApproval(runContext, args, callId)) {
                throw new Error(`${t.name} needs approval for these arguments; it cannot be called from a script`);
            }
            const signal = outerSignal ? AbortSignal.any([outerSignal, ctx.signal]) : ctx.signal;
            const output = await invokeFunctionTool({ tool: t, runContext, input: JSON.stringify(args ?? {}), details: { signal } });
            if (output === AGENTS_DEFAULT_TOOL_ERROR) {
                throw new Error(`${t.name} failed: ${AGENTS_DEFAULT_TOOL_ERROR} (the tool's default errorFunction hid the cause; set errorFunction: null to pass it on)`);
            }
            return output;
        },
    }));
}
/**
 * One Agents SDK function tool that runs the model's Python script in ptcd with `tools`
 * callable from it; its description is the daemon's `run_code` description with every
 * tool as a typed stub. The model reads `RunResult.render()` (for a failed script: the
 * error and the script's traceback). Each agent run's `RunContext` goes to the tools its
 * scripts call, so concurrent runs sharing one client keep their contexts apart.
 */
export async function runCodeTool(client, tools, options = {}) {
    const fns = functionTools(tools);
    const defs = await client.toolDefinitions({
        format: "openai_responses",
        tools: fns.map((t) => specOf(t)),
        ...(options.sessionId !== undefined ? { sessionId: options.sessionId } : {}),
        ...(options.mcpServers !== undefined ? { mcpServers: options.mcpServers } : {}),
    });
    const runCode = defs.tools.find((d) => d.name === "run_code");
    if (!runCode)
        throw new Error("ptcd: tools/definition returned no run_code tool");
    const codeProperty = runCode.parameters.properties?.code ?? { type: "string" };
    return agentsTool({
        name: options.name ?? "run_code",
        description: runCode.description,
        parameters: {
            type: "object",
            properties: { code: codeProperty },
            required: ["code"],
            additionalProperties: false,
        },
        strict: true,
        execute: async (input, runContext, details) => {
            const { code } = input;
            if (!runContext)
                throw new Error("ptcd: run_code needs the agent run's RunContext");
            const runOptions = { tools: fromAgentsTools(fns, runContext, details?.signal) };
            if (options.policy !== undefined)
                runOptions.policy = options.policy;
            if (options.limits !== undefined)
                runOptions.limits = options.limits;
            if (options.env !== undefined)
                runOptions.env = options.env;
            if (options.inputs !== undefined)
                runOptions.inputs = options.inputs;
            if (options.sessionId !== undefined)
                runOptions.sessionId = options.sessionId;
            if (options.onOutput !== undefined)
                runOptions.onOutput = options.onOutput;
            if (options.mcpServers !== undefined)
                runOptions.mcpServers = options.mcpServers;
            if (details?.signal !== undefined)
                runOptions.signal = details.signal;
            const result = await client.run(code, runOptions);
            options.onRun?.(result, code);
            return result.render();
        },
        // The daemon refused the run or went away (a script's own errors are results, above):
        // say what happened rather than the SDK's generic "An error occurred…".
        errorFunction: (_runContext, error) => `run_code failed before the script could finish: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
    });
}
//# sourceMappingURL=openai-agents.js.map