"""The connection edge under hostile clients and local users (issue #9, items 3, 6, 7, 10).

Each case plays one attack or fault against the real daemon on its real socket and asserts the
specific outcome, that the daemon's RSS (read from /proc) stayed within a stated bound where memory
is the point, and that the daemon still serves the next run. Waits are bounded polls on a state
(`wait_until`, a socket read with a timeout), never sleeps.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from daemon import PTCD_BIN, Daemon, wait_until
from rpc import RpcClient

MIB = 1024  # in KiB, the unit of VmRSS


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / f"config-{secrets.token_hex(4)}.toml"
    path.write_text(text)
    return str(path)


def status(client: RpcClient) -> dict:
    return client.call("daemon/status")["result"]


def assert_serves(d: Daemon) -> None:
    """The daemon is alive and the next run works."""
    assert d.proc.poll() is None, d.log()
    c = d.connect()
    try:
        assert c.run("6 * 7")["value"] == 42
    finally:
        c.close()


def big_request(size: int) -> bytes:
    """A request whose reply is as big as itself (the error echoes the unknown method name)."""
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "x" * size}).encode() + b"\n"


class Flooder:
    """Sends `data` in a thread, never reading; the send blocks once the daemon stops reading."""

    def __init__(self, path: Path, data: bytes, times: int) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(path))
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._send, args=(data, times), daemon=True)
        self.thread.start()

    def _send(self, data: bytes, times: int) -> None:
        try:
            for _ in range(times):
                self.sock.sendall(data)
        except OSError:
            pass
        finally:
            self.done.set()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=30)


# --- item 3: memory bounded in bytes -------------------------------------------------------------

def test_client_that_does_not_read_cannot_bloat_daemon(start_daemon, tmp_path: Path) -> None:
    d = start_daemon("--config", config(tmp_path, "warm_pool = 0\n"))
    watcher = d.connect()
    assert watcher.run("1")["value"] == 1
    base = d.rss_kib()
    # 400 requests of 1 MiB whose replies are 1 MiB each: without a byte bound the daemon read
    # them all and queued ~400 MiB of replies (the old queue held 1024 lines of any size).
    hog = Flooder(d.socket, big_request(1 << 20), 400)
    try:
        wait_until(
            lambda: hog.done.is_set() or status(watcher).get("client_queued_bytes", 0) >= 7 << 20,
            "the hog's reply queue to fill its 8 MiB (client_queue_bytes)",
            timeout=60,
        )
        assert not hog.done.is_set(), "the daemon read every request of a client that never reads"
        grown = d.rss_kib() - base
        print(f"non-reading client: RSS +{grown} KiB")
        assert grown < 64 * MIB, f"daemon RSS grew by {grown} KiB for one non-reading client"
        assert status(watcher)["client_queued_bytes"] <= 8 << 20
        # Other clients are not held up by it.
        assert watcher.run("2 + 2")["value"] == 4
    finally:
        hog.close()
    wait_until(lambda: status(watcher)["connections"] == 1, "the hog's connection to end")
    # Its writer gives the last charges back as it ends, just after the connection count drops.
    wait_until(lambda: status(watcher)["client_queued_bytes"] == 0, "its queued bytes to be given back")
    assert_serves(d)
    watcher.close()


def test_half_lines_from_many_clients_are_bounded(start_daemon, tmp_path: Path) -> None:
    d = start_daemon("--config", config(tmp_path, (
        "warm_pool = 0\nmax_line_bytes = 4194304\npartial_lines_total_bytes = 16777216\n"
    )))
    watcher = d.connect()
    assert watcher.run("1")["value"] == 1
    base = d.rss_kib()
    # 24 clients each send 4 MiB of a line and never its end: 96 MiB held without a global bound.
    part = b'{"jsonrpc":"2.0","id":1,"method":"' + b"y" * ((4 << 20) - 64)
    clients = [Flooder(d.socket, part, 1) for _ in range(24)]
    try:
        wait_until(
            lambda: all(c.done.is_set() for c in clients)
            or status(watcher).get("client_partial_line_bytes", 0) >= 15 << 20,
            "the partial-line budget (16 MiB) to fill",
            timeout=60,
        )
        assert not all(c.done.is_set() for c in clients), "the daemon buffered every half line"
        grown = d.rss_kib() - base
        print(f"24 half lines: RSS +{grown} KiB")
        assert grown < 48 * MIB, f"daemon RSS grew by {grown} KiB for 24 half lines"
        assert status(watcher)["client_partial_line_bytes"] <= 16 << 20
        # A small request of another client needs no budget: it is served meanwhile.
        assert watcher.run("3")["value"] == 3
    finally:
        for c in clients:
            c.close()
    wait_until(lambda: status(watcher)["connections"] == 1, "the half-line connections to end")
    wait_until(lambda: status(watcher)["client_partial_line_bytes"] == 0, "their bytes to be given back")
    assert_serves(d)
    watcher.close()


def burst_peak_rss(d: Daemon, clients: int, steps: int, step: Callable[[RpcClient], None]) -> int:
    """Runs `step` `steps` times on each of `clients` connections at once; returns the daemon's
    highest VmRSS (KiB) seen after any step."""
    peak = [d.rss_kib()]

    def client() -> None:
        c = d.connect()
        try:
            for _ in range(steps):
                step(c)
                peak[0] = max(peak[0], d.rss_kib())
        finally:
            c.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return peak[0]


def assert_rss_returns(d: Daemon, base: int, peak: int, used: int, within: int) -> None:
    """The burst used more than `used` KiB, and RSS comes back within `within` KiB of `base`
    (a bounded poll on RSS, not a sleep); then the daemon still serves."""
    assert peak - base > used, "the burst did not use memory; the test proves nothing"
    wait_until(lambda: d.rss_kib() - base < within,
               f"RSS to return within {within} KiB of {base} KiB (peak {peak} KiB)", timeout=30)
    print(f"burst: base {base} KiB, peak {peak} KiB, after {d.rss_kib()} KiB")
    assert_serves(d)


def test_memory_returns_after_burst(start_daemon, tmp_path: Path) -> None:
    d = start_daemon("--config", config(tmp_path, "warm_pool = 0\n"))
    watcher = d.connect()
    assert watcher.run("1")["value"] == 1
    base = d.rss_kib()
    # Lines whose parse makes many small allocations (60,000 small objects, 2.8 MB), from four
    # connections at once: glibc kept ~80 MiB of that after the burst before (measured).
    many_small = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "no/such", "params": [
        {"k": i, "s": "v" * (i % 50)} for i in range(60_000)]}).encode() + b"\n"

    def unknown_method(c: RpcClient) -> None:
        c.send_raw(many_small)
        assert "unknown method" in c.recv()["error"]["message"]

    peak = burst_peak_rss(d, 4, 10, unknown_method)
    assert_rss_returns(d, base, peak, used=16 * MIB, within=16 * MIB)
    watcher.close()


def test_memory_returns_after_a_burst_of_small_runs(start_daemon, tmp_path: Path) -> None:
    """Many small runs at once leave free heap behind (the runs' and calls' allocations, the
    blocking threads'): 500 runs from 50 clients left +17 MiB of heap in the release daemon
    while under 1 MiB crossed the socket, so a trim that waited for 4 MiB of traffic never
    came. The trim now follows any burst. Since a child's and a client's read buffers shrank
    (8 and 16 KiB), 20 calls per run no longer leave enough to show it: 400 calls per run here
    peak at +13 to +15 MiB (debug build), come back to within +4 MiB, and stay above +8 MiB
    without the trim (measured)."""
    d = start_daemon("--config", config(tmp_path, "max_concurrent_runs = 64\nqueue_depth = 256\n"))
    watcher = d.connect()
    assert watcher.run("1")["value"] == 1
    base = d.rss_kib()

    def small_run(c: RpcClient) -> None:
        r = c.run("sum(await asyncio.gather(*[echo(x=j) for j in range(400)]))",
                  {"echo": lambda x: x})
        assert (r["status"], r["value"]) == ("ok", 79800), r

    peak = burst_peak_rss(d, 40, 6, small_run)
    assert_rss_returns(d, base, peak, used=10 * MIB, within=7 * MIB)
    watcher.close()


def daemon_children(d: Daemon) -> list[int]:
    """Every process below the daemon: cold run interpreters are its children, forked ones
    (issue #14) its template's, and the template inherits the daemon's OOM score too."""
    return sorted(d.descendants())


def test_children_are_preferred_oom_victims(start_daemon, tmp_path: Path) -> None:
    d = start_daemon("--config", config(tmp_path, "warm_pool = 0\n"))
    seen: dict[int, int] = {}

    def look() -> str:
        # Read from outside, while the script waits for this tool call.
        for pid in daemon_children(d):
            try:
                seen[pid] = int(Path(f"/proc/{pid}/oom_score_adj").read_text())
            except OSError:
                pass
        return "looked"

    c = d.connect()
    result = c.run("await look()", {"look": look})
    assert result["status"] == "ok" and result["value"] == "looked", result
    assert seen, "no child of the daemon was found during the run"
    assert set(seen.values()) == {1000}, seen
    own = int(Path(f"/proc/{d.pid}/oom_score_adj").read_text())
    assert own < 1000, "the daemon itself must not be the preferred victim"
    c.close()
    assert_serves(d)


# --- item 6: local users -------------------------------------------------------------------------

def test_client_env_values_never_on_a_command_line(start_daemon, tmp_path: Path) -> None:
    """What is asserted: the secret, sent as an `env` value, is in no process's cmdline and in no
    environ of any process below the daemon, at any moment we could observe during 30 runs (a
    thread scans the daemon's descendants and every process continuously). One exception: a
    cold run's python child, which the launcher exec'd with the run's env, so its own exec-time
    environ holds it, as the run asked. A forked run (issue #14) sets `os.environ` in memory,
    so its /proc environ is its template's secret-free block, and the template never sees the
    secret at all. Every python interpreter's environ is readable only by its own uid (and
    root), so another local user (uid 65534 here) gets EACCES reading it."""
    d = start_daemon("--config", config(tmp_path, "warm_pool = 0\n"))
    secret = "ptcd-secret-" + secrets.token_hex(12)
    needle = secret.encode()
    hits: list[str] = []
    stop = threading.Event()

    def scan_once() -> None:
        pids = set(os.listdir("/proc"))
        below = d.descendants()
        children = d.children()
        templates = d.template_pids()

        def may_hold_it(pid: int, exe: str) -> bool:
            """A cold run's python child: exec'd by a launcher (the daemon's child) with the env."""
            return "python" in exe and pid in children and pid not in templates

        for pid in below | {int(p) for p in pids if p.isdigit()}:
            try:
                if needle in Path(f"/proc/{pid}/cmdline").read_bytes():
                    hits.append(f"{pid} cmdline")
                exe = os.readlink(f"/proc/{pid}/exe")
            except OSError:
                continue
            if "ptcd" in exe or (pid in below and not may_hold_it(pid, exe)):
                try:
                    if needle in Path(f"/proc/{pid}/environ").read_bytes():
                        hits.append(f"{pid} environ ({exe})")
                except OSError:
                    pass

    def scanner() -> None:
        while not stop.is_set():
            for pid in d.descendants():  # the launchers and runs are below it: look at them first
                try:
                    if needle in Path(f"/proc/{pid}/cmdline").read_bytes():
                        hits.append(f"{pid} cmdline")
                except OSError:
                    pass

    unreadable: list[bool] = []

    def peek() -> str:
        scan_once()
        for pid in d.descendants():
            try:
                if os.readlink(f"/proc/{pid}/exe").find("python") < 0:
                    continue
            except OSError:
                continue
            probe = subprocess.run(
                ["python3", "-c", f"open('/proc/{pid}/environ','rb').read()"],
                user=65534, group=65534, capture_output=True, text=True, timeout=30,
            )
            unreadable.append(probe.returncode != 0 and "PermissionError" in probe.stderr)
        return "ok"

    t = threading.Thread(target=scanner, daemon=True)
    t.start()
    c = d.connect()
    try:
        for i in range(30):
            code = "import os\nassert os.environ['API_TOKEN'].startswith('ptcd-secret-')\n"
            if i % 10 == 0:
                code += "await peek()\n"
            result = c.run(code + "1", {"peek": peek}, env={"API_TOKEN": secret})
            assert result["status"] == "ok", result
    finally:
        stop.set()
        t.join(timeout=30)
        c.close()
    assert not hits, f"the client's env value was visible to other users: {hits}"
    assert unreadable and all(unreadable), "another uid could read the child's environ"
    assert_serves(d)


def run_serve(args: list[str], user: int | None = None, env: dict | None = None):
    return subprocess.run(
        [str(PTCD_BIN), "serve", *args], capture_output=True, text=True, timeout=30,
        user=user, env=env,
    )


def spare_uid() -> int:
    """A uid no one uses, distinct per pytest process (two suites may run at once)."""
    return 200_000 + os.getpid() % 100_000 * 2


def serve_as(uid: int, tmp_path: Path) -> subprocess.CompletedProcess:
    """`ptcd serve` as an unprivileged `uid`, with the default socket path /tmp/ptcd-<uid>/."""
    # The scratch root must be reachable by `uid` (pytest's tmp_path lies under a 0700 dir) and
    # its own, or the daemon refuses it before it gets to the socket dir.
    scratch = Path(tempfile.mkdtemp(prefix=f"ptcd-test-scratch-{uid}-"))
    os.chown(scratch, uid, uid)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}
    try:
        return run_serve(["--scratch-dir", str(scratch)], user=uid, env=env)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture
def default_socket_dir():
    uid = spare_uid()
    path = Path(f"/tmp/ptcd-{uid}")
    yield uid, path
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        for p in path.iterdir():
            p.unlink()
        path.rmdir()


def test_socket_dir_symlink_is_refused(default_socket_dir, tmp_path: Path) -> None:
    uid, path = default_socket_dir
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o777)
    os.chmod(victim, 0o777)
    # Another local user (here: root's own test) plants the default dir as a symlink.
    path.symlink_to(victim)
    proc = serve_as(uid, tmp_path)
    assert proc.returncode != 0, proc.stderr
    assert str(path) in proc.stderr and "symbolic link" in proc.stderr, proc.stderr
    assert list(victim.iterdir()) == [], "nothing may be created through the symlink"
    assert os.stat(victim).st_mode & 0o7777 == 0o777, "the target must not be chmod-ed"
    # The same for an explicit --socket whose directory is a symlink (the root daemon).
    link = tmp_path / "link"
    link.symlink_to(victim)
    proc = run_serve(["--socket", str(link / "ptcd.sock"), "--scratch-dir", str(tmp_path / "s")])
    assert proc.returncode != 0 and "symbolic link" in proc.stderr, proc.stderr
    assert list(victim.iterdir()) == []


def test_socket_dir_owned_by_other_user_is_refused(default_socket_dir, tmp_path: Path) -> None:
    uid, path = default_socket_dir
    path.mkdir(mode=0o700)
    os.chown(path, uid + 1, uid + 1)  # pre-created by another user
    proc = serve_as(uid, tmp_path)
    assert proc.returncode != 0, proc.stderr
    assert str(path) in proc.stderr and f"owned by uid {uid + 1}" in proc.stderr, proc.stderr
    assert list(path.iterdir()) == [], "no socket in a directory another user controls"
    # Root daemon, explicit path: a directory owned by another uid is refused too.
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    os.chown(other, 65534, 65534)
    proc = run_serve(["--socket", str(other / "ptcd.sock"), "--scratch-dir", str(tmp_path / "s")])
    assert proc.returncode != 0 and "owned by uid 65534" in proc.stderr, proc.stderr
    assert list(other.iterdir()) == []


# --- item 7: out-waiting the daemon --------------------------------------------------------------

def test_sigterm_completes_while_client_does_not_read(start_daemon, tmp_path: Path) -> None:
    d = start_daemon("--config", config(tmp_path, "warm_pool = 0\nshutdown_grace_ms = 500\n"))
    watcher = d.connect()
    hog = Flooder(d.socket, big_request(1 << 20), 400)
    try:
        wait_until(
            lambda: hog.done.is_set() or status(watcher).get("client_queued_bytes", 0) >= 7 << 20,
            "the writer to block on the non-reading client",
            timeout=60,
        )
        watcher.close()
        d.proc.send_signal(signal.SIGTERM)
        # Grace (0.5 s) + the write deadline after stop (2 s) + the stop deadline (10 s) is the
        # most it may take; a generous bound on the exit, which before never came.
        try:
            rc = d.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("SIGTERM did not complete while a client did not read:\n" + d.log()[-2000:])
        assert rc == 0, d.log()
        assert not d.socket.exists()
        assert "did not read" in d.log()
    finally:
        hog.close()


def test_unfinished_line_is_dropped_after_deadline(start_daemon, tmp_path: Path) -> None:
    d = start_daemon("--config", config(tmp_path, "line_timeout_ms = 300\n"))
    watcher = d.connect()
    idle = d.connect()  # connected first, sends nothing: no deadline applies to it
    slow = socket.socket(socket.AF_UNIX)
    slow.connect(str(d.socket))
    slow.sendall(b'{"jsonrpc":"2.0","id":1,')
    slow.settimeout(30)
    assert slow.recv(4096) == b"", "the connection with an unfinished line must be closed"
    slow.close()
    wait_until(lambda: status(watcher)["connections"] == 2, "the slot to be freed")
    assert "line_timeout_ms" in d.log()
    # The idle connection outlived the other's deadline and still works.
    assert idle.call("daemon/status")["result"]["connections"] == 2
    idle.close()
    assert_serves(d)
    watcher.close()


def test_connect_burst_cannot_exceed_max_connections(start_daemon, tmp_path: Path) -> None:
    d = start_daemon("--config", config(tmp_path, "max_connections = 4\nwarm_pool = 0\n"))
    wait_until(lambda: not probe_busy(d), "the readiness probe's connection to end")
    socks = []
    for _ in range(64):
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(d.socket))
        socks.append(s)
    admitted = refused = 0
    for s in socks:
        s.settimeout(30)
        try:
            s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"daemon/status"}\n')
        except OSError:
            pass
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        reply = json.loads(buf.split(b"\n")[0])
        if "result" in reply:
            admitted += 1
            assert reply["result"]["connections"] <= 4, reply
        else:
            assert "max_connections" in reply["error"]["message"] or "maximum" in reply["error"]["message"]
            refused += 1
    # At most the limit (the probe's own slot may not be back yet, so possibly one fewer); every
    # other connection got the one-line refusal. Before, 58 of 64 were admitted.
    assert 1 <= admitted <= 4 and admitted + refused == 64, (admitted, refused)
    for s in socks:
        s.close()
    # The slots come back as the daemon sees the closes; until then a connect may be refused.
    wait_until(lambda: connections_seen_alone(d) == 1, "every slot to be freed")
    assert_serves(d)


def connections_seen_alone(d: Daemon) -> int | None:
    """`connections` seen by a fresh client, or None if it was refused (all slots taken)."""
    try:
        c = d.connect()
    except OSError:
        return None
    try:
        reply = c.call("daemon/status")
        return reply["result"]["connections"] if "result" in reply else None
    except (ConnectionError, OSError):
        return None
    finally:
        c.close()


def probe_busy(d: Daemon) -> bool:
    return connections_seen_alone(d) != 1


# --- item 10: the signal race --------------------------------------------------------------------

def test_sigterm_right_after_socket_appears_is_clean(tmp_path: Path) -> None:
    for i in range(8):
        sock = tmp_path / f"s{i}" / "ptcd.sock"
        sock.parent.mkdir()
        proc = subprocess.Popen(
            [str(PTCD_BIN), "serve", "--socket", str(sock), "--scratch-dir", str(tmp_path / "scr")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the socket never appeared"
        # The handler must already be installed the moment the socket exists.
        sigcgt = next(line for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                      if line.startswith("SigCgt:"))
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        err = proc.stderr.read().decode() if proc.stderr else ""
        assert rc == 0, f"exit {rc} on SIGTERM right after the socket appeared:\n{err}"
        assert int(sigcgt.split()[1], 16) & (1 << (signal.SIGTERM - 1)), sigcgt
        assert not sock.exists(), "the socket file is removed"
