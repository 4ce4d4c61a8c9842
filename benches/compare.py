"""ptcd against its floors and its peers, all measured in the same run, in one command.

    cargo build --release && python3 benches/compare.py [--runs N] [--quick] [--markdown FILE] [--json FILE]

(`target/release/examples/echo_relay`, the F_echo relay, is built on first use when missing.)

What it does, in order:

1. Environment. Creates `target/bench-venv` (`python3 -m venv`) and installs into it, one by one,
   the pinned peers of `benches/requirements.txt` and the ptcd client (`./clients/python`), with
   pip's cache and temporary files under `target/` (nothing outside `target/` is written). A peer
   that cannot be installed is remembered (`target/bench-venv/bench-install.json`, retried with
   `--retry-install`) and reported "n/a (reason)"; the rest still runs. Then re-executes itself
   with the venv's Python.
2. Floors. F_bare `python3 -I -S -c pass`; F_import `+ import asyncio, json`; F_fork: a helper
   that imported asyncio/json and `gc.freeze()`d forks, the child compiles and execs `1+1` and
   `os._exit(0)`s, the parent `waitpid`s, timed inside the helper; F_echo: a raw two-hop
   Unix-socket newline-JSON echo (bench client <-> `echo_relay` <-> a Python "child" making the
   shim's side of the calls, timed inside the child): µs per sequential round trip, ms for 1000
   gathered; F_pss: W7's ratio for a plain asyncio/json CPython, forked from a frozen template
   vs started cold (an event loop awaiting a future reads its own smaps_rollup; two idle
   siblings of each kind alive, as in W7).
3. Systems, one after another (never two daemons at once): ptcd A `--fork-server on` (default
   warm pool), B `--fork-server off` (the cold launcher path), C `--fork-server on` with
   `warm_pool = 0` (the fork path alone), each with its own socket, scratch root, config and log
   in a temporary state dir, as root on the default policy (all layers); a daemon without the
   `--fork-server` flag runs B only (A and C "n/a"). Then pydantic-monty with a fresh worker per
   run and with one reused worker, and smolagents' `LocalPythonExecutor`.
4. Workloads W1..W9 (see `WORKLOADS` below), then the issue's goals, each with its measured ratio
   and PASS/FAIL.

A benchmark, never a test: nothing here fails a build. Numbers are wall-clock on whatever machine
runs it; on a 2-vCPU VM the bench's own client competes with the daemon for the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "target"
VENV = TARGET / "bench-venv"
INSTALL_STATUS = VENV / "bench-install.json"
REQUIREMENTS = REPO / "benches" / "requirements.txt"
# The interpreter ptcd runs scripts with (its `--python` default): the floors use it too.
PYTHON = "/usr/bin/python3"

# W8 reads the daemon's RSS this long after its last request.
IDLE_S = 3.0

WORKLOADS = {
    "W1": "trivial run `1 + 1`",
    "W2": "one tool call `await echo(1)`",
    "W3": "50 gathered tool calls",
    "W4": "1000 gathered tool calls",
    "W5": "back-to-back `1 + 1` runs, no waiting for the pool (per run)",
    "W6": "concurrent clients for a fixed period",
    "W7": "memory of the run's process (smaps_rollup)",
    "W8": "daemon idle VmRSS, 3 s after the last request (+ the template's RSS/PSS)",
    "W9": "daemon cost per tool call (200 sequential calls in one run, minus F_echo)",
}


# ---------------------------------------------------------------------------------- environment


def _pip_env() -> dict[str, str]:
    tmp = TARGET / "tmp" / "bench-pip"
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(PIP_CACHE_DIR=str(TARGET / "bench-pip-cache"), TMPDIR=str(tmp),
               PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1")
    env.pop("PIP_USER", None)
    return env


def _requirements(monty_version: str | None) -> list[str]:
    reqs = []
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if monty_version and line.startswith("pydantic-monty=="):
            line = f"pydantic-monty=={monty_version}"
        reqs.append(line)
    return reqs


def bootstrap(args: argparse.Namespace) -> None:
    """Creates/updates the venv, then re-executes this script inside it (never returns)."""
    py = VENV / "bin" / "python"
    if not py.exists():
        print(f"creating {VENV.relative_to(REPO)}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    status: dict[str, str] = {}
    if INSTALL_STATUS.exists() and not args.retry_install:
        status = json.loads(INSTALL_STATUS.read_text())
    env = _pip_env()
    client = str(REPO / "clients" / "python")
    for req in _requirements(args.monty_version) + [client]:
        # The peers once; this checkout's client every time (its code changes, not its version).
        if req != client and req in status and (status[req] == "ok" or not args.retry_install):
            continue
        print(f"installing {req} into {VENV.relative_to(REPO)}", flush=True)
        again = ["--force-reinstall", "--no-deps"] if req == client else []
        proc = subprocess.run([str(py), "-m", "pip", "install", "-q", *again, req], env=env,
                              capture_output=True, text=True)
        if proc.returncode == 0:
            status[req] = "ok"
        else:
            lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")] or proc.stderr.splitlines()
            status[req] = f"pip install {req} failed: {lines[-1].removeprefix('ERROR: ')[:200] if lines else proc.returncode}"
            print(f"  n/a: {status[req]}", flush=True)
        INSTALL_STATUS.write_text(json.dumps(status, indent=1))
    if status.get(client) != "ok":
        raise SystemExit("the ptcd client (./clients/python) could not be installed into the bench venv")
    env = dict(os.environ, PTCD_BENCH_IN_VENV="1")
    os.execve(str(py), [str(py), str(Path(__file__).resolve())] + sys.argv[1:], env)


def install_failure(dist: str) -> str | None:
    """Why `dist` (a requirement's name) is not installed, or None if it is."""
    if not INSTALL_STATUS.exists():
        return None
    for req, state in json.loads(INSTALL_STATUS.read_text()).items():
        if req.split("==")[0] == dist and state != "ok":
            # A later override (--monty-version) may have installed another version.
            try:
                from importlib.metadata import version
                version(dist)
            except Exception:  # noqa: BLE001 - any failure means "not installed"
                return state
    return None


def install_failure_text(dist: str) -> str | None:
    """The recorded install failure of `dist`'s pinned requirement, even if another version is in."""
    if not INSTALL_STATUS.exists():
        return None
    for req, state in json.loads(INSTALL_STATUS.read_text()).items():
        if req.split("==")[0] == dist and state != "ok":
            return state
    return None


# ---------------------------------------------------------------------------------- statistics


def pct(xs: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(xs)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def summary(xs: list[float]) -> dict[str, Any]:
    return {"n": len(xs), "p50": statistics.median(xs), "p90": pct(xs, 0.9), "p99": pct(xs, 0.99),
            "min": min(xs), "max": max(xs)}


class NA:
    """A measurement that could not be made, and why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"n/a ({self.reason})"


def measured(fn: Callable[[], Any], label: str) -> Any:
    """Runs one measurement; a failure becomes an NA naming it, so the rest still runs."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - a bench row fails, never the bench
        print(f"  {label}: n/a ({type(exc).__name__}: {exc})", flush=True)
        return NA(f"{type(exc).__name__}: {str(exc)[:200]}")


async def ameasured(coro, label: str) -> Any:
    try:
        return await coro
    except Exception as exc:  # noqa: BLE001
        print(f"  {label}: n/a ({type(exc).__name__}: {exc})", flush=True)
        return NA(f"{type(exc).__name__}: {str(exc)[:200]}")


def timed(fn: Callable[[], Any], runs: int, before: Callable[[], Any] | None = None) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(runs):
        if before is not None:
            before()
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


async def atimed(fn, runs: int, before=None) -> list[float]:
    await fn()  # warm-up
    out = []
    for _ in range(runs):
        if before is not None:
            await before()
        t = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def smaps_rollup(pid: int) -> dict[str, int]:
    """KiB values of /proc/<pid>/smaps_rollup (Rss, Pss, Private_Clean, ...)."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            out[parts[0].rstrip(":")] = int(parts[1])
    return out


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


# Loaded once here: a preexec_fn must not dlopen between fork and exec.
_LIBC = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL this child when the bench dies, whatever kills it (children are
    started from the main thread, the one PR_SET_PDEATHSIG watches)."""
    _LIBC.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


# ---------------------------------------------------------------------------------- floors

FORK_HELPER = r"""
import asyncio, gc, json, os, sys, time
n = int(sys.argv[1])
gc.collect()
gc.freeze()
out = []
for _ in range(n + 1):
    t = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        exec(compile("1+1", "<run>", "exec"))
        os._exit(0)
    os.waitpid(pid, 0)
    out.append((time.perf_counter() - t) * 1000)
print(json.dumps(out[1:]))
"""

# F_pss: W7's shape (an event loop awaiting a future, the process's memory read meanwhile) in a plain
# CPython that imported asyncio/json, started cold and forked from a frozen template. Each measured
# process has two idle siblings of its kind, as W7's runs do (ptcd B: two other pool children; ptcd
# A: the template and two pool children), since PSS divides a shared page among those mapping it.
PSS_PROBE = r"""
import asyncio, os
def rollup():
    d = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            p = line.split()
            if len(p) == 3 and p[1].isdigit():
                d[p[0].rstrip(":")] = int(p[1])
    return d
async def main():
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.call_soon(lambda: fut.set_result(rollup()))
    return await fut
r = asyncio.run(main())
os.write(OUT, b"%d %d\n" % (r["Pss"], r["Private_Clean"] + r["Private_Dirty"]))
"""
PSS_COLD = "import asyncio, json, os, sys\nOUT = int(sys.argv[1])\n" + PSS_PROBE
PSS_SIBLING = "import asyncio, json, sys\nprint('ready', flush=True)\nsys.stdin.read()\n"
PSS_TEMPLATE = f"PROBE = {PSS_PROBE!r}\n" + r"""
import asyncio, gc, json, os, sys
OUT, n = int(sys.argv[1]), int(sys.argv[2])
gc.collect()
gc.freeze()
hold_r, hold_w = os.pipe()
idle = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        os.close(hold_w)
        os.read(hold_r, 1)
        os._exit(0)
    idle.append(pid)
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        try:
            exec(compile(PROBE, "<run>", "exec"))
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
os.close(hold_w)
for pid in idle:
    os.waitpid(pid, 0)
"""


def f_pss(n: int) -> dict[str, Any]:
    def collect(code: str, samples: int, *args: str) -> list[tuple[int, int]]:
        """Runs one helper; it writes a "PSS private" line per sample to the fd it is given."""
        r, w = os.pipe()
        with os.fdopen(r, "rb") as out:
            try:
                proc = subprocess.Popen([PYTHON, "-I", "-S", "-B", "-c", code, str(w), *args],
                                        pass_fds=[w], preexec_fn=_die_with_parent)
                if proc.wait(timeout=60) != 0:
                    raise RuntimeError(f"F_pss helper exited {proc.returncode}")
            finally:
                os.close(w)
            lines = out.read().splitlines()
        if len(lines) != samples:
            raise RuntimeError(f"F_pss: {len(lines)} samples, expected {samples}")
        return [(int(a), int(b)) for a, b in (line.split() for line in lines)]

    siblings = [subprocess.Popen([PYTHON, "-I", "-S", "-B", "-c", PSS_SIBLING], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, preexec_fn=_die_with_parent) for _ in range(2)]
    try:
        for s in siblings:
            assert s.stdout is not None
            if s.stdout.readline().strip() != b"ready":
                raise RuntimeError("F_pss sibling did not start")
        cold = [collect(PSS_COLD, 1)[0] for _ in range(n)]
    finally:
        for s in siblings:
            assert s.stdin is not None
            s.stdin.close()
            s.wait(timeout=10)
    forked = collect(PSS_TEMPLATE, n, str(n))
    cold_pss = statistics.median(x[0] for x in cold)
    fork_pss = statistics.median(x[0] for x in forked)
    return {"n": n, "cold_pss_kib": cold_pss, "fork_pss_kib": fork_pss,
            "cold_private_kib": statistics.median(x[1] for x in cold),
            "fork_private_kib": statistics.median(x[1] for x in forked), "ratio": fork_pss / cold_pss}


# The shim's side of a tool call, as plainly as the shim does it: asyncio on a non-blocking
# AF_UNIX socket, one future per call id, lines queued whole when the socket is full.
ECHO_CHILD = r"""
import asyncio, json, socket, sys, time
path, n_seq, n_gather, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(path)
sock.setblocking(False)
fd = sock.fileno()
pending, inbuf, outbuf = {}, bytearray(), bytearray()
state = {"next": 0}

def on_readable():
    try:
        data = sock.recv(1 << 16)
    except BlockingIOError:
        return
    if not data:
        raise SystemExit("relay closed")
    inbuf.extend(data)
    while True:
        end = inbuf.find(b"\n")
        if end < 0:
            return
        msg = json.loads(bytes(inbuf[:end]))
        del inbuf[:end + 1]
        fut = pending.pop(msg["id"], None)
        if fut is not None and not fut.done():
            fut.set_result(msg["result"])

def on_writable():
    sent = sock.send(outbuf)
    del outbuf[:sent]
    if not outbuf:
        loop.remove_writer(fd)

def write(line):
    if not outbuf:
        try:
            sent = sock.send(line)
        except BlockingIOError:
            sent = 0
        if sent == len(line):
            return
        line = line[sent:]
        loop.add_writer(fd, on_writable)
    outbuf.extend(line)

async def echo(x):
    i = state["next"]
    state["next"] += 1
    fut = loop.create_future()
    pending[i] = fut
    write(json.dumps({"type": "tool_call", "id": i, "name": "echo", "arguments": {"x": x}},
                     separators=(",", ":")).encode() + b"\n")
    return await fut

async def main():
    global loop
    loop = asyncio.get_running_loop()
    loop.add_reader(fd, on_readable)
    seq_us, gather_ms = [], []
    for rep in range(reps + 1):
        t = time.perf_counter()
        for i in range(n_seq):
            await echo(i)
        if rep:
            seq_us.append((time.perf_counter() - t) / n_seq * 1e6)
        t = time.perf_counter()
        rs = await asyncio.gather(*(echo(i) for i in range(n_gather)))
        assert len(rs) == n_gather
        if rep:
            gather_ms.append((time.perf_counter() - t) * 1000)
    print(json.dumps({"seq_us": seq_us, "gather_ms": gather_ms}))

asyncio.run(main())
"""


class RawClient:
    """A minimal blocking newline-JSON client: what both F_echo and W9 answer tool calls with, so
    their difference is the daemon's work, not a client library's. `answer(msg)` returns the
    reply object for a message that needs one, else None; replies to one read go out in one write."""

    def __init__(self, path: Path | str, timeout: float = 60.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, msg: dict) -> None:
        self.sock.sendall(json.dumps(msg, separators=(",", ":")).encode() + b"\n")

    def serve(self, answer: Callable[[dict], dict | None], until: Callable[[dict], bool]) -> dict | None:
        """Answers messages until one satisfies `until` (returned) or the peer closes (None)."""
        while True:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                return None
            self.buf += chunk
            *lines, self.buf = self.buf.split(b"\n")
            replies = []
            done = None
            for line in lines:
                if not line.strip():
                    continue
                msg = json.loads(line)
                if done is None and until(msg):
                    done = msg
                    continue
                reply = answer(msg)
                if reply is not None:
                    replies.append(json.dumps(reply, separators=(",", ":")).encode() + b"\n")
            if replies:
                self.sock.sendall(b"".join(replies))
            if done is not None:
                return done


def f_echo(relay_bin: Path, n_seq: int, n_gather: int, reps: int) -> dict[str, Any]:
    if not relay_bin.exists() and shutil.which("cargo"):
        print("  building the relay: cargo build --release --locked --example echo_relay", flush=True)
        subprocess.run(["cargo", "build", "--release", "--locked", "--example", "echo_relay"], cwd=REPO,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not relay_bin.exists():
        raise FileNotFoundError(f"{relay_bin} (build it: cargo build --release --example echo_relay)")
    tmp = Path(tempfile.mkdtemp(prefix="ptcd-bench-echo-"))
    procs: list[subprocess.Popen] = []
    try:
        client_sock, child_sock = tmp / "client.sock", tmp / "child.sock"
        relay = subprocess.Popen([str(relay_bin), str(client_sock), str(child_sock)], stdout=subprocess.PIPE,
                                 text=True, preexec_fn=_die_with_parent)
        procs.append(relay)
        assert relay.stdout is not None
        if relay.stdout.readline().strip() != "ready":
            raise RuntimeError("echo_relay did not start")
        child = subprocess.Popen([PYTHON, "-I", "-S", "-B", "-c", ECHO_CHILD, str(child_sock), str(n_seq),
                                  str(n_gather), str(reps)], stdout=subprocess.PIPE, text=True,
                                 preexec_fn=_die_with_parent)
        procs.append(child)
        client = RawClient(client_sock)
        try:
            client.serve(lambda m: {"type": "tool_result", "id": m["id"], "result": m["arguments"]["x"]},
                         lambda m: False)
        finally:
            client.close()
        out, _ = child.communicate(timeout=120)
        if child.returncode != 0:
            raise RuntimeError(f"echo child exited {child.returncode}")
        data = json.loads(out)
        relay.wait(timeout=10)
        return {"seq_us": summary(data["seq_us"]), "gather_ms": summary(data["gather_ms"]),
                "n_seq": n_seq, "n_gather": n_gather}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def floors(args: argparse.Namespace) -> dict[str, Any]:
    print("floors", flush=True)
    runs = args.runs
    out: dict[str, Any] = {}
    out["F_bare"] = measured(lambda: summary(timed(
        lambda: subprocess.run([PYTHON, "-I", "-S", "-c", "pass"], check=True), runs)), "F_bare")
    out["F_import"] = measured(lambda: summary(timed(
        lambda: subprocess.run([PYTHON, "-I", "-S", "-c", "import asyncio, json"], check=True), runs)), "F_import")

    def fork() -> dict[str, Any]:
        proc = subprocess.run([PYTHON, "-I", "-S", "-B", "-c", FORK_HELPER, str(args.back_to_back)],
                              check=True, capture_output=True, text=True)
        return summary(json.loads(proc.stdout))
    out["F_fork"] = measured(fork, "F_fork")
    out["F_echo"] = measured(lambda: f_echo(Path(args.relay), 1000, 1000, max(3, runs // 5)), "F_echo")
    out["F_pss"] = measured(lambda: f_pss(min(runs, 10)), "F_pss")
    return out


# ---------------------------------------------------------------------------------- ptcd daemons


def has_fork_server_flag(binary: str) -> bool:
    proc = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True)
    return "--fork-server" in proc.stdout


class BenchDaemon:
    """One `ptcd serve` with its own state dir (socket, scratch root, config, log)."""

    def __init__(self, binary: str, fork_server: str | None, warm_pool: int | None) -> None:
        self.state = Path(tempfile.mkdtemp(prefix="ptcd-bench-"))
        os.chmod(self.state, 0o711)  # the scratch root below must be reachable by the run uids
        self.socket = self.state / "ptcd.sock"
        config = self.state / "config.toml"
        config.write_text("" if warm_pool is None else f"warm_pool = {warm_pool}\n")
        cmd = [binary, "serve", "--config", str(config), "--socket", str(self.socket),
               "--scratch-dir", str(self.state / "scratch")]
        if fork_server is not None:
            cmd += ["--fork-server", fork_server]
        self.log_path = self.state / "daemon.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ptcd exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                RawClient(self.socket).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"ptcd did not listen within 20 s: {self.log_tail()}") from None
                time.sleep(0.01)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.state, ignore_errors=True)


async def echo(x: Any) -> Any:
    """Returns its argument."""
    return x


def gather_code(n: int) -> str:
    return f"import asyncio\nrs = await asyncio.gather(*(echo(i) for i in range({n})))\nlen(rs)"


SEQ10 = "for i in range(10):\n    await echo(i)\ni"
W9_CODE = ("import time\nt = time.perf_counter()\nfor i in range(200):\n    await echo(i)\n"
           "(time.perf_counter() - t) / 200 * 1e6")
W1_CODE, W2_CODE = "1 + 1", "await echo(1)"
CASES = [("W1", W1_CODE, 2), ("W2", W2_CODE, 1), ("W3", gather_code(50), 50), ("W4", gather_code(1000), 1000)]


class PtcdSystem:
    """Workloads on one daemon, through the real Python client (`ptcd.AsyncClient`)."""

    def __init__(self, daemon: BenchDaemon, forking: bool) -> None:
        self.daemon = daemon
        self.forking = forking
        self.template_up = False

    async def status(self, client) -> dict[str, Any]:
        return await client.status()

    async def ready(self, client, timeout: float = 30.0) -> None:
        """Waits (untimed, bounded) until the warm pool is full and, when forking, the template is up."""
        deadline = time.monotonic() + timeout
        while True:
            s = await client.status()
            pool_full = s["warm_idle"] == s["warm_pool"]
            templ = s.get("fork_server", {}).get("templates", [])
            up = any(t.get("state") == "up" for t in templ)
            if pool_full and (not self.template_up or up):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the daemon did not become ready: {s}")
            await asyncio.sleep(0.002)

    async def wait_template(self, client) -> None:
        if not self.forking:
            return
        # A template may start only with the first run (no warm pool to fill): send one.
        await client.run(W1_CODE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            s = await client.status()
            if any(t.get("state") == "up" for t in s.get("fork_server", {}).get("templates", [])):
                self.template_up = True
                return
            await asyncio.sleep(0.01)
        print("  the fork-server template did not come up within 20 s: runs start cold", flush=True)

    async def counters(self, client) -> dict[str, int]:
        s = await client.status()
        fs = s.get("fork_server", {})
        return {"forked": fs.get("runs_forked_total", 0), "cold": fs.get("runs_cold_total", 0),
                "warm": s.get("runs_warm_total", 0), "fallbacks": fs.get("fallbacks_total", 0)}

    async def measure(self, args: argparse.Namespace, echo_floor_us: float | None) -> dict[str, Any]:
        import ptcd

        out: dict[str, Any] = {}
        async with ptcd.AsyncClient(self.daemon.socket) as client:
            await self.wait_template(client)
            await self.ready(client)
            out["idle_rss_kib_start"] = vm_rss_kib(self.daemon.pid)
            before = await self.counters(client)

            async def run_ok(code: str, want: Any, **kw) -> None:
                r = await client.run(code, tools=[echo], **kw)
                if r.status != "ok" or r.value != want:
                    raise RuntimeError(f"run failed: {r.status} {r.error} {r.value!r}")

            for name, code, want in CASES:
                n = args.runs if name != "W4" else max(5, args.runs // 3)
                out[name] = await ameasured(self._lat(lambda c=code, w=want: run_ok(c, w), n, client), name)
            out["W5"] = await ameasured(self._back_to_back(run_ok, args.back_to_back), "W5")
            out["W7"] = await ameasured(self._memory(client, min(args.runs, 10)), "W7")
            out["W9"] = await ameasured(self._per_call(client, args, echo_floor_us), "W9")
            out["W6"] = {}
            for label, code, want in (("W1", W1_CODE, 2), ("10 sequential calls", SEQ10, 9)):
                out["W6"][label] = await ameasured(self._concurrent(client, code, want, args), f"W6 {label}")
            await self.ready(client)
            after = await self.counters(client)
            out["starts"] = {k: after[k] - before[k] for k in after}
            s = await client.status()
            # Idle: past the daemon's trim of a burst's free heap (1 s after the traffic stops).
            await asyncio.sleep(IDLE_S)
            out["W8"] = {"daemon_vmrss_kib": vm_rss_kib(self.daemon.pid),
                         "daemon_vmrss_kib_at_start": out.pop("idle_rss_kib_start"), "templates": []}
            for t in s.get("fork_server", {}).get("templates", []):
                if t.get("pid"):
                    with contextlib.suppress(OSError):
                        m = smaps_rollup(t["pid"])
                        out["W8"]["templates"].append({"pid": t["pid"], "rss_kib": m.get("Rss"),
                                                       "pss_kib": m.get("Pss"), "forks": t.get("forks")})
        return out

    async def _lat(self, fn, n: int, client) -> dict[str, Any]:
        return summary(await atimed(fn, n, lambda: self.ready(client)))

    async def _back_to_back(self, run_ok, n: int) -> dict[str, Any]:
        await run_ok(W1_CODE, 2)
        xs = []
        t0 = time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            await run_ok(W1_CODE, 2)
            xs.append((time.perf_counter() - t) * 1000)
        return {**summary(xs), "total_ms": (time.perf_counter() - t0) * 1000}

    async def _memory(self, client, n: int) -> dict[str, Any]:
        samples: list[dict[str, int]] = []

        async def probe(pid: int) -> bool:
            """Reads the run's own memory figures while it waits."""
            samples.append(smaps_rollup(pid))
            return True

        for _ in range(n):
            await self.ready(client)
            r = await client.run("import os\nawait probe(os.getpid())", tools=[probe])
            if r.status != "ok":
                raise RuntimeError(f"probe run failed: {r.status} {r.error}")
        return {"n": len(samples),
                "pss_kib": statistics.median(s["Pss"] for s in samples),
                "private_kib": statistics.median(s.get("Private_Clean", 0) + s.get("Private_Dirty", 0) for s in samples),
                "rss_kib": statistics.median(s["Rss"] for s in samples)}

    async def _per_call(self, client, args: argparse.Namespace, echo_floor_us: float | None) -> dict[str, Any]:
        def one() -> float:
            c = RawClient(self.daemon.socket)
            try:
                c.send({"jsonrpc": "2.0", "id": 1, "method": "run", "params": {
                    "code": W9_CODE, "tools": [{"name": "echo", "input_schema": {"properties": {"x": {}}}}]}})

                def answer(m: dict) -> dict | None:
                    if m.get("method") == "tool/call":
                        return {"jsonrpc": "2.0", "id": m["id"], "result": m["params"]["arguments"]["x"]}
                    return None
                resp = c.serve(answer, lambda m: m.get("id") == 1 and "method" not in m)
            finally:
                c.close()
            if resp is None or resp.get("result", {}).get("status") != "ok":
                raise RuntimeError(f"W9 run failed: {resp}")
            return float(resp["result"]["value"])

        # Like W1-W4, each run starts once the pool is full again: the 200 calls are timed, not
        # the refill of the child the previous run took (a fork on the same 2 cores).
        loop = asyncio.get_running_loop()
        xs = []
        for _ in range(max(5, args.runs // 3) + 1):
            await self.ready(client)
            xs.append(await loop.run_in_executor(None, one))
        xs = xs[1:]
        s = summary(xs)
        s["unit"] = "us"
        if echo_floor_us is not None:
            s["minus_F_echo_us"] = s["p50"] - echo_floor_us
        return s

    async def _concurrent(self, client, code: str, want: Any, args: argparse.Namespace) -> dict[str, Any]:
        import ptcd

        lat: list[float] = []
        errors: list[str] = []
        clients = [ptcd.AsyncClient(self.daemon.socket) for _ in range(args.clients)]
        try:
            for c in clients:
                await c.connect()
            await self.ready(client)
            deadline = time.monotonic() + args.period

            async def worker(c) -> None:
                while time.monotonic() < deadline:
                    t = time.perf_counter()
                    try:
                        r = await c.run(code, tools=[echo])
                    except ptcd.PtcdError as exc:  # e.g. overloaded: counted, not timed
                        errors.append(type(exc).__name__)
                        continue
                    if r.status == "ok" and r.value == want:
                        lat.append((time.perf_counter() - t) * 1000)
                    else:
                        errors.append(r.status)

            t0 = time.perf_counter()
            await asyncio.gather(*(worker(c) for c in clients))
            elapsed = time.perf_counter() - t0
        finally:
            for c in clients:
                await c.close()
        if not lat:
            raise RuntimeError(f"no run completed ({len(errors)} errors: {errors[:3]})")
        return {"runs_per_s": len(lat) / elapsed, "completed": len(lat), "errors": len(errors),
                "error_kinds": sorted(set(errors)), "period_s": elapsed, "clients": args.clients, **summary(lat)}


async def measure_ptcd(args: argparse.Namespace, fl: dict[str, Any]) -> dict[str, Any]:
    forkable = has_fork_server_flag(args.bin)
    echo_us = fl["F_echo"]["seq_us"]["p50"] if isinstance(fl.get("F_echo"), dict) else None
    configs = [("ptcd A", "on", None), ("ptcd B", "off", None), ("ptcd C", "on", 0)]
    out: dict[str, Any] = {}
    for name, mode, pool in configs:
        if not forkable and mode == "on":
            out[name] = NA("this ptcd has no --fork-server flag")
            print(f"{name}: {out[name]}", flush=True)
            continue
        print(f"{name}: --fork-server {mode if forkable else '(flag absent)'}"
              f"{'' if pool is None else f', warm_pool = {pool}'}", flush=True)
        daemon = None
        try:
            daemon = BenchDaemon(args.bin, mode if forkable else None, pool)
            out[name] = await PtcdSystem(daemon, forkable and mode == "on").measure(args, echo_us)
        except Exception as exc:  # noqa: BLE001 - one system failing leaves the others
            out[name] = NA(f"{type(exc).__name__}: {str(exc)[:300]}")
            print(f"  {out[name]}", flush=True)
        finally:
            if daemon is not None:
                daemon.stop()
    return out


# ---------------------------------------------------------------------------------- peers


async def measure_monty(args: argparse.Namespace) -> dict[str, Any]:
    why = install_failure("pydantic-monty")
    if why:
        return {"monty fresh": NA(why), "monty reused": NA(why)}
    try:
        from importlib.metadata import version

        from pydantic_monty import AsyncMonty
    except Exception as exc:  # noqa: BLE001
        reason = f"cannot import pydantic_monty: {exc}"
        return {"monty fresh": NA(reason), "monty reused": NA(reason)}
    ver = version("pydantic-monty")
    pinned = next((r.split("==")[1] for r in _requirements(None) if r.startswith("pydantic-monty==")), None)
    if pinned and ver != pinned:
        ver += f", not the pinned {pinned} ({install_failure_text('pydantic-monty') or '--monty-version'})"
    # `max_suspensions` (default 1000 per checkout) would end a reused worker's W4 at once.
    limits = {"max_suspensions": 10**9}
    lookup = {"echo": echo}
    out: dict[str, Any] = {}

    async def feed(session, code: str, want: Any) -> None:
        r = await session.feed_run(code, external_lookup=lookup)
        if r != want:
            raise RuntimeError(f"monty returned {r!r}, expected {want!r}")

    # Fresh: a new worker per run (the pool recycles a worker after one checkout and keeps
    # `min_processes` spawned ahead, like ptcd's warm pool).
    print(f"monty fresh (pydantic-monty {ver})", flush=True)
    res: dict[str, Any] = {"version": ver}
    try:
        async with AsyncMonty(min_processes=2, max_processes=32, max_checkouts_per_worker=1) as pool:
            async def fresh(code: str, want: Any) -> None:
                async with pool.checkout(limits=limits) as s:
                    await feed(s, code, want)
            for name, code, want in CASES:
                n = args.runs if name != "W4" else max(5, args.runs // 3)
                res[name] = await ameasured(_asum(lambda c=code, w=want: fresh(c, w), n), name)
            res["W5"] = await ameasured(_aback(lambda: fresh(W1_CODE, 2), args.back_to_back), "W5")
            res["W6"] = {}
            for label, code, want in (("W1", W1_CODE, 2), ("10 sequential calls", SEQ10, 9)):
                res["W6"][label] = await ameasured(
                    _aconcurrent(lambda _i, c=code, w=want: fresh(c, w), args), f"W6 {label}")
        out["monty fresh"] = res
    except Exception as exc:  # noqa: BLE001
        out["monty fresh"] = NA(f"{type(exc).__name__}: {exc}")

    print(f"monty reused (pydantic-monty {ver})", flush=True)
    res = {"version": ver}
    try:
        async with AsyncMonty(min_processes=1, max_processes=args.clients + 1) as pool:
            async with pool.checkout(limits=limits) as s:
                for name, code, want in CASES:
                    n = args.runs if name != "W4" else max(5, args.runs // 3)
                    res[name] = await ameasured(_asum(lambda c=code, w=want: feed(s, c, w), n), name)
                res["W5"] = await ameasured(_aback(lambda: feed(s, W1_CODE, 2), args.back_to_back), "W5")
            res["W6"] = {}
            for label, code, want in (("W1", W1_CODE, 2), ("10 sequential calls", SEQ10, 9)):
                sessions = [pool.checkout(limits=limits) for _ in range(args.clients)]
                async with contextlib.AsyncExitStack() as stack:
                    held = [await stack.enter_async_context(x) for x in sessions]
                    res["W6"][label] = await ameasured(
                        _aconcurrent(lambda i, c=code, w=want: feed(held[i], c, w), args), f"W6 {label}")
        out["monty reused"] = res
    except Exception as exc:  # noqa: BLE001
        out["monty reused"] = NA(f"{type(exc).__name__}: {exc}")
    return out


async def _asum(fn, n: int) -> dict[str, Any]:
    return summary(await atimed(fn, n))


async def _aback(fn, n: int) -> dict[str, Any]:
    await fn()
    xs = []
    t0 = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        xs.append((time.perf_counter() - t) * 1000)
    return {**summary(xs), "total_ms": (time.perf_counter() - t0) * 1000}


async def _aconcurrent(fn, args: argparse.Namespace) -> dict[str, Any]:
    lat: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + args.period

    async def worker(i: int) -> None:
        while time.monotonic() < deadline:
            t = time.perf_counter()
            try:
                await fn(i)
            except Exception as exc:  # noqa: BLE001 - counted
                errors.append(type(exc).__name__)
                continue
            lat.append((time.perf_counter() - t) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(args.clients)))
    elapsed = time.perf_counter() - t0
    if not lat:
        raise RuntimeError(f"no run completed ({len(errors)} errors: {errors[:3]})")
    return {"runs_per_s": len(lat) / elapsed, "completed": len(lat), "errors": len(errors),
            "error_kinds": sorted(set(errors)), "period_s": elapsed, "clients": args.clients, **summary(lat)}


def measure_smolagents(args: argparse.Namespace) -> dict[str, Any]:
    """`LocalPythonExecutor`, a new executor per run, `echo` as an additional function. It has no
    `await`: the gathers run as loops."""
    why = install_failure("smolagents")
    if why:
        return {"smolagents": NA(why)}
    try:
        from importlib.metadata import version

        from smolagents.local_python_executor import LocalPythonExecutor
    except Exception as exc:  # noqa: BLE001
        return {"smolagents": NA(f"cannot import smolagents: {exc}")}
    print(f"smolagents {version('smolagents')}", flush=True)

    def plain_echo(x: Any) -> Any:
        return x

    def run(code: str, want: Any) -> None:
        ex = LocalPythonExecutor([], additional_functions={"echo": plain_echo})
        ex.send_tools({})
        r = ex(code).output
        if r != want:
            raise RuntimeError(f"smolagents returned {r!r}, expected {want!r}")

    loops = [("W1", "1 + 1", 2), ("W2", "echo(1)", 1), ("W3", "rs = [echo(i) for i in range(50)]\nlen(rs)", 50),
             ("W4", "rs = [echo(i) for i in range(1000)]\nlen(rs)", 1000)]
    res: dict[str, Any] = {"version": version("smolagents")}
    for name, code, want in loops:
        n = args.runs if name != "W4" else max(5, args.runs // 3)
        res[name] = measured(lambda c=code, w=want: summary(timed(lambda: run(c, w), n)), name)

    def back() -> dict[str, Any]:
        run("1 + 1", 2)
        xs = []
        t0 = time.perf_counter()
        for _ in range(args.back_to_back):
            t = time.perf_counter()
            run("1 + 1", 2)
            xs.append((time.perf_counter() - t) * 1000)
        return {**summary(xs), "total_ms": (time.perf_counter() - t0) * 1000}
    res["W5"] = measured(back, "W5")

    def concurrent(code: str, want: Any) -> dict[str, Any]:
        lat: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        deadline = time.monotonic() + args.period

        def worker() -> None:
            while time.monotonic() < deadline:
                t = time.perf_counter()
                try:
                    run(code, want)
                except Exception as exc:  # noqa: BLE001
                    with lock:
                        errors.append(type(exc).__name__)
                    continue
                with lock:
                    lat.append((time.perf_counter() - t) * 1000)
        threads = [threading.Thread(target=worker) for _ in range(args.clients)]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed = time.perf_counter() - t0
        return {"runs_per_s": len(lat) / elapsed, "completed": len(lat), "errors": len(errors),
                "error_kinds": sorted(set(errors)), "period_s": elapsed, "clients": args.clients, **summary(lat)}
    res["W6"] = {"W1": measured(lambda: concurrent("1 + 1", 2), "W6 W1"),
                 "10 sequential calls": measured(
                     lambda: concurrent("for i in range(10):\n    echo(i)\ni", 9), "W6 10 sequential calls")}
    return {"smolagents": res}


# ---------------------------------------------------------------------------------- report

SYSTEMS = ["ptcd A", "ptcd B", "ptcd C", "monty fresh", "monty reused", "smolagents"]
SYSTEM_NOTES = {
    "ptcd A": "`--fork-server on`, default warm pool (2)",
    "ptcd B": "`--fork-server off`: the cold launcher path (today's), default warm pool (2)",
    "ptcd C": "`--fork-server on`, `warm_pool = 0`: every run forked on demand",
    "monty fresh": "pydantic-monty `AsyncMonty`, a new worker per run (`max_checkouts_per_worker=1`, 2 kept ahead)",
    "monty reused": "pydantic-monty `AsyncMonty`, one checked-out worker for every run (state persists)",
    "smolagents": "smolagents `LocalPythonExecutor`, new per run; an in-process AST interpreter, "
                  "not a sandbox; no `await`, so gathers are loops¹",
}


def get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return d if isinstance(d, NA) else None
        d = d[p]
    return d


def fmt(x: Any, digits: int = 1) -> str:
    if isinstance(x, NA):
        return f"n/a ({x.reason})"
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def ratio(a: Any, b: Any) -> str:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
        return f"{a / b:.2f}"
    return "n/a"


def goals(res: dict[str, Any]) -> list[dict[str, Any]]:
    fl, sy = res["floors"], res["systems"]
    out = []

    def goal(name: str, measured_value: Any, bound: Any, text: str, unit: str = "×", at_least: bool = False) -> None:
        ok = None
        if isinstance(measured_value, (int, float)) and isinstance(bound, (int, float)):
            ok = measured_value >= bound if at_least else measured_value <= bound
        out.append({"goal": name, "text": text, "measured": measured_value, "bound": bound, "unit": unit,
                    "at_least": at_least, "verdict": "n/a" if ok is None else ("PASS" if ok else "FAIL")})

    def r(a: Any, b: Any) -> Any:
        return a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None

    goal("W5(A) ≤ 2 × F_fork", r(get(sy, "ptcd A", "W5", "p50"), get(fl, "F_fork", "p50")), 2.0,
         "back-to-back run p50 / fork floor p50")
    b6 = get(sy, "ptcd B", "W6", "W1", "runs_per_s")
    a6 = get(sy, "ptcd A", "W6", "W1", "runs_per_s")
    goal("W6 runs/s A ≥ 10 × B", r(a6, b6), 10.0, "runs/s of `1 + 1`, A / B", at_least=True)
    goal("W3(A) ≤ 0.5 × monty fresh", r(get(sy, "ptcd A", "W3", "p50"), get(sy, "monty fresh", "W3", "p50")), 0.5,
         "p50 ratio")
    goal("W4(A) ≤ 30 ms", get(sy, "ptcd A", "W4", "p50"), 30.0, "p50", "ms")
    goal("W9 ≤ 60 µs", get(sy, "ptcd A", "W9", "minus_F_echo_us"), 60.0, "ptcd A µs per call − F_echo µs", "µs")
    floor = get(fl, "F_pss", "ratio")
    goal("W7 PSS forked ≤ 0.4 × cold", r(get(sy, "ptcd A", "W7", "pss_kib"), get(sy, "ptcd B", "W7", "pss_kib")), 0.4,
         "PSS of a run process, A / B"
         + (f" (the same ratio for plain CPython, F_pss: {floor:.2f}×)" if isinstance(floor, float) else ""))
    rss = get(sy, "ptcd A", "W8", "daemon_vmrss_kib")
    goal("W8 ≤ 10 MB", rss / 1024 if isinstance(rss, (int, float)) else rss, 10.0,
         "daemon A VmRSS 3 s after the last request, after every workload, MiB", "MiB")
    return out


def markdown(res: dict[str, Any]) -> str:
    fl, sy, meta = res["floors"], res["systems"], res["meta"]
    L = []
    L.append(f"{meta['machine']}; {meta['python']}; ptcd {meta['sandbox']}; one run, {meta['started']}; "
             f"{meta['runs']} runs per latency row, W5 {meta['back_to_back']} runs, "
             f"W6 {meta['clients']} clients × {meta['period']} s.\n")
    L.append("**Floors** (same run)\n")
    L.append("| floor | p50 | p90 | p99 |")
    L.append("|---|---:|---:|---:|")
    def row(label: str, v: Any, *path: str, digits: int = 2) -> str:
        if isinstance(v, NA) or v is None:
            return f"| {label} | {fmt(v)} | | |"
        v = get(v, *path) if path else v
        return f"| {label} | {fmt(v['p50'], digits)} | {fmt(v['p90'], digits)} | {fmt(v['p99'], digits)} |"
    L.append(row("F_bare `python3 -I -S -c pass` (ms)", fl.get("F_bare")))
    L.append(row("F_import `+ import asyncio, json` (ms)", fl.get("F_import")))
    L.append(row("F_fork: fork of a frozen asyncio/json CPython, exec `1+1`, waitpid (ms)", fl.get("F_fork")))
    L.append(row("F_echo: sequential round trip, child ↔ relay ↔ client (µs)", fl.get("F_echo"), "seq_us", digits=1))
    L.append(row("F_echo: 1000 gathered round trips (ms)", fl.get("F_echo"), "gather_ms", digits=1))
    fp = fl.get("F_pss")
    pss = (f"{fmt(fp)}" if not isinstance(fp, dict) else
           f"forked {fp['fork_pss_kib']:,.0f} / cold {fp['cold_pss_kib']:,.0f} KiB = {fp['ratio']:.2f}×")
    L.append("\n| floor | PSS |\n|---|---|")
    L.append(f"| F_pss: a plain asyncio/json CPython awaiting a future, forked from a frozen template / "
             f"started cold, two idle siblings each (W7's shape) | {pss} |")
    L.append("\n**Systems**\n")
    shown = [s for s in SYSTEMS if s in sy]
    for s in shown:
        v = sy.get(s)
        extra = f" — {fmt(v)}" if isinstance(v, NA) else (f" ({v['version']})" if isinstance(v, dict) and v.get("version") else "")
        L.append(f"- {s}: {SYSTEM_NOTES[s]}{extra}")
    L.append("\n**W1–W5: latency per run, ms** (W1–W4 wait, untimed, for a full pool before each run; "
             "× F_fork and × monty fresh compare p50s)\n")
    L.append("| workload | system | p50 | p90 | p99 | × F_bare | × F_fork | × monty fresh |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for w in ("W1", "W2", "W3", "W4", "W5"):
        for s in shown:
            v = get(sy, s, w)
            if isinstance(v, NA) or v is None:
                if isinstance(sy.get(s), NA):
                    continue
                L.append(f"| {w} {WORKLOADS[w]} | {s} | {fmt(v)} | | | | | |")
                continue
            p50 = v["p50"]
            L.append(f"| {w} {WORKLOADS[w]} | {s} | {p50:.1f} | {v['p90']:.1f} | {v['p99']:.1f} | "
                     f"{ratio(p50, get(fl, 'F_bare', 'p50'))} | {ratio(p50, get(fl, 'F_fork', 'p50'))} | "
                     f"{ratio(p50, get(sy, 'monty fresh', w, 'p50'))} |")
    L.append(f"\n**W6: {meta['clients']} concurrent clients for {meta['period']} s**\n")
    L.append("| run | system | runs/s | p50 ms | p99 ms | errors | × ptcd B runs/s |")
    L.append("|---|---|---:|---:|---:|---:|---:|")
    for label in ("W1", "10 sequential calls"):
        for s in shown:
            v = get(sy, s, "W6", label)
            if isinstance(sy.get(s), NA):
                continue
            if not isinstance(v, dict):
                L.append(f"| {label} | {s} | {fmt(v)} | | | | |")
                continue
            L.append(f"| {label} | {s} | {v['runs_per_s']:.1f} | {v['p50']:.1f} | {v['p99']:.1f} | {v['errors']} | "
                     f"{ratio(v['runs_per_s'], get(sy, 'ptcd B', 'W6', label, 'runs_per_s'))} |")
    L.append("\n**W7–W9: memory and per-call cost (ptcd)**\n")
    L.append("| system | W7 run PSS KiB | W7 run private KiB | W8 daemon idle VmRSS KiB (at start) | "
             "W8 template RSS / PSS KiB | W9 µs per call | W9 − F_echo µs | starts (forked/cold/warm) |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for s in [x for x in shown if x.startswith("ptcd")]:
        v = sy.get(s)
        if isinstance(v, NA) or v is None:
            L.append(f"| {s} | {fmt(v)} | | | | | | |")
            continue
        t = get(v, "W8", "templates") or []
        tmpl = ", ".join(f"{x['rss_kib']:,} / {x['pss_kib']:,}" for x in t) or "—"
        st = v.get("starts", {})
        L.append(f"| {s} | {fmt(get(v, 'W7', 'pss_kib'))} | {fmt(get(v, 'W7', 'private_kib'))} | "
                 f"{fmt(get(v, 'W8', 'daemon_vmrss_kib'))} ({fmt(get(v, 'W8', 'daemon_vmrss_kib_at_start'))}) | "
                 f"{tmpl} | {fmt(get(v, 'W9', 'p50'))} | {fmt(get(v, 'W9', 'minus_F_echo_us'))} | "
                 f"{st.get('forked', 0)}/{st.get('cold', 0)}/{st.get('warm', 0)} |")
    L.append("\n**Goals of issue #14**\n")
    L.append("| goal | measured | bound | verdict | how |")
    L.append("|---|---:|---:|---|---|")
    for g in res["goals"]:
        m = g["measured"]
        L.append(f"| {g['goal']} | {fmt(m, 2)} {g['unit'] if isinstance(m, (int, float)) else ''} | "
                 f"{'≥' if g['at_least'] else '≤'} {g['bound']} {g['unit']} | {g['verdict']} | {g['text']} |")
    L.append("\n¹ smolagents runs the script in the bench's own process by walking its AST: no process, no "
             "confinement, no `await` (W3/W4 are loops of plain calls, W6 runs on 50 threads under one GIL). "
             "It is a floor for interpreting, not a peer in isolation.")
    return "\n".join(L) + "\n"


def to_json(x: Any) -> Any:
    if isinstance(x, NA):
        return {"na": x.reason}
    if isinstance(x, dict):
        return {k: to_json(v) for k, v in x.items()}
    if isinstance(x, list):
        return [to_json(v) for v in x]
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=30, help="timed runs per latency row (default 30)")
    ap.add_argument("--quick", action="store_true", help="a smoke check: 5 runs, W5 30 runs, W6 2 s")
    ap.add_argument("--back-to-back", type=int, default=200, help="W5 runs (default 200)")
    ap.add_argument("--clients", type=int, default=50, help="W6 concurrent clients (default 50)")
    ap.add_argument("--period", type=float, default=10.0, help="W6 seconds per variant (default 10)")
    ap.add_argument("--bin", default=str(TARGET / "release" / "ptcd"))
    ap.add_argument("--relay", default=str(TARGET / "release" / "examples" / "echo_relay"))
    ap.add_argument("--json", default=str(TARGET / "bench" / "compare.json"))
    ap.add_argument("--markdown", default=None, help="also write the Markdown report to this file")
    ap.add_argument("--only", default=None, help="comma list of systems to run: ptcd,monty,smolagents")
    ap.add_argument("--retry-install", action="store_true", help="retry peers that failed to install")
    ap.add_argument("--monty-version", default=None,
                    help="install this pydantic-monty instead of the pinned one (reported as such)")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.back_to_back, args.period = min(args.runs, 5), min(args.back_to_back, 30), min(args.period, 2.0)
    if os.environ.get("PTCD_BENCH_IN_VENV") != "1":
        bootstrap(args)
    only = set((args.only or "ptcd,monty,smolagents").split(","))

    # Whatever ends the bench (Ctrl-C, SIGTERM), `finally` blocks stop the daemons; SIGKILL is
    # covered by each child's PR_SET_PDEATHSIG.
    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupted)
    meta = {
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} vCPU, {os.uname().release}",
        "python": subprocess.run([PYTHON, "--version"], capture_output=True, text=True).stdout.strip(),
        "sandbox": "default policy, all layers (root)" if os.geteuid() == 0 else "unprivileged",
        "runs": args.runs, "back_to_back": args.back_to_back, "clients": args.clients, "period": args.period,
        "fork_server_flag": has_fork_server_flag(args.bin),
        "command": " ".join(["python3", "benches/compare.py"] + sys.argv[1:]),
    }
    res: dict[str, Any] = {"meta": meta}
    res["floors"] = floors(args)
    systems: dict[str, Any] = {}
    if "ptcd" in only:
        systems.update(asyncio.run(measure_ptcd(args, res["floors"])))
    if "monty" in only:
        systems.update(asyncio.run(measure_monty(args)))
    if "smolagents" in only:
        systems.update(measure_smolagents(args))
    res["systems"] = systems
    res["goals"] = goals(res)
    md = markdown(res)
    print()
    print(md)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(to_json(res), indent=1))
    print(f"JSON: {out}")
    if args.markdown:
        Path(args.markdown).write_text(md)
        print(f"Markdown: {args.markdown}")


if __name__ == "__main__":
    main()
