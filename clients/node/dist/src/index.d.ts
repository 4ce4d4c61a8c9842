/**
 * ptcd — Node client for the programmatic-tool-calling daemon.
 *
 * ```ts
 * import { connect, tool } from "ptcd";
 * const client = await connect();
 * const result = await client.run("r = await add(a=1, b=2)\nr", {
 *   tools: [tool({ name: "add" }, ({ a, b }) => a + b)],
 * });
 * console.log(result.render()); // "3"
 * await client.close();
 * ```
 */
export { connect, Client, Session, VERSION, toolErrorPayload, type ConnectOptions, type RunOptions, type Limits, type OutputChunk, type InitializeResult, type DaemonStatus, type SessionOptions, type DefinitionFormat, type ToolDefinitions, type ToolDefinitionsByFormat, type OpenAIChatToolDefinition, type OpenAIResponsesToolDefinition, type AnthropicToolDefinition, type GeminiFunctionDeclaration, type McpToolDefinition, } from "./client.js";
export { PtcdError, ParseError, InvalidRequestError, MethodNotFoundError, InvalidParamsError, InternalError, UnknownSessionError, OverloadedError, LimitsExceedPolicyError, UnknownPolicyError, UnknownRunError, SandboxUnavailableError, ShuttingDownError, McpServerUnavailableError, ConnectionClosedError, DaemonNotRunningError, ToolError, ErrorCode, errorFromRpc, } from "./errors.js";
export { RunResult, type RunStatus, type RunErrorInfo, type WireRunResult } from "./result.js";
export { tool, toWireSpec, pythonName, type Tool, type ToolSpec, type ToolHandler, type ToolCallContext, type ToolDefinitionLike, type WireToolSpec, type JsonSchema, type AllowedCaller, } from "./tools.js";
export { defaultSocketPath } from "./paths.js";
export type { StandardSchemaV1, StandardJSONSchemaV1, SchemaLike, InferSchemaOutput } from "./schema.js";
export { LineDecoder, encodeLine } from "./framing.js";
//# sourceMappingURL=index.d.ts.map