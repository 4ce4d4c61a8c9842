/**
 * The result of a run, as the daemon reports it, plus the compact text that is
 * meant to go back to the model as the `run_code` tool result.
 */
/** How a run ended. Only `"ok"` means the script finished without raising. */
export type RunStatus = "ok" | "error" | "timeout" | "cancelled" | "limit_exceeded" | "crashed";
/** For `"error"`: the script's exception. For other non-ok statuses: which limit, in plain words. */
export interface RunErrorInfo {
    type: string;
    message: string;
    /** Limited to the script's own frames; line numbers refer to the script. */
    traceback: string;
    line: number | null;
}
/** The `run` result exactly as it travels on the wire (snake_case). */
export interface WireRunResult {
    run_id: string;
    status: RunStatus;
    stdout: string;
    stderr: string;
    truncated: {
        stdout: number;
        stderr: number;
    };
    value?: unknown;
    error?: RunErrorInfo | null;
    tool_calls: number;
    duration_ms: number;
}
/** A finished run. Field names are the contract's, in camelCase; {@link toJSON} gives the wire form back. */
export declare class RunResult {
    readonly runId: string;
    readonly status: RunStatus;
    readonly stdout: string;
    readonly stderr: string;
    /** Bytes dropped from each stream (0 if none); the daemon leaves a visible marker where it cut. */
    readonly truncated: {
        readonly stdout: number;
        readonly stderr: number;
    };
    /** The value of the script's last expression statement (JSON), its `repr()` if not JSON-able, else `null`. */
    readonly value: unknown;
    readonly error: RunErrorInfo | null;
    /** How many tool calls the script made. */
    readonly toolCalls: number;
    /** Wall time of the run, in milliseconds, as measured by the daemon. */
    readonly durationMs: number;
    constructor(wire: WireRunResult);
    /** True when the script ran to completion without raising. */
    get ok(): boolean;
    /**
     * The compact rendering for the model, identical to the Python client's:
     *
     * - stdout (and a note if it was cut), then stderr if any (warnings are worth
     *   reading, even when the run succeeded);
     * - ok runs: then the last expression's value if it is not null (strings as they
     *   are, anything else as compact JSON);
     * - other runs: then `"<status>: <type>: <message>"` and the script-only traceback,
     *   whose own closing `Type: message` lines (possibly several, possibly with a
     *   module-qualified type) are not repeated.
     *
     * This, not the full result, is what should go into the model's context:
     * keeping intermediate data out of it is the whole point of programmatic tool calling.
     */
    render(): string;
    /** Same as {@link render}, as a property, for template strings and message builders. */
    get text(): string;
    toString(): string;
    /** The wire form (snake_case), e.g. for logging or for `JSON.stringify(result)`. */
    toJSON(): WireRunResult;
}
//# sourceMappingURL=result.d.ts.map