/**
 * The result of a run, as the daemon reports it, plus the compact text that is
 * meant to go back to the model as the `run_code` tool result.
 */
/** A finished run. Field names are the contract's, in camelCase; {@link toJSON} gives the wire form back. */
export class RunResult {
    runId;
    status;
    stdout;
    stderr;
    /** Bytes dropped from each stream (0 if none); the daemon leaves a visible marker where it cut. */
    truncated;
    /** The value of the script's last expression statement (JSON), its `repr()` if not JSON-able, else `null`. */
    value;
    error;
    /** How many tool calls the script made. */
    toolCalls;
    /** Wall time of the run, in milliseconds, as measured by the daemon. */
    durationMs;
    constructor(wire) {
        this.runId = String(wire.run_id ?? "");
        this.status = wire.status;
        this.stdout = wire.stdout ?? "";
        this.stderr = wire.stderr ?? "";
        this.truncated = {
            stdout: Number(wire.truncated?.stdout ?? 0),
            stderr: Number(wire.truncated?.stderr ?? 0),
        };
        this.value = wire.value === undefined ? null : wire.value;
        this.error = wire.error ?? null;
        this.toolCalls = Number(wire.tool_calls ?? 0);
        this.durationMs = Number(wire.duration_ms ?? 0);
    }
    /** True when the script ran to completion without raising. */
    get ok() {
        return this.status === "ok";
    }
    /**
     * The compact rendering for the model, identical to the Python client's:
     *
     * - ok runs: stdout (and a note if it was cut), then the last expression's
     *   value if it is not null (strings as they are, anything else as compact JSON);
     * - other runs: stdout, `[stderr]` and stderr, then `"<status>: <type>: <message>"`
     *   and the script-only traceback (minus its last line when it repeats the headline).
     *
     * This, not the full result, is what should go into the model's context:
     * keeping intermediate data out of it is the whole point of programmatic tool calling.
     */
    render() {
        const parts = [];
        if (this.stdout !== "")
            parts.push(trimNewlines(this.stdout));
        if (this.truncated.stdout > 0)
            parts.push(`[stdout truncated: ${this.truncated.stdout} bytes omitted]`);
        if (this.ok) {
            if (this.value !== null)
                parts.push(typeof this.value === "string" ? this.value : JSON.stringify(this.value));
            return parts.length > 0 ? parts.join("\n") : "(no output)";
        }
        if (this.stderr !== "")
            parts.push("[stderr]\n" + trimNewlines(this.stderr));
        if (this.truncated.stderr > 0)
            parts.push(`[stderr truncated: ${this.truncated.stderr} bytes omitted]`);
        if (this.error) {
            let headline = `${this.status}: ${this.error.type}: ${this.error.message}`;
            const traceback = trimNewlines(this.error.traceback ?? "").split("\n");
            // Python's traceback ends with the "Type: message" line the headline already shows.
            if (traceback.length > 0 && traceback[traceback.length - 1].trim() === `${this.error.type}: ${this.error.message}`.trim()) {
                traceback.pop();
            }
            if (traceback.some((line) => line.trim() !== ""))
                headline += "\n" + traceback.join("\n");
            parts.push(headline);
        }
        else {
            parts.push(this.status);
        }
        return parts.join("\n");
    }
    /** Same as {@link render}, as a property, for template strings and message builders. */
    get text() {
        return this.render();
    }
    toString() {
        return this.render();
    }
    /** The wire form (snake_case), e.g. for logging or for `JSON.stringify(result)`. */
    toJSON() {
        return {
            run_id: this.runId,
            status: this.status,
            stdout: this.stdout,
            stderr: this.stderr,
            truncated: { ...this.truncated },
            value: this.value,
            error: this.error,
            tool_calls: this.toolCalls,
            duration_ms: this.durationMs,
        };
    }
}
function trimNewlines(text) {
    return text.replace(/\n+$/, "");
}
//# sourceMappingURL=result.js.map