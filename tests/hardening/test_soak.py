"""Soak: a few thousand runs of mixed kinds, hostile ones included, against one daemon.

What a long-lived root daemon must not do under such a load is grow: after the mix, once the
daemon is quiet again, its open fds, threads, RSS, descendants (zombies included), scratch dirs and
the sandbox uids they hold are back where they were after the warm-up; a fork-server template
(issue #14) that served the mix holds no more fds or memory than before. Each kind also
asserts its own outcome, so a soak that "passes" by refusing everything cannot pass.

`PTCD_SOAK_RUNS` sets the number of runs (default 2000); four clients send them concurrently.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

from daemon import Daemon, run_dirs, wait_pool_full, wait_until
from rpc import RpcClient

RUNS = int(os.environ.get("PTCD_SOAK_RUNS", "2000"))
CLIENTS = 4
SANDBOX_UIDS = range(64000, 65000)


def _echo(**kw):
    return kw


def _ok(c: RpcClient) -> None:
    r = c.run("print(sum(range(10)))")
    assert (r["status"], r["stdout"]) == ("ok", "45\n"), r


def _tools(c: RpcClient) -> None:
    code = "import asyncio\nr = await asyncio.gather(*(echo(i=i) for i in range(20)))\nprint(sum(x['i'] for x in r))"
    r = c.run(code, {"echo": _echo})
    assert (r["status"], r["stdout"], r["tool_calls"]) == ("ok", "190\n", 20), r


def _error(c: RpcClient) -> None:
    r = c.run("raise ValueError('nope')")
    assert r["status"] == "error" and r["error"]["type"] == "ValueError", r


def _timeout(c: RpcClient) -> None:
    r = c.run("import time\ntime.sleep(30)", limits={"timeout_ms": 150})
    assert r["status"] == "timeout", r


def _flood(c: RpcClient) -> None:
    r = c.run("import sys\nfor _ in range(64):\n    sys.stdout.write('x' * 65536)", limits={"max_output_bytes": 1000})
    assert r["status"] == "ok" and r["truncated"]["stdout"] == 64 * 65536 - 1000, r


def _memory(c: RpcClient) -> None:
    r = c.run("b = bytearray(2 << 30)", limits={"memory_mb": 128})
    assert r["status"] == "error" and r["error"]["type"] == "MemoryError", r


def _escape(c: RpcClient) -> None:
    code = (
        "import os\n"
        "for attempt in (os.fork, lambda: open('/etc/shadow'), lambda: os.kill(1, 9)):\n"
        "    try:\n        attempt()\n    except OSError as e:\n        print(type(e).__name__)\n"
        "    else:\n        print('ALLOWED')\n"
    )
    r = c.run(code)
    assert r["status"] == "ok" and "ALLOWED" not in r["stdout"], r
    assert len(r["stdout"].splitlines()) == 3, r


def _disk(c: RpcClient) -> None:
    # Fills part of the scratch dir with files and leaves them for the daemon to clean up.
    code = "for i in range(64):\n    open(f'f{i}', 'wb').write(b'x' * 65536)\nprint('ok')"
    r = c.run(code)
    assert (r["status"], r["stdout"]) == ("ok", "ok\n"), r


def _crash(c: RpcClient) -> None:
    r = c.run("import ctypes\nctypes.string_at(0)")
    assert r["status"] == "crashed", r


def _unknown_tool(c: RpcClient) -> None:
    r = c.run("await nope()")
    assert r["status"] == "error" and r["error"]["type"] == "NameError", r


def _tool_error(c: RpcClient) -> None:
    from rpc import ToolFailure

    def boom(**_):
        raise ToolFailure("tool broke")

    code = "try:\n    await boom()\nexcept ToolError as e:\n    print('caught', e)"
    r = c.run(code, {"boom": boom})
    assert r["status"] == "ok" and r["stdout"].startswith("caught"), r


def _session(c: RpcClient) -> None:
    created = c.call("session/create", {"persistent": True})["result"]
    sid = created["session_id"]
    r1 = c.run("x = 41", session_id=sid)
    r2 = c.run("print(x + 1)", session_id=sid)
    assert (r1["status"], r2["stdout"]) == ("ok", "42\n"), (r1, r2)
    assert c.call("session/close", {"session_id": sid})["result"] == {}


def _disconnect(daemon: Daemon) -> None:
    # A client that sends a run and hangs up while it executes.
    c = daemon.connect()
    c.request("run", {"code": "import time\ntime.sleep(30)"})
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()


def _cancel(c: RpcClient) -> None:
    rid = c.request("run", {"code": "import time\ntime.sleep(30)", "stream": True})
    c.call("run/cancel", {"request_id": rid})
    r = c.wait_response(rid)["result"]
    assert r["status"] == "cancelled", r


KINDS = [_ok, _tools, _error, _timeout, _flood, _memory, _escape, _disk, _crash, _unknown_tool,
         _tool_error, _session, _cancel, "disconnect"]


def _mix(daemon: Daemon, count: int) -> None:
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        c = daemon.connect()
        try:
            for i in range(offset, count, CLIENTS):
                kind = KINDS[i % len(KINDS)]
                if kind == "disconnect":
                    _disconnect(daemon)
                else:
                    kind(c)
        except BaseException as e:  # reported by the main thread
            errors.append(e)
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _quiet(daemon: Daemon) -> dict:
    """Waits until no run is active and the warm pool is full, then samples the daemon."""
    c = daemon.connect()
    try:
        def idle() -> bool:
            s = c.call("daemon/status")["result"]
            return s["runs_active"] == 0 and s["runs_queued"] == 0 and s["connections"] == 1
        wait_until(idle, "the daemon to go idle", timeout=60)
        wait_pool_full(c)
        wait_until(lambda: not run_dirs(daemon.scratch), "run scratch dirs to be removed", timeout=30)
        status = (Path(f"/proc/{daemon.pid}/status")).read_text().splitlines()
        threads = next(int(line.split()[1]) for line in status if line.startswith("Threads:"))
        # Below the daemon: run interpreters (cold ones its children, forked ones its
        # templates' children) and, with a fork server, one template per policy in use.
        descendants = daemon.descendants()
        status_now = c.call("daemon/status")["result"]
        fs = status_now.get("fork_server")
        templates = {t["pid"]: t for t in (fs or {}).get("templates", []) if t.get("pid")}
        states = {}
        uids = set()  # of run interpreters (a template's own uid is not counted)
        for pid in descendants:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                uid_line = next(l for l in Path(f"/proc/{pid}/status").read_text().splitlines() if l.startswith("Uid:"))
            except (OSError, StopIteration):
                continue
            states[pid] = stat.rsplit(")", 1)[1].split()[0]
            if pid not in templates:
                uids.add(int(uid_line.split()[1]))
        template_use = {}
        for pid in templates:
            try:
                template_use[pid] = {
                    "fds": len(os.listdir(f"/proc/{pid}/fd")),
                    "rss_kib": next(int(l.split()[1]) for l in Path(f"/proc/{pid}/status").read_text().splitlines()
                                    if l.startswith("VmRSS:")),
                }
            except (OSError, StopIteration):
                pass
        return {
            "fds": len(os.listdir(f"/proc/{daemon.pid}/fd")),
            "threads": threads,
            "rss_kib": daemon.rss_kib(),
            "descendants": len(descendants),
            "runs": len(descendants - set(templates)),
            "templates": template_use,
            "policies": {t["policy"] for t in templates.values()},
            "zombies": sorted(p for p, s in states.items() if s == "Z"),
            "sandbox_uids": len([u for u in uids if u in SANDBOX_UIDS]),
            "template_uids": {t["uid"] for t in templates.values() if t.get("uid") is not None},
            "run_uids": uids,
            "warm_idle": status_now["warm_idle"],
            "scratch_entries": len(list(daemon.scratch.iterdir())),
        }
    finally:
        c.close()


def test_mixed_hostile_soak_leaves_nothing_behind(daemon: Daemon) -> None:
    _mix(daemon, 200)
    before = _quiet(daemon)
    _mix(daemon, RUNS)
    after = _quiet(daemon)

    print("soak: before", before, "after", after)
    assert daemon.proc.poll() is None, daemon.log()
    assert after["zombies"] == [], after
    # Only the idle warm interpreters are left, each holding its own sandbox uid (none the
    # uid leased for a template), and at most one fork-server template per policy in use.
    assert after["runs"] == after["warm_idle"] == before["warm_idle"], (before, after)
    assert len(after["templates"]) == len(after["policies"]), after
    assert after["descendants"] == after["runs"] + len(after["templates"]), after
    assert after["sandbox_uids"] == after["warm_idle"], after
    assert not after["run_uids"] & after["template_uids"], "a run holds its template's uid"
    # A template that served the whole soak holds no more fds (pidfds of reaped children)
    # and no more memory than before it (a run's data never reaches it).
    for pid, use in after["templates"].items():
        if pid in before["templates"]:
            assert use["fds"] <= before["templates"][pid]["fds"], (pid, before, after)
            assert use["rss_kib"] <= before["templates"][pid]["rss_kib"] + 4 * 1024, (pid, before, after)
    assert after["scratch_entries"] <= before["scratch_entries"], (before, after)
    assert after["fds"] <= before["fds"], (before, after)
    # Idle runtime threads are reaped after a while; a leak would grow with the number of runs.
    assert after["threads"] <= before["threads"] + 8, (before, after)
    assert after["rss_kib"] <= before["rss_kib"] + 32 * 1024, (before, after)
    stats = RpcClient(daemon.socket).call("daemon/status")["result"]
    assert stats["runs_total"] >= RUNS, stats
