/** Where the daemon listens when nobody says otherwise (mirrors the daemon's own default). */
import { existsSync } from "node:fs";
import path from "node:path";
/**
 * Resolves the socket path: `PTCD_SOCKET`, then `$XDG_RUNTIME_DIR/ptcd.sock`,
 * then `/run/ptcd/ptcd.sock` if it exists (the daemon's path when run as root
 * under systemd; we can't know how it was started, so we look), else
 * `/tmp/ptcd-$UID/ptcd.sock`.
 */
export function defaultSocketPath(env = process.env) {
    if (env.PTCD_SOCKET)
        return env.PTCD_SOCKET;
    if (env.XDG_RUNTIME_DIR)
        return path.join(env.XDG_RUNTIME_DIR, "ptcd.sock");
    const system = "/run/ptcd/ptcd.sock";
    if (existsSync(system))
        return system;
    const uid = typeof process.getuid === "function" ? process.getuid() : 0;
    return `/tmp/ptcd-${uid}/ptcd.sock`;
}
//# sourceMappingURL=paths.js.map