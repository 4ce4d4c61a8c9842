"""Broken MCP servers never break a run or the daemon (design: "A (mcp-core)").

A crash mid-call, a server that never answers, one that floods stderr or answers a line longer
than the daemon's limit, a server that cannot start, an unknown name, a cancelled run: each gives
the script (or the request) a clear error naming the server, the daemon stays within its memory
bound, and the next run works. No server process outlives the daemon.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import mcp_setup as ms
from daemon import Daemon, wait_until
from rpc import RpcClient


def process_gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def status(c: RpcClient, name: str) -> dict:
    return c.call("daemon/status")["result"]["mcp_servers"][name]


def still_serves(c: RpcClient) -> None:
    assert c.run("1 + 1")["value"] == 2


# --- crash --------------------------------------------------------------------------------------


def test_crash_mid_run_is_a_tool_error_naming_the_server_and_the_next_run_restarts_it(
    mcp_daemon, connect, state: Path
) -> None:
    c = connect(mcp_daemon({"crash": ms.ours("crash_server.py", "--state", str(state))}))
    r = c.run(
        "first = await crash.whoami()\nprint(first['pid'], flush=True)\nawait crash.crash_now()",
        mcp_servers=["crash"],
    )
    assert r["status"] == "error", r
    assert r["error"]["type"] == "ToolError" and "crash" in r["error"]["message"], r["error"]
    first_pid = int(r["stdout"].split()[0])
    wait_until(lambda: process_gone(first_pid), "the crashed server to be reaped")
    r = c.run("await crash.whoami()", mcp_servers=["crash"])
    assert r["status"] == "ok", r
    assert r["value"]["starts"] == 2 and r["value"]["pid"] != first_pid
    s = status(c, "crash")
    assert s["state"] == "running" and s["restarts"] == 1
    still_serves(c)


def test_crash_is_catchable_and_the_same_script_can_go_on(mcp_daemon, connect, state: Path) -> None:
    c = connect(mcp_daemon({"crash": ms.ours("crash_server.py", "--state", str(state))}))
    r = c.run(
        "try:\n"
        "    await crash.crash_now()\n"
        "except ToolError as e:\n"
        "    err = str(e)\n"
        "(err, await crash.ping())",
        mcp_servers=["crash"],
    )
    assert r["status"] == "ok", r
    err, pong = r["value"]
    assert "crash" in err and pong == {"result": "pong"}


def test_server_killed_between_runs_is_restarted_on_next_use(mcp_daemon, connect, state: Path) -> None:
    c = connect(mcp_daemon({"crash": ms.ours("crash_server.py", "--state", str(state))}))
    pid = c.run("await crash.whoami()", mcp_servers=["crash"])["value"]["pid"]
    os.kill(pid, signal.SIGKILL)
    # Until the whole process has exited (a thread-group leader shows as a zombie while its
    # other threads still exit) the daemon cannot know; once it does, status stops saying
    # "running" and the next call restarts the server instead of being sent to it.
    wait_until(lambda: status(c, "crash")["state"] != "running", "the daemon to notice the crash")
    r = c.run("await crash.whoami()", mcp_servers=["crash"])
    assert r["status"] == "ok", r
    assert r["value"]["starts"] == 2
    # Reaped by the restart at the latest: no zombie left behind.
    wait_until(lambda: process_gone(pid), "the killed server to be reaped")


def test_concurrent_first_calls_share_one_server_start(mcp_daemon, connect, state: Path) -> None:
    c = connect(mcp_daemon({"crash": ms.ours("crash_server.py", "--state", str(state))}))
    r = c.run("await asyncio.gather(*(crash.whoami() for _ in range(20)))", mcp_servers=["crash"])
    assert r["status"] == "ok", r
    assert {w["starts"] for w in r["value"]} == {1}
    assert len((state / "pids").read_text().split()) == 1


def test_runs_of_two_connections_share_one_server_process(mcp_daemon, connect, state: Path) -> None:
    d = mcp_daemon({"crash": ms.ours("crash_server.py", "--state", str(state))})
    c1, c2 = connect(d), connect(d)
    w1 = c1.run("await crash.whoami()", mcp_servers=["crash"])["value"]
    w2 = c2.run("await crash.whoami()", mcp_servers=["crash"])["value"]
    assert w1 == w2 and w1["starts"] == 1
    assert status(c1, "crash")["calls_total"] == 2


# --- hang and cancellation ----------------------------------------------------------------------


def test_server_that_never_answers_ends_the_call_at_call_timeout_ms_and_cancels_it(
    mcp_daemon, connect, state: Path
) -> None:
    c = connect(mcp_daemon({"hang": ms.ours("hang_server.py", "--state", str(state), call_timeout_ms=1500)}))
    r = c.run("await hang.wait_forever(tag='t1')", mcp_servers=["hang"])
    assert r["status"] == "error", r
    assert r["error"]["type"] == "ToolError", r
    message = r["error"]["message"]
    assert "hang" in message and "wait_forever" in message and "call_timeout_ms = 1500" in message
    assert (state / "t1.request").exists()
    # The daemon sent notifications/cancelled: the server's handler was cancelled.
    wait_until(lambda: (state / "t1.cancelled").exists(), "notifications/cancelled to reach the server")
    r = c.run("await hang.ping()", mcp_servers=["hang"])
    assert r["status"] == "ok" and r["value"] == {"result": "pong"}, r


def test_cancelling_a_run_cancels_its_mcp_call_in_the_server(mcp_daemon, connect, state: Path) -> None:
    c = connect(mcp_daemon({"slow": ms.ours("hang_server.py", "--state", str(state))}))
    rid = c.request("run", {"code": "await slow.slow(tag='c1', seconds=300)", "mcp_servers": ["slow"]})
    wait_until(lambda: (state / "c1.request").exists(), "the call to reach the server", timeout=30)
    cid = c.request("run/cancel", {"request_id": rid})
    assert c.wait_response(cid)["result"] == {"cancelled": True}
    assert c.wait_response(rid)["result"]["status"] == "cancelled"
    wait_until(lambda: (state / "c1.cancelled").exists(), "notifications/cancelled to reach the server")
    assert not (state / "c1.done").exists()
    assert c.run("await slow.ping()", mcp_servers=["slow"])["status"] == "ok"


def test_run_deadline_cancels_a_pending_mcp_call(mcp_daemon, connect, state: Path) -> None:
    c = connect(mcp_daemon({"slow": ms.ours("hang_server.py", "--state", str(state))}))
    rid = c.request("run", {"code": "await slow.slow(tag='d1', seconds=300)", "mcp_servers": ["slow"],
                            "limits": {"timeout_ms": 5000}})
    wait_until(lambda: (state / "d1.request").exists(), "the call to reach the server", timeout=30)
    r = c.wait_response(rid)["result"]
    assert r["status"] == "timeout", r
    wait_until(lambda: (state / "d1.cancelled").exists(), "the run's end to cancel the call in the server")


def test_client_disconnect_cancels_its_runs_mcp_calls(mcp_daemon, connect, state: Path) -> None:
    d = mcp_daemon({"slow": ms.ours("hang_server.py", "--state", str(state))})
    c1 = d.connect()
    c1.request("run", {"code": "await slow.slow(tag='x1', seconds=300)", "mcp_servers": ["slow"]})
    wait_until(lambda: (state / "x1.request").exists(), "the call to reach the server", timeout=30)
    c1.close()
    wait_until(lambda: (state / "x1.cancelled").exists(), "the disconnect to cancel the call in the server")
    still_serves(connect(d))


def test_server_that_never_answers_initialize_is_refused_at_attach_with_mcp_unavailable(
    mcp_daemon, connect, state: Path
) -> None:
    d = mcp_daemon({"silent": ms.ours("hang_server.py", "--state", str(state), "--silent", startup_timeout_ms=3000)})
    c = connect(d)
    resp = c.call("run", {"code": "1", "mcp_servers": ["silent"]})
    assert resp["error"]["code"] == -32008, resp
    assert "silent" in resp["error"]["message"]
    assert resp["error"]["message"].startswith("MCP server unavailable: silent: ")
    s = status(c, "silent")
    assert s["state"] == "failed" and s.get("error"), s
    # The silent server was killed when its start timed out.
    pid = int((state / "silent.started").read_text())
    wait_until(lambda: process_gone(pid), "the server that did not start to be killed and reaped")
    still_serves(c)


def test_requests_waiting_for_a_server_to_start_are_capped_per_connection(
    mcp_daemon, connect, state: Path
) -> None:
    """session/create and tools/definition wait (in tasks) while a server starts; a client may
    not pile them up: the 9th in flight is refused with -32002 at once, naming the limit. When
    the server dies during its start, every waiting request gets that failure at once (none
    starts it again and waits out startup_timeout_ms)."""
    d = mcp_daemon({"silent": ms.ours("hang_server.py", "--state", str(state), "--silent", startup_timeout_ms=60000)})
    c = connect(d)
    pending = [
        c.request("session/create", {"mcp_servers": ["silent"]})
        if i % 2
        else c.request("tools/definition", {"format": "mcp", "mcp_servers": ["silent"]})
        for i in range(8)
    ]
    refused = c.wait_response(c.request("session/create", {"mcp_servers": ["silent"]}))
    assert refused["error"]["code"] == -32002, refused
    assert "8 session/create or tools/definition requests in flight" in refused["error"]["message"]
    # The silent server's start fails once it is killed: every waiting request is answered.
    wait_until(lambda: (state / "silent.started").exists(), "the silent server to start")
    os.kill(int((state / "silent.started").read_text()), signal.SIGKILL)
    for rid in pending:
        assert c.wait_response(rid)["error"]["code"] == -32008
    still_serves(c)


# --- cannot start, unknown names ----------------------------------------------------------------


def test_server_that_cannot_start_is_refused_with_mcp_unavailable_naming_it(mcp_daemon, connect, state: Path) -> None:
    d = mcp_daemon(
        {
            "missing": {"command": str(state / "no-such-server")},
            "exits": {"command": sys.executable, "args": ["-c", "import sys; sys.exit(7)"]},
            "results": ms.ours("results_server.py"),
        }
    )
    c = connect(d)
    for name in ("missing", "exits"):
        resp = c.call("run", {"code": "1", "mcp_servers": ["results", name]})
        assert resp["error"]["code"] == -32008, resp
        assert resp["error"]["message"].startswith(f"MCP server unavailable: {name}: "), resp
        resp = c.call("session/create", {"mcp_servers": [name]})
        assert resp["error"]["code"] == -32008, resp
        resp = c.call("tools/definition", {"format": "openai", "mcp_servers": [name]})
        assert resp["error"]["code"] == -32008, resp
        assert status(c, name)["state"] == "failed"
    # The healthy server attached alongside still works on its own.
    assert c.run("await results.add(a=1, b=1)", mcp_servers=["results"])["value"] == {"result": 2}


def test_unknown_server_name_is_invalid_params_naming_the_field(mcp_daemon, connect) -> None:
    c = connect(mcp_daemon({"results": ms.ours("results_server.py")}))
    for method, params in (
        ("run", {"code": "1"}),
        ("session/create", {}),
        ("tools/definition", {"format": "openai"}),
    ):
        resp = c.call(method, {**params, "mcp_servers": ["results", "nope"]})
        assert resp["error"]["code"] == -32602, resp
        assert resp["error"]["data"]["field"] == "mcp_servers[1]", resp
        assert "results" in resp["error"]["message"]  # lists the configured names
        resp = c.call(method, {**params, "mcp_servers": ["nope"]})
        assert resp["error"]["data"]["field"] == "mcp_servers[0]", resp
        resp = c.call(method, {**params, "mcp_servers": "results"})
        assert resp["error"]["code"] == -32602 and resp["error"]["data"]["field"] == "mcp_servers", resp
    # Duplicates are ignored.
    assert c.run("await results.add(a=1, b=2)", mcp_servers=["results", "results"])["value"] == {"result": 3}


def test_a_server_not_attached_is_not_in_the_script(mcp_daemon, connect) -> None:
    c = connect(mcp_daemon({"results": ms.ours("results_server.py")}))
    r = c.run("await results.add(a=1, b=2)")
    assert r["status"] == "error" and r["error"]["type"] == "NameError", r
    assert status(c, "results")["state"] == "idle"


# --- floods -------------------------------------------------------------------------------------

# Bounds on the daemon's RSS growth while a server floods it (the daemon keeps a 4 KiB stderr
# tail and refuses a line over max_line_bytes without buffering it).
STDERR_FLOOD_MIB = 64
STDERR_RSS_BOUND_KIB = 16 << 10
HUGE_RESULT_MIB = 48
LINE_LIMIT = 1 << 20
HUGE_RSS_BOUND_KIB = 24 << 10


def test_stderr_flood_is_drained_and_the_daemon_keeps_only_a_tail(mcp_daemon, connect, state: Path) -> None:
    d = mcp_daemon({"flood": ms.ours("flood_server.py", "--state", str(state))})
    c = connect(d)
    assert c.run("await flood.ping()", mcp_servers=["flood"])["status"] == "ok"
    before = d.rss_kib()
    r = c.run(f"await flood.flood_stderr(mib={STDERR_FLOOD_MIB})", mcp_servers=["flood"])
    # Had the daemon not drained stderr, the server would block on the full pipe: a hang.
    assert r["status"] == "ok" and r["value"] == "flooded", r
    grew = d.rss_kib() - before
    assert grew < STDERR_RSS_BOUND_KIB, f"daemon RSS grew {grew} KiB over a {STDERR_FLOOD_MIB} MiB stderr flood"
    assert c.run("await flood.ping()", mcp_servers=["flood"])["status"] == "ok"


def test_result_line_over_the_limit_is_a_clear_error_and_memory_holds(mcp_daemon, connect, state: Path) -> None:
    # rmcp drops an over-long line unread; the call pending then fails at once naming the limit
    # (not at call_timeout_ms, 30 s by default like the run's own deadline).
    table = ms.ours("flood_server.py", "--state", str(state))
    d = mcp_daemon({"flood": table}, "--max-line-bytes", str(LINE_LIMIT))
    c = connect(d)
    assert c.run("await flood.ping()", mcp_servers=["flood"])["status"] == "ok"
    before = d.rss_kib()
    r = c.run(f"await flood.huge_result(mib={HUGE_RESULT_MIB})", mcp_servers=["flood"])
    assert r["status"] == "error" and r["error"]["type"] == "ToolError", r
    assert "flood" in r["error"]["message"] and f"max_line_bytes = {LINE_LIMIT}" in r["error"]["message"], r
    grew = d.rss_kib() - before
    assert grew < HUGE_RSS_BOUND_KIB, f"daemon RSS grew {grew} KiB over a {HUGE_RESULT_MIB} MiB line"
    # The server is usable again.
    r = c.run("await flood.ping()", mcp_servers=["flood"])
    assert r["status"] == "ok", r


# --- environment and processes ------------------------------------------------------------------


def test_stdio_server_gets_only_path_home_lang_and_its_table_env(mcp_daemon, connect) -> None:
    os.environ["PTCD_TEST_DAEMON_SECRET"] = "must-not-leak"
    try:
        d = mcp_daemon({"everything": ms.everything(env={"ONLY_THIS": "yes"})})
    finally:
        del os.environ["PTCD_TEST_DAEMON_SECRET"]
    c = connect(d)
    r = c.run("await everything.get_env()", mcp_servers=["everything"])
    assert r["status"] == "ok", r
    env = r["value"]
    assert isinstance(env, dict), env
    assert env.get("ONLY_THIS") == "yes"
    assert "PTCD_TEST_DAEMON_SECRET" not in env
    assert set(env) <= {"PATH", "HOME", "LANG", "ONLY_THIS"}, sorted(env)


def test_no_mcp_server_process_is_left_after_the_daemon_stops(mcp_daemon, connect, state: Path, tmp_path: Path) -> None:
    d = mcp_daemon(
        {
            "crash": ms.ours("crash_server.py", "--state", str(state)),
            "slow": ms.ours("hang_server.py", "--state", str(state)),
            "everything": ms.everything(),
            "sqlite": ms.sqlite(ms.make_shop_db(tmp_path / "shop.db")),
        }
    )
    c = connect(d)
    r = c.run(
        "await asyncio.gather(crash.ping(), slow.ping(), everything.echo(message='hi'), sqlite.list_tables())",
        mcp_servers=["crash", "slow", "everything", "sqlite"],
    )
    assert r["status"] == "ok", r
    # One in-flight call when the daemon stops, too.
    c.request("run", {"code": "await slow.slow(tag='s1', seconds=300)", "mcp_servers": ["slow"]})
    wait_until(lambda: (state / "s1.request").exists(), "the call to reach the server", timeout=30)
    pids = ms.mcp_server_pids(d)
    assert len(pids) >= 4, pids
    d.stop()
    wait_until(lambda: not any(ms.alive(p) for p in pids), "every MCP server to be gone", timeout=15)


def test_daemon_with_a_running_server_stops_cleanly_on_sigterm(
    mcp_daemon, state: Path
) -> None:
    d: Daemon = mcp_daemon({"crash": ms.ours("crash_server.py", "--state", str(state))})
    c = d.connect()
    assert c.run("await crash.ping()", mcp_servers=["crash"])["status"] == "ok"
    c.close()
    assert d.stop() == 0

