"""Fixtures of the escape suite: one real `ptcd serve` on a real socket, with the test policies.

Every case runs one attack as a script and asserts the specific denial the script saw (the
errno name it printed, or the run's status and message), then asserts that the daemon still
serves the next run. Helpers here do the second part, so no case can forget it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest

from daemon import Daemon
from rpc import RpcClient

POLICY_DIR = Path(__file__).resolve().parent / "policies"

# The Landlock ABI the suite's daemon may use (`--landlock-max-abi`), as on an older kernel:
# 1 Ubuntu 22.04 (5.15), 2 Debian 12 (6.1), 4 Ubuntu 24.04 (6.8), 6 Linux 6.12. Unset: the
# kernel's. `tests/run-all.sh` runs the suite at each of those levels.
LANDLOCK_MAX_ABI = int(os.environ["PTCD_ESCAPE_LANDLOCK_MAX_ABI"]) if os.environ.get(
    "PTCD_ESCAPE_LANDLOCK_MAX_ABI") else None


def kernel_landlock_abi() -> int:
    """The kernel's Landlock ABI (landlock_create_ruleset(NULL, 0, VERSION))."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    v = libc.syscall(ctypes.c_long(444), None, ctypes.c_long(0), ctypes.c_long(1))
    return max(int(v), 0)


def landlock_abi_in_use() -> int:
    """The ABI runs are confined with: the kernel's, capped (ptcd uses at most 7)."""
    abi = min(kernel_landlock_abi(), 7)
    return min(abi, LANDLOCK_MAX_ABI) if LANDLOCK_MAX_ABI else abi


# `PTCD_ESCAPE_UNPRIVILEGED=1`: the suite's daemon runs as `nobody` with no capabilities (a
# per-user service): no per-run uids, scratch dirs in measured mode. Cases that differ say so.
UNPRIVILEGED = os.environ.get("PTCD_ESCAPE_UNPRIVILEGED") == "1"
UNPRIVILEGED_UID = 65534


def unprivileged_prefix() -> list[str]:
    """How the unprivileged daemon is started: another uid, no groups, no capabilities."""
    uid = UNPRIVILEGED_UID
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--reset-env"]


def daemon_args() -> list[str]:
    """Flags every escape-suite daemon gets (the ABI cap, when set)."""
    return ["--landlock-max-abi", str(LANDLOCK_MAX_ABI)] if LANDLOCK_MAX_ABI else []

# Prepended to attempts: a raw syscall through ctypes that raises OSError like os.* does.
SYSCALL_HELPER = """
import ctypes as _ct, os as _os
_libc = _ct.CDLL(None, use_errno=True)
_libc.syscall.restype = _ct.c_long
def raw_syscall(nr, *args):
    r = _libc.syscall(_ct.c_long(nr), *[_ct.c_long(a) for a in args])
    if r == -1:
        e = _ct.get_errno()
        raise OSError(e, _os.strerror(e))
    return r
"""

ATTEMPT = """
import errno as _errno
{setup}
try:
{body}
except BaseException as _exc:
    print("DENIED", type(_exc).__name__, _errno.errorcode.get(getattr(_exc, "errno", None) or 0, "-"))
else:
    print("ALLOWED")
"""


class Sandbox:
    """Runs attacks against the daemon and checks it keeps serving afterwards."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.client = RpcClient(daemon.socket)

    def close(self) -> None:
        self.client.close()

    def raw(self, code: str, handlers: dict | None = None, **params: Any) -> dict:
        """The whole response (result or error) of one run."""
        handlers = handlers or {}
        if handlers and "tools" not in params:
            params["tools"] = [{"name": n} for n in handlers]
        rid = self.client.request("run", {"code": code, **params})
        return self.client.wait_response(rid, handlers)

    def scratch_mode(self) -> str:
        """How the daemon caps scratch dirs: "tmpfs" (one mount per run) or "measured"."""
        return self.client.call("initialize")["result"]["sandbox"]["scratch"]

    def assert_still_serves(self) -> None:
        """A trivial run on the default policy still works, and the daemon process is alive."""
        assert self.daemon.proc.poll() is None, f"the daemon died:\n{self.daemon.log()}"
        resp = self.raw("print(6 * 7)")
        assert "result" in resp, f"the next run was refused: {resp}"
        assert resp["result"]["status"] == "ok", resp["result"]
        assert resp["result"]["stdout"] == "42\n"

    def run(self, code: str, handlers: dict | None = None, **params: Any) -> dict:
        """Runs `code`, returns the run result, then checks the daemon still serves."""
        resp = self.raw(textwrap.dedent(code), handlers, **params)
        assert "result" in resp, f"run was refused: {resp}"
        self.assert_still_serves()
        return resp["result"]

    def attempt(self, body: str, setup: str = "", **params: Any) -> str:
        """Runs `body` inside try/except; returns "ALLOWED" or "DENIED <Exception> <ERRNO>"."""
        code = ATTEMPT.format(
            setup=SYSCALL_HELPER + textwrap.dedent(setup),
            body=textwrap.indent(textwrap.dedent(body).strip(), "    "),
        )
        result = self.run(code, **params)
        assert result["status"] == "ok", result
        lines = result["stdout"].strip().splitlines()
        assert lines, result
        return lines[-1]

    def refused(self, code: str, **params: Any) -> dict:
        """Runs `code` expecting a JSON-RPC error; returns it, then checks the daemon serves."""
        resp = self.raw(code, **params)
        assert "error" in resp, f"expected the run to be refused: {resp}"
        self.assert_still_serves()
        return resp["error"]


@pytest.fixture(scope="session")
def escape_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon for the whole suite, with the test policies.

    uid leases are host-wide, so `one-uid`'s single uid is made unique to this pytest process:
    two copies of the suite running at once must not contend for it."""
    base = None
    if UNPRIVILEGED:
        # Everything the daemon reads or creates must be reachable by its uid.
        base = Path(tempfile.mkdtemp(prefix="ptcd-escape-unpriv-"))
        base.chmod(0o755)
        policies = base / "policies"
        policies.mkdir()
        workdir = base / "d"
        workdir.mkdir()
        os.chown(workdir, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
    else:
        policies = tmp_path_factory.mktemp("policies")
        workdir = tmp_path_factory.mktemp("escape")
    readable = readable_dir()
    for f in POLICY_DIR.glob("*.toml"):
        text = f.read_text().replace("@READABLE_DIR@", str(readable))
        if f.name == "one-uid.toml":
            uid = 5_000_000 + os.getpid()
            text = text.replace("uid_range = [64990, 64990]", f"uid_range = [{uid}, {uid}]")
            assert str(uid) in text
        (policies / f.name).write_text(text)
    args = ["--policy-dir", str(policies)] + daemon_args()
    if UNPRIVILEGED:
        d = Daemon(workdir, args, prefix=unprivileged_prefix(), scratch=workdir / "scratch")
    else:
        d = Daemon(workdir, args)
    d.readable_dir = readable  # the `readable-dir` policy's directory (test_compensation.py)
    yield d
    d.stop()
    shutil.rmtree(readable, ignore_errors=True)
    if base is not None:
        shutil.rmtree(base, ignore_errors=True)


def readable_dir() -> Path:
    """The `readable-dir` policy's directory: reachable by every uid, with one world-writable
    file (`victim`) that no run may change."""
    d = Path(tempfile.mkdtemp(prefix="ptcd-escape-readable-"))
    d.chmod(0o755)
    victim = d / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o666)
    return d


@pytest.fixture
def sb(escape_daemon: Daemon) -> Iterator[Sandbox]:
    s = Sandbox(escape_daemon)
    yield s
    s.close()
