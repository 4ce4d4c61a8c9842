"""ptcd as a system service (issue #6): the systemd units, socket activation, readiness, the config
file, peer checks, graceful shutdown and crash recovery, all against the real binary.

CI runs these as root on a VM where PID 1 is not systemd, so nothing here needs a running systemd:
`systemd-analyze verify` checks the unit files offline, `systemd-socket-activate` passes the
listening socket the way systemd does (LISTEN_FDS/LISTEN_PID), a datagram socket stands in for
systemd's NOTIFY_SOCKET, and the hardening directives are approximated by the kernel features they
are built on (see `test_daemon_serves_runs_under_the_units_hardening_approximated`).
Each test is named for the behaviour it proves.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from daemon import PTCD_BIN, REPO, wait_until
from rpc import RpcClient

SYSTEMD_DIR = REPO / "systemd"
# The interpreter a client of another uid runs with (a test venv may live where that uid cannot read).
SYSTEM_PYTHON = "/usr/bin/python3"
START_TIMEOUT_S = 20.0
NOBODY = 65534


# --- helpers ----------------------------------------------------------------------------------


def process_dead(pid: int) -> bool:
    """True when `pid` no longer runs: gone, or a zombie nobody has reaped yet (it runs nothing)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    state = stat_line.rsplit(")", 1)[1].split()[0]
    return state in ("Z", "X")


def descendants(pid: int) -> set[int]:
    """Every live descendant of `pid`, from /proc/<pid>/task/*/children."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for k in map(int, kids):
                if k not in found:
                    found.add(k)
                    todo.append(k)
    return found


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def write_config(path: Path, **keys: Any) -> Path:
    path.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items()))
    return path


def connect_when_listening(sock: Path, proc: subprocess.Popen, log: Path) -> RpcClient:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"ptcd exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            return RpcClient(sock)
        except OSError:
            time.sleep(0.01)
    raise AssertionError(f"ptcd did not listen on {sock} within {START_TIMEOUT_S} s:\n{log.read_text(errors='replace')}")


class Service:
    """One `ptcd serve` process started by a test, with its socket, scratch dir and log."""

    def __init__(self, root: Path, proc: subprocess.Popen, socket_path: Path, scratch: Path, log: Path) -> None:
        self.root = root
        self.proc = proc
        self.socket = socket_path
        self.scratch = scratch
        self.log_path = log

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def connect(self) -> RpcClient:
        return connect_when_listening(self.socket, self.proc, self.log_path)

    def wait_exit(self, timeout: float = 20.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"ptcd did not exit within {timeout} s:\n{self.log()}") from None


@pytest.fixture
def scratch_base() -> Iterator[Path]:
    """Parent of the tests' scratch roots. As root the daemon gives each run its own uid, which
    must reach its scratch dir: every parent must be searchable by others (pytest's tmp_path is not)."""
    d = Path(tempfile.mkdtemp(prefix="ptcd-service-scratch-"))
    d.chmod(0o711)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def services(tmp_path: Path, scratch_base: Path) -> Iterator:
    """Starts `ptcd serve` processes (optionally through a launcher such as systemd-socket-activate).

    Each runs in its own session, so everything it started is killed at the end of the test.
    """
    started: list[Service] = []

    def start(
        *args: str,
        root: Path | None = None,
        launcher: list[str] | None = None,
        env: dict[str, str] | None = None,
        socket_path: Path | None = None,
        scratch: Path | None = None,
        socket_flag: bool = True,
    ) -> Service:
        if root is None:
            root = tmp_path / f"svc{len(started)}"
            root.mkdir()
        sock = socket_path or root / "ptcd.sock"
        scratch = scratch or scratch_base / f"scratch{len(started)}"
        log = root / f"daemon{len(started)}.log"
        cmd = [str(PTCD_BIN), "serve"]
        if socket_flag:
            cmd += ["--socket", str(sock)]
        cmd += ["--scratch-dir", str(scratch), *args]
        full_env = {k: v for k, v in os.environ.items() if k not in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET")}
        full_env.update(env or {})
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                (launcher or []) + cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
            )
        svc = Service(root, proc, sock, scratch, log)
        started.append(svc)
        return svc

    yield start
    for svc in started:
        if svc.proc.poll() is None:
            svc.proc.send_signal(signal.SIGTERM)
            try:
                svc.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(svc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if svc.proc.poll() is None:
            svc.proc.kill()
        svc.proc.wait()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every uid can traverse (pytest's tmp_path is root-only), for sockets that other
    uids must reach."""
    d = Path(tempfile.mkdtemp(prefix="ptcd-service-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def notify_socket(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(START_TIMEOUT_S)
    return s


def recv_notify_until(s: socket.socket, wanted: str) -> list[str]:
    """Reads sd_notify datagrams until one carries the assignment `wanted` (e.g. READY=1)."""
    seen: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            data = s.recv(4096)
        except socket.timeout:
            break
        seen.append(data.decode(errors="replace"))
        if wanted in data.decode(errors="replace").split("\n"):
            return seen
    raise AssertionError(f"no {wanted} on NOTIFY_SOCKET; received {seen!r}")


def socket_activate(listen: Path, notify: Path | None = None, fdname: str = "ptcd.socket") -> list[str]:
    """systemd-socket-activate binds `listen` and, like systemd, execs the daemon (same pid) with
    LISTEN_FDS=1 (fd 3) and LISTEN_PID when the first connection arrives."""
    exe = shutil.which("systemd-socket-activate")
    assert exe, "systemd-socket-activate is required for the socket activation tests (package systemd)"
    cmd = [exe, "-l", str(listen), f"--fdname={fdname}", "-E", f"PTCD_LOG={os.environ.get('PTCD_LOG') or 'info'}"]
    if notify is not None:
        cmd += ["-E", f"NOTIFY_SOCKET={notify}"]
    return cmd


BLOCKED_RUN = "import os\nawait report(pid=os.getpid())\nawait block()\n'never'"
SPINNING_RUN = "import os\nawait report(pid=os.getpid())\nwhile True:\n    pass"


def start_run_and_get_child_pid(c: RpcClient, code: str) -> tuple[int, int]:
    """Starts `code` (which reports its pid through the `report` tool) and answers that call.

    Returns (request id, child pid); the run then goes on (spinning, or blocked on `block`)."""
    rid = c.request("run", {"code": code, "tools": [{"name": "report"}, {"name": "block"}]})
    while True:
        msg = c.recv()
        if msg.get("method") == "tool/call" and msg["params"]["name"] == "report":
            c.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
            return rid, msg["params"]["arguments"]["pid"]
        assert "error" not in msg, f"run refused: {msg}"


def wait_for_tool_call(c: RpcClient, name: str) -> dict:
    """Reads until the daemon calls tool `name`; other messages are kept in the backlog."""
    skipped = []
    while True:
        msg = c.recv()
        if msg.get("method") == "tool/call" and msg["params"]["name"] == name:
            c.backlog = skipped + c.backlog
            return msg
        skipped.append(msg)


CLIENT_SCRIPT = textwrap.dedent(
    """
    import json, socket, sys
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(sys.argv[1])
    if len(sys.argv) > 2:
        try:
            s.sendall(sys.argv[2].encode() + b"\\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the request was read: the refusal line is still there to read
    def read():
        # A peer that closed with our request unread gives ECONNRESET after its data: that is a close.
        try:
            return s.recv(65536)
        except ConnectionResetError:
            return b""
    buf = b""
    while b"\\n" not in buf:
        chunk = read()
        if not chunk:
            break
        buf += chunk
    line = buf.split(b"\\n", 1)[0]
    rest = buf.split(b"\\n", 1)[1] if b"\\n" in buf else b""
    closed = False
    if line and not rest and len(sys.argv) <= 2:
        try:
            closed = read() == b""
        except socket.timeout:
            closed = False
    print(json.dumps({"line": line.decode(errors="replace"), "closed": closed}))
    """
)


def connect_as(uid: int, gid: int, sock: Path, send: dict | None = None) -> dict:
    """Connects to `sock` as `uid`/`gid` (setpriv), optionally sends one request, returns the first
    line the daemon wrote and whether it then closed the connection."""
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv is required (package util-linux)"
    cmd = [setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", SYSTEM_PYTHON, "-c", CLIENT_SCRIPT, str(sock)]
    if send is not None:
        cmd.append(json.dumps(send))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd="/")
    assert out.returncode == 0, f"client as uid {uid} failed: {out.stderr}"
    return json.loads(out.stdout)


# --- unit files -------------------------------------------------------------------------------


def unit_copy(src_dir: Path, dst: Path) -> Path:
    """The unit pair with ExecStart pointing at the built binary (verify checks that it exists)."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("ptcd.socket", "ptcd.service"):
        text = (src_dir / name).read_text()
        if name == "ptcd.service":
            lines = []
            for line in text.splitlines():
                if line.startswith("ExecStart="):
                    exe, _, rest = line[len("ExecStart=") :].partition(" ")
                    assert exe.endswith("/ptcd"), f"ExecStart should run ptcd: {line}"
                    line = f"ExecStart={PTCD_BIN} {rest}"
                lines.append(line)
            text = "\n".join(lines) + "\n"
        (dst / name).write_text(text)
    return dst


def systemd_analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze is not installed (package systemd): the unit files cannot be verified here")
    return exe


@pytest.mark.parametrize("variant", ["system", "user"])
def test_units_pass_systemd_analyze_verify(variant: str, tmp_path: Path) -> None:
    exe = systemd_analyze()
    src = SYSTEMD_DIR if variant == "system" else SYSTEMD_DIR / "user"
    units = unit_copy(src, tmp_path / "units")
    env = dict(os.environ)
    cmd = [exe, "verify"]
    if variant == "user":
        runtime = tmp_path / "xdg-runtime"
        runtime.mkdir(mode=0o700)
        env["XDG_RUNTIME_DIR"] = str(runtime)
        cmd.append("--user")
    out = subprocess.run(cmd + ["./ptcd.socket", "./ptcd.service"], cwd=units, env=env, capture_output=True, text=True, timeout=60)
    about_us = [line for line in (out.stdout + out.stderr).splitlines() if "ptcd" in line]
    assert out.returncode == 0 and not about_us, f"systemd-analyze verify:\n{out.stdout}{out.stderr}"


def unit_settings(path: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            k, _, v = line.partition("=")
            settings.setdefault(k.strip(), []).append(v.strip())
    return settings


def test_units_wire_socket_activation_readiness_and_mixed_kill() -> None:
    for src, listen in ((SYSTEMD_DIR, "/run/ptcd/ptcd.sock"), (SYSTEMD_DIR / "user", "%t/ptcd.sock")):
        sock = unit_settings(src / "ptcd.socket")
        svc = unit_settings(src / "ptcd.service")
        assert sock["ListenStream"] == [listen]
        assert sock.get("Accept", ["no"]) == ["no"]
        assert svc["Type"] == ["notify"]
        # SIGTERM to the daemon alone (the runs get their grace), SIGKILL to the whole cgroup after.
        assert svc["KillMode"] == ["mixed"]
        assert svc["Requires"] == ["ptcd.socket"]
        assert "ExecReload" in svc and "-HUP" in svc["ExecReload"][0]
        # A service-wide syscall filter would have to leave the confinement's own syscalls alone.
        for f in svc.get("SystemCallFilter", []):
            assert not any(s in f for s in ("landlock", "seccomp", "prctl", "@process", "@setuid")) or not f.startswith("~")
        assert "PrivateUsers" not in svc, "the daemon must keep real root to give runs their own uid"


def test_system_unit_makes_the_daemon_a_late_oom_victim() -> None:
    """The daemon serves every agent: the OOM killer must take a run's interpreter (whose
    launcher sets oom_score_adj 1000, see tests/hardening) long before it."""
    svc = unit_settings(SYSTEMD_DIR / "ptcd.service")
    assert int(svc["OOMScoreAdjust"][0]) <= -500, svc.get("OOMScoreAdjust")


def test_system_service_exposure_stays_low() -> None:
    """`systemd-analyze security` (offline) scores the hardening; a regression fails here."""
    exe = systemd_analyze()
    out = subprocess.run(
        [exe, "security", "--offline=yes", "--threshold=30", str(SYSTEMD_DIR / "ptcd.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, f"exposure above 3.0:\n{out.stdout}{out.stderr}"


# --- socket activation and readiness ----------------------------------------------------------


def test_socket_activated_daemon_serves_on_the_passed_fd_and_leaves_the_socket_to_systemd(services, tmp_path: Path) -> None:
    listen = tmp_path / "activated.sock"
    named = tmp_path / "only-for-logs.sock"
    svc = services(launcher=socket_activate(listen), socket_path=named)
    c = connect_when_listening(listen, svc.proc, svc.log_path)
    r = c.run("r = await get_weather(city='Paris')\nprint(r['temp_c'])", {"get_weather": lambda city: {"temp_c": 18}})
    assert r["status"] == "ok" and r["stdout"] == "18\n"
    # It served on fd 3 and did not bind a socket of its own.
    assert not named.exists(), "the daemon bound --socket although a socket was passed in"
    c.close()
    svc.proc.send_signal(signal.SIGTERM)
    assert svc.wait_exit() == 0, svc.log()
    # The socket belongs to systemd (ptcd.socket): the daemon must not unlink it.
    assert listen.exists() and stat.S_ISSOCK(listen.stat().st_mode)


def test_activation_variables_do_not_reach_the_script(services, tmp_path: Path) -> None:
    listen = tmp_path / "activated.sock"
    notify_path = tmp_path / "notify"
    n = notify_socket(notify_path)
    svc = services(launcher=socket_activate(listen, notify_path), socket_path=listen)
    c = connect_when_listening(listen, svc.proc, svc.log_path)  # the first connection starts it
    recv_notify_until(n, "READY=1")
    r = c.run("import os\nsorted(k for k in os.environ if k.startswith(('LISTEN_', 'NOTIFY_')))")
    assert r["status"] == "ok", r
    assert r["value"] == []


def test_readiness_is_notified_after_the_listener_is_ready_and_stopping_on_sigterm(services, tmp_path: Path) -> None:
    notify_path = tmp_path / "notify"
    n = notify_socket(notify_path)
    svc = services(env={"NOTIFY_SOCKET": str(notify_path)})
    recv_notify_until(n, "READY=1")
    # READY=1 means ready: the very first connect must succeed, no polling.
    c = RpcClient(svc.socket)
    assert c.run("1 + 1")["value"] == 2
    c.close()
    svc.proc.send_signal(signal.SIGTERM)
    recv_notify_until(n, "STOPPING=1")
    assert svc.wait_exit() == 0, svc.log()


def test_socket_activated_daemon_notifies_readiness_and_works_without_a_network(services, tmp_path: Path) -> None:
    """PrivateNetwork=yes: in an empty network namespace the passed Unix socket still serves."""
    unshare = shutil.which("unshare")
    assert unshare, "unshare is required (package util-linux)"
    listen = tmp_path / "activated.sock"
    notify_path = tmp_path / "notify"
    n = notify_socket(notify_path)
    svc = services(launcher=[unshare, "--net", "--"] + socket_activate(listen, notify_path), socket_path=listen)
    c = connect_when_listening(listen, svc.proc, svc.log_path)  # the first connection starts it
    recv_notify_until(n, "READY=1")
    r = c.run("import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=1)\nexcept OSError:\n    print('no network')")
    assert r["status"] == "ok" and r["stdout"] == "no network\n", r


# --- graceful shutdown ------------------------------------------------------------------------


def test_sigterm_refuses_new_requests_cancels_the_in_flight_run_after_the_grace_and_exits_clean(services, tmp_path: Path) -> None:
    grace_ms = 4000
    cfg = write_config(tmp_path / "config.toml", shutdown_grace_ms=grace_ms)
    n = notify_socket(tmp_path / "notify")
    svc = services("--config", str(cfg), env={"NOTIFY_SOCKET": str(tmp_path / "notify")})
    recv_notify_until(n, "READY=1")
    a = svc.connect()
    b = svc.connect()
    # Two connections, each with a run blocked on a tool call that is never answered. (A connection
    # with nothing in flight may be closed at once on SIGTERM; these two stay open for the grace.)
    rid_a, child_a = start_run_and_get_child_pid(a, BLOCKED_RUN)
    wait_for_tool_call(a, "block")
    rid_b, child_b = start_run_and_get_child_pid(b, BLOCKED_RUN)
    wait_for_tool_call(b, "block")
    assert b.call("daemon/status")["result"]["runs_active"] == 2

    t0 = time.monotonic()
    svc.proc.send_signal(signal.SIGTERM)
    recv_notify_until(n, "STOPPING=1")  # the daemon has taken the signal in
    # During the grace, a new request is refused with -32007, on either connection.
    for c in (b, a):
        refused = c.call("run", {"code": "print('too late')"})
        assert refused.get("error", {}).get("code") == -32007, refused
    # Still during the grace: the in-flight runs' children are alive.
    assert not process_dead(child_a) and not process_dead(child_b), "an in-flight run was killed before its grace ran out"

    for c, rid in ((a, rid_a), (b, rid_b)):
        resp = c.wait_response(rid)
        assert resp["result"]["status"] == "cancelled", resp
    waited = time.monotonic() - t0
    assert waited >= grace_ms / 1000 * 0.9, f"the runs were cancelled after {waited:.2f} s, before the grace"

    assert svc.wait_exit() == 0, svc.log()
    assert not svc.socket.exists(), "the socket file was left behind"
    wait_until(lambda: process_dead(child_a) and process_dead(child_b), "the run children to be gone", timeout=2)
    assert not svc.scratch.exists() or not any(svc.scratch.iterdir()), "scratch dirs were left behind"


def test_sigterm_lets_a_run_that_ends_within_the_grace_finish(services, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.toml", shutdown_grace_ms=10000)
    svc = services("--config", str(cfg))
    a = svc.connect()
    rid = a.request("run", {"code": "v = await block()\nprint(v)", "tools": [{"name": "block"}]})
    call = wait_for_tool_call(a, "block")
    svc.proc.send_signal(signal.SIGTERM)
    # Wait until the daemon is draining (its STOPPING state is visible as a refused request).
    wait_until(lambda: draining(a), "the daemon to refuse new requests", timeout=5)
    a.send({"jsonrpc": "2.0", "id": call["id"], "result": "finished in time"})
    resp = a.wait_response(rid)
    assert resp["result"]["status"] == "ok" and resp["result"]["stdout"] == "finished in time\n", resp
    assert svc.wait_exit() == 0, svc.log()


def draining(c: RpcClient) -> bool:
    resp = c.call("daemon/status")
    return resp.get("error", {}).get("code") == -32007 or resp.get("result", {}).get("draining") is True


# --- peer checks ------------------------------------------------------------------------------


def test_peer_uid_not_allowed_is_refused_with_one_error_line_and_root_still_works(services, shared_dir: Path) -> None:
    cfg = write_config(shared_dir / "config.toml", allowed_uids=[0], socket_mode="0666")
    svc = services("--config", str(cfg), root=shared_dir)
    root_client = svc.connect()
    assert stat.S_IMODE(svc.socket.stat().st_mode) == 0o666

    got = connect_as(NOBODY, NOBODY, svc.socket)
    refusal = json.loads(got["line"])
    assert refusal["jsonrpc"] == "2.0" and refusal["id"] is None, refusal
    assert refusal["error"]["code"] == -32600
    assert "connection refused" in refusal["error"]["message"] and f"uid {NOBODY}" in refusal["error"]["message"]
    assert got["closed"], "the daemon must close a refused connection"
    wait_until(lambda: f"{NOBODY}" in svc.log(), "the refusal to be logged", timeout=5)

    assert root_client.run("'still served'")["value"] == "still served"


def test_peer_gid_in_allowed_gids_is_admitted(services, shared_dir: Path) -> None:
    cfg = write_config(shared_dir / "config.toml", allowed_uids=[0], allowed_gids=[4242], socket_mode="0666")
    svc = services("--config", str(cfg), root=shared_dir)
    svc.connect().close()
    got = connect_as(NOBODY, 4242, svc.socket, send={"jsonrpc": "2.0", "id": 1, "method": "daemon/status"})
    resp = json.loads(got["line"])
    assert resp.get("id") == 1 and "result" in resp, resp


def test_without_allowed_lists_the_socket_mode_decides(services, shared_dir: Path) -> None:
    cfg = write_config(shared_dir / "config.toml", socket_mode="0666")
    svc = services("--config", str(cfg), root=shared_dir)
    svc.connect().close()
    got = connect_as(NOBODY, NOBODY, svc.socket, send={"jsonrpc": "2.0", "id": 7, "method": "daemon/status"})
    assert json.loads(got["line"]).get("id") == 7, got


def test_sighup_reloads_allowed_peers_and_keeps_open_connections(services, shared_dir: Path) -> None:
    cfg = write_config(shared_dir / "config.toml", socket_mode="0666")
    svc = services("--config", str(cfg), root=shared_dir)
    kept = svc.connect()
    status = {"jsonrpc": "2.0", "id": 1, "method": "daemon/status"}
    assert "result" in json.loads(connect_as(NOBODY, NOBODY, svc.socket, send=status)["line"])

    write_config(cfg, socket_mode="0666", allowed_uids=[0])
    svc.proc.send_signal(signal.SIGHUP)

    def refused() -> bool:
        line = json.loads(connect_as(NOBODY, NOBODY, svc.socket, send=status)["line"])
        return line.get("error", {}).get("code") == -32600

    wait_until(refused, "uid 65534 to be refused after SIGHUP", timeout=10)
    assert svc.proc.poll() is None
    assert kept.run("'kept'")["value"] == "kept"


# --- configuration ----------------------------------------------------------------------------


def serve_expecting_failure(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    sock = tmp_path / "never.sock"
    out = subprocess.run(
        [str(PTCD_BIN), "serve", "--socket", str(sock), "--scratch-dir", str(tmp_path / "scratch"), *args],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )
    assert out.returncode != 0, f"ptcd started with {args}:\n{out.stderr}"
    assert not sock.exists(), "a daemon that refused its config must not listen"
    return out


@pytest.mark.parametrize(
    "text, named",
    [
        ("bogus_key = 1\n", "bogus_key"),
        ('max_concurrent_runs = "many"\n', "max_concurrent_runs"),
        ('socket_mode = "0999"\n', "socket_mode"),
        ("socket_mode = 432\n", "socket_mode"),
        ('log_format = "xml"\n', "log_format"),
        ('allowed_uids = ["root"]\n', "allowed_uids"),
        ("shutdown_grace_ms = -1\n", "shutdown_grace_ms"),
    ],
    ids=["unknown-key", "wrong-type", "bad-octal-mode", "mode-not-a-string", "bad-log-format", "uid-not-an-int", "negative-grace"],
)
def test_config_error_stops_the_daemon_naming_the_key(text: str, named: str, tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("# a valid line first\nmax_line_bytes = 65536\n" + text)
    out = serve_expecting_failure(["--config", str(cfg)], tmp_path)
    assert named in out.stderr, f"the error does not name {named}:\n{out.stderr}"


def test_missing_config_file_given_with_flag_is_an_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-config.toml"
    out = serve_expecting_failure(["--config", str(missing)], tmp_path)
    assert str(missing) in out.stderr, out.stderr


def test_config_syntax_error_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "broken.toml"
    cfg.write_text("max_line_bytes = = 3\n")
    out = serve_expecting_failure(["--config", str(cfg)], tmp_path)
    assert str(cfg) in out.stderr, out.stderr


def test_config_file_applies_and_flags_override_it(services, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "config.toml", socket_mode="0640", max_concurrent_runs=3, max_line_bytes=65536)
    svc = services("--config", str(cfg), "--max-runs", "5")
    c = svc.connect()
    assert stat.S_IMODE(svc.socket.stat().st_mode) == 0o640
    assert c.call("daemon/status")["result"]["max_concurrent_runs"] == 5
    # max_line_bytes from the file: a longer line is refused, the connection goes on.
    c.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"daemon/status","params":{"pad":"' + b"x" * 70000 + b'"}}\n')
    assert c.recv()["error"]["code"] == -32600
    assert "result" in c.call("daemon/status")


def test_non_root_default_config_is_read_from_xdg_config_home(shared_dir: Path) -> None:
    """A missing default file is fine, a present one is read: an error in it proves it was read."""
    conf_home = shared_dir / "xdg"
    (conf_home / "ptcd").mkdir(parents=True)
    (conf_home / "ptcd" / "config.toml").write_text("not_a_ptcd_key = true\n")
    for p in (conf_home, conf_home / "ptcd", conf_home / "ptcd" / "config.toml"):
        os.chown(p, NOBODY, NOBODY)
    env = {"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(conf_home), "HOME": str(shared_dir)}
    cmd = [
        "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
        str(PTCD_BIN), "serve", "--socket", str(shared_dir / "nobody.sock"), "--scratch-dir", str(shared_dir / "scratch"),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=START_TIMEOUT_S, env=env, cwd="/")
    assert out.returncode != 0 and "not_a_ptcd_key" in out.stderr, out.stderr


# --- crash recovery ---------------------------------------------------------------------------


def test_kill_9_with_runs_in_flight_leaves_no_child_and_a_restart_serves_again(services, tmp_path: Path) -> None:
    svc = services()
    conns = [svc.connect(), svc.connect()]
    _, blocked = start_run_and_get_child_pid(conns[0], BLOCKED_RUN)
    _, spinning = start_run_and_get_child_pid(conns[1], SPINNING_RUN)
    # Idle warm interpreters (refilled after the two runs took theirs) must die with it too.
    wait_until(lambda: conns[0].call("daemon/status")["result"]["warm_idle"] == 2, "the warm pool to refill")
    children = descendants(svc.pid)
    assert {blocked, spinning} <= children, f"run children {blocked}, {spinning} not under the daemon: {children}"
    assert len(children - {blocked, spinning}) >= 2, f"idle warm children not under the daemon: {children}"
    scratch_before = set(svc.scratch.iterdir()) if svc.scratch.exists() else set()

    os.kill(svc.pid, signal.SIGKILL)
    svc.proc.wait(timeout=10)
    wait_until(lambda: all(process_dead(p) for p in children), f"children {sorted(children)} to die with the daemon", timeout=2)
    for c in conns:
        c.close()
    assert svc.socket.exists(), "precondition: kill -9 leaves the socket file behind"

    again = services(root=svc.root, socket_path=svc.socket, scratch=svc.scratch)
    c = again.connect()
    assert c.run("print('back')")["stdout"] == "back\n"
    leftovers = scratch_before & (set(svc.scratch.iterdir()) if svc.scratch.exists() else set())
    assert not leftovers, f"scratch dirs of the dead daemon were not removed: {leftovers}"


def test_children_die_with_a_kill_9_even_outside_a_service_cgroup(services, tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: without systemd's KillMode=control-group, nothing else would kill them."""
    svc = services()
    c = svc.connect()
    _, child = start_run_and_get_child_pid(c, SPINNING_RUN)
    grandchildren = descendants(child)
    wait_until(lambda: c.call("daemon/status")["result"]["warm_idle"] > 0, "an idle warm interpreter")
    warm = descendants(svc.pid) - {child} - grandchildren
    assert warm, "no idle warm interpreter under the daemon"
    os.kill(svc.pid, signal.SIGKILL)
    wait_until(lambda: process_dead(child) and all(process_dead(p) for p in grandchildren), "the run child to die", timeout=2)
    wait_until(lambda: all(process_dead(p) for p in warm), f"idle warm children {sorted(warm)} to die", timeout=2)


# --- hardening --------------------------------------------------------------------------------

HARDENED_LAUNCHER = textwrap.dedent(
    """
    # Applies, to itself and everything it execs, approximations of ptcd.service's hardening that
    # need no systemd: ProtectSystem=strict (every mount read-only except the writable paths),
    # PrivateTmp=yes (an empty tmpfs on /tmp and /var/tmp), ProtectHome=yes (tmpfs over /home and
    # /root), MemoryDenyWriteExecute=yes (PR_SET_MDWE). Run inside `unshare --mount --net`.
    import ctypes, os, sys
    libc = ctypes.CDLL(None, use_errno=True)
    def run(*cmd):
        if os.spawnvp(os.P_WAIT, cmd[0], list(cmd)) != 0:
            sys.exit(f"failed: {cmd}")
    writable = sys.argv[1].split(":")
    run("mount", "--make-rprivate", "/")
    for w in writable:
        run("mount", "--bind", w, w)
    mounts = []
    for line in open("/proc/self/mountinfo"):
        mp = line.split()[4]
        mounts.append(mp)
    for mp in mounts:
        if mp.startswith(("/proc", "/sys", "/dev")) or mp in writable or any(mp.startswith(w + "/") for w in writable):
            continue
        os.spawnvp(os.P_WAIT, "mount", ["mount", "-o", "remount,bind,ro", mp])
    for d in ("/tmp", "/var/tmp", "/home", "/root"):
        if os.path.isdir(d) and not any(w == d or w.startswith(d + "/") for w in writable):
            run("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", d)
    if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        sys.exit("PR_SET_MDWE: " + os.strerror(ctypes.get_errno()))
    os.execvp(sys.argv[2], sys.argv[2:])
    """
)

HARDENING_PROBE = textwrap.dedent(
    """
    import asyncio, ctypes, hashlib, json, sqlite3, threading, zoneinfo
    libc = ctypes.CDLL(None)
    CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
    arr = (ctypes.c_int * 4)(3, 1, 4, 2)
    libc.qsort(arr, 4, ctypes.sizeof(ctypes.c_int), CMP(lambda a, b: a[0] - b[0]))
    t = threading.Thread(target=lambda: None); t.start(); t.join()
    rows = sqlite3.connect(':memory:').execute('select 40 + 2').fetchone()
    r = await asyncio.gather(echo(x=1), echo(x=2))
    {'sorted': list(arr), 'sha': hashlib.sha256(b'ptcd').hexdigest()[:8], 'sql': rows[0], 'tools': r}
    """
)


def capability_bounding_set() -> list[str]:
    caps = " ".join(unit_settings(SYSTEMD_DIR / "ptcd.service")["CapabilityBoundingSet"]).split()
    return [c.lower().removeprefix("cap_") for c in caps]


def test_daemon_serves_runs_under_the_units_hardening_approximated(services, tmp_path: Path, scratch_base: Path) -> None:
    """The unit's CapabilityBoundingSet and NoNewPrivileges (setpriv), PrivateNetwork (empty netns),
    ProtectSystem=strict/PrivateTmp/ProtectHome (read-only mounts, tmpfs), MemoryDenyWriteExecute
    (PR_SET_MDWE) and socket activation, all at once: CPython still runs ctypes callbacks, threads,
    sqlite, hashlib and asyncio in the child, and tool calls round-trip."""
    for tool in ("unshare", "setpriv", "systemd-socket-activate", "mount"):
        assert shutil.which(tool), f"{tool} is required"
    settings = unit_settings(SYSTEMD_DIR / "ptcd.service")
    assert settings.get("NoNewPrivileges") == ["yes"] and settings.get("MemoryDenyWriteExecute") == ["yes"]
    assert settings.get("ProtectSystem") == ["strict"] and settings.get("PrivateNetwork") == ["yes"]
    # The test's directories stand in for /var/lib/ptcd (StateDirectory=): the only writable ones.
    state = scratch_base / "state"
    state.mkdir(mode=0o711)
    listen = tmp_path / "hardened.sock"
    launcher_py = tmp_path / "hardened_launcher.py"
    launcher_py.write_text(HARDENED_LAUNCHER)
    notify_path = tmp_path / "notify"
    n = notify_socket(notify_path)
    bounding = ",".join(["-all"] + ["+" + c for c in capability_bounding_set()])
    # RuntimeDirectory=ptcd-uid-leases: the host-wide uid lease dir, writable under strict.
    leases = Path("/run/ptcd-uid-leases")
    leases.mkdir(mode=0o700, exist_ok=True)
    launcher = (
        ["unshare", "--mount", "--net", "--", SYSTEM_PYTHON, str(launcher_py), f"{tmp_path}:{scratch_base}:{leases}"]
        + ["setpriv", f"--bounding-set={bounding}", "--inh-caps=-all", "--no-new-privs", "--"]
        + socket_activate(listen, notify_path)
    )
    svc = services(launcher=launcher, socket_path=listen, scratch=state / "scratch")
    c = connect_when_listening(listen, svc.proc, svc.log_path)  # the first connection starts it
    recv_notify_until(n, "READY=1")
    r = c.run(HARDENING_PROBE, {"echo": lambda x: x * 10})
    assert r["status"] == "ok", f"{r}\n{svc.log()}"
    assert r["value"] == {"sorted": [1, 2, 3, 4], "sha": hashlib_prefix(), "sql": 42, "tools": [10, 20]}
    # The hardening really was in force for the daemon (and therefore for its children).
    status = Path(f"/proc/{svc.pid}/status").read_text()
    assert "NoNewPrivs:\t1" in status
    bnd = int(next(line.split()[1] for line in status.splitlines() if line.startswith("CapBnd:")), 16)
    # CAP_SYS_ADMIN is kept on purpose: each scratch dir is a size-capped tmpfs the daemon mounts.
    assert bnd & (1 << 21), "CAP_SYS_ADMIN (scratch tmpfs mounts) is missing from the bounding set"
    assert bnd & (1 << 19) == 0, "CAP_SYS_PTRACE is in the bounding set"
    assert c.call("initialize")["result"]["sandbox"]["scratch"] == "tmpfs"
    r = c.run("try:\n    open('/usr/ptcd-probe', 'w')\n    got = 'writable'\nexcept OSError as e:\n    got = type(e).__name__\ngot")
    assert r["value"] in ("PermissionError", "OSError"), r


def hashlib_prefix() -> str:
    import hashlib

    return hashlib.sha256(b"ptcd").hexdigest()[:8]


# --- a real systemd manager -------------------------------------------------------------------

MANAGER_BOOT = textwrap.dedent(
    """
    set -e
    # A private mount namespace: systemd --user agrees to run once /run/systemd/system exists, and
    # ProtectHome=/ProtectKernel*= mask paths with the nodes in /run/systemd/inaccessible.
    mount -t tmpfs -o mode=0755 tmpfs /run/systemd
    mkdir /run/systemd/system /run/systemd/inaccessible
    cd /run/systemd/inaccessible
    mkdir dir; touch reg; mknod chr c 0 0; mknod blk b 0 0; mkfifo fifo
    python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("sock")'
    chmod 000 dir reg chr blk fifo sock
    cd /
    # A cgroup of its own: a user manager names its units' cgroups after them below its own
    # cgroup, so two managers in one cgroup (two copies of the suite at once) would share
    # ".../ptcd.service", and stopping or killing one unit would SIGKILL the other's daemon.
    for h in $CGROUP_HIERARCHIES; do
        mkdir -p "$h/ptcd-test-$$" && echo $$ > "$h/ptcd-test-$$/cgroup.procs"
    done
    exec /lib/systemd/systemd --user --unit=ptcd.socket
    """
)


class UserManager:
    """`systemd --user` run as root in a private mount namespace: it keeps every capability, so it
    applies the system unit's namespacing, capability and seccomp directives for real."""

    def __init__(self, runtime: Path, log: Path) -> None:
        self.runtime = runtime
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "XDG_RUNTIME_DIR": str(runtime),
               "CGROUP_HIERARCHIES": " ".join(str(h) for h in cgroup_hierarchies())}
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", MANAGER_BOOT],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.log = log

    def ctl(self, *args: str, check: bool = True) -> str:
        cmd = ["nsenter", "-t", str(self.proc.pid), "-m", "env", f"XDG_RUNTIME_DIR={self.runtime}", "systemctl", "--user", *args]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if check and out.returncode != 0:
            raise AssertionError(f"systemctl --user {' '.join(args)}: {out.stdout}{out.stderr}")
        return out.stdout.strip()

    def prop(self, unit: str, name: str) -> str:
        return self.ctl("show", "-P", name, unit)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.ctl("stop", "ptcd.service", "ptcd.socket", check=False)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for h in cgroup_hierarchies():  # the manager's own cgroups, empty once it has exited
            for d in sorted((h / f"ptcd-test-{self.proc.pid}").glob("**/"), key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    d.rmdir()


def cgroup_hierarchies() -> list[Path]:
    """Where systemd tracks processes: the unified hierarchy (cgroup v2, or the `unified` mount
    of a hybrid setup) and the named `systemd` one of a hybrid setup."""
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.procs").exists():
        return [root]
    return [root / h for h in ("unified", "systemd") if (root / h / "cgroup.procs").exists()]


@pytest.fixture
def user_manager() -> Iterator:
    if os.geteuid() != 0:
        pytest.fail("the service suite runs as root (CI does)")
    for tool in ("unshare", "nsenter", "systemctl"):
        assert shutil.which(tool), f"{tool} is required"
    assert Path("/lib/systemd/systemd").exists(), "/lib/systemd/systemd is required (package systemd)"
    runtime = Path(tempfile.mkdtemp(prefix="ptcd-test-", dir="/run"))  # not /tmp: PrivateTmp= hides it
    runtime.chmod(0o700)
    state = Path(tempfile.mkdtemp(prefix="ptcd-test-", dir="/var/lib"))  # not /var/tmp: PrivateTmp=
    state.chmod(0o711)
    units = runtime / "systemd" / "user"
    units.mkdir(parents=True)
    sock = runtime / "ptcd-system.sock"
    # A copy of the binary where the unit can see it: the checkout may live under /tmp or /home,
    # which PrivateTmp= and ProtectHome= hide from the service.
    binary = runtime / "ptcd"
    shutil.copy2(PTCD_BIN, binary)
    # The system units, unchanged but for the socket path, the binary, and StateDirectory= (a user
    # manager puts it under ~/.local/state, which ProtectHome= hides): a 0711 directory instead.
    text = (SYSTEMD_DIR / "ptcd.socket").read_text()
    text = text.replace("ListenStream=/run/ptcd/ptcd.sock", f"ListenStream={sock}").replace("SocketGroup=ptcd\n", "")
    (units / "ptcd.socket").write_text(text)
    lines = []
    for line in (SYSTEMD_DIR / "ptcd.service").read_text().splitlines():
        if line.startswith("ExecStart="):
            line = f"ExecStart={binary} serve --config {state}/config.toml --socket {sock} --scratch-dir {state}/scratch"
        elif line.startswith("StateDirectory="):
            line = f"ReadWritePaths={state}"
        elif line.startswith("RuntimeDirectory="):
            # A user manager puts it under $XDG_RUNTIME_DIR; the uid leases must be host-wide.
            Path("/run/ptcd-uid-leases").mkdir(mode=0o700, exist_ok=True)
            line = "ReadWritePaths=/run/ptcd-uid-leases"
        elif line.startswith(("StateDirectoryMode=", "ConfigurationDirectory=", "RuntimeDirectoryMode=",
                              "RuntimeDirectoryPreserve=")):
            continue
        elif line.startswith(("ProtectKernelTunables=", "ProtectControlGroups=")):
            # Under this emulated manager these two break sd_notify for any service (a three-line
            # Python notifier fails the same way), so READY=1 could not be checked with them. The
            # CPython probe was run with them in force by hand (systemd/README.md).
            continue
        lines.append(line)
    (units / "ptcd.service").write_text("\n".join(lines) + "\n")
    write_config(state / "config.toml", shutdown_grace_ms=1500)
    m = UserManager(runtime, state / "manager.log")
    m.socket = sock  # type: ignore[attr-defined]
    m.state = state  # type: ignore[attr-defined]
    try:
        wait_until(lambda: sock.exists() or m.proc.poll() is not None, "the manager to listen on ptcd.socket", timeout=30)
        assert m.proc.poll() is None, f"systemd --user exited:\n{(state / 'manager.log').read_text(errors='replace')}"
        yield m
    finally:
        m.stop()
        shutil.rmtree(runtime, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)


def test_system_unit_under_a_real_systemd_manager_serves_notifies_stops_and_restarts(user_manager) -> None:
    """Every directive of ptcd.service applied by systemd itself: a socket-activated run with the
    CPython probe works, READY=1 makes the unit active, stop cancels a run in flight and exits 0,
    kill -9 is followed by a restart that serves again."""
    m = user_manager
    c = RpcClient(m.socket)  # the first connection starts ptcd.service
    try:
        r = c.run(HARDENING_PROBE, {"echo": lambda x: x * 10})
    except ConnectionError as e:
        raise AssertionError(f"{e}\n{m.ctl('status', '--no-pager', '-n', '50', 'ptcd.service', check=False)}") from None
    assert r["status"] == "ok", r
    r = c.run("import mmap\ntry:\n    mmap.mmap(-1, 4096, prot=7)\n    got = 'wx'\nexcept OSError as e:\n    got = e.errno\ngot")
    assert r["value"] != "wx", "MemoryDenyWriteExecute= is not in force"
    main_pid = int(m.prop("ptcd.service", "MainPID"))
    try:
        wait_until(lambda: m.prop("ptcd.service", "ActiveState") == "active", "READY=1 to make ptcd.service active", timeout=10)
    except AssertionError as e:
        env = Path(f"/proc/{main_pid}/environ").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        raise AssertionError(f"{e}\nenv: {env}\n{m.ctl('status', '--no-pager', 'ptcd.service', check=False)}") from None
    assert "NoNewPrivs:\t1" in Path(f"/proc/{main_pid}/status").read_text()

    # kill -9: the run's child dies with the daemon, systemd restarts the service on the next connection.
    _, child = start_run_and_get_child_pid(c, SPINNING_RUN)
    os.kill(main_pid, signal.SIGKILL)
    wait_until(lambda: process_dead(child), "the run child to die with the daemon", timeout=2)
    c.close()

    def serves_again() -> bool:
        try:
            return RpcClient(m.socket).run("'again'")["value"] == "again"
        except (OSError, ConnectionError):
            return False

    wait_until(serves_again, "a restarted ptcd to serve", timeout=20)
    new_pid = int(m.prop("ptcd.service", "MainPID"))
    assert new_pid not in (0, main_pid)

    # systemctl stop with a run in flight: cancelled after shutdown_grace_ms, clean exit.
    c = RpcClient(m.socket)
    rid, child = start_run_and_get_child_pid(c, BLOCKED_RUN)
    m.ctl("stop", "--no-block", "ptcd.service")
    try:
        answer = c.wait_response(rid)
    except ConnectionError as e:  # seen twice under a doubly loaded host: keep what explains it
        raise AssertionError(f"{e}\n{m.ctl('status', '--no-pager', '-n', '80', 'ptcd.service', check=False)}\n"
                             f"manager log:\n{m.log.read_text(errors='replace')[-20000:]}") from None
    assert answer["result"]["status"] == "cancelled", answer
    wait_until(lambda: m.prop("ptcd.service", "ActiveState") in ("inactive", "failed"), "ptcd.service to stop", timeout=20)
    assert m.prop("ptcd.service", "Result") == "success"
    assert m.prop("ptcd.service", "ExecMainStatus") == "0"
    assert process_dead(child)
    assert m.socket.exists(), "the socket belongs to ptcd.socket and must survive the service"
