/**
 * Line framing for the ptcd wire: one JSON-RPC object per line, `\n`-terminated.
 *
 * Kept free of sockets so it can be tested on plain strings. The decoder is fed
 * already-decoded text (the transport calls `socket.setEncoding('utf8')`, whose
 * StringDecoder keeps multi-byte characters that straddle two chunks intact),
 * so here we only have to care about lines that straddle chunks.
 */
/** Splits a stream of text chunks into lines, tolerating `\r\n` and skipping blank lines. */
export class LineDecoder {
    #buffer = "";
    /** Feeds one chunk; returns every complete, non-blank line it finished. */
    push(chunk) {
        this.#buffer += chunk;
        const lines = [];
        let start = 0;
        for (;;) {
            const nl = this.#buffer.indexOf("\n", start);
            if (nl === -1)
                break;
            let line = this.#buffer.slice(start, nl);
            if (line.endsWith("\r"))
                line = line.slice(0, -1);
            // The contract says blank lines are ignored (handy when typing into socat).
            if (line.trim() !== "")
                lines.push(line);
            start = nl + 1;
        }
        this.#buffer = this.#buffer.slice(start);
        return lines;
    }
    /** Text received after the last newline (an unterminated partial line). */
    get pending() {
        return this.#buffer;
    }
}
/**
 * Serializes one message as a single line. `JSON.stringify` never emits raw
 * newlines (they are escaped inside strings), so the result is always one line.
 */
export function encodeLine(message) {
    return JSON.stringify(message) + "\n";
}
//# sourceMappingURL=framing.js.map