"""Shared fixtures for the end-to-end suites: the real `ptcd` binary on a real Unix socket.

`PTCD_BIN` names the binary (default: `<repo>/target/debug/ptcd`, built by the README's test
command). Every daemon a test starts gets its own socket and scratch directory under pytest's
`tmp_path`, and is stopped (SIGTERM, then SIGKILL) when the test ends.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from rpc import RpcClient

REPO = Path(__file__).resolve().parent.parent
PTCD_BIN = Path(os.environ.get("PTCD_BIN", REPO / "target" / "debug" / "ptcd"))


class Daemon:
    """A running `ptcd serve` process."""

    def __init__(self, tmp: Path, extra_args: list[str]) -> None:
        self.socket = tmp / "ptcd.sock"
        # The scratch root must be reachable by the unprivileged sandbox uid, and pytest's
        # tmp_path is under a 0700 directory: use a fresh directory directly under /tmp.
        self.scratch = Path(tempfile.mkdtemp(prefix="ptcd-test-scratch-"))
        os.chmod(self.scratch, 0o711)
        self.log_path = tmp / "daemon.log"
        self._log = open(self.log_path, "wb")
        args = [str(PTCD_BIN), "serve", "--socket", str(self.socket), "--scratch-dir", str(self.scratch)]
        self.proc = subprocess.Popen(args + extra_args, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        # Bounded polling for the socket to accept, checking the process is still alive.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ptcd exited with {self.proc.returncode}:\n{self.log()}")
            try:
                RpcClient(self.socket).close()
                return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError(f"ptcd did not listen within 20 s:\n{self.log()}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def connect(self) -> RpcClient:
        return RpcClient(self.socket)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.scratch, ignore_errors=True)
        return self.proc.returncode


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator:
    """Starts daemons with extra `serve` arguments; all are stopped at the end of the test."""
    started: list[Daemon] = []

    def start(*extra_args: str, name: str = "d") -> Daemon:
        root = tmp_path / f"{name}{len(started)}"
        root.mkdir()
        d = Daemon(root, list(extra_args))
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


@pytest.fixture
def daemon(start_daemon) -> Daemon:
    """One daemon with default settings."""
    return start_daemon()


@pytest.fixture
def client(daemon: Daemon) -> Iterator[RpcClient]:
    c = daemon.connect()
    yield c
    c.close()
