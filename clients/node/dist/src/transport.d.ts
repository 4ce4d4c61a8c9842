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
import { PtcdError } from "./errors.js";
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
export type RequestOutcome = {
    result: unknown;
} | {
    error: {
        code: number;
        message: string;
        data?: unknown;
    };
} | {
    skip: true;
};
/** Opens the socket, mapping "nothing listens there" to {@link DaemonNotRunningError}. */
export declare function openSocket(path: string): Promise<net.Socket>;
/** One JSON-RPC peer bound to a connected socket. */
export declare class RpcConnection {
    #private;
    constructor(socket: net.Socket, handlers: RpcHandlers);
    /** True once the socket closed or {@link close} was called. */
    get closed(): boolean;
    /**
     * Sends a request and returns its id right away (needed to cancel a run by
     * `request_id`) together with the promise of its result.
     */
    request(method: string, params?: unknown): {
        id: number;
        response: Promise<unknown>;
    };
    /** Sends a notification (fire and forget). */
    notify(method: string, params?: unknown): void;
    /**
     * Closes the connection: the daemon cancels every run of this connection,
     * and every request still pending here is rejected with {@link ConnectionClosedError}.
     */
    close(): Promise<void>;
}
//# sourceMappingURL=transport.d.ts.map