/**
 * Line framing for the ptcd wire: one JSON-RPC object per line, `\n`-terminated.
 *
 * Kept free of sockets so it can be tested on plain strings. The decoder is fed
 * already-decoded text (the transport calls `socket.setEncoding('utf8')`, whose
 * StringDecoder keeps multi-byte characters that straddle two chunks intact),
 * so here we only have to care about lines that straddle chunks.
 */
/** Splits a stream of text chunks into lines, tolerating `\r\n` and skipping blank lines. */
export declare class LineDecoder {
    #private;
    /** Feeds one chunk; returns every complete, non-blank line it finished. */
    push(chunk: string): string[];
    /** Text received after the last newline (an unterminated partial line). */
    get pending(): string;
}
/**
 * Serializes one message as a single line. `JSON.stringify` never emits raw
 * newlines (they are escaped inside strings), so the result is always one line.
 */
export declare function encodeLine(message: unknown): string;
//# sourceMappingURL=framing.d.ts.map