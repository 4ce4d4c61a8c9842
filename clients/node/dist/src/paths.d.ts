/**
 * Resolves the socket path: `PTCD_SOCKET`, then `$XDG_RUNTIME_DIR/ptcd.sock`,
 * then `/run/ptcd/ptcd.sock` if it exists (the daemon's path when run as root
 * under systemd; we can't know how it was started, so we look), else
 * `/tmp/ptcd-$UID/ptcd.sock`.
 */
export declare function defaultSocketPath(env?: NodeJS.ProcessEnv): string;
//# sourceMappingURL=paths.d.ts.map