"""Faults of the fork server (issue #14): its template stopped, killed or flooded.

A template ("T") is a process the daemon depends on for every eligible run. Each case does to it
what an administrator's mistake, the OOM killer or a hostile client could, and asserts that every
run still gets exactly one answer within a deadline, that a new template takes over, and that
nothing leaks (daemon fds, zombies, scratch dirs). Daemons run with `--fork-server require`, so
a run that is not forked fails instead of silently starting cold. Waits are bounded polls on a
state (`wait_until`) or socket reads with a timeout, never sleeps.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from daemon import Daemon, run_dirs, wait_until
from rpc import RpcClient

# A run that says it started (a tool call), then waits far longer than any test.
LONG_RUN = "await started()\nimport time\ntime.sleep(300)\n"
ANSWER_WITHIN_S = 25.0  # below the run timeout: a hung run fails here, not as `timeout`


@pytest.fixture
def forking(start_daemon, tmp_path: Path) -> Daemon:
    """A daemon that forks every run and keeps no warm interpreters (so every run is a fork
    request at the time the test makes it)."""
    config = tmp_path / "config.toml"
    config.write_text("warm_pool = 0\n")
    return start_daemon("--fork-server", "require", "--config", str(config))


def fork_status(client: RpcClient) -> dict:
    return client.call("daemon/status")["result"]["fork_server"]


def template_pid(client: RpcClient) -> int:
    """The pid of the (single) template once it is up."""
    def up() -> bool:
        ts = fork_status(client)["templates"]
        return len(ts) == 1 and ts[0]["state"] == "up"
    wait_until(up, "the template to be up", timeout=20)
    return fork_status(client)["templates"][0]["pid"]


def start_long_run(daemon: Daemon) -> tuple[RpcClient, int]:
    """A run blocked in `time.sleep` in its forked child; returns its client and request id."""
    c = daemon.connect()
    c.sock.settimeout(ANSWER_WITHIN_S)
    rid = c.request("run", {"code": LONG_RUN, "tools": [{"name": "started"}],
                            "limits": {"timeout_ms": 30_000}})
    msg = c.recv()
    assert msg.get("method") == "tool/call", msg
    c.answer_tool_call(msg, {"started": lambda: None})
    return c, rid


def descendants(pid: int) -> dict[int, str]:
    """Every process below `pid` with its state letter (Z: zombie)."""
    parent: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(entry.name)] = (int(fields[1]), fields[0])
    found, frontier = {}, [pid]
    while frontier:
        p = frontier.pop()
        for child, (pp, state) in parent.items():
            if pp == p and child not in found:
                found[child] = state
                frontier.append(child)
    return found


def assert_serves_forked(client: RpcClient) -> None:
    before = fork_status(client)["runs_forked_total"]
    result = client.run("print(6 * 7)")
    assert (result["status"], result["stdout"]) == ("ok", "42\n"), result
    after = fork_status(client)
    assert after["runs_forked_total"] > before and after["runs_cold_total"] == 0, after


def test_stopped_template_is_replaced_and_no_run_waits_on_it(forking: Daemon) -> None:
    """SIGSTOP on T: it would neither fork nor report exits. The daemon must not leave runs
    hanging on it: the run T forked ends (T is killed, its child with it), a new T serves."""
    client = forking.connect()
    old = template_pid(client)
    inflight, rid = start_long_run(forking)
    os.kill(old, signal.SIGSTOP)
    try:
        answer = inflight.wait_response(rid)  # `crashed`, not `timeout` after 30 s
        assert answer["result"]["status"] == "crashed", answer
        assert_serves_forked(client)  # a new template starts on demand (the run waits for it)
        assert template_pid(client) != old
        assert set(descendants(forking.pid)) == {template_pid(client)}
    finally:
        try:
            os.kill(old, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert "it was stopped" in forking.log()


def test_killed_template_ends_its_runs_once_and_leaks_nothing(forking: Daemon) -> None:
    """SIGKILL on T with runs in flight: each ends `crashed` exactly once, a new T serves, and
    the daemon holds no more fds (pipes, pidfds, uid leases), zombies or scratch dirs than
    before."""
    client = forking.connect()
    old = template_pid(client)
    assert_serves_forked(client)
    fds_before = len(os.listdir(f"/proc/{forking.pid}/fd"))
    runs = [start_long_run(forking) for _ in range(3)]
    os.kill(old, signal.SIGKILL)
    for c, rid in runs:
        answer = c.wait_response(rid)
        assert answer["result"]["status"] == "crashed", answer
        c.sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            c.recv()  # exactly one answer
        c.close()
    assert_serves_forked(client)
    assert template_pid(client) != old
    wait_until(lambda: not run_dirs(forking.scratch), "the runs' scratch dirs to go")
    wait_until(lambda: len(os.listdir(f"/proc/{forking.pid}/fd")) <= fds_before,
               f"the daemon's fds back to {fds_before}")
    # Below the daemon: the new template and nothing else (no zombie, no orphaned child).
    assert set(descendants(forking.pid)) == {template_pid(client)}


def test_killing_the_daemon_kills_forked_runs(forking: Daemon) -> None:
    """SIGKILL on the daemon: its template dies (parent-death signal from root) and so must
    every run forked from it, as a cold run dies with the daemon (the run's parent-death signal
    comes from the template, which holds CAP_KILL so that the kernel delivers it across uids)."""
    inflight, _ = start_long_run(forking)
    tree = descendants(forking.pid)
    assert len(tree) == 2, tree  # the template and the run's child
    os.kill(forking.pid, signal.SIGKILL)
    forking.proc.wait()
    inflight.sock.settimeout(ANSWER_WITHIN_S)
    with pytest.raises(ConnectionError):
        inflight.recv()  # the daemon is gone
    try:
        wait_until(lambda: not any(Path(f"/proc/{p}").exists() for p in tree),
                   "the template and the run's process to die", timeout=5)
    finally:
        for p in tree:  # never leave the orphan behind
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_flood_of_runs_cancelled_mid_confinement_leaks_nothing(forking: Daemon) -> None:
    """A hostile client pipelines 40 runs (more than the concurrency limit) and cancels each
    right away, some while its child is being forked or is confining itself, then a second
    client does the same and hangs up. Every run gets exactly one answer; afterwards the
    template is up with no live child, and the daemon holds no more fds, zombies or scratch
    dirs than before."""
    client = forking.connect()
    old = template_pid(client)
    assert_serves_forked(client)
    fds_before = len(os.listdir(f"/proc/{forking.pid}/fd"))
    c = forking.connect()
    c.sock.settimeout(ANSWER_WITHIN_S)
    code = "import time\ntime.sleep(30)\n"
    ids = [c.request("run", {"code": code}) for _ in range(40)]
    for rid in ids:
        c.request("run/cancel", {"request_id": rid})
    answers: dict = {}
    while len(answers) < len(ids):
        msg = c.recv()
        if msg.get("id") in ids:
            assert msg["id"] not in answers, msg  # exactly one answer per run
            answers[msg["id"]] = msg
    for msg in answers.values():
        if "result" in msg:
            assert msg["result"]["status"] == "cancelled", msg
        else:
            assert msg["error"]["code"] == -32002, msg  # over the concurrency limit
    quitter = forking.connect()
    for _ in range(10):
        quitter.request("run", {"code": code})
    quitter.close()  # its runs are cancelled
    c.close()
    wait_until(lambda: fork_status(client)["templates"][0]["live"] == 0, "no live forked child")
    assert template_pid(client) == old  # the template survived all of it
    assert_serves_forked(client)
    wait_until(lambda: not run_dirs(forking.scratch), "the runs' scratch dirs to go")
    wait_until(lambda: len(os.listdir(f"/proc/{forking.pid}/fd")) <= fds_before,
               f"the daemon's fds back to {fds_before}")
    assert set(descendants(forking.pid)) == {old}
