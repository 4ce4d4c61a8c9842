"""Fixtures: the real ptcd daemon, started from the build, on a private socket.

End-to-end tests never use a mock: the daemon binary is ``$PTCD_BIN`` if set, else
``<repo>/target/debug/ptcd``. It is started once per test session with ``serve --socket PATH``;
readiness is detected by connecting in a bounded retry loop that also checks the process is still
alive (so a daemon that crashes at start-up fails fast with its log, instead of a timeout).

The MCP tests get a second daemon (``mcp_daemon``) whose config is the one shipped with the MCP
example (``examples/python/mcp_shop.toml``: the real ``mcp-server-sqlite`` from PyPI, on a
database in a temporary directory) plus a ``broken`` server whose command does not exist.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
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


@contextlib.contextmanager
def _serve(workdir: Path, extra_args: list[str]) -> Iterator[Daemon]:
    binary = daemon_binary()
    if not binary.is_file():
        pytest.fail(f"ptcd daemon binary not found at {binary}: run `cargo build` at the repo root or set PTCD_BIN")
    path = str(workdir / "ptcd.sock")
    log = workdir / "daemon.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            [str(binary), "serve", "--socket", path, *extra_args],
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


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with _serve(tmp_path_factory.mktemp("ptcd"), []) as running:
        yield running


EXAMPLES = REPO / "examples" / "python"
#: The example's config names the server and the database like this; the tests swap in theirs.
EXAMPLE_COMMAND = 'command = "mcp-server-sqlite"'
EXAMPLE_DB = "/tmp/ptcd-example/shop.db"


def mcp_sqlite_command() -> str:
    """The real ``mcp-server-sqlite`` (PyPI): ``$PTCD_TEST_MCP_SQLITE`` (run-tests.sh installs it
    into ``clients/python/.mcp-venv`` and sets it), else that venv's, else one on PATH."""
    configured = os.environ.get("PTCD_TEST_MCP_SQLITE")
    if configured:
        return configured
    venv = REPO / "clients" / "python" / ".mcp-venv" / "bin" / "mcp-server-sqlite"
    if venv.is_file():
        return str(venv)
    found = shutil.which("mcp-server-sqlite")
    if found:
        return found
    pytest.fail(
        "mcp-server-sqlite is not installed: run clients/python/run-tests.sh (it installs it into "
        "clients/python/.mcp-venv), or set PTCD_TEST_MCP_SQLITE to its path"
    )


@dataclass(frozen=True)
class McpDaemon(Daemon):
    #: The database the ``sqlite`` server serves (the example's ``SHOP_DB``).
    db: Path = Path()


@pytest.fixture(scope="session")
def mcp_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpDaemon]:
    workdir = tmp_path_factory.mktemp("ptcd-mcp")
    db = workdir / "shop.db"
    shipped = (EXAMPLES / "mcp_shop.toml").read_text()
    assert EXAMPLE_COMMAND in shipped and EXAMPLE_DB in shipped, "the example's config changed: update conftest"
    config = shipped.replace(EXAMPLE_COMMAND, f"command = {json.dumps(mcp_sqlite_command())}")
    config = config.replace(EXAMPLE_DB, str(db))
    config += '\n[mcp_servers.broken]\ncommand = "/nonexistent/ptcd-test/mcp-server"\nstartup_timeout_ms = 5000\n'
    (workdir / "config.toml").write_text(config)
    with _serve(workdir, ["--config", str(workdir / "config.toml")]) as running:
        yield McpDaemon(running.socket, running.log, running.process, db=db)


@pytest.fixture
def socket_path(daemon: Daemon) -> str:
    return daemon.socket


@pytest.fixture
async def mcp_client(mcp_daemon: McpDaemon) -> AsyncIterator[ptcd.AsyncClient]:
    async with ptcd.AsyncClient(mcp_daemon.socket) as connected:
        yield connected


@pytest.fixture
async def client(socket_path: str) -> AsyncIterator[ptcd.AsyncClient]:
    async with ptcd.AsyncClient(socket_path) as connected:
        yield connected


@pytest.fixture
def sync_client(socket_path: str) -> Iterator[ptcd.Client]:
    with ptcd.Client(socket_path) as connected:
        yield connected
