"""Fixtures: the real ptcd daemon, started from the build, on a private socket.

End-to-end tests never use a mock: the daemon binary is ``$PTCD_BIN`` if set, else
``<repo>/target/debug/ptcd``. It is started once per test session with ``serve --socket PATH``;
readiness is detected by connecting in a bounded retry loop that also checks the process is still
alive (so a daemon that crashes at start-up fails fast with its log, instead of a timeout).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import ptcd

REPO = Path(__file__).resolve().parents[3]
READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Daemon:
    socket: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def daemon_binary() -> Path:
    return Path(os.environ.get("PTCD_BIN") or REPO / "target" / "debug" / "ptcd")


def _wait_until_ready(process: subprocess.Popen[bytes], path: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    delay = 0.005
    while True:
        if process.poll() is not None:
            pytest.fail(
                f"ptcd exited with status {process.returncode} before it was ready; log:\n"
                f"{log.read_text(errors='replace')[-4000:]}"
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
            return
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                pytest.fail(f"ptcd did not listen on {path} within {READY_TIMEOUT_S}s; log:\n{log.read_text()[-4000:]}")
            time.sleep(delay)  # poll interval of the bounded readiness loop, not synchronization
            delay = min(delay * 2, 0.1)
        finally:
            probe.close()


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    binary = daemon_binary()
    if not binary.is_file():
        pytest.fail(f"ptcd daemon binary not found at {binary}: run `cargo build` at the repo root or set PTCD_BIN")
    workdir = tmp_path_factory.mktemp("ptcd")
    path = str(workdir / "ptcd.sock")
    log = workdir / "daemon.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            [str(binary), "serve", "--socket", path],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        _wait_until_ready(process, path, log)
        yield Daemon(path, log, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def socket_path(daemon: Daemon) -> str:
    return daemon.socket


@pytest.fixture
async def client(socket_path: str) -> AsyncIterator[ptcd.AsyncClient]:
    async with ptcd.AsyncClient(socket_path) as connected:
        yield connected


@pytest.fixture
def sync_client(socket_path: str) -> Iterator[ptcd.Client]:
    with ptcd.Client(socket_path) as connected:
        yield connected
