/**
 * JSON-RPC 2.0 over one Unix-socket connection, in both directions.
 *
 * ptcd is not a plain request/response server: while our `run` request is
 * pending, the daemon sends *us* `tool/call` requests on the same socket and
 * waits for our answers. So this layer correlates our outgoing requests by id
 * and, independently, hands incoming requests and notifications to the client
 * without ever blocking the reader on them (a handler awaiting I/O must not
 * stop the next `tool/call` from being read: concurrent calls are the point).
 */
import net from "node:net";
import { ConnectionClosedError, DaemonNotRunningError, errorFromRpc, PtcdError } from "./errors.js";
import { encodeLine, LineDecoder } from "./framing.js";

/** A JSON-RPC id as the daemon may send it (its own are strings like `"t-1"`). */
export type RpcId = string | number;

/** What the owner of a connection reacts to. */
export interface RpcHandlers {
  /** An incoming request; its return value (or thrown error) becomes the response. */
  onRequest(method: string, params: unknown, id: RpcId): Promise<RequestOutcome>;
  /** An incoming notification (no response is sent). */
  onNotification(method: string, params: unknown): void;
  /** The connection is gone (after all pending requests were rejected). */
  onClose(error: PtcdError): void;
}

/** How an incoming request is answered; `skip` sends nothing (the request was cancelled). */
export type RequestOutcome =
  | { result: unknown }
  | { error: { code: number; message: string; data?: unknown } }
  | { skip: true };

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** Opens the socket, mapping "nothing listens there" to {@link DaemonNotRunningError}. */
export function openSocket(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path });
    const onError = (err: NodeJS.ErrnoException): void => {
      socket.destroy();
      // ENOENT: no socket file; ECONNREFUSED: a stale file nobody listens on.
      if (err.code === "ENOENT" || err.code === "ECONNREFUSED") {
        reject(new DaemonNotRunningError(path, { cause: err }));
      } else {
        reject(new PtcdError(`cannot connect to ptcd at ${path}: ${err.message}`, { cause: err }));
      }
    };
    socket.once("error", onError);
    socket.once("connect", () => {
      socket.off("error", onError);
      resolve(socket);
    });
  });
}

/** One JSON-RPC peer bound to a connected socket. */
export class RpcConnection {
  readonly #socket: net.Socket;
  readonly #handlers: RpcHandlers;
  readonly #decoder = new LineDecoder();
  readonly #pending = new Map<number, Pending>();
  readonly #closed: Promise<void>;
  #nextId = 1;
  #closeError: PtcdError | undefined;

  constructor(socket: net.Socket, handlers: RpcHandlers) {
    this.#socket = socket;
    this.#handlers = handlers;
    socket.setEncoding("utf8");
    socket.setNoDelay?.(true);
    socket.on("data", (chunk: string) => {
      for (const line of this.#decoder.push(chunk)) this.#onLine(line);
    });
    let lastError: Error | undefined;
    socket.on("error", (err) => {
      lastError = err;
    });
    this.#closed = new Promise((resolve) => {
      socket.once("close", () => {
        this.#shutdown(
          new ConnectionClosedError(
            `connection to ptcd lost${lastError ? ` (${lastError.message})` : ""}: the daemon closed it, ` +
              "stopped or restarted while this request was in flight; the next call reconnects",
            lastError ? { cause: lastError } : {},
          ),
        );
        resolve();
      });
    });
  }

  /** True once the socket closed or {@link close} was called. */
  get closed(): boolean {
    return this.#closeError !== undefined;
  }

  /**
   * Sends a request and returns its id right away (needed to cancel a run by
   * `request_id`) together with the promise of its result.
   */
  request(method: string, params?: unknown): { id: number; response: Promise<unknown> } {
    const id = this.#nextId++;
    const response = new Promise<unknown>((resolve, reject) => {
      if (this.#closeError) {
        reject(this.#closeError);
        return;
      }
      this.#pending.set(id, { resolve, reject });
      this.#write({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) });
    });
    return { id, response };
  }

  /** Sends a notification (fire and forget). */
  notify(method: string, params?: unknown): void {
    this.#write({ jsonrpc: "2.0", method, ...(params === undefined ? {} : { params }) });
  }

  /**
   * Closes the connection: the daemon cancels every run of this connection,
   * and every request still pending here is rejected with {@link ConnectionClosedError}.
   */
  async close(): Promise<void> {
    this.#shutdown(new ConnectionClosedError("connection to ptcd closed by the client"));
    this.#socket.end();
    // Don't wait for a peer that never finishes its half of the close.
    const timer = setTimeout(() => this.#socket.destroy(), 1000);
    timer.unref();
    await this.#closed;
    clearTimeout(timer);
  }

  #write(message: unknown): void {
    if (this.#socket.destroyed || this.#socket.writableEnded) return;
    this.#socket.write(encodeLine(message));
  }

  #shutdown(error: PtcdError): void {
    if (this.#closeError) return;
    this.#closeError = error;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(error);
    this.#handlers.onClose(error);
  }

  #onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      // The daemon only ever writes valid JSON; a garbled line is dropped rather than
      // tearing down every run on this connection.
      return;
    }
    if (typeof msg !== "object" || msg === null || Array.isArray(msg)) return;
    const m = msg as { id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: unknown };
    if (typeof m.method === "string") {
      if (m.id === undefined || m.id === null) {
        this.#handlers.onNotification(m.method, m.params);
      } else if (typeof m.id === "string" || typeof m.id === "number") {
        void this.#answer(m.id, m.method, m.params);
      }
      return;
    }
    if (typeof m.id !== "number") return; // our ids are numbers; `id: null` errors can't be correlated
    const pending = this.#pending.get(m.id);
    if (!pending) return;
    this.#pending.delete(m.id);
    if (m.error !== undefined && m.error !== null) {
      pending.reject(errorFromRpc(m.error as { code?: unknown; message?: unknown; data?: unknown }));
    } else {
      pending.resolve(m.result);
    }
  }

  async #answer(id: RpcId, method: string, params: unknown): Promise<void> {
    let outcome: RequestOutcome;
    try {
      outcome = await this.#handlers.onRequest(method, params, id);
    } catch (err) {
      outcome = { error: { code: -32603, message: err instanceof Error ? err.message : String(err) } };
    }
    if ("skip" in outcome || this.closed) return;
    if ("error" in outcome) {
      this.#write({ jsonrpc: "2.0", id, error: outcome.error });
      return;
    }
    let line: string;
    try {
      line = encodeLine({ jsonrpc: "2.0", id, result: outcome.result === undefined ? null : outcome.result });
    } catch (err) {
      // e.g. a BigInt or a cycle in a handler's return value: tell the script instead of hanging it.
      const message = `TypeError: tool result is not JSON-serializable: ${err instanceof Error ? err.message : String(err)}`;
      this.#write({ jsonrpc: "2.0", id, error: { code: -32000, message } });
      return;
    }
    if (!this.#socket.destroyed && !this.#socket.writableEnded) this.#socket.write(line);
  }
}
