/**
 * Typed errors for everything the contract can answer with, so callers can
 * `catch (e) { if (e instanceof OverloadedError) retry(); }` instead of
 * comparing numeric codes.
 */
/** JSON-RPC error codes used by the ptcd contract (version 1.1). */
export declare const ErrorCode: {
    readonly ParseError: -32700;
    readonly InvalidRequest: -32600;
    readonly MethodNotFound: -32601;
    readonly InvalidParams: -32602;
    readonly InternalError: -32603;
    /** What this client answers a `tool/call` with when the handler throws. */
    readonly ToolError: -32000;
    readonly UnknownSession: -32001;
    readonly Overloaded: -32002;
    readonly LimitsExceedPolicy: -32003;
    readonly UnknownPolicy: -32004;
    readonly UnknownRun: -32005;
    readonly SandboxUnavailable: -32006;
    readonly ShuttingDown: -32007;
    /** An MCP server named in `mcp_servers` could not start or list its tools (contract v1.1). */
    readonly McpServerUnavailable: -32008;
};
/** Base class of every error this library raises on purpose. */
export declare class PtcdError extends Error {
    /** The JSON-RPC error code, or `undefined` for client-side conditions (closed, not running). */
    readonly code: number | undefined;
    /** The `data` member of the JSON-RPC error, if the daemon sent one. */
    readonly data: unknown;
    /** The code a subclass stands for; used when an instance is built without one. */
    static readonly CODE: number | undefined;
    constructor(message: string, options?: {
        code?: number;
        data?: unknown;
        cause?: unknown;
    });
}
type RpcErrorInit = {
    code?: number;
    data?: unknown;
    cause?: unknown;
};
/** -32700: the daemon could not parse what it received (not JSON, not UTF-8). */
export declare class ParseError extends PtcdError {
    static readonly CODE: -32700;
}
/** -32600: not JSON-RPC 2.0, a batch, or a line over the daemon's size limit. */
export declare class InvalidRequestError extends PtcdError {
    static readonly CODE: -32600;
}
/** -32601: the daemon does not know the method (e.g. an older daemon). */
export declare class MethodNotFoundError extends PtcdError {
    static readonly CODE: -32601;
}
/** -32602: invalid params; {@link InvalidParamsError.field} names the offending field. */
export declare class InvalidParamsError extends PtcdError {
    static readonly CODE: -32602;
    /** `data.field` from the daemon: which parameter was wrong, when it said. */
    readonly field: string | undefined;
    constructor(message: string, options?: RpcErrorInit);
}
/** -32603: the daemon hit a bug or an unexpected condition. */
export declare class InternalError extends PtcdError {
    static readonly CODE: -32603;
}
/** -32001: the session id is not (or no longer) known to the daemon. */
export declare class UnknownSessionError extends PtcdError {
    static readonly CODE: -32001;
}
/** -32002: too many concurrent runs; retrying later is expected to work. */
export declare class OverloadedError extends PtcdError {
    static readonly CODE: -32002;
}
/** -32003: the requested `limits` are looser than the policy allows (limits may only tighten). */
export declare class LimitsExceedPolicyError extends PtcdError {
    static readonly CODE: -32003;
}
/** -32004: no policy with that name. */
export declare class UnknownPolicyError extends PtcdError {
    static readonly CODE: -32004;
}
/** -32005: unknown run or request id (e.g. `run/cancel` for something already gone). */
export declare class UnknownRunError extends PtcdError {
    static readonly CODE: -32005;
}
/** -32006: the policy needs a confinement this host lacks; the daemon fails closed. */
export declare class SandboxUnavailableError extends PtcdError {
    static readonly CODE: -32006;
}
/** -32007: the daemon is shutting down and accepts no new work. */
export declare class ShuttingDownError extends PtcdError {
    static readonly CODE: -32007;
}
/**
 * -32008: an MCP server named in `mcpServers` could not start or list its tools when it was
 * attached ("MCP server unavailable: <name>: <why>"). A server that breaks *during* a run is
 * not this error: the script's call raises `ToolError`.
 */
export declare class McpServerUnavailableError extends PtcdError {
    static readonly CODE: -32008;
    /** The server's config name (from `data.server`, else read from the message). */
    readonly server: string | undefined;
    constructor(message: string, options?: RpcErrorInit);
}
/** The connection ended (by `close()` or by the daemon) while a request was pending. */
export declare class ConnectionClosedError extends PtcdError {
    constructor(message?: string, options?: RpcErrorInit);
}
/** Nothing is listening on the socket: the daemon is not running (or the path is wrong). */
export declare class DaemonNotRunningError extends PtcdError {
    /** The socket path that was tried. */
    readonly socketPath: string;
    constructor(socketPath: string, options?: RpcErrorInit);
}
/**
 * Throw this from a tool handler to choose the JSON-RPC error code and `data`
 * the script sees on its `ToolError`. Any other thrown value is answered with
 * code -32000 and the message `"<Error name>: <message>"`.
 */
export declare class ToolError extends Error {
    readonly code: number;
    readonly data: unknown;
    constructor(message: string, options?: {
        code?: number;
        data?: unknown;
        cause?: unknown;
    });
}
/** Maps a JSON-RPC `error` object to the matching typed error (unknown codes → {@link PtcdError}). */
export declare function errorFromRpc(error: {
    code?: unknown;
    message?: unknown;
    data?: unknown;
}): PtcdError;
export {};
//# sourceMappingURL=errors.d.ts.map