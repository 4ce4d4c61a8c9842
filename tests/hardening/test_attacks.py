"""Attacks on the hardened daemon, tried as an outsider would (issue #9 follow-up).

Each case is named for the attack, plays it against the real binary on its real socket, and
asserts the specific outcome, that the daemon is alive, and that the next run (another tenant's,
where tenants are the point) works. Waits are bounded polls on a state, never sleeps.
"""

from __future__ import annotations

import os
import secrets
import threading
from contextlib import closing
from pathlib import Path

import pytest

from daemon import Daemon, wait_until
from rpc import RpcClient

MIB = 1024  # in KiB, the unit of VmRSS
OVERLOADED = -32002


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / f"config-{secrets.token_hex(4)}.toml"
    path.write_text(text)
    return str(path)


def status(client: RpcClient) -> dict:
    return client.call("daemon/status")["result"]


def assert_serves(d: Daemon) -> None:
    """The daemon is alive and the next run works."""
    assert d.proc.poll() is None, d.log()
    with closing(d.connect()) as c:
        assert c.run("6 * 7")["value"] == 42


def concurrent_runs(d: Daemon, n: int, code: str) -> list[dict]:
    """`n` runs of `code` at once, each on its own connection; their whole responses."""
    out: list[dict] = [{} for _ in range(n)]

    def one(i: int) -> None:
        with closing(d.connect()) as c:
            out[i] = c.wait_response(c.request("run", {"code": code}))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


# --- uids: persistent sessions leased every uid of the range --------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (per-run uids)")
def test_persistent_sessions_cannot_lease_every_uid(start_daemon, tmp_path: Path) -> None:
    """Each persistent session holds a host-wide uid lease (and a tmpfs) for its whole life, and
    a connection may open 64. Before: 16 connections opened 995 sessions in ~2 s, leasing every
    uid of 64000-64999 host-wide; every other tenant's run (of this daemon, and of any other
    daemon on the host) was then refused `-32006` "every uid ... is in use". Now a daemon-wide
    `max_persistent_sessions` (default 64) refuses the 65th with `-32002`. (The scratch space
    bound, `max_scratch_total_mb`, is lifted here so that it is not what refuses first.)"""
    d = start_daemon("--config", config(tmp_path, "max_scratch_total_mb = 100000000\n"))
    hogs: list[RpcClient] = []
    opened = 0
    refusal = None
    try:
        for _ in range(20):
            hog = d.connect()
            hogs.append(hog)
            for _ in range(64):
                r = hog.call("session/create", {"persistent": True})
                if "error" in r:
                    refusal = r["error"]
                    break
                opened += 1
            if refusal:
                break
        assert refusal is not None, f"{opened} persistent sessions and none refused"
        assert refusal["code"] == OVERLOADED, refusal
        assert "max_persistent_sessions" in refusal["message"], refusal
        assert opened == 64, opened
        with closing(d.connect()) as watcher:
            assert status(watcher)["persistent_sessions"] == 64
        # Another tenant: more runs at once than the warm pool holds, each needing a fresh uid.
        for r in concurrent_runs(d, 8, "6 * 7"):
            assert r.get("result", {}).get("value") == 42, r
    finally:
        for hog in hogs:
            hog.close()
    with closing(d.connect()) as watcher:
        wait_until(lambda: status(watcher)["persistent_sessions"] == 0,
                   "the closed connections' sessions to be released")
        # The slots came back: a new persistent session works and keeps its state.
        sid = watcher.call("session/create", {"persistent": True})["result"]["session_id"]
        assert watcher.run("x = 5", session_id=sid)["status"] == "ok"
        assert watcher.run("x * 2", session_id=sid)["value"] == 10
    assert_serves(d)


# --- memory: runs pipelined into one session waited without bound -------------------------------

def test_runs_pipelined_into_a_session_are_bounded_by_queue_depth(start_daemon, tmp_path: Path) -> None:
    """Runs of a session wait for their turn before they wait for a run slot, and the turn wait
    was outside `queue_depth`: a client that pipelines runs into one session made the daemon
    hold every one of them (60 runs of 4 MiB of code: +271 MiB, and so on without end). Now a
    run waiting for its session's turn takes a queue place first; over `queue_depth` → -32002."""
    d = start_daemon("--config", config(tmp_path, "warm_pool = 0\nqueue_depth = 8\n"))
    c = d.connect()
    sid = c.call("session/create", {})["result"]["session_id"]
    # The session's first run holds its turn on a tool call that is answered only at the end.
    first = c.request("run", {"code": "await hold()", "tools": [{"name": "hold"}], "session_id": sid})
    call = c.recv()
    assert call.get("method") == "tool/call", call
    base = d.rss_kib()
    big = "#" + "x" * (1 << 20)
    ids = [c.request("run", {"code": big, "session_id": sid}) for _ in range(100)]
    refused = []
    for _ in range(92):
        msg = c.recv()
        assert "error" in msg, msg
        refused.append(msg)
    grown = d.rss_kib() - base
    print(f"100 runs of 1 MiB pipelined into one session: RSS +{grown} KiB")
    assert all(m["error"]["code"] == OVERLOADED and "queue_depth" in m["error"]["message"]
               for m in refused), refused[0]
    assert grown < 48 * MIB, f"RSS grew by {grown} KiB"
    with closing(d.connect()) as other:
        assert status(other)["runs_queued"] == 8
    c.send({"jsonrpc": "2.0", "id": call["id"], "result": "go"})
    assert c.wait_response(first)["result"]["status"] == "ok"
    done = {m["id"] for m in refused}
    for rid in ids:
        if rid not in done:
            assert c.wait_response(rid)["result"]["status"] == "ok"
    assert status(c)["runs_queued"] == 0
    c.close()
    assert_serves(d)


# --- memory: a run's inputs were built into a Value tree (~30x their size) -----------------------

def test_run_inputs_cost_about_their_size(start_daemon, tmp_path: Path) -> None:
    """`inputs` were parsed into a serde_json `Value` and kept for the whole run: 4 MiB of
    `[0, 0, ...]` cost ~110 MiB in the daemon (8 such runs waiting: +1.1 GiB). Now each input
    stays the raw JSON text the client sent and goes to the child as it is."""
    d = start_daemon("--config", config(tmp_path, "warm_pool = 0\n"))
    with closing(d.connect()) as warm:
        assert warm.run("1")["value"] == 1
    base = d.rss_kib()
    n = 1 << 21  # "0, " x 2M: 6 MiB of JSON per run
    clients = [d.connect() for _ in range(4)]
    try:
        rids, calls = [], []
        for c in clients:
            rids.append(c.request("run", {"code": "await hold()\n[len(x), x[-1], y]",
                                          "tools": [{"name": "hold"}],
                                          "inputs": {"x": [0] * (n - 1) + [7], "y": {"k": ["v"]}}}))
        for c in clients:
            call = c.recv()
            assert call.get("method") == "tool/call", call
            calls.append(call)
        # Every run is executing and holds its params now.
        grown = d.rss_kib() - base
        print(f"4 runs with 6 MiB of inputs each, held: RSS +{grown} KiB")
        # Line buffer, raw params and the job line are transient copies: a few times the size.
        assert grown < 128 * MIB, f"RSS grew by {grown} KiB for 24 MiB of inputs"
        for c, rid, call in zip(clients, rids, calls):
            c.send({"jsonrpc": "2.0", "id": call["id"], "result": None})
            r = c.wait_response(rid)["result"]
            assert r["value"] == [n, 7, {"k": ["v"]}], r
    finally:
        for c in clients:
            c.close()
    assert_serves(d)


# --- memory: a session kept its tool specs as a Value tree for the connection's life -------------

def test_session_tool_specs_cost_about_their_size(start_daemon, tmp_path: Path) -> None:
    """A session keeps the tool specs it was created with (for `tools/definition`) for its whole
    life. As `Value` trees they cost ~25× their text: 8 sessions with 6 MiB of specs each held
    +1.2 GiB, 3 MiB each +600 MiB (and a connection may hold 64 sessions). Now the specs are
    kept as JSON text."""
    d = start_daemon("--config", config(tmp_path, "warm_pool = 0\n"))
    c = d.connect()
    assert c.run("1")["value"] == 1
    base = d.rss_kib()
    spec = {"name": "big", "description": "a tool", "input_examples": [0] * (1 << 20)}
    sids = []
    for _ in range(8):
        r = c.call("session/create", {"tools": [spec]})
        assert "result" in r, str(r)[:300]
        sids.append(r["result"]["session_id"])
    # Parsing is transient; what the sessions keep must come back down to about the text.
    wait_until(lambda: d.rss_kib() - base < 100 * MIB,
               "RSS to settle within 100 MiB (8 x 3 MiB of specs kept)", timeout=30)
    print(f"8 sessions with 3 MiB of tool specs: RSS +{d.rss_kib() - base} KiB")
    defs = c.call("tools/definition", {"session_id": sids[0], "format": "openai"})["result"]
    assert "async def big(" in defs["stubs"]
    r = c.run("type(big).__name__", session_id=sids[-1])
    assert r["status"] == "ok", r
    c.close()
    assert_serves(d)


# --- wire: a request of exactly max_line_bytes ----------------------------------------------------

def test_request_of_exactly_max_line_bytes_is_served_with_either_terminator(start_daemon, tmp_path: Path) -> None:
    """The contract tolerates `\\r\\n`, and the limit is on the line. A request of exactly
    `max_line_bytes` was served when it ended in `\\n` but refused `-32600` "line longer than"
    when it ended in `\\r\\n` (the `\\r` was counted). One byte more is refused either way, and
    the connection goes on."""
    d = start_daemon("--config", config(tmp_path, "max_line_bytes = 1024\n"))
    template = '{"jsonrpc":"2.0","id":%d,"method":"daemon/status","params":{"x":"%s"}}'

    def line(rid: int, size: int) -> bytes:
        text = template % (rid, "")
        return (template % (rid, "y" * (size - len(text)))).encode()

    with closing(d.connect()) as c:
        for rid, (size, end) in enumerate([(1024, b"\n"), (1024, b"\r\n")], start=1):
            data = line(rid, size)
            assert len(data) == size
            c.send_raw(data + end)
            reply = c.recv()
            assert reply.get("id") == rid and "result" in reply, (size, end, reply)
        for size, end in [(1025, b"\n"), (1025, b"\r\n")]:
            c.send_raw(line(9, size) + end)
            reply = c.recv()
            assert reply["id"] is None and reply["error"]["code"] == -32600, reply
            assert "max_line_bytes" in reply["error"]["message"]
        assert c.run("6 * 7")["value"] == 42
    assert_serves(d)


# --- host memory: tmpfs scratch dirs are memory no limit counted ---------------------------------

POLICY_DIR = Path(__file__).resolve().parent / "policies"


def shmem_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Shmem:"):
            return int(line.split()[1])
    raise AssertionError("no Shmem in /proc/meminfo")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (tmpfs scratch dirs)")
def test_scratch_tmpfs_total_is_bounded(start_daemon, tmp_path: Path) -> None:
    """Each scratch dir is a tmpfs of `scratch_mb`; its pages count against no run's memory
    limit and not the daemon's RSS. Before: 4 persistent sessions wrote 4 x 64 MB into their
    scratch dirs (Shmem +255 MiB, daemon RSS +0.9 MiB), and 64 sessions + 32 runs at the default
    256 MB could pin 24 GiB of RAM. Now the size caps of all live scratch dirs together are
    bounded by `max_scratch_total_mb`; one more dir is refused `-32002` naming it, and the space
    comes back when a dir is removed."""
    d = start_daemon("--policy-dir", str(POLICY_DIR), "--config", config(
        tmp_path, "warm_pool = 0\nmax_scratch_total_mb = 64\n"))
    c = d.connect()
    base = shmem_kib()
    sids = []
    for _ in range(4):  # 4 x 16 MiB: the whole budget
        r = c.call("session/create", {"persistent": True, "policy": "small-scratch"})
        assert "result" in r, r
        sid = r["result"]["session_id"]
        sids.append(sid)
        # The pages are real: each session fills most of its tmpfs.
        assert c.run("open('blob', 'wb').write(b'x' * (15 << 20))", session_id=sid)["status"] == "ok"
    print(f"4 sessions with 15 MiB each in their scratch dirs: Shmem +{(shmem_kib() - base) // 1024} MiB")
    assert status(c)["scratch_committed_mb"] == 64
    refused = c.call("session/create", {"persistent": True, "policy": "small-scratch"})
    assert refused["error"]["code"] == OVERLOADED, refused
    assert "max_scratch_total_mb" in refused["error"]["message"], refused
    run = c.call("run", {"code": "1", "policy": "small-scratch"})
    assert run["error"]["code"] == OVERLOADED and "max_scratch_total_mb" in run["error"]["message"], run
    # Closing one session gives its 16 MiB back: the next run works.
    assert c.call("session/close", {"session_id": sids.pop()})["result"] == {}
    assert c.run("6 * 7", policy="small-scratch")["value"] == 42
    assert status(c)["scratch_committed_mb"] == 48
    c.close()
    with closing(d.connect()) as watcher:
        wait_until(lambda: status(watcher)["scratch_committed_mb"] == 0,
                   "the closed connection's sessions to give their scratch space back")
    mounts = Path(f"/proc/{d.pid}/mountinfo").read_text()
    assert str(d.scratch) not in mounts, "a scratch tmpfs is still mounted"
    assert d.proc.poll() is None
    with closing(d.connect()) as c2:
        assert c2.run("6 * 7", policy="small-scratch")["value"] == 42


def test_refused_session_run_does_not_let_the_next_one_jump_the_queue(start_daemon, tmp_path: Path) -> None:
    """A session run refused in the reader (here: a duplicate request id) had already joined the
    session's queue; dropping its turn let the run after it start while the session's first run
    was still going, in a fresh interpreter of a persistent session (it saw none of the first
    run's globals). Now a refused run never takes a turn: the next run waits and sees `x`."""
    d = start_daemon("--config", config(tmp_path, "warm_pool = 0\n"))
    c = d.connect()
    sid = c.call("session/create", {"persistent": True})["result"]["session_id"]
    first = c.request("run", {"code": "x = 1\nawait hold()\nx", "tools": [{"name": "hold"}],
                              "session_id": sid})
    call = c.recv()
    assert call.get("method") == "tool/call", call
    c.request("run", {"code": "x = 2", "session_id": sid}, id=first)  # same id: refused
    refused = c.recv()
    assert refused.get("id") == first and refused["error"]["code"] == -32600, refused
    third = c.request("run", {"code": "x + 10", "session_id": sid})
    c.send({"jsonrpc": "2.0", "id": call["id"], "result": None})
    assert c.wait_response(first)["result"]["value"] == 1
    r = c.wait_response(third)["result"]
    assert (r["status"], r["value"]) == ("ok", 11), r
    c.close()
    assert_serves(d)
