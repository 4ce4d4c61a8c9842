"""Where the installed MCP servers are, and the `[mcp_servers.X]` tables that start them.

`tests/mcp/install.sh` (called by `tests/run-all.sh`) installs them: the PyPI servers and the SDK
into the test venv (sqlite into its own venv: it needs SDK 1.x), the npm servers under
`tests/mcp/servers/node_modules`. Our own fault servers (`tests/mcp/servers/*.py`) run on the test
venv's Python (`sys.executable`), which has the SDK.

Each helper returns one server's config table as a dict; `write_config` turns
`{name: table}` into the daemon's TOML config file.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SERVERS = HERE / "servers"
NODE_BIN = SERVERS / "node_modules" / ".bin"
VENV_BIN = Path(sys.executable).parent
SQLITE_BIN = REPO / "target" / "mcp-sqlite-venv" / "bin" / "mcp-server-sqlite"


# Python servers import the SDK for seconds on a loaded 2-core CI machine; the tests that are
# about start-up set their own startup_timeout_ms.
DEFAULTS = {"startup_timeout_ms": 60_000}


def require(path: Path) -> str:
    if not path.exists():
        pytest.fail(f"{path} is not installed: run `bash tests/mcp/install.sh` (tests/run-all.sh does)")
    return str(path)


# --- third-party servers ------------------------------------------------------------------------


def make_shop_db(path: Path) -> Path:
    """A small shop database: 5 customers, 12 orders."""
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT);
            CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total REAL);
            """
        )
        db.executemany(
            "INSERT INTO customers VALUES (?, ?, ?)",
            [(1, "Ada", "London"), (2, "Grace", "New York"), (3, "Linus", "Helsinki"),
             (4, "Margaret", "Boston"), (5, "Dennis", "Murray Hill")],
        )
        db.executemany(
            "INSERT INTO orders VALUES (?, ?, ?)", [(i, (i % 5) + 1, 10.0 * i) for i in range(1, 13)]
        )
    return path


def sqlite(db: Path, **opts) -> dict:
    return {"command": require(SQLITE_BIN), "args": ["--db-path", str(db)], **opts}


def time_server(**opts) -> dict:
    return {"command": require(VENV_BIN / "mcp-server-time"), "args": ["--local-timezone", "UTC"], **opts}


def git_server(repo: Path, **opts) -> dict:
    return {"command": require(VENV_BIN / "mcp-server-git"), "args": ["--repository", str(repo)], **opts}


def everything(**opts) -> dict:
    return {"command": require(NODE_BIN / "mcp-server-everything"), "args": ["stdio"], **opts}


def memory(store: Path, **opts) -> dict:
    # The server keeps its graph in MEMORY_FILE_PATH (default: inside its own package).
    return {"command": require(NODE_BIN / "mcp-server-memory"), "env": {"MEMORY_FILE_PATH": str(store)}, **opts}


def filesystem(root: Path, **opts) -> dict:
    return {"command": require(NODE_BIN / "mcp-server-filesystem"), "args": [str(root)], **opts}


# --- our fault servers --------------------------------------------------------------------------


def ours(script: str, *args: str, **opts) -> dict:
    return {"command": sys.executable, "args": [require(SERVERS / script), *args], **opts}


# --- the config file ----------------------------------------------------------------------------


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (str, Path)):
        return json.dumps(str(v))  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML for {v!r}")


def write_config(path: Path, servers: dict[str, dict], top: dict | None = None) -> Path:
    """The daemon config: top-level keys, then one `[mcp_servers.<name>]` table per server."""
    lines = [f"{k} = {toml_value(v)}" for k, v in (top or {}).items()]
    for name, table in servers.items():
        if "command" in table:
            table = {**DEFAULTS, **table}
        lines.append(f"\n[mcp_servers.{json.dumps(name)}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- processes ----------------------------------------------------------------------------------


def mcp_server_pids(daemon) -> set[int]:
    """The daemon's descendants started from this repository's MCP servers (the sandboxed
    interpreters run /usr/bin/python3 and never name the repository)."""
    parents: dict[int, int] = {}
    cmdlines: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        cmdlines[int(entry.name)] = cmd

    def descends(pid: int) -> bool:
        seen = 0
        while pid > 1 and seen < 64:
            pid = parents.get(pid, 0)
            if pid == daemon.pid:
                return True
            seen += 1
        return False

    marks = (str(REPO), str(SQLITE_BIN.parent.parent))
    return {p for p, c in cmdlines.items() if descends(p) and any(m in c for m in marks)}


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"

