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
export { connect, Client, Session, VERSION, toolErrorPayload, } from "./client.js";
export { PtcdError, ParseError, InvalidRequestError, MethodNotFoundError, InvalidParamsError, InternalError, UnknownSessionError, OverloadedError, LimitsExceedPolicyError, UnknownPolicyError, UnknownRunError, SandboxUnavailableError, ShuttingDownError, McpServerUnavailableError, ConnectionClosedError, DaemonNotRunningError, ToolError, ErrorCode, errorFromRpc, } from "./errors.js";
export { RunResult } from "./result.js";
export { tool, toWireSpec, pythonName, } from "./tools.js";
export { defaultSocketPath } from "./paths.js";
export { LineDecoder, encodeLine } from "./framing.js";
//# sourceMappingURL=index.js.map