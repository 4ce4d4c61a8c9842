"""Latency of runs through the real daemon, as ratios against baselines measured in the same run.

    cargo build --release && python3 benches/run_latency.py [--runs 30]

Baselines: starting the confined interpreter's binary bare (`python3 -I -S -c pass`) and with the
imports the shim needs (`import asyncio, json`). Each ptcd figure is a client-observed round trip
over the Unix socket, tool answers included, on the default policy (all confinement layers on).
"warm" rows wait (untimed) until the warm pool is full before each run and check the run was
served warm; "cold" rows force a cold start with a tighter `memory_mb` (a warm interpreter's
rlimits are the policy's); "back to back" rows do not wait, so the pool drains and runs are a mix.
Prints a Markdown table (median and p90 in ms, ratio of medians to the first baseline).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from rpc import RpcClient  # noqa: E402

PYTHON = "/usr/bin/python3"


def measure(fn, runs: int, before=None) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(runs):
        if before is not None:
            before()
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def status(client: RpcClient) -> dict:
    return client.call("daemon/status")["result"]


def pool_full(client: RpcClient) -> None:
    deadline = time.monotonic() + 20
    while True:
        s = status(client)
        if s["warm_idle"] == s["warm_pool"]:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"the warm pool did not fill: {s}")
        time.sleep(0.002)


def warm_only(client: RpcClient, fn, runs: int) -> list[float]:
    """Each timed run starts with a full pool, and must have been served warm."""
    before = status(client)["runs_warm_total"]
    xs = measure(fn, runs, lambda: pool_full(client))
    served = status(client)["runs_warm_total"] - before
    if served != runs + 1:
        raise SystemExit(f"expected {runs + 1} warm runs, got {served}")
    return xs


COLD = {"memory_mb": 256}


def gather_run(client: RpcClient, n: int, limits: dict | None = None) -> None:
    code = f"rs = await asyncio.gather(*(echo(i) for i in range({n})))\nlen(rs)"
    r = client.run(code, {"echo": lambda x: x}, tools=[{"name": "echo", "input_schema": {"properties": {"x": {}}}}],
                   limits=limits or {})
    assert r["status"] == "ok" and r["value"] == n, r


def sequential_run(client: RpcClient, n: int) -> None:
    code = f"for i in range({n}):\n    await echo(i)"
    r = client.run(code, {"echo": lambda x: x}, tools=[{"name": "echo", "input_schema": {"properties": {"x": {}}}}])
    assert r["status"] == "ok", r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "ptcd"))
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ptcd-bench-"))
    os.chmod(tmp, 0o711)
    sock = tmp / "ptcd.sock"
    daemon = subprocess.Popen([args.bin, "serve", "--socket", str(sock), "--scratch-dir", str(tmp / "scratch")],
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client = RpcClient(sock)
                break
            except OSError:
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise SystemExit("daemon did not start")
                time.sleep(0.01)
        info = client.call("initialize")["result"]
        rows = [
            ("baseline: `python3 -I -S -c pass`", measure(lambda: subprocess.run([PYTHON, "-I", "-S", "-c", "pass"], check=True), args.runs)),
            ("baseline: `python3 -I -S -c 'import asyncio, json'`", measure(lambda: subprocess.run([PYTHON, "-I", "-S", "-c", "import asyncio, json"], check=True), args.runs)),
            ("ptcd run, cold: `1 + 1`", measure(lambda: client.run("1 + 1", limits=COLD), args.runs, lambda: pool_full(client))),
            ("ptcd run, warm: `1 + 1`", warm_only(client, lambda: client.run("1 + 1"), args.runs)),
            ("ptcd run, back to back: `1 + 1`", measure(lambda: client.run("1 + 1"), args.runs)),
            ("ptcd run, cold: 1 tool call", measure(lambda: gather_run(client, 1, COLD), args.runs, lambda: pool_full(client))),
            ("ptcd run, warm: 1 tool call", warm_only(client, lambda: gather_run(client, 1), args.runs)),
            ("ptcd run, warm: 50 tool calls, `asyncio.gather`", warm_only(client, lambda: gather_run(client, 50), args.runs)),
            ("ptcd run, warm: 50 tool calls, one after another", warm_only(client, lambda: sequential_run(client, 50), args.runs)),
            ("ptcd run, warm: 1000 tool calls, `asyncio.gather`", warm_only(client, lambda: gather_run(client, 1000), max(5, args.runs // 3))),
            ("ptcd run, cold: 1000 tool calls, `asyncio.gather`", measure(lambda: gather_run(client, 1000, COLD), max(5, args.runs // 3), lambda: pool_full(client))),
        ]
        client.close()
    finally:
        daemon.terminate()
        daemon.wait()
    base = statistics.median(rows[0][1])
    print(f"sandbox: {info['sandbox']}, python {info['python']['version']}, {args.runs} runs each, {os.cpu_count()} CPUs\n")
    print("| what | median ms | p90 ms | × baseline |")
    print("|---|---:|---:|---:|")
    for name, xs in rows:
        xs = sorted(xs)
        med = statistics.median(xs)
        p90 = xs[int(len(xs) * 0.9) - 1]
        print(f"| {name} | {med:.1f} | {p90:.1f} | {med / base:.1f} |")


if __name__ == "__main__":
    main()
