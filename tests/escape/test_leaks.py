"""Leaks: the child sees a clean environment, only its own fds, its own uid and session, and
nothing of the runs that execute at the same time."""

import json
import threading

from conftest import UNPRIVILEGED, UNPRIVILEGED_UID
from rpc import RpcClient

EXPECTED_ENV = {"HOME", "LANG", "MALLOC_ARENA_MAX", "PTCD_RUN_ID", "PYTHONDONTWRITEBYTECODE",
                "PYTHONIOENCODING", "TMPDIR"}

REPORT = """
import os, json, resource
fds = []
for fd in range(1024):
    try:
        os.fstat(fd)
        fds.append(fd)
    except OSError:
        pass
try:
    os.listdir('..')
    others = 'listed'
except PermissionError:
    others = 'EACCES'
open('secret.txt', 'w').write(os.environ['PTCD_RUN_ID'])
print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "fds": fds,
                  "env": sorted(os.environ), "run": os.environ['PTCD_RUN_ID'], "cwd": os.getcwd(),
                  "others": others, "core": resource.getrlimit(resource.RLIMIT_CORE)}))
"""


def report(sb, **params):
    r = sb.run(REPORT, **params)
    assert r["status"] == "ok", r
    return json.loads(r["stdout"])


def test_environment_is_clean(sb, monkeypatch):
    monkeypatch.setenv("PTCD_ESCAPE_SECRET", "do-not-leak")  # not the daemon's env, but be sure
    assert set(report(sb)["env"]) == EXPECTED_ENV


def test_daemon_environment_does_not_leak(sb):
    r = sb.run("import os; print(sorted(k for k in os.environ if k not in EXPECTED))",
               inputs={"EXPECTED": sorted(EXPECTED_ENV)})
    assert r["stdout"] == "[]\n"


def test_only_stdio_and_the_control_fd_are_inherited(sb):
    assert report(sb)["fds"] == [0, 1, 2, 3]


def test_runs_as_an_unprivileged_uid_without_groups(sb):
    rep = report(sb)
    assert rep["uid"] != 0 and rep["gid"] != 0
    if UNPRIVILEGED:
        # Differs unprivileged: no per-run uids; the run keeps the daemon's uid, without groups.
        assert rep["uid"] == UNPRIVILEGED_UID
    else:
        assert 64000 <= rep["uid"] <= 64999
    assert rep["groups"] == []


def test_has_no_capabilities(sb):
    code = """
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    assert libc.capget(hdr, data) == 0
    print(list(data))
    """
    assert sb.run(code)["stdout"] == "[0, 0, 0, 0, 0, 0]\n"


def test_core_dumps_are_off_and_the_process_is_not_dumpable(sb):
    assert report(sb)["core"] == [0, 0]
    code = "import ctypes; print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))"  # PR_GET_DUMPABLE
    assert sb.run(code)["stdout"] == "0\n"


def test_no_new_privs_seccomp_and_parent_death_signal_are_set(sb):
    code = """
    import ctypes
    libc = ctypes.CDLL(None)
    sig = ctypes.c_int(0)
    libc.prctl(2, ctypes.byref(sig), 0, 0, 0)                   # PR_GET_PDEATHSIG
    print(libc.prctl(39, 0, 0, 0, 0), libc.prctl(21, 0, 0, 0, 0), sig.value)
    """
    assert sb.run(code)["stdout"] == "1 2 9\n"  # no_new_privs, SECCOMP_MODE_FILTER, SIGKILL


def test_runs_in_its_own_session(sb):
    assert sb.run("import os; print(os.getsid(0) == os.getpid())")["stdout"] == "True\n"


def test_concurrent_runs_are_isolated(sb):
    """Several runs at once: distinct uids and scratch dirs, clean env and fds in each."""
    results: list = [None] * 4
    # Each run calls the `arrived` tool and is held there until all four are running at once.
    gate = threading.Barrier(4)

    def one(i: int) -> None:
        c = RpcClient(sb.daemon.socket)
        try:
            rid = c.request("run", {"code": "await arrived()\n" + REPORT, "tools": [{"name": "arrived"}]})
            results[i] = c.wait_response(rid, {"arrived": lambda: gate.wait(timeout=20) and None})
        finally:
            c.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    reps = [json.loads(r["result"]["stdout"]) for r in results]
    if UNPRIVILEGED:
        # Differs unprivileged: every run has the daemon's uid; Landlock still keeps each run
        # out of the others' scratch dirs (`others` below).
        assert {r["uid"] for r in reps} == {UNPRIVILEGED_UID}
    else:
        assert len({r["uid"] for r in reps}) == 4, "concurrent runs must not share a uid"
    assert len({r["cwd"] for r in reps}) == 4
    assert len({r["run"] for r in reps}) == 4
    for r in reps:
        # fds 0-3 inherited; anything above is the run's own asyncio loop (epoll, self-pipe)
        assert r["fds"][:4] == [0, 1, 2, 3] and len(r["fds"]) <= 7, r["fds"]
        assert set(r["env"]) == EXPECTED_ENV
        assert r["others"] == "EACCES"
    sb.assert_still_serves()


def test_scratch_dir_is_removed_after_the_run(sb):
    r = sb.run("import os; open('left-behind', 'w').write('x'); print(os.getcwd())")
    from pathlib import Path
    assert not Path(r["stdout"].strip()).exists()
