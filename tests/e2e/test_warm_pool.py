"""The warm pool: pre-started, already-confined interpreters, each serving exactly one run.

A warm run must be indistinguishable from a cold one (output, value, tools, environment, inputs,
errors), two warm runs must share nothing, runs whose fixed-at-start settings differ start cold,
and idle children must not outlive a shutdown or a reload. Each test is named for the behaviour it
proves; waiting is bounded polling of `daemon/status`, never a sleep.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from daemon import wait_until
from rpc import RpcClient

TOOLS = [{"name": "add", "input_schema": {"properties": {"a": {}, "b": {}}, "required": ["a", "b"]}}]
HANDLERS = {"add": lambda a, b: a + b}

# Everything a script can observe that must not depend on warm vs cold.
PROBE = """\
import os, sys, resource
print("out", flush=True)
print("err", file=sys.stderr)
env = dict(os.environ)
scratch = os.getcwd()
assert env.pop("HOME") == scratch and env.pop("TMPDIR") == scratch
run_id = env.pop("PTCD_RUN_ID")
{
    "sum": await add(2, b=3),
    "gathered": await asyncio.gather(add(1, 1), add(a=2, b=2)),
    "inputs": [x, y],
    "env": env,
    "env_order": list(os.environ),
    "globals": sorted(k for k in globals() if not k.startswith("__")),
    "modules_asyncio": "asyncio" in sys.modules,
    "as_limit": resource.getrlimit(resource.RLIMIT_AS),
    "cpu_limit": resource.getrlimit(resource.RLIMIT_CPU),
    "scratch_listing": os.listdir("."),
    "run_id_matches": run_id,
}
"""


def status(c: RpcClient) -> dict:
    return c.call("daemon/status")["result"]


def wait_warm(c: RpcClient, idle: int | None = None) -> dict:
    """Waits until the pool is full (or holds `idle` children)."""
    def full() -> bool:
        s = status(c)
        return s["warm_idle"] == (s["warm_pool"] if idle is None else idle)
    wait_until(full, "the warm pool to fill", timeout=20)
    return status(c)


def warm_dirs(scratch: Path) -> list[str]:
    return sorted(p.name for p in scratch.iterdir() if "-w-" in p.name) if scratch.exists() else []


def normalized(r: dict) -> dict:
    r = dict(r)
    run_id = r.pop("_run_id")
    for volatile in ("run_id", "duration_ms"):
        r.pop(volatile)
    if isinstance(r.get("value"), dict) and "run_id_matches" in r["value"]:
        r["value"] = dict(r["value"], run_id_matches=r["value"]["run_id_matches"] == run_id)
    return r


def run_counted(c: RpcClient, code: str, **params) -> tuple[dict, bool]:
    """One run, and whether it was served warm."""
    before = status(c)["runs_warm_total"]
    r = c.run(code, HANDLERS, tools=TOOLS, **params)
    r["_run_id"] = r["run_id"]
    return r, status(c)["runs_warm_total"] == before + 1


def cold_daemon(start_daemon, tmp_path: Path):
    config = tmp_path / "cold.toml"
    config.write_text("warm_pool = 0\n")
    return start_daemon("--config", str(config), name="cold")


def test_a_warm_run_behaves_exactly_like_a_cold_one(start_daemon, tmp_path: Path) -> None:
    warm_d = start_daemon()
    cold_d = cold_daemon(start_daemon, tmp_path)
    warm, cold = warm_d.connect(), cold_d.connect()
    cases = [
        (PROBE, {"inputs": {"x": 1, "y": [1, "two"]}, "env": {"API_KEY": "k", "ZZ": "last", "AA": "first"}}),
        ("print('partial')\nx = 1\n\nraise ValueError('bad ' + str(x))", {}),
        ("def f():\n    return 1 / 0\n\nf()", {}),
        ("await add(1)", {}),
        ("for i in range(3):\n    print(i)\n    print(-i, file=sys.stderr)\nimport sys", {}),
        ("import sys\nsys.exit(3)", {}),
        ("def broken(:\n    pass", {}),
        ("{1, 2}", {}),
    ]
    for code, params in cases:
        wait_warm(warm)
        got_warm, was_warm = run_counted(warm, code, **params)
        got_cold, was_warm_cold = run_counted(cold, code, **params)
        assert was_warm, f"not served warm: {code!r}"
        assert not was_warm_cold
        assert normalized(got_warm) == normalized(got_cold), code
    probe = normalized(run_counted(warm, PROBE, inputs={"x": 1, "y": 2})[0])["value"]
    assert probe["run_id_matches"] is True, "the script sees its own run id, not the warm child's"
    warm.close()
    cold.close()


def test_a_session_run_is_served_warm_with_its_session_id(daemon, client: RpcClient) -> None:
    sid = client.call("session/create", {"env": {"FROM_SESSION": "1"}})["result"]["session_id"]
    wait_warm(client)
    r, was_warm = run_counted(client, "import os\n[os.environ['PTCD_SESSION_ID'], os.environ['FROM_SESSION'], os.environ['PTCD_RUN_ID']]", session_id=sid)
    assert was_warm
    assert r["value"] == [sid, "1", r["run_id"]]


def test_two_warm_runs_share_nothing(daemon, client: RpcClient) -> None:
    wait_warm(client)
    first, was_warm = run_counted(client, "import os\nsecret = 42\nopen('left-behind', 'w').write('x')\n[os.getpid(), os.getuid(), os.getcwd()]")
    assert was_warm and first["status"] == "ok"
    wait_warm(client)
    second, was_warm = run_counted(client, "import os\n['secret' in globals(), os.listdir('.'), os.getpid(), os.getcwd(), os.path.exists(%r)]" % first["value"][2])
    assert was_warm
    leaked, listing, pid, cwd, first_dir_exists = second["value"]
    assert (leaked, listing, first_dir_exists) == (False, [], False)
    assert pid != first["value"][0] and cwd != first["value"][2]


def test_concurrent_warm_runs_get_distinct_uids_and_scratch_dirs(daemon) -> None:
    a, b = daemon.connect(), daemon.connect()
    wait_warm(a)
    before = status(a)["runs_warm_total"]
    code = "import os\nawait report(uid=os.getuid(), cwd=os.getcwd())\nopen('mine', 'w').write('x')\nos.listdir('.')"
    tools = [{"name": "report"}]
    ra = a.request("run", {"code": code, "tools": tools})
    call_a = a.recv()
    rb = b.request("run", {"code": code, "tools": tools})
    call_b = b.recv()
    args_a, args_b = call_a["params"]["arguments"], call_b["params"]["arguments"]
    assert args_a["cwd"] != args_b["cwd"]
    if os.geteuid() == 0:
        assert args_a["uid"] != args_b["uid"]
    for c, call, rid in ((a, call_a, ra), (b, call_b, rb)):
        c.send({"jsonrpc": "2.0", "id": call["id"], "result": None})
        assert c.wait_response(rid)["result"]["value"] == ["mine"]
    assert status(a)["runs_warm_total"] == before + 2
    a.close()
    b.close()


def test_runs_with_settings_fixed_at_start_go_cold_and_still_work(client: RpcClient) -> None:
    wait_warm(client)
    policy = client.run("import resource\n[resource.getrlimit(resource.RLIMIT_AS)[0], resource.getrlimit(resource.RLIMIT_CPU)[0]]")["value"]
    for params, expect in [
        ({"limits": {"memory_mb": 256}}, [256 << 20, policy[1]]),
        ({"limits": {"cpu_ms": 1000}}, [policy[0], 1]),
        ({"env": {"TZ": "Asia/Tokyo"}}, policy),
        ({"env": {"LC_ALL": "C.UTF-8"}}, policy),
    ]:
        wait_warm(client)
        r, was_warm = run_counted(client, "import resource\n[resource.getrlimit(resource.RLIMIT_AS)[0], resource.getrlimit(resource.RLIMIT_CPU)[0]]", **params)
        assert not was_warm, params
        assert r["status"] == "ok" and r["value"] == expect, (params, r)
    # A start-up variable takes effect as it does cold: the time module saw TZ at import.
    r = client.run("import time\ntime.strftime('%Z')", env={"TZ": "JST-9"})
    assert r["value"] == "JST"
    # Another policy starts cold and leaves the default policy's pool alone.
    wait_warm(client)
    r, was_warm = run_counted(client, "1", policy="site-packages")
    assert not was_warm and r["value"] == 1
    assert status(client)["warm_idle"] == 2
    # A persistent session keeps its own interpreter, never a warm one.
    sid = client.call("session/create", {"persistent": True})["result"]["session_id"]
    wait_warm(client)
    assert not run_counted(client, "1", session_id=sid)[1]


def test_warm_pool_zero_disables_it(start_daemon, tmp_path: Path) -> None:
    d = cold_daemon(start_daemon, tmp_path)
    c = d.connect()
    assert c.run("1 + 1")["value"] == 2
    s = status(c)
    assert (s["warm_pool"], s["warm_idle"], s["runs_warm_total"]) == (0, 0, 0)
    assert d.run_processes() == set() and warm_dirs(d.scratch) == []
    c.close()


def test_sigterm_kills_idle_warm_children_and_removes_their_scratch_dirs(daemon, client: RpcClient) -> None:
    wait_warm(client)
    idle = daemon.run_processes()
    templates = daemon.template_pids()
    assert len(idle) == 2 and len(warm_dirs(daemon.scratch)) == 2
    client.close()
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=15) == 0
    assert all(not Path(f"/proc/{p}").exists() for p in idle), "idle warm children outlived the daemon"
    # A fork-server template dies with it (its parent-death signal, if not killed before).
    wait_until(lambda: all(not Path(f"/proc/{p}").exists() for p in templates), "the templates to die")
    assert list(daemon.scratch.iterdir()) == [], "scratch dirs of warm children were left behind"


def test_sighup_drains_and_refills_the_pool(daemon, client: RpcClient) -> None:
    wait_warm(client)
    before = daemon.run_processes()
    dirs_before = warm_dirs(daemon.scratch)
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: not (daemon.descendants() & before), "the old warm children to be killed")
    wait_warm(client)
    assert not set(warm_dirs(daemon.scratch)) & set(dirs_before)
    r, was_warm = run_counted(client, "1")
    assert was_warm and r["value"] == 1


def test_sigterm_while_the_pool_refills_leaves_no_scratch_dir(start_daemon) -> None:
    """SIGTERM right after a run took a warm child, while the filler may be starting its
    replacement: a half-started child is killed and its scratch dir removed, awaited, before the
    daemon exits (not left to a drop guard an exiting runtime may not run). Where the signal
    lands in the refill varies from round to round; every round must leave the root empty."""
    for _ in range(8):
        d = start_daemon()
        c = d.connect()
        wait_warm(c)
        assert c.run("1 + 1")["value"] == 2  # takes a warm child: the filler starts another
        c.close()
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(timeout=15) == 0
        assert list(d.scratch.iterdir()) == [], "a scratch dir outlived the daemon"
        d.stop()
