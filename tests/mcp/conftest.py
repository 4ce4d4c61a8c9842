"""Fixtures of the MCP suite: a real `ptcd serve` with a config file of `[mcp_servers.X]` tables
pointing at real MCP servers (third-party ones installed by `tests/mcp/install.sh`, and our fault
servers in `tests/mcp/servers/`). See `mcp_setup.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from daemon import Daemon
from mcp_setup import write_config
from rpc import RpcClient


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A directory for the servers' marker files and data (one per test)."""
    d = tmp_path / "state"
    d.mkdir()
    return d


@pytest.fixture
def mcp_daemon(tmp_path: Path, start_daemon) -> Callable[..., Daemon]:
    """`mcp_daemon({name: table}, *serve_args, top={key: value})` starts a daemon whose config file
    declares those MCP servers (and top-level keys such as `discovery_threshold`)."""
    count = 0

    def start(servers: dict[str, dict], *extra_args: str, top: dict | None = None) -> Daemon:
        nonlocal count
        count += 1
        config = write_config(tmp_path / f"config{count}.toml", servers, top)
        return start_daemon("--config", str(config), *extra_args)

    return start


@pytest.fixture
def connect() -> Iterator[Callable[[Daemon], RpcClient]]:
    """Connections closed at the end of the test."""
    clients: list[RpcClient] = []

    def open_(d: Daemon) -> RpcClient:
        c = d.connect()
        clients.append(c)
        return c

    yield open_
    for c in clients:
        c.close()
