import { RunResult } from "./result.js";
import { type JsonSchema, type Tool, type ToolSpec } from "./tools.js";
/** Resource limits; each may only tighten the policy's (looser → {@link LimitsExceedPolicyError}). */
export interface Limits {
    timeoutMs?: number;
    cpuMs?: number;
    memoryMb?: number;
    maxOutputBytes?: number;
    maxToolCalls?: number;
    maxConcurrentToolCalls?: number;
}
/** A chunk of output streamed while the run goes on (only when `onOutput` is given). */
export interface OutputChunk {
    stream: "stdout" | "stderr";
    text: string;
    runId: string;
}
export interface RunOptions {
    /** Tools the script may call in this run (added to the session's, if any). */
    tools?: readonly Tool[];
    /** Bound as globals before the script runs (name → JSON value). */
    inputs?: Record<string, unknown>;
    /** Policy name; default: the daemon's default policy. */
    policy?: string;
    limits?: Limits;
    /** Extra environment variables for the child. */
    env?: Record<string, string>;
    /** Run inside this session (prefer {@link Session.run}). */
    sessionId?: string;
    /** Receives output as it is produced; turns on `stream: true` for this run. */
    onOutput?: (chunk: OutputChunk) => void;
    /**
     * MCP servers of the daemon's config (by name) attached to this run: each is a namespace
     * in the script (`await sqlite.read_query(query=...)`), called by the daemon itself, never
     * sent to this client. In a session: added to the session's servers. An unknown name
     * rejects with {@link InvalidParamsError} (`field` = `mcp_servers[i]`), a server that
     * cannot start with {@link McpServerUnavailableError}.
     */
    mcpServers?: readonly string[];
    /**
     * Aborting sends `run/cancel`; the run then resolves with `status: "cancelled"`
     * and the output produced so far. Already aborted → rejects with `signal.reason`
     * without starting anything (like `fetch`).
     */
    signal?: AbortSignal;
}
export interface ConnectOptions {
    /** Socket path; default `PTCD_SOCKET`, then the contract's default path. */
    socket?: string;
}
/** `initialize` result, camelCased. */
export interface InitializeResult {
    protocolVersion: string;
    serverInfo: {
        name: string;
        version: string;
    };
    sandbox: {
        landlockAbi: number | null;
        seccomp: boolean;
        namespaces: boolean;
    };
    python: {
        executable: string;
        version: string;
    };
    policies: string[];
    defaultPolicy: string;
    /** Names of the MCP servers in the daemon's config, sorted (empty before contract v1.1). */
    mcpServers: string[];
    /** Above this many code-callable tools, definitions list names and summaries only and the script gets `search_tools` / `describe_tool`. */
    discoveryThreshold: number | undefined;
}
/** `daemon/status` result, as the daemon sends it (counters; shape may grow). */
export type DaemonStatus = Record<string, unknown>;
export interface SessionOptions {
    tools?: readonly Tool[];
    policy?: string;
    limits?: Limits;
    env?: Record<string, string>;
    /** Keep one interpreter across runs (globals survive, like a notebook). */
    persistent?: boolean;
    /** MCP servers (config names) attached to every run of the session; {@link Session.pythonNames} lists their tools as `"sqlite.read_query"`. */
    mcpServers?: readonly string[];
}
/** OpenAI Chat Completions: an entry of `tools`. */
export interface OpenAIChatToolDefinition {
    type: "function";
    function: {
        name: string;
        description: string;
        parameters: JsonSchema;
    };
}
/** OpenAI Responses API: an entry of `tools` (flat function tool). */
export interface OpenAIResponsesToolDefinition {
    type: "function";
    name: string;
    description: string;
    parameters: JsonSchema;
}
/** Anthropic Messages: an entry of `tools`. */
export interface AnthropicToolDefinition {
    name: string;
    description: string;
    input_schema: JsonSchema;
}
/** Gemini: an entry of `functionDeclarations`. */
export interface GeminiFunctionDeclaration {
    name: string;
    description: string;
    parameters: JsonSchema;
}
/** MCP: an entry of a `tools/list` result. */
export interface McpToolDefinition {
    name: string;
    description: string;
    inputSchema: JsonSchema;
}
/** The tool shape `tools/definition` gives for each format. */
export interface ToolDefinitionsByFormat {
    openai: OpenAIChatToolDefinition;
    openai_responses: OpenAIResponsesToolDefinition;
    anthropic: AnthropicToolDefinition;
    gemini: GeminiFunctionDeclaration;
    mcp: McpToolDefinition;
}
export type DefinitionFormat = keyof ToolDefinitionsByFormat;
/** `tools/definition` result: the tools to hand the model, and the stubs inside `run_code`'s description. */
export interface ToolDefinitions<F extends DefinitionFormat = DefinitionFormat> {
    tools: ToolDefinitionsByFormat[F][];
    stubs: string;
}
/**
 * Connects to the daemon. Rejects with {@link DaemonNotRunningError} when nothing listens.
 * If the daemon later goes away (restart, crash), requests in flight reject with
 * {@link ConnectionClosedError} and the next call connects again.
 */
export declare function connect(options?: ConnectOptions): Promise<Client>;
/**
 * One client of ptcd. Many runs may be in flight on it at once. It holds one
 * connection at a time: when the daemon goes away, what was in flight fails with
 * {@link ConnectionClosedError} and the next call opens a new connection.
 */
export declare class Client {
    #private;
    /** The socket path this client is connected to. */
    readonly socketPath: string;
    /** @internal use {@link connect}. */
    constructor(socketPath: string, socket: import("node:net").Socket);
    /** True after {@link close}: the client makes no further connection. */
    get closed(): boolean;
    /** True while a connection to the daemon is open (false after the daemon went away, until the next call). */
    get connected(): boolean;
    /** Optional handshake: what the daemon is, its sandbox capabilities, policies. */
    initialize(clientInfo?: {
        name: string;
        version: string;
    }): Promise<InitializeResult>;
    /** `daemon/status`: connections, runs, tool calls, per-status counts, uptime. */
    status(): Promise<DaemonStatus>;
    /**
     * Runs a Python script in the daemon's sandbox. Resolves with a {@link RunResult}
     * whenever the script executed, even if it failed (check `result.ok`); rejects
     * with a {@link PtcdError} subclass when the daemon refused the run.
     */
    run(code: string, options?: RunOptions): Promise<RunResult>;
    /** Creates a session: tools, policy, env shared by its runs; `persistent` keeps interpreter state. */
    createSession(options?: SessionOptions): Promise<Session>;
    /**
     * @internal used by {@link Session.close}. Idempotent: a session already closed, or
     * gone with the connection it was created on (the daemon closed it then), is done.
     */
    closeSession(id: string): Promise<void>;
    /**
     * `tools/definition`: the tool list to hand the model in a provider's format
     * (one `run_code` tool whose description shows every tool as a typed stub), typed
     * per format. Tools need no handler here (only their specs are sent), so the
     * definitions can be built where the tools are not served. `mcpServers` adds the tools
     * of those MCP servers of the daemon's config, one namespace class per server in the
     * stubs (above the daemon's `discoveryThreshold`: names and one-line summaries, and the
     * script gets `search_tools` / `describe_tool`).
     */
    toolDefinitions<F extends DefinitionFormat>(options: {
        format: F;
        tools?: readonly ToolSpec[];
        sessionId?: string;
        mcpServers?: readonly string[];
    }): Promise<ToolDefinitions<F>>;
    /**
     * Low-level escape hatch: sends any method and returns its raw result (errors
     * still map to typed classes). For methods newer than this library.
     */
    request(method: string, params?: unknown): Promise<unknown>;
    /**
     * Closes the connection. The daemon cancels this connection's runs and sessions;
     * runs still pending here reject with {@link ConnectionClosedError}.
     */
    close(): Promise<void>;
    [Symbol.asyncDispose](): Promise<void>;
}
/** A daemon-side session: shared tools, policy and env; with `persistent`, shared globals. */
export declare class Session {
    #private;
    /** Daemon-assigned session id. */
    readonly id: string;
    /** The session's tools by name (handlers live here, not in the daemon). */
    readonly tools: ReadonlyMap<string, Tool>;
    /** The Python identifiers the daemon made of the tool names. */
    readonly pythonNames: readonly string[];
    /** @internal use {@link Client.createSession}. */
    constructor(client: Client, id: string, tools: ReadonlyMap<string, Tool>, pythonNames: readonly string[]);
    /** Runs a script in this session (runs of one session execute one at a time, in order). */
    run(code: string, options?: Omit<RunOptions, "sessionId">): Promise<RunResult>;
    close(): Promise<void>;
    [Symbol.asyncDispose](): Promise<void>;
}
/** The library version, sent as `client_info` by {@link Client.initialize}. */
export declare const VERSION = "0.1.0";
/**
 * What the script's `ToolError` carries when a handler throws: code -32000 and
 * `"<Error name>: <message>"` (so `ValueError`-style names survive the trip),
 * or the code/data of a thrown {@link ToolError}.
 */
export declare function toolErrorPayload(err: unknown): {
    code: number;
    message: string;
    data?: unknown;
};
//# sourceMappingURL=client.d.ts.map