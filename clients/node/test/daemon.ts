/**
 * Starts the real ptcd binary for a test file, on a private socket.
 *
 * Readiness is detected by connecting in a bounded retry loop that also checks
 * the process is still alive, rather than sleeping a fixed time: fast when the
 * daemon is fast, and a crashed daemon fails the test at once with its stderr.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { connect, DaemonNotRunningError } from "../src/index.js";

/** clients/node (this file is compiled to clients/node/dist/test/). */
export const packageRoot = fileURLToPath(new URL("../../", import.meta.url));
export const repoRoot = path.resolve(packageRoot, "../..");

export function daemonBinary(): string {
  return process.env.PTCD_BIN ?? path.join(repoRoot, "target/debug/ptcd");
}

export interface Daemon {
  socket: string;
  process: ChildProcess;
  /** Resolves once the process has exited (and so closed its listening socket). */
  exited: Promise<void>;
  /** Everything the daemon logged so far (for failure messages). */
  stderr(): string;
  stop(): Promise<void>;
}

/** Starts a daemon; `options.socket` reuses a path (e.g. to restart a daemon where the last one was). */
export async function startDaemon(extraArgs: string[] = [], options: { socket?: string } = {}): Promise<Daemon> {
  const bin = daemonBinary();
  if (!existsSync(bin)) {
    throw new Error(`ptcd binary not found at ${bin}: run \`cargo build\` at the repo root or set PTCD_BIN`);
  }
  const dir = options.socket ? undefined : mkdtempSync(path.join(tmpdir(), "ptcd-node-test-"));
  const socket = options.socket ?? path.join(dir!, "ptcd.sock");
  // A private scratch root (the daemon makes it mode 0711): runs of this daemon never share
  // a directory with another daemon's, whatever else runs on the machine.
  const scratch = mkdtempSync(path.join(tmpdir(), "ptcd-node-scratch-"));
  const args = ["serve", "--socket", socket, "--scratch-dir", scratch, ...extraArgs];
  const child = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    log += d;
  });
  let exited: string | undefined;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exited = `exited with ${signal ?? code}`;
      resolve();
    });
    child.once("error", (err) => {
      exited = `failed to start: ${err.message}`;
      resolve();
    });
  });

  const deadline = Date.now() + 20_000;
  let delay = 5;
  for (;;) {
    if (exited) throw new Error(`ptcd ${exited} before it was ready:\n${log}`);
    try {
      const probe = await connect({ socket });
      await probe.close();
      break;
    } catch (err) {
      if (!(err instanceof DaemonNotRunningError)) throw err;
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`ptcd did not accept connections within 20 s:\n${log}`);
    }
    // Poll interval of the readiness loop (bounded, and cut short if the process dies).
    await Promise.race([new Promise((r) => setTimeout(r, delay)), exitedPromise]);
    delay = Math.min(delay * 2, 200);
  }

  return {
    socket,
    process: child,
    exited: exitedPromise,
    stderr: () => log,
    async stop() {
      if (!exited) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exitedPromise;
        clearTimeout(timer);
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}

/** Upper bound for a suite, so a hung daemon fails the run instead of hanging CI. */
export const SUITE_TIMEOUT_MS = 120_000;

/** A promise with its resolve function exposed, for ordering events without sleeps. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
