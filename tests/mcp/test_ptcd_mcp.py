"""`ptcd mcp` driven end to end by the official MCP Python SDK, as an MCP host would drive it.

The host starts `ptcd mcp` as a stdio server (`mcp.stdio_client` + `mcp.ClientSession`), lists
its tools and calls `run_code`; `ptcd mcp` runs the script through the real daemon on its real
socket (or a private daemon it starts itself). Each test is named for what it proves; waits are
bounded polls on a state (`wait_until`), never sleeps.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import pytest

from daemon import PTCD_BIN, Daemon, run_dirs, wait_until
from rpc import RpcClient

mcp = pytest.importorskip("mcp", reason="the MCP Python SDK (tests/requirements.txt) is not installed")
from mcp import ClientSession, StdioServerParameters, stdio_client  # noqa: E402
from mcp.client.stdio import get_default_environment  # noqa: E402

# A bound on one whole MCP conversation: a hang fails the test instead of hanging the suite.
SESSION_TIMEOUT_S = 90.0

VENV_BIN = Path(os.sys.executable).parent


class Host:
    """What the MCP host saw: the session, and the logging/progress notifications it got."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session
        self.logs: list = []
        self.progress: list = []

    async def run_code(self, code: str, **kwargs):
        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            self.progress.append((progress, message))

        return await self.session.call_tool("run_code", {"code": code}, progress_callback=on_progress, **kwargs)


@asynccontextmanager
async def ptcd_mcp(*args: str, env: dict[str, str] | None = None, errlog=None) -> AsyncIterator[Host]:
    params = StdioServerParameters(
        command=str(PTCD_BIN), args=["mcp", *args], env={**get_default_environment(), **(env or {})}
    )
    async with stdio_client(params, **({"errlog": errlog} if errlog else {})) as (read, write):
        host: Host | None = None

        async def on_log(params) -> None:
            assert host is not None
            host.logs.append(params)

        async with ClientSession(read, write, logging_callback=on_log) as session:
            host = Host(session)
            await session.initialize()
            yield host


def drive(scenario, *args: str, env: dict[str, str] | None = None, errlog=None):
    """Runs `scenario(host)` against a fresh `ptcd mcp *args`, bounded in time."""

    async def main():
        async with ptcd_mcp(*args, env=env, errlog=errlog) as host:
            return await scenario(host)

    return asyncio.run(asyncio.wait_for(main(), SESSION_TIMEOUT_S))


def text_of(result) -> str:
    assert len(result.content) == 1, result.content
    assert result.content[0].type == "text"
    return result.content[0].text


def assert_daemon_serves(daemon: Daemon) -> None:
    c = daemon.connect()
    try:
        m = c.run("1 + 1")
        assert m["status"] == "ok" and m["value"] == 2, m
    finally:
        c.close()


# --- tools --------------------------------------------------------------------------------------


def test_initialize_and_list_tools_offer_run_code_with_the_daemons_description(daemon: Daemon) -> None:
    async def scenario(host: Host):
        return await host.session.list_tools()

    tools = drive(scenario, "--socket", str(daemon.socket), "--no-start").tools
    assert [t.name for t in tools] == ["run_code"]
    c = daemon.connect()
    expected = c.call("tools/definition", {"format": "mcp"})["result"]["tools"][0]
    c.close()
    assert tools[0].description == expected["description"]
    assert "Run a Python script" in tools[0].description
    assert tools[0].input_schema["required"] == ["code"]
    assert tools[0].input_schema["properties"]["code"]["type"] == "string"
    assert_daemon_serves(daemon)


# --- run_code -----------------------------------------------------------------------------------


def test_run_code_returns_rendered_text_structured_result_and_streams_output(daemon: Daemon) -> None:
    async def scenario(host: Host):
        return await host.run_code("print('hello')\nx = 40\nx + 2"), host

    result, host = drive(scenario, "--socket", str(daemon.socket), "--no-start")
    assert result.is_error is False
    assert text_of(result) == "hello\n42"
    structured = result.structured_content
    assert structured["status"] == "ok"
    assert structured["stdout"] == "hello\n"
    assert structured["value"] == 42
    assert structured["run_id"]
    # The output came as it was printed: a logging message and a progress step.
    assert [(m.logger, m.level, m.data) for m in host.logs] == [("stdout", "info", "hello\n")]
    assert host.progress == [(1.0, "hello\n")]
    assert_daemon_serves(daemon)


def test_failing_script_is_an_error_result_with_its_traceback_and_the_next_call_works(daemon: Daemon) -> None:
    async def scenario(host: Host):
        failed = await host.run_code("print('before')\nd = {}\nd['missing']")
        after = await host.run_code("'still here'")
        return failed, after

    failed, after = drive(scenario, "--socket", str(daemon.socket), "--no-start")
    assert failed.is_error is True
    text = text_of(failed)
    assert text.startswith("before\nerror: KeyError: 'missing'\nTraceback (most recent call last):")
    assert 'line 3' in text and "d['missing']" in text
    assert failed.structured_content["status"] == "error"
    assert failed.structured_content["error"]["type"] == "KeyError"
    assert after.is_error is False and text_of(after) == "still here"
    assert_daemon_serves(daemon)


def test_run_code_gathers_many_concurrent_steps(daemon: Daemon) -> None:
    code = (
        "async def step(i):\n"
        "    await asyncio.sleep(0)\n"
        "    return i * i\n"
        "squares = await asyncio.gather(*(step(i) for i in range(500)))\n"
        "print(len(squares))\n"
        "sum(squares)\n"
    )

    async def scenario(host: Host):
        return await host.run_code(code)

    result = drive(scenario, "--socket", str(daemon.socket), "--no-start")
    assert result.is_error is False
    assert text_of(result) == f"500\n{sum(i * i for i in range(500))}"
    assert_daemon_serves(daemon)


def test_host_cancelling_run_code_cancels_the_run_in_the_daemon(daemon: Daemon) -> None:
    watcher = daemon.connect()

    def active() -> int:
        return watcher.call("daemon/status")["result"]["runs_active"]

    async def scenario(host: Host):
        call = asyncio.create_task(host.run_code("print('started', flush=True)\nawait asyncio.sleep(3600)"))
        # The run is under way once its first output reached the host.
        for _ in range(3000):
            if host.logs:
                break
            await asyncio.sleep(0.01)
        assert host.logs, "the run never started"
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        # The session is still open: only run/cancel can have ended an hour-long run this soon.
        await asyncio.to_thread(wait_until, lambda: active() == 0, "the daemon to end the cancelled run", 20)
        by_status = watcher.call("daemon/status")["result"]["runs_by_status"]
        assert by_status.get("cancelled") == 1, by_status
        return await host.run_code("'next'")

    after = drive(scenario, "--socket", str(daemon.socket), "--no-start")
    assert text_of(after) == "next"
    assert watcher.call("daemon/status")["result"]["runs_active"] == 0
    watcher.close()
    assert_daemon_serves(daemon)


def test_a_request_the_daemon_refuses_is_an_error_result_naming_the_error(start_daemon, tmp_path: Path) -> None:
    config = tmp_path / "one-run.toml"
    config.write_text("queue_depth = 0\n")
    daemon = start_daemon("--max-runs", "1", "--config", str(config))

    async def scenario(host: Host):
        busy = asyncio.create_task(host.run_code("print('busy', flush=True)\nawait asyncio.sleep(3600)"))
        for _ in range(3000):
            if host.logs:
                break
            await asyncio.sleep(0.01)
        assert host.logs, "the first run never started"
        refused = await host.run_code("'second'")
        busy.cancel()
        with pytest.raises(asyncio.CancelledError):
            await busy
        return refused

    refused = drive(scenario, "--socket", str(daemon.socket), "--no-start")
    assert refused.is_error is True
    assert "(error -32002)" in text_of(refused)
    assert refused.structured_content is None
    watcher = daemon.connect()
    wait_until(
        lambda: watcher.call("daemon/status")["result"]["runs_active"] == 0, "the cancelled run to end", 20
    )
    watcher.close()
    assert_daemon_serves(daemon)


def test_lost_daemon_is_a_tool_error_result_and_a_restarted_one_is_picked_up(start_daemon) -> None:
    daemon = start_daemon()
    restarted: list[Daemon] = []

    async def scenario(host: Host):
        first = await host.run_code("1")
        await asyncio.to_thread(daemon.stop)
        lost = await host.run_code("2")
        # The daemon comes back on the same socket (a restart): the next call reconnects.
        restarted.append(await asyncio.to_thread(Daemon, daemon.socket.parent, []))
        return first, lost, await host.run_code("3")

    try:
        first, lost, after = drive(scenario, "--socket", str(daemon.socket), "--no-start")
    finally:
        for d in restarted:
            d.stop()
    assert text_of(first) == "1"
    assert lost.is_error is True
    assert "lost the connection to the ptcd daemon" in text_of(lost)
    assert after.is_error is False and text_of(after) == "3"


# --- start-up -----------------------------------------------------------------------------------


def _processes_with(marker: str, also: bytes = b"serve") -> list[int]:
    """Pids whose command line has the arguments `marker` and `also` (a zombie's is empty, so a
    process drops out once it exited). A child the daemon is forking shows the daemon's command
    line until it execs (the launcher of a warm interpreter or a template, started at once):
    processes whose parent also matches are left out."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if marker.encode() in cmdline and also in cmdline:
            found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return [pid for pid, parent in found.items() if parent not in found]


def test_starts_a_private_daemon_when_none_answers_and_leaves_nothing_behind(tmp_path: Path) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="ptcd-test-scratch-"))
    os.chmod(scratch, 0o711)
    config = tmp_path / "private.toml"
    config.write_text(f'scratch_dir = "{scratch}"\n')
    seen: dict = {}

    async def scenario(host: Host):
        [pid] = _processes_with(str(config))
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        socket = Path(cmdline[cmdline.index(b"--socket") + 1].decode())
        seen.update(pid=pid, socket=socket, mode=socket.parent.stat().st_mode & 0o777)
        return await host.run_code("print('private')")

    try:
        result = drive(
            scenario, "--config", str(config), env={"PTCD_SOCKET": str(tmp_path / "nobody-listens.sock")}
        )
        assert text_of(result) == "private"
        assert seen["mode"] == 0o700
        # `ptcd mcp` exited (stdin closed): its daemon was stopped and reaped, its socket dir removed.
        wait_until(lambda: not _processes_with(str(config)), "the private daemon to be gone", 20)
        assert not Path(f"/proc/{seen['pid']}").exists()
        assert not seen["socket"].parent.exists()
        # Run dirs only: a warm child's dir being refilled when SIGTERM came may outlive the daemon
        # (reclaimed at the next start), as the warm-pool suite allows.
        assert run_dirs(scratch) == []
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_sigterm_to_ptcd_mcp_stops_its_private_daemon_too(tmp_path: Path) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="ptcd-test-scratch-"))
    os.chmod(scratch, 0o711)
    config = tmp_path / "private.toml"
    config.write_text(f'scratch_dir = "{scratch}"\n')
    proc = subprocess.Popen(
        [str(PTCD_BIN), "mcp", "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PTCD_SOCKET": str(tmp_path / "nobody-listens.sock")},
    )
    try:
        wait_until(lambda: _processes_with(str(config)), "the private daemon to start", 30)
        [pid] = _processes_with(str(config))
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        socket = Path(cmdline[cmdline.index(b"--socket") + 1].decode())
        wait_until(socket.exists, "the private daemon to listen", 30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not Path(f"/proc/{pid}").exists(), "the private daemon outlived ptcd mcp"
        assert not socket.parent.exists()
        assert proc.stdout.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(scratch, ignore_errors=True)


def _ptcd_mcp_fails(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(PTCD_BIN), "mcp", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 1, proc
    assert proc.stdout == "", "stdout is the MCP channel: nothing but MCP may go there"
    return proc


def test_unknown_server_is_a_clear_startup_error(daemon: Daemon) -> None:
    proc = _ptcd_mcp_fails("--socket", str(daemon.socket), "--no-start", "--servers", "nope")
    assert 'unknown MCP server "nope" in --servers; the daemon\'s config declares:' in proc.stderr
    assert_daemon_serves(daemon)


def test_unknown_policy_is_a_clear_startup_error(daemon: Daemon) -> None:
    proc = _ptcd_mcp_fails("--socket", str(daemon.socket), "--policy", "nope")
    assert 'unknown policy "nope" in --policy; the daemon has: default' in proc.stderr
    assert_daemon_serves(daemon)


def test_no_start_without_a_daemon_names_the_socket(tmp_path: Path) -> None:
    missing = tmp_path / "none.sock"
    proc = _ptcd_mcp_fails("--no-start", env={"PTCD_SOCKET": str(missing)})
    assert f"cannot reach the ptcd daemon at {missing}" in proc.stderr


# --- downstream MCP servers ---------------------------------------------------------------------


def _time_server_daemon(start_daemon, tmp_path: Path, extra_config: str = "", more_servers: str = "") -> Daemon:
    """A daemon whose config declares `mcp-server-time` as `time`; skips (with the reason) while
    the daemon has no MCP servers as tool sources."""
    server = VENV_BIN / "mcp-server-time"
    if not server.exists():
        pytest.skip("mcp-server-time (tests/requirements.txt) is not installed in the test venv")
    config = tmp_path / "mcp.toml"
    config.write_text(
        f'{extra_config}[mcp_servers.time]\ncommand = "{server}"\nargs = ["--local-timezone", "UTC"]\n'
        + more_servers
    )
    try:
        daemon = start_daemon("--config", str(config))
    except RuntimeError as e:
        if "mcp_servers" in str(e) or "discovery_threshold" in str(e):
            pytest.skip(f"this daemon's config has no MCP settings yet: {e}")
        raise
    c = daemon.connect()
    init = c.call("initialize", {})["result"]
    c.close()
    if "mcp_servers" not in init:
        pytest.skip("initialize has no mcp_servers: MCP servers as tool sources are not in this daemon yet")
    assert "time" in init["mcp_servers"]
    return daemon


def test_run_code_fans_out_over_a_downstream_mcp_server(start_daemon, tmp_path: Path) -> None:
    daemon = _time_server_daemon(start_daemon, tmp_path)
    zones = ["Europe/Paris", "Asia/Tokyo", "America/New_York", "Australia/Sydney", "Africa/Cairo",
             "America/Sao_Paulo", "Asia/Kolkata", "Europe/London", "Pacific/Auckland", "UTC"]
    code = (
        f"zones = {zones!r}\n"
        "found = await asyncio.gather(*(time.get_current_time(timezone=z) for z in zones))\n"
        "print(len(found))\n"
        "{r['timezone']: r['day_of_week'] for r in found}\n"
    )

    async def scenario(host: Host):
        tools = (await host.session.list_tools()).tools
        return tools, await host.run_code(code)

    tools, result = drive(scenario, "--socket", str(daemon.socket), "--no-start", "--servers", "time")
    assert [t.name for t in tools] == ["run_code"]
    assert "get_current_time" in tools[0].description and "class time" in tools[0].description
    assert result.is_error is False, text_of(result)
    assert text_of(result).startswith("10\n")
    assert sorted(result.structured_content["value"]) == sorted(zones)
    assert result.structured_content["tool_calls"] == len(zones)
    assert_daemon_serves(daemon)


def test_search_tools_is_offered_above_the_discovery_threshold_and_finds_the_tool(start_daemon, tmp_path: Path) -> None:
    # Two tools over a threshold of one: run_code lists summaries only, search_tools is offered.
    daemon = _time_server_daemon(start_daemon, tmp_path, "discovery_threshold = 1\n")

    async def scenario(host: Host):
        tools = (await host.session.list_tools()).tools
        found = await host.session.call_tool("search_tools", {"query": "convert a time to another timezone"})
        bad = await host.session.call_tool("search_tools", {"query": "x", "limit": 0})
        return tools, found, bad

    tools, found, bad = drive(scenario, "--socket", str(daemon.socket), "--no-start")
    assert [t.name for t in tools] == ["run_code", "search_tools"]
    assert tools[1].input_schema["required"] == ["query"]
    assert found.is_error is False, text_of(found)
    results = found.structured_content["results"]
    assert results[0]["name"] == "time.convert_time" and results[0]["summary"]
    assert bad.is_error is True and "`limit` must be an integer from 1 to 100" in text_of(bad)
    assert_daemon_serves(daemon)


def test_a_server_that_cannot_start_is_left_out_unless_named(start_daemon, tmp_path: Path) -> None:
    daemon = _time_server_daemon(
        start_daemon, tmp_path, more_servers='[mcp_servers.broken]\ncommand = "/nonexistent/mcp-server"\n'
    )

    async def scenario(host: Host):
        tools = (await host.session.list_tools()).tools
        return tools, await host.run_code("(await time.get_current_time(timezone='UTC'))['timezone']")

    errlog = tmp_path / "ptcd-mcp.stderr"
    with open(errlog, "w") as err:
        tools, result = drive(scenario, "--socket", str(daemon.socket), "--no-start", errlog=err)
    assert "class time" in tools[0].description and "broken" not in tools[0].description
    assert text_of(result) == "UTC"
    assert "MCP server unavailable: broken" in errlog.read_text()
    assert "serving without MCP server broken" in errlog.read_text()
    named = _ptcd_mcp_fails("--socket", str(daemon.socket), "--no-start", "--servers", "time,broken")
    assert "MCP server unavailable: broken" in named.stderr and "(error -32008)" in named.stderr
    assert_daemon_serves(daemon)
