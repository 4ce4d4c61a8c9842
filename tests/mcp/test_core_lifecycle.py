"""The daemon's MCP client side as seen on the wire before any run attaches a server (the
full MCP suite with runs lives beside this file). Self-contained: it needs only the system
python3 for the fault server in daemon/src/mcp/testdata."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon import PTCD_BIN, REPO

FAULT_SERVER = REPO / "daemon" / "src" / "mcp" / "testdata" / "fault_server.py"


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_status_lists_configured_servers_idle_and_not_started(start_daemon, tmp_path):
    config = write_config(
        tmp_path / "config.toml",
        f"""
discovery_threshold = 5
[mcp_servers.fault]
command = "{sys.executable}"
args = ["{FAULT_SERVER}"]
[mcp_servers.web-search]
url = "http://127.0.0.1:9/mcp"
headers = {{ Authorization = "Bearer t" }}
""",
    )
    d = start_daemon("--config", str(config))
    c = d.connect()
    status = c.wait_response(c.request("daemon/status"))["result"]
    assert status["mcp_servers"] == {
        "fault": {"state": "idle", "tools": 0, "calls_total": 0, "restarts": 0},
        "web-search": {"state": "idle", "tools": 0, "calls_total": 0, "restarts": 0},
    }
    # Lazy start: configuring a server starts nothing.
    assert not any("fault_server" in _cmdline(pid) for pid in d.children())
    c.close()
    assert d.stop() == 0


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ('[mcp_servers.db]\ncommand = "x"\ncomand = "typo"\n', "mcp_servers.db.comand"),
        ('[mcp_servers.db]\ncommand = "x"\nurl = "http://h/"\n', "mcp_servers.db.url"),
    ],
    ids=["unknown_key", "both_command_and_url"],
)
def test_bad_mcp_table_stops_start_up_naming_the_key(tmp_path, table: str, named: str):
    config = write_config(tmp_path / "config.toml", table)
    out = subprocess.run(
        [str(PTCD_BIN), "serve", "--config", str(config), "--socket", str(tmp_path / "s.sock")],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert out.returncode != 0
    assert named in out.stderr + out.stdout


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
