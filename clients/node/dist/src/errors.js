/**
 * Typed errors for everything the contract can answer with, so callers can
 * `catch (e) { if (e instanceof OverloadedError) retry(); }` instead of
 * comparing numeric codes.
 */
/** JSON-RPC error codes used by the ptcd contract (version 1.1). */
export const ErrorCode = {
    ParseError: -32700,
    InvalidRequest: -32600,
    MethodNotFound: -32601,
    InvalidParams: -32602,
    InternalError: -32603,
    /** What this client answers a `tool/call` with when the handler throws. */
    ToolError: -32000,
    UnknownSession: -32001,
    Overloaded: -32002,
    LimitsExceedPolicy: -32003,
    UnknownPolicy: -32004,
    UnknownRun: -32005,
    SandboxUnavailable: -32006,
    ShuttingDown: -32007,
    /** An MCP server named in `mcp_servers` could not start or list its tools (contract v1.1). */
    McpServerUnavailable: -32008,
};
/** Base class of every error this library raises on purpose. */
export class PtcdError extends Error {
    /** The JSON-RPC error code, or `undefined` for client-side conditions (closed, not running). */
    code;
    /** The `data` member of the JSON-RPC error, if the daemon sent one. */
    data;
    /** The code a subclass stands for; used when an instance is built without one. */
    static CODE = undefined;
    constructor(message, options = {}) {
        super(message, options.cause === undefined ? undefined : { cause: options.cause });
        this.name = new.target.name;
        this.code = options.code ?? new.target.CODE;
        this.data = options.data;
    }
}
/** -32700: the daemon could not parse what it received (not JSON, not UTF-8). */
export class ParseError extends PtcdError {
    static CODE = ErrorCode.ParseError;
}
/** -32600: not JSON-RPC 2.0, a batch, or a line over the daemon's size limit. */
export class InvalidRequestError extends PtcdError {
    static CODE = ErrorCode.InvalidRequest;
}
/** -32601: the daemon does not know the method (e.g. an older daemon). */
export class MethodNotFoundError extends PtcdError {
    static CODE = ErrorCode.MethodNotFound;
}
/** -32602: invalid params; {@link InvalidParamsError.field} names the offending field. */
export class InvalidParamsError extends PtcdError {
    static CODE = ErrorCode.InvalidParams;
    /** `data.field` from the daemon: which parameter was wrong, when it said. */
    field;
    constructor(message, options = {}) {
        super(message, options);
        const data = options.data;
        this.field =
            typeof data === "object" && data !== null && typeof data.field === "string"
                ? data.field
                : undefined;
    }
}
/** -32603: the daemon hit a bug or an unexpected condition. */
export class InternalError extends PtcdError {
    static CODE = ErrorCode.InternalError;
}
/** -32001: the session id is not (or no longer) known to the daemon. */
export class UnknownSessionError extends PtcdError {
    static CODE = ErrorCode.UnknownSession;
}
/** -32002: too many concurrent runs; retrying later is expected to work. */
export class OverloadedError extends PtcdError {
    static CODE = ErrorCode.Overloaded;
}
/** -32003: the requested `limits` are looser than the policy allows (limits may only tighten). */
export class LimitsExceedPolicyError extends PtcdError {
    static CODE = ErrorCode.LimitsExceedPolicy;
}
/** -32004: no policy with that name. */
export class UnknownPolicyError extends PtcdError {
    static CODE = ErrorCode.UnknownPolicy;
}
/** -32005: unknown run or request id (e.g. `run/cancel` for something already gone). */
export class UnknownRunError extends PtcdError {
    static CODE = ErrorCode.UnknownRun;
}
/** -32006: the policy needs a confinement this host lacks; the daemon fails closed. */
export class SandboxUnavailableError extends PtcdError {
    static CODE = ErrorCode.SandboxUnavailable;
}
/** -32007: the daemon is shutting down and accepts no new work. */
export class ShuttingDownError extends PtcdError {
    static CODE = ErrorCode.ShuttingDown;
}
/**
 * -32008: an MCP server named in `mcpServers` could not start or list its tools when it was
 * attached ("MCP server unavailable: <name>: <why>"). A server that breaks *during* a run is
 * not this error: the script's call raises `ToolError`.
 */
export class McpServerUnavailableError extends PtcdError {
    static CODE = ErrorCode.McpServerUnavailable;
    /** The server's config name (from `data.server`, else read from the message). */
    server;
    constructor(message, options = {}) {
        super(message, options);
        const data = options.data;
        const fromMessage = /^MCP server unavailable: ([^:]+):/.exec(message)?.[1]?.trim();
        this.server = typeof data?.server === "string" ? data.server : fromMessage || undefined;
    }
}
/** The connection ended (by `close()` or by the daemon) while a request was pending. */
export class ConnectionClosedError extends PtcdError {
    constructor(message = "connection to ptcd closed", options = {}) {
        super(message, options);
    }
}
/** Nothing is listening on the socket: the daemon is not running (or the path is wrong). */
export class DaemonNotRunningError extends PtcdError {
    /** The socket path that was tried. */
    socketPath;
    constructor(socketPath, options = {}) {
        super(`ptcd is not running at ${socketPath}: start it with \`ptcd serve --socket ${socketPath}\` ` +
            `(or \`ptcd serve\` for the default path), or set PTCD_SOCKET to where it listens`, options);
        this.socketPath = socketPath;
    }
}
/**
 * Throw this from a tool handler to choose the JSON-RPC error code and `data`
 * the script sees on its `ToolError`. Any other thrown value is answered with
 * code -32000 and the message `"<Error name>: <message>"`.
 */
export class ToolError extends Error {
    code;
    data;
    constructor(message, options = {}) {
        super(message, options.cause === undefined ? undefined : { cause: options.cause });
        this.name = "ToolError";
        this.code = options.code ?? ErrorCode.ToolError;
        this.data = options.data;
    }
}
const byCode = new Map([
    [ErrorCode.ParseError, ParseError],
    [ErrorCode.InvalidRequest, InvalidRequestError],
    [ErrorCode.MethodNotFound, MethodNotFoundError],
    [ErrorCode.InvalidParams, InvalidParamsError],
    [ErrorCode.InternalError, InternalError],
    [ErrorCode.UnknownSession, UnknownSessionError],
    [ErrorCode.Overloaded, OverloadedError],
    [ErrorCode.LimitsExceedPolicy, LimitsExceedPolicyError],
    [ErrorCode.UnknownPolicy, UnknownPolicyError],
    [ErrorCode.UnknownRun, UnknownRunError],
    [ErrorCode.SandboxUnavailable, SandboxUnavailableError],
    [ErrorCode.ShuttingDown, ShuttingDownError],
    [ErrorCode.McpServerUnavailable, McpServerUnavailableError],
]);
/** Maps a JSON-RPC `error` object to the matching typed error (unknown codes → {@link PtcdError}). */
export function errorFromRpc(error) {
    const code = typeof error.code === "number" ? error.code : undefined;
    const message = typeof error.message === "string" ? error.message : "unknown error";
    const Ctor = (code !== undefined && byCode.get(code)) || PtcdError;
    return new Ctor(message, { code, data: error.data });
}
//# sourceMappingURL=errors.js.map