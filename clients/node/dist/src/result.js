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
    render() {
        const parts = [];
        if (this.stdout !== "")
            parts.push(trimNewlines(this.stdout));
        if (this.truncated.stdout > 0)
            parts.push(`[stdout truncated: ${this.truncated.stdout} bytes omitted]`);
        if (this.stderr !== "")
            parts.push("[stderr]\n" + trimNewlines(this.stderr));
        if (this.truncated.stderr > 0)
            parts.push(`[stderr truncated: ${this.truncated.stderr} bytes omitted]`);
        if (this.ok) {
            if (this.value !== null)
                parts.push(typeof this.value === "string" ? this.value : JSON.stringify(this.value));
            return parts.length > 0 ? parts.join("\n") : "(no output)";
        }
        if (this.error) {
            const error = this.error.message ? `${this.error.type}: ${this.error.message}` : this.error.type;
            const traceback = trimNewlines(this.error.traceback ?? "");
            const lines = withoutClosingError(traceback === "" ? [] : traceback.split("\n"), error);
            let headline = `${this.status}: ${error}`;
            if (lines.some((line) => line.trim() !== ""))
                headline += "\n" + lines.join("\n");
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
/**
 * `lines` minus a closing `Type: message` (possibly module-qualified, possibly several
 * lines long) equal to `error`, which the headline already shows.
 */
function withoutClosingError(lines, error) {
    const expected = error.split("\n");
    const n = expected.length;
    if (lines.length < n)
        return lines;
    const tail = lines.slice(lines.length - n + 1);
    if (tail.some((line, i) => line !== expected[i + 1]))
        return lines;
    const first = lines[lines.length - n];
    if (first === expected[0] || first.endsWith("." + expected[0]))
        return lines.slice(0, lines.length - n);
    return lines;
}
//# sourceMappingURL=result.js.map