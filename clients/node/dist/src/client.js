/**
 * The ptcd client: connect, run scripts with local tools, close.
 */
import { ConnectionClosedError, ErrorCode, PtcdError, ToolError } from "./errors.js";
import { defaultSocketPath } from "./paths.js";
import { RunResult } from "./result.js";
import { indexTools, lookupTool, toWireSpec } from "./tools.js";
import { openSocket, RpcConnection } from "./transport.js";
/**
 * Connects to the daemon. Rejects with {@link DaemonNotRunningError} when nothing listens.
 * If the daemon later goes away (restart, crash), requests in flight reject with
 * {@link ConnectionClosedError} and the next call connects again.
 */
export async function connect(options = {}) {
    const socketPath = options.socket ?? defaultSocketPath();
    const socket = await openSocket(socketPath);
    return new Client(socketPath, socket);
}
/**
 * One socket connection and everything scoped to it: request ids, runs, tool calls
 * being served and sessions all belong to a connection and die with it.
 */
class Link {
    rpc;
    runs = new Map();
    /** AbortControllers of tool calls being served, keyed by the daemon's request id. */
    calls = new Map();
    sessions = new Map();
    constructor(socket, onRequest) {
        this.rpc = new RpcConnection(socket, {
            onRequest: (method, params, id) => onRequest(this, method, params, id),
            onNotification: (method, params) => onLinkNotification(this, method, params),
            onClose: (error) => {
                for (const c of this.calls.values())
                    c.abort(error);
                this.calls.clear();
                this.sessions.clear();
            },
        });
    }
}
/**
 * One client of ptcd. Many runs may be in flight on it at once. It holds one
 * connection at a time: when the daemon goes away, what was in flight fails with
 * {@link ConnectionClosedError} and the next call opens a new connection.
 */
export class Client {
    /** The socket path this client is connected to. */
    socketPath;
    #link;
    #connecting;
    #closed = false;
    /** @internal use {@link connect}. */
    constructor(socketPath, socket) {
        this.socketPath = socketPath;
        this.#link = this.#newLink(socket);
    }
    /** True after {@link close}: the client makes no further connection. */
    get closed() {
        return this.#closed;
    }
    /** True while a connection to the daemon is open (false after the daemon went away, until the next call). */
    get connected() {
        return !this.#closed && this.#link !== undefined && !this.#link.rpc.closed;
    }
    #newLink(socket) {
        return new Link(socket, (link, method, params, id) => this.#onRequest(link, method, params, id));
    }
    /**
     * The open connection, or a new one when the last one is gone. Concurrent callers
     * share one attempt; a daemon that is still down rejects with {@link DaemonNotRunningError}.
     */
    async #live() {
        if (this.#closed)
            throw new ConnectionClosedError("this ptcd client was closed: connect() again");
        const link = this.#link;
        if (link && !link.rpc.closed)
            return link;
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
            }
            finally {
                this.#connecting = undefined;
            }
        })();
        return this.#connecting;
    }
    /** Sends one request on the live connection and waits for its result. */
    async #call(method, params) {
        const link = await this.#live();
        return link.rpc.request(method, params).response;
    }
    /** Optional handshake: what the daemon is, its sandbox capabilities, policies. */
    async initialize(clientInfo = { name: "ptcd-node", version: VERSION }) {
        const r = (await this.#call("initialize", { client_info: clientInfo }));
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
    async status() {
        return (await this.#call("daemon/status", {}));
    }
    /**
     * Runs a Python script in the daemon's sandbox. Resolves with a {@link RunResult}
     * whenever the script executed, even if it failed (check `result.ok`); rejects
     * with a {@link PtcdError} subclass when the daemon refused the run.
     */
    async run(code, options = {}) {
        const { signal } = options;
        signal?.throwIfAborted();
        const tools = indexTools(options.tools);
        const link = await this.#live();
        signal?.throwIfAborted();
        const session = options.sessionId === undefined ? undefined : link.sessions.get(options.sessionId);
        const params = { code };
        if (tools.size > 0)
            params.tools = [...tools.values()].map(toWireSpec);
        if (options.sessionId !== undefined)
            params.session_id = options.sessionId;
        if (options.policy !== undefined)
            params.policy = options.policy;
        if (options.limits !== undefined)
            params.limits = wireLimits(options.limits);
        if (options.inputs !== undefined)
            params.inputs = options.inputs;
        if (options.env !== undefined)
            params.env = options.env;
        if (options.onOutput !== undefined)
            params.stream = true;
        if (options.mcpServers !== undefined)
            params.mcp_servers = serverNames(options.mcpServers);
        const { id, response } = link.rpc.request("run", params);
        link.runs.set(id, { tools, session, onOutput: options.onOutput });
        const onAbort = () => {
            // The daemon answers the run itself with status "cancelled"; run/cancel's own
            // answer ({cancelled: false} if the run already finished) needs no handling.
            link.rpc.request("run/cancel", { request_id: id }).response.catch(() => { });
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        try {
            return new RunResult((await response));
        }
        finally {
            signal?.removeEventListener("abort", onAbort);
            link.runs.delete(id);
        }
    }
    /** Creates a session: tools, policy, env shared by its runs; `persistent` keeps interpreter state. */
    async createSession(options = {}) {
        const tools = indexTools(options.tools);
        const params = {};
        if (tools.size > 0)
            params.tools = [...tools.values()].map(toWireSpec);
        if (options.policy !== undefined)
            params.policy = options.policy;
        if (options.limits !== undefined)
            params.limits = wireLimits(options.limits);
        if (options.env !== undefined)
            params.env = options.env;
        if (options.persistent !== undefined)
            params.persistent = options.persistent;
        if (options.mcpServers !== undefined)
            params.mcp_servers = serverNames(options.mcpServers);
        const link = await this.#live();
        const r = (await link.rpc.request("session/create", params).response);
        const session = new Session(this, r.session_id, tools, r.tools ?? []);
        link.sessions.set(session.id, session);
        return session;
    }
    /**
     * @internal used by {@link Session.close}. Idempotent: a session already closed, or
     * gone with the connection it was created on (the daemon closed it then), is done.
     */
    async closeSession(id) {
        const link = this.#link;
        if (!link || link.rpc.closed || !link.sessions.delete(id))
            return;
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
    async toolDefinitions(options) {
        const params = { format: options.format };
        if (options.sessionId !== undefined)
            params.session_id = options.sessionId;
        if (options.mcpServers !== undefined)
            params.mcp_servers = serverNames(options.mcpServers);
        if (options.tools !== undefined) {
            const seen = new Set();
            params.tools = options.tools.map((t) => {
                if (typeof t?.name !== "string" || t.name === "")
                    throw new TypeError("each tool needs a `name`");
                if (seen.has(t.name))
                    throw new TypeError(`duplicate tool name: ${t.name}`);
                seen.add(t.name);
                return toWireSpec(t);
            });
        }
        return (await this.#call("tools/definition", params));
    }
    /**
     * Low-level escape hatch: sends any method and returns its raw result (errors
     * still map to typed classes). For methods newer than this library.
     */
    async request(method, params) {
        return this.#call(method, params);
    }
    /**
     * Closes the connection. The daemon cancels this connection's runs and sessions;
     * runs still pending here reject with {@link ConnectionClosedError}.
     */
    async close() {
        this.#closed = true;
        const connecting = this.#connecting;
        await this.#link?.rpc.close();
        await connecting?.catch(() => { });
    }
    async [Symbol.asyncDispose]() {
        await this.close();
    }
    async #onRequest(link, method, params, id) {
        if (method !== "tool/call") {
            return { error: { code: ErrorCode.MethodNotFound, message: `method not found: ${method}` } };
        }
        const p = (params ?? {});
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
        const context = {
            signal: controller.signal,
            name,
            runId: String(p.run_id ?? ""),
            callId: Number(p.call_id ?? 0),
            ...(p.session_id !== undefined ? { sessionId: p.session_id } : {}),
        };
        try {
            const result = await t.handler(p.arguments ?? {}, context);
            if (controller.signal.aborted)
                return { skip: true };
            return { result: result === undefined ? null : result };
        }
        catch (err) {
            if (controller.signal.aborted)
                return { skip: true };
            return { error: toolErrorPayload(err) };
        }
        finally {
            link.calls.delete(key);
        }
    }
}
/** A daemon-side session: shared tools, policy and env; with `persistent`, shared globals. */
export class Session {
    #client;
    /** Daemon-assigned session id. */
    id;
    /** The session's tools by name (handlers live here, not in the daemon). */
    tools;
    /** The Python identifiers the daemon made of the tool names. */
    pythonNames;
    /** @internal use {@link Client.createSession}. */
    constructor(client, id, tools, pythonNames) {
        this.#client = client;
        this.id = id;
        this.tools = tools;
        this.pythonNames = pythonNames;
    }
    /** Runs a script in this session (runs of one session execute one at a time, in order). */
    run(code, options = {}) {
        return this.#client.run(code, { ...options, sessionId: this.id });
    }
    async close() {
        await this.#client.closeSession(this.id);
    }
    async [Symbol.asyncDispose]() {
        await this.close();
    }
}
/** The library version, sent as `client_info` by {@link Client.initialize}. */
export const VERSION = "0.1.0";
/** `mcpServers` as the wire's array of names; a lone string is refused (it is not a list of servers). */
function serverNames(names) {
    if (typeof names === "string" || !Array.isArray(names)) {
        throw new TypeError(`mcpServers takes an array of server names, not ${JSON.stringify(names)}`);
    }
    return [...names];
}
function wireLimits(l) {
    const out = {};
    if (l.timeoutMs !== undefined)
        out.timeout_ms = l.timeoutMs;
    if (l.cpuMs !== undefined)
        out.cpu_ms = l.cpuMs;
    if (l.memoryMb !== undefined)
        out.memory_mb = l.memoryMb;
    if (l.maxOutputBytes !== undefined)
        out.max_output_bytes = l.maxOutputBytes;
    if (l.maxToolCalls !== undefined)
        out.max_tool_calls = l.maxToolCalls;
    if (l.maxConcurrentToolCalls !== undefined)
        out.max_concurrent_tool_calls = l.maxConcurrentToolCalls;
    return out;
}
/**
 * What the script's `ToolError` carries when a handler throws: code -32000 and
 * `"<Error name>: <message>"` (so `ValueError`-style names survive the trip),
 * or the code/data of a thrown {@link ToolError}.
 */
export function toolErrorPayload(err) {
    if (err instanceof ToolError) {
        return { code: err.code, message: err.message, ...(err.data === undefined ? {} : { data: err.data }) };
    }
    if (err instanceof Error)
        return { code: ErrorCode.ToolError, message: `${err.name}: ${err.message}` };
    return { code: ErrorCode.ToolError, message: `Error: ${String(err)}` };
}
/** `$/cancelRequest` aborts a tool call being served; `run/output` goes to its run's callback. */
function onLinkNotification(link, method, params) {
    if (method === "$/cancelRequest") {
        const id = params?.id;
        link.calls.get(JSON.stringify(id))?.abort(new PtcdError("tool call cancelled by ptcd"));
    }
    else if (method === "run/output") {
        const p = (params ?? {});
        const run = typeof p.request_id === "number" ? link.runs.get(p.request_id) : undefined;
        if (!run?.onOutput)
            return;
        try {
            run.onOutput({ stream: p.stream === "stderr" ? "stderr" : "stdout", text: String(p.text ?? ""), runId: String(p.run_id ?? "") });
        }
        catch {
            // A throwing output callback must not take the connection's reader down with it.
        }
    }
}
//# sourceMappingURL=client.js.map