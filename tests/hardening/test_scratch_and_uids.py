"""Scratch dirs, the disk limit and uid leases against hostile scripts and co-hosted daemons.

Each case runs against the real binary on its real socket and asserts the specific outcome, that
the daemon is alive with its RSS within a stated bound, and that the next run works. Cases marked
with both modes run once with a tmpfs per scratch dir (the daemon may mount) and once in the
measured fallback (the daemon started without CAP_SYS_ADMIN, through `setpriv`).
"""

from __future__ import annotations

from contextlib import closing
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from daemon import PTCD_BIN, Daemon, run_dirs, wait_until
from rpc import RpcClient

POLICY_DIR = Path(__file__).resolve().parent / "policies"
SMALL = "small-scratch"  # the default policy with scratch_mb = 16
NO_SYS_ADMIN = ["setpriv", "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin", "--"]
# The daemon's RSS may grow by this much over a case (a deep tree, a flood of files).
RSS_BOUND_KIB = 64 * 1024
DEPTH = 30_000

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (uids, mounts)")


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    """Starts daemons (optionally in a mode, on a shared scratch root, from another binary)."""
    started: list[Daemon] = []

    def go(mode: str = "tmpfs", *, scratch: Path | None = None, binary: Path | None = None,
           args: tuple[str, ...] = ()) -> Daemon:
        root = tmp_path / f"d{len(started)}"
        root.mkdir()
        d = Daemon(root, ["--policy-dir", str(POLICY_DIR), *args],
                   prefix=NO_SYS_ADMIN if mode == "measured" else None, scratch=scratch, binary=binary)
        started.append(d)
        with closing(d.connect()) as c:
            assert c.call("initialize")["result"]["sandbox"]["scratch"] == mode
        return d

    yield go
    for d in started:
        d.stop()


@pytest.fixture
def shared_root() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="ptcd-test-shared-scratch-"))
    os.chmod(d, 0o711)
    yield d
    # A test that killed a daemon restarts one on this root to reclaim; nothing stays mounted.
    shutil.rmtree(d, ignore_errors=True)


def inside(d: Daemon, path: Path | str) -> Path:
    """`path` as the daemon sees it: its scratch tmpfs mounts live in its own mount namespace."""
    return Path(f"/proc/{d.pid}/root") / Path(path).relative_to("/")


def alive_and_serving(d: Daemon, rss_before: int) -> None:
    assert d.proc.poll() is None, f"the daemon died:\n{d.log()}"
    with closing(d.connect()) as c:
        r = c.run("print(6 * 7)")
    assert r["status"] == "ok" and r["stdout"] == "42\n", r
    grown = d.rss_kib() - rss_before
    assert grown < RSS_BOUND_KIB, f"daemon RSS grew by {grown} KiB"


def session(c: RpcClient, policy: str | None = None) -> str:
    params: dict = {"persistent": True}
    if policy:
        params["policy"] = policy
    return c.call("session/create", params)["result"]["session_id"]


# A thread that builds a chain of directories DEPTH levels deep by renaming each chain into a
# fresh directory (every path it uses is short), then writes `built`.
DEEP_THREAD = f"""
import os, threading
def build():
    os.mkdir('a')
    for _ in range({DEPTH}):
        os.mkdir('n')
        os.rename('a', 'n/a')
        os.rename('n', 'a')
    open('built', 'w').close()
threading.Thread(target=build).start()
os.getcwd()
"""


@pytest.mark.parametrize("mode", ["tmpfs", "measured"])
def test_survives_deep_scratch_tree(start, mode: str) -> None:
    d = start(mode)
    rss = d.rss_kib()
    with closing(d.connect()) as c:
        # Between two runs of a persistent session nothing measures the scratch dir: the tree
        # grows there, then closing the session removes it.
        sid = session(c)
        scratch = Path(c.run(DEEP_THREAD, session_id=sid)["value"])
        wait_until(lambda: (inside(d, scratch) / "built").exists(), f"a {DEPTH}-level tree", timeout=120)
        assert c.call("session/close", {"session_id": sid})["result"] == {}
        wait_until(lambda: not scratch.exists(), "the deep scratch dir is removed", timeout=120)
    alive_and_serving(d, rss)
    assert run_dirs(d.scratch) == []


@pytest.mark.parametrize("mode", ["tmpfs", "measured"])
def test_survives_deep_scratch_tree_left_for_start_up_reclaim(start, shared_root: Path, mode: str) -> None:
    d = start(mode, scratch=shared_root)
    with closing(d.connect()) as c:
        sid = session(c)
        scratch = Path(c.run(DEEP_THREAD, session_id=sid)["value"])
        wait_until(lambda: (inside(d, scratch) / "built").exists(), f"a {DEPTH}-level tree", timeout=120)
        if mode == "tmpfs":
            # The tmpfs is mounted in the daemon's own mount namespace, never in the host's.
            assert str(scratch) in Path(f"/proc/{d.pid}/mounts").read_text()
            assert str(scratch) not in Path("/proc/self/mounts").read_text()
    # A crash. Measured: the deep tree stays for the next daemon's reclaim. tmpfs: the kernel
    # frees the tmpfs with the daemon's namespace once its children are gone; an empty mount
    # point stays for the reclaim.
    d.proc.kill()
    d.proc.wait()
    assert scratch.exists()
    again = start(mode, scratch=shared_root)
    assert not scratch.exists(), "the dead daemon's deep scratch dir was not reclaimed"
    alive_and_serving(again, again.rss_kib())
    assert run_dirs(shared_root) == []


def test_fallocate_cannot_exceed_scratch_mb(start) -> None:
    d = start("tmpfs")
    rss = d.rss_kib()
    code = """
import os, errno
st = os.statvfs('.')
total = st.f_blocks * st.f_frsize
fd = os.open('big', os.O_CREAT | os.O_WRONLY)
try:
    os.posix_fallocate(fd, 0, 32 << 20)   # under file_size_mb (64), over scratch_mb (16)
    got = 'allowed'
except OSError as e:
    got = errno.errorcode[e.errno]
[total, got, os.fstat(fd).st_blocks * 512]
"""
    with closing(d.connect()) as c:
        r = c.run(code, policy=SMALL)
    assert r["status"] == "ok", r
    total, got, allocated = r["value"]
    # The scratch dir is its own 16 MiB filesystem: nothing reaches the host's disk.
    assert total == 16 << 20
    assert got == "ENOSPC"
    assert allocated <= 16 << 20
    alive_and_serving(d, rss)


def test_thread_writing_between_session_runs_is_capped(start) -> None:
    d = start("tmpfs")
    rss = d.rss_kib()
    code = """
import os, threading, errno
# Written before the disk is full, so recording the error needs no new space; the rename
# publishes it whole.
with open('result', 'w') as r:
    r.write(' ' * 16)
def fill():
    try:
        with open('fill', 'wb', buffering=0) as f:
            while True:
                f.write(b'x' * (1 << 20))
    except OSError as e:
        fd = os.open('result', os.O_WRONLY)
        os.pwrite(fd, errno.errorcode[e.errno].encode().ljust(16), 0)
        os.close(fd)
        os.rename('result', 'stopped')
threading.Thread(target=fill).start()
os.getcwd()
"""
    with closing(d.connect()) as c:
        sid = session(c, SMALL)
        scratch = Path(c.run(code, session_id=sid)["value"])
        # The thread writes while no run of the session executes.
        wait_until(lambda: (inside(d, scratch) / "stopped").exists(), "the writer hits the cap", timeout=60)
        r = c.run("import os\n[open('stopped').read().strip(), os.path.getsize('fill')]", session_id=sid)
        assert r["status"] == "ok", r
        assert r["value"][0] == "ENOSPC"
        assert r["value"][1] <= 16 << 20
        c.call("session/close", {"session_id": sid})
    alive_and_serving(d, rss)


def test_measured_quota_still_ends_a_run_that_fills_the_disk(start) -> None:
    d = start("measured")
    code = """
chunk = b'x' * (1 << 20)
for i in range(100):
    with open(f'part{i}', 'wb', buffering=0) as f:
        for _ in range(8):
            f.write(chunk)
"""
    with closing(d.connect()) as c:
        r = c.run(code, policy=SMALL, limits={"timeout_ms": 20000})
    assert r["status"] == "limit_exceeded", r
    assert "scratch_mb = 16" in r["error"]["message"]
    alive_and_serving(d, d.rss_kib())


def test_temporary_directory_loop_is_not_limit_exceeded(start) -> None:
    d = start("measured")
    # Directories appear and vanish while the daemon measures: a vanished entry is gone, not an
    # error. The loop runs while the daemon measures.
    code = """
import tempfile, os
for n in range(300):
    with tempfile.TemporaryDirectory() as t:
        for i in range(20):
            os.makedirs(os.path.join(t, str(i), 'b', 'c'))
n + 1
"""
    with closing(d.connect()) as c:
        r = c.run(code)
    assert r["status"] == "ok", r
    assert r["value"] == 300
    alive_and_serving(d, d.rss_kib())


def test_walker_never_follows_swapped_symlink(start) -> None:
    d = start("measured")
    # `d` flips between a real directory and a symlink to /usr (far more than 16 MiB): a walker
    # that followed it would count /usr and end the run.
    code = """
import os, time
end = time.monotonic() + 2
while time.monotonic() < end:
    os.mkdir('d')
    os.rmdir('d')
    os.symlink('/usr', 'd')
    os.unlink('d')
'ok'
"""
    with closing(d.connect()) as c:
        r = c.run(code, policy=SMALL)
    assert r["status"] == "ok", r
    alive_and_serving(d, d.rss_kib())


def test_disk_error_names_no_entry(start) -> None:
    d = start("measured")
    code = """
import os
os.makedirs('/'.join(['SECRET-NAME'] * 300))
import time; time.sleep(60)
"""
    with closing(d.connect()) as c:
        r = c.run(code, limits={"timeout_ms": 20000})
    assert r["status"] == "limit_exceeded", r
    assert "deeper than 256 levels" in r["error"]["message"]
    assert "SECRET" not in r["error"]["message"]
    alive_and_serving(d, d.rss_kib())


def test_dead_session_interpreter_uid_not_reused_by_other_tenant(start) -> None:
    d = start("tmpfs", args=("--max-runs", "8"))
    a, b = d.connect(), d.connect()
    try:
        sid = session(a)
        uid, scratch = a.run("import os\nopen('mine', 'w').write('tenant A')\n[os.getuid(), os.getcwd()]",
                             session_id=sid)["value"]
        # The session's interpreter dies (an abort, like any crash or rlimit kill).
        r = a.run("import os; os.abort()", session_id=sid)
        assert r["status"] == "crashed", r
        # Another tenant's runs never get that uid and cannot touch tenant A's files.
        probe = f"""
import os
try:
    open({str(Path(scratch) / 'mine')!r}, 'w').write('tenant B')
    touched = True
except OSError:
    touched = False
[os.getuid(), touched]
"""
        for _ in range(6):
            other_uid, touched = b.run(probe)["value"]
            assert other_uid != uid
            assert not touched
        assert (inside(d, scratch) / "mine").read_text() == "tenant A"
        assert inside(d, scratch).stat().st_uid == uid
        # The session's next interpreter runs as the same uid, with its files.
        again = a.run("import os\n[os.getuid(), open('mine').read()]", session_id=sid)["value"]
        assert again == [uid, "tenant A"]
    finally:
        a.close()
        b.close()
    alive_and_serving(d, d.rss_kib())


def test_two_daemons_never_share_a_uid(start) -> None:
    one, two = start("tmpfs"), start("tmpfs")
    clients = [one.connect(), two.connect()]
    code = "import os\nawait hold(uid=os.getuid())\nos.getuid()"
    tools = [{"name": "hold", "input_schema": {"properties": {"uid": {}}}}]
    try:
        rids = [[c.request("run", {"code": code, "tools": tools}) for _ in range(4)] for c in clients]
        calls = [[c.recv() for _ in range(4)] for c in clients]
        # All eight runs are alive at once, each holding its uid.
        uids = [call["params"]["arguments"]["uid"] for per in calls for call in per]
        assert len(set(uids)) == 8, uids
        for c, per in zip(clients, calls):
            for call in per:
                c.send({"jsonrpc": "2.0", "id": call["id"], "result": None})
        for c, per in zip(clients, rids):
            for rid in per:
                assert c.wait_response(rid)["result"]["status"] == "ok"
    finally:
        for c in clients:
            c.close()
    for d in (one, two):
        alive_and_serving(d, d.rss_kib())


def test_second_daemon_does_not_reclaim_live_dirs(start, shared_root: Path, tmp_path: Path) -> None:
    first = start("tmpfs", scratch=shared_root)
    with closing(first.connect()) as c:
        sid = session(c)
        scratch = Path(c.run("import os\nopen('kept', 'w').write('x')\nos.getcwd()", session_id=sid)["value"])
        # A second daemon built at another path (another clone) starts on the same root.
        other_bin = Path(tempfile.mkdtemp(prefix="ptcd-other-bin-")) / "ptcd"
        try:
            shutil.copy2(PTCD_BIN, other_bin)
            os.chmod(other_bin.parent, 0o755)
            second = start("tmpfs", scratch=shared_root, binary=other_bin)
            assert scratch.exists(), "the second daemon reclaimed a live daemon's scratch dir"
            r = c.run("open('kept').read()", session_id=sid)
            assert r["status"] == "ok" and r["value"] == "x", r
            alive_and_serving(second, second.rss_kib())
        finally:
            shutil.rmtree(other_bin.parent, ignore_errors=True)
    alive_and_serving(first, first.rss_kib())


def refused_start(tmp_path: Path, scratch: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PTCD_BIN), "serve", "--socket", str(tmp_path / "s.sock"), "--scratch-dir", str(scratch)],
        capture_output=True, text=True, timeout=30,
    )


def test_scratch_root_symlink_is_refused(tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="ptcd-test-victim-"))
    try:
        victim = base / "victim"
        victim.mkdir(mode=0o700)
        link = base / "scratch"
        link.symlink_to(victim)
        p = refused_start(tmp_path, link)
        assert p.returncode != 0
        assert str(link) in p.stderr and "symlink" in p.stderr, p.stderr
        assert victim.stat().st_mode & 0o777 == 0o700, "root chmodded the symlink's target"
        assert list(victim.iterdir()) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_scratch_root_owned_by_other_user_is_refused(tmp_path: Path) -> None:
    root = Path(tempfile.mkdtemp(prefix="ptcd-test-foreign-"))
    try:
        os.chown(root, 65534, 65534)
        p = refused_start(tmp_path, root)
        assert p.returncode != 0
        assert str(root) in p.stderr and "owned by uid 65534" in p.stderr, p.stderr
        assert list(root.iterdir()) == []
    finally:
        shutil.rmtree(root, ignore_errors=True)
