"""Shared fixtures for the end-to-end suites: the real `ptcd` binary on a real Unix socket.

Every daemon a test starts gets its own socket and scratch directory and is stopped (SIGTERM,
then SIGKILL) when the test ends. See `daemon.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from daemon import Daemon
from rpc import RpcClient


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
