/**
 * The ptcd client: connect, run scripts with local tools, close.
 */
import { ConnectionClosedError, ErrorCode, PtcdError, ToolError } from "./errors.js";
// For the doc links above.
import type { InvalidParamsError, McpServerUnavailableError } from "./errors.js";
import { defaultSocketPath } from "./paths.js";
import { RunResult, type WireRunResult } from "./result.js";
import { indexTools, lookupTool, toWireSpec, type JsonSchema, type Tool, type ToolCallContext, type ToolSpec } from "./tools.js";
import { openSocket, RpcConnection, type RequestOutcome, type RpcId } from "./transport.js";

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
  serverInfo: { name: string; version: string };
  sandbox: { landlockAbi: number | null; seccomp: boolean; namespaces: boolean };
  python: { executable: string; version: string };
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
  function: { name: string; description: string; parameters: JsonSchema };
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
export async function connect(options: ConnectOptions = {}): Promise<Client> {
  const socketPath = options.socket ?? defaultSocketPath();
  const socket = await openSocket(socketPath);
  return new Client(socketPath, socket);
}

/** State of one in-flight run, found again by the `request_id` in `tool/call` and `run/output`. */
interface RunState {
  tools: ReadonlyMap<string, Tool>;
  session: Session | undefined;
  onOutput: ((chunk: OutputChunk) => void) | undefined;
}

/**
 * One socket connection and everything scoped to it: request ids, runs, tool calls
 * being served and sessions all belong to a connection and die with it.
 */
class Link {
  readonly rpc: RpcConnection;
  readonly runs = new Map<number, RunState>();
  /** AbortControllers of tool calls being served, keyed by the daemon's request id. */
  readonly calls = new Map<string, AbortController>();
  readonly sessions = new Map<string, Session>();

  constructor(socket: import("node:net").Socket, onRequest: OnRequest) {
    this.rpc = new RpcConnection(socket, {
      onRequest: (method, params, id) => onRequest(this, method, params, id),
      onNotification: (method, params) => onLinkNotification(this, method, params),
      onClose: (error) => {
        for (const c of this.calls.values()) c.abort(error);
        this.calls.clear();
        this.sessions.clear();
      },
    });
  }
}

type OnRequest = (link: Link, method: string, params: unknown, id: RpcId) => Promise<RequestOutcome>;

/**
 * One client of ptcd. Many runs may be in flight on it at once. It holds one
 * connection at a time: when the daemon goes away, what was in flight fails with
 * {@link ConnectionClosedError} and the next call opens a new connection.
 */
export class Client {
  /** The socket path this client is connected to. */
  readonly socketPath: string;
  #link: Link | undefined;
  #connecting: Promise<Link> | undefined;
  #closed = false;

  /** @internal use {@link connect}. */
  constructor(socketPath: string, socket: import("node:net").Socket) {
    this.socketPath = socketPath;
    this.#link = this.#newLink(socket);
  }

  /** True after {@link close}: the client makes no further connection. */
  get closed(): boolean {
    return this.#closed;
  }

  /** True while a connection to the daemon is open (false after the daemon went away, until the next call). */
  get connected(): boolean {
    return !this.#closed && this.#link !== undefined && !this.#link.rpc.closed;
  }

  #newLink(socket: import("node:net").Socket): Link {
    return new Link(socket, (link, method, params, id) => this.#onRequest(link, method, params, id));
  }

  /**
   * The open connection, or a new one when the last one is gone. Concurrent callers
   * share one attempt; a daemon that is still down rejects with {@link DaemonNotRunningError}.
   */
  async #live(): Promise<Link> {
    if (this.#closed) throw new ConnectionClosedError("this ptcd client was closed: connect() again");
    const link = this.#link;
    if (link && !link.rpc.closed) return link;
    this.#connecting ??= (async () => {
      try {
        const socket = await openSocket(this.socketPath);
        const fresh = this.#newLink(socket);
        if (this.#closed) {
          await fresh.rpc.close();
          throw new ConnectionClosedError("this ptcd client was closed: connect() again");
        }
        this.#link = fresh;
        return fresh;
      } finally {
        this.#connecting = undefined;
      }
    })();
    return this.#connecting;
  }

  /** Sends one request on the live connection and waits for its result. */
  async #call(method: string, params?: unknown): Promise<unknown> {
    const link = await this.#live();
    return link.rpc.request(method, params).response;
  }

  /** Optional handshake: what the daemon is, its sandbox capabilities, policies. */
  async initialize(clientInfo: { name: string; version: string } = { name: "ptcd-node", version: VERSION }): Promise<InitializeResult> {
    const r = (await this.#call("initialize", { client_info: clientInfo })) as Record<string, any>;
    return {
      protocolVersion: r.protocol_version,
      serverInfo: r.server_info,
      sandbox: {
        landlockAbi: r.sandbox?.landlock_abi ?? null,
        seccomp: Boolean(r.sandbox?.seccomp),
        namespaces: Boolean(r.sandbox?.namespaces),
      },
      python: r.python,
      policies: r.policies ?? [],
      defaultPolicy: r.default_policy,
      mcpServers: Array.isArray(r.mcp_servers) ? r.mcp_servers : [],
      discoveryThreshold: typeof r.discovery_threshold === "number" ? r.discovery_threshold : undefined,
    };
  }

  /** `daemon/status`: connections, runs, tool calls, per-status counts, uptime. */
  async status(): Promise<DaemonStatus> {
    return (await this.#call("daemon/status", {})) as DaemonStatus;
  }

  /**
   * Runs a Python script in the daemon's sandbox. Resolves with a {@link RunResult}
   * whenever the script executed, even if it failed (check `result.ok`); rejects
   * with a {@link PtcdError} subclass when the daemon refused the run.
   */
  async run(code: string, options: RunOptions = {}): Promise<RunResult> {
    const { signal } = options;
    signal?.throwIfAborted();
    const tools = indexTools(options.tools);
    const link = await this.#live();
    signal?.throwIfAborted();
    const session = options.sessionId === undefined ? undefined : link.sessions.get(options.sessionId);
    const params: Record<string, unknown> = { code };
    if (tools.size > 0) params.tools = [...tools.values()].map(toWireSpec);
    if (options.sessionId !== undefined) params.session_id = options.sessionId;
    if (options.policy !== undefined) params.policy = options.policy;
    if (options.limits !== undefined) params.limits = wireLimits(options.limits);
    if (options.inputs !== undefined) params.inputs = options.inputs;
    if (options.env !== undefined) params.env = options.env;
    if (options.onOutput !== undefined) params.stream = true;
    if (options.mcpServers !== undefined) params.mcp_servers = serverNames(options.mcpServers);

    const { id, response } = link.rpc.request("run", params);
    link.runs.set(id, { tools, session, onOutput: options.onOutput });
    const onAbort = (): void => {
      // The daemon answers the run itself with status "cancelled"; run/cancel's own
      // answer ({cancelled: false} if the run already finished) needs no handling.
      link.rpc.request("run/cancel", { request_id: id }).response.catch(() => {});
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      return new RunResult((await response) as WireRunResult);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      link.runs.delete(id);
    }
  }

  /** Creates a session: tools, policy, env shared by its runs; `persistent` keeps interpreter state. */
  async createSession(options: SessionOptions = {}): Promise<Session> {
    const tools = indexTools(options.tools);
    const params: Record<string, unknown> = {};
    if (tools.size > 0) params.tools = [...tools.values()].map(toWireSpec);
    if (options.policy !== undefined) params.policy = options.policy;
    if (options.limits !== undefined) params.limits = wireLimits(options.limits);
    if (options.env !== undefined) params.env = options.env;
    if (options.persistent !== undefined) params.persistent = options.persistent;
    if (options.mcpServers !== undefined) params.mcp_servers = serverNames(options.mcpServers);
    const link = await this.#live();
    const r = (await link.rpc.request("session/create", params).response) as { session_id: string; tools?: string[] };
    const session = new Session(this, r.session_id, tools, r.tools ?? []);
    link.sessions.set(session.id, session);
    return session;
  }

  /**
   * @internal used by {@link Session.close}. Idempotent: a session already closed, or
   * gone with the connection it was created on (the daemon closed it then), is done.
   */
  async closeSession(id: string): Promise<void> {
    const link = this.#link;
    if (!link || link.rpc.closed || !link.sessions.delete(id)) return;
    await link.rpc.request("session/close", { session_id: id }).response;
  }

  /**
   * `tools/definition`: the tool list to hand the model in a provider's format
   * (one `run_code` tool whose description shows every tool as a typed stub), typed
   * per format. Tools need no handler here (only their specs are sent), so the
   * definitions can be built where the tools are not served. `mcpServers` adds the tools
   * of those MCP servers of the daemon's config, one namespace class per server in the
   * stubs (above the daemon's `discoveryThreshold`: names and one-line summaries, and the
   * script gets `search_tools` / `describe_tool`).
   */
  async toolDefinitions<F extends DefinitionFormat>(options: {
    format: F;
    tools?: readonly ToolSpec[];
    sessionId?: string;
    mcpServers?: readonly string[];
  }): Promise<ToolDefinitions<F>> {
    const params: Record<string, unknown> = { format: options.format };
    if (options.sessionId !== undefined) params.session_id = options.sessionId;
    if (options.mcpServers !== undefined) params.mcp_servers = serverNames(options.mcpServers);
    if (options.tools !== undefined) {
      const seen = new Set<string>();
      params.tools = options.tools.map((t) => {
        if (typeof t?.name !== "string" || t.name === "") throw new TypeError("each tool needs a `name`");
        if (seen.has(t.name)) throw new TypeError(`duplicate tool name: ${t.name}`);
        seen.add(t.name);
        return toWireSpec(t);
      });
    }
    return (await this.#call("tools/definition", params)) as ToolDefinitions<F>;
  }

  /**
   * Low-level escape hatch: sends any method and returns its raw result (errors
   * still map to typed classes). For methods newer than this library.
   */
  async request(method: string, params?: unknown): Promise<unknown> {
    return this.#call(method, params);
  }

  /**
   * Closes the connection. The daemon cancels this connection's runs and sessions;
   * runs still pending here reject with {@link ConnectionClosedError}.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const connecting = this.#connecting;
    await this.#link?.rpc.close();
    await connecting?.catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #onRequest(link: Link, method: string, params: unknown, id: RpcId): Promise<RequestOutcome> {
    if (method !== "tool/call") {
      return { error: { code: ErrorCode.MethodNotFound, message: `method not found: ${method}` } };
    }
    const p = (params ?? {}) as {
      run_id?: string;
      request_id?: number;
      session_id?: string;
      call_id?: number;
      name?: string;
      arguments?: Record<string, unknown>;
    };
    const name = String(p.name ?? "");
    const run = typeof p.request_id === "number" ? link.runs.get(p.request_id) : undefined;
    const session = run?.session ?? (p.session_id !== undefined ? link.sessions.get(p.session_id) : undefined);
    const t = (run && lookupTool(run.tools, name)) ?? (session && lookupTool(session.tools, name));
    if (!t) {
      return { error: { code: ErrorCode.ToolError, message: `LookupError: no handler for tool ${JSON.stringify(name)} on this client` } };
    }
    const key = JSON.stringify(id);
    const controller = new AbortController();
    link.calls.set(key, controller);
    const context: ToolCallContext = {
      signal: controller.signal,
      name,
      runId: String(p.run_id ?? ""),
      callId: Number(p.call_id ?? 0),
      ...(p.session_id !== undefined ? { sessionId: p.session_id } : {}),
    };
    try {
      const result = await t.handler(p.arguments ?? {}, context);
      if (controller.signal.aborted) return { skip: true };
      return { result: result === undefined ? null : result };
    } catch (err) {
      if (controller.signal.aborted) return { skip: true };
      return { error: toolErrorPayload(err) };
    } finally {
      link.calls.delete(key);
    }
  }

}

/** A daemon-side session: shared tools, policy and env; with `persistent`, shared globals. */
export class Session {
  readonly #client: Client;
  /** Daemon-assigned session id. */
  readonly id: string;
  /** The session's tools by name (handlers live here, not in the daemon). */
  readonly tools: ReadonlyMap<string, Tool>;
  /** The Python identifiers the daemon made of the tool names. */
  readonly pythonNames: readonly string[];

  /** @internal use {@link Client.createSession}. */
  constructor(client: Client, id: string, tools: ReadonlyMap<string, Tool>, pythonNames: readonly string[]) {
    this.#client = client;
    this.id = id;
    this.tools = tools;
    this.pythonNames = pythonNames;
  }

  /** Runs a script in this session (runs of one session execute one at a time, in order). */
  run(code: string, options: Omit<RunOptions, "sessionId"> = {}): Promise<RunResult> {
    return this.#client.run(code, { ...options, sessionId: this.id });
  }

  async close(): Promise<void> {
    await this.#client.closeSession(this.id);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** The library version, sent as `client_info` by {@link Client.initialize}. */
export const VERSION = "0.1.0";

/** `mcpServers` as the wire's array of names; a lone string is refused (it is not a list of servers). */
function serverNames(names: readonly string[]): string[] {
  if (typeof names === "string" || !Array.isArray(names)) {
    throw new TypeError(`mcpServers takes an array of server names, not ${JSON.stringify(names)}`);
  }
  return [...names];
}

function wireLimits(l: Limits): Record<string, number> {
  const out: Record<string, number> = {};
  if (l.timeoutMs !== undefined) out.timeout_ms = l.timeoutMs;
  if (l.cpuMs !== undefined) out.cpu_ms = l.cpuMs;
  if (l.memoryMb !== undefined) out.memory_mb = l.memoryMb;
  if (l.maxOutputBytes !== undefined) out.max_output_bytes = l.maxOutputBytes;
  if (l.maxToolCalls !== undefined) out.max_tool_calls = l.maxToolCalls;
  if (l.maxConcurrentToolCalls !== undefined) out.max_concurrent_tool_calls = l.maxConcurrentToolCalls;
  return out;
}

/**
 * What the script's `ToolError` carries when a handler throws: code -32000 and
 * `"<Error name>: <message>"` (so `ValueError`-style names survive the trip),
 * or the code/data of a thrown {@link ToolError}.
 */
export function toolErrorPayload(err: unknown): { code: number; message: string; data?: unknown } {
  if (err instanceof ToolError) {
    return { code: err.code, message: err.message, ...(err.data === undefined ? {} : { data: err.data }) };
  }
  if (err instanceof Error) return { code: ErrorCode.ToolError, message: `${err.name}: ${err.message}` };
  return { code: ErrorCode.ToolError, message: `Error: ${String(err)}` };
}

/** `$/cancelRequest` aborts a tool call being served; `run/output` goes to its run's callback. */
function onLinkNotification(link: Link, method: string, params: unknown): void {
  if (method === "$/cancelRequest") {
    const id = (params as { id?: unknown } | undefined)?.id;
    link.calls.get(JSON.stringify(id))?.abort(new PtcdError("tool call cancelled by ptcd"));
  } else if (method === "run/output") {
    const p = (params ?? {}) as { run_id?: string; request_id?: number; stream?: string; text?: string };
    const run = typeof p.request_id === "number" ? link.runs.get(p.request_id) : undefined;
    if (!run?.onOutput) return;
    try {
      run.onOutput({ stream: p.stream === "stderr" ? "stderr" : "stdout", text: String(p.text ?? ""), runId: String(p.run_id ?? "") });
    } catch {
      // A throwing output callback must not take the connection's reader down with it.
    }
  }
}
