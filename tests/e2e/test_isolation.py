"""One bad client never hurts another; global limits refuse with clear errors."""

from __future__ import annotations

import time
from pathlib import Path

from rpc import RpcClient


def wait_for_status(c: RpcClient, predicate, timeout: float = 10.0) -> dict:
    """Polls `daemon/status` until the predicate holds (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        status = c.call("daemon/status")["result"]
        if predicate(status):
            return status
        assert time.monotonic() < deadline, f"status never matched: {status}"
        time.sleep(0.005)


def test_a_client_that_stops_reading_does_not_stall_other_clients(daemon) -> None:
    stuck = daemon.connect()
    # Streams ~64 MiB of output notifications into a socket nobody reads.
    stuck.request("run", {
        "code": "import sys\nfor _ in range(4096):\n    sys.stdout.write('z' * 16384 + '\\n')",
        "stream": True,
        "limits": {"max_output_bytes": 1 << 20, "timeout_ms": 20000},
    })
    other = daemon.connect()
    try:
        for i in range(3):
            assert other.run(f"{i} * 2", {"f": lambda: 1})["value"] == i * 2
        assert other.run("await f()", {"f": lambda: "answered"})["value"] == "answered"
    finally:
        other.close()
        stuck.close()


def test_runs_beyond_slots_and_queue_are_refused_as_overloaded(start_daemon, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("max_concurrent_runs = 1\nqueue_depth = 1\n")
    d = start_daemon("--config", str(config))
    c = d.connect()
    tools = [{"name": "hold"}]
    first = c.request("run", {"code": "await hold()", "tools": tools})
    call = c.recv()  # the first run is executing, blocked in its tool call
    queued = c.request("run", {"code": "'queued ran'"})
    wait_for_status(c, lambda s: (s["runs_active"], s["runs_queued"]) == (1, 1))
    refused = c.wait_response(c.request("run", {"code": "1"}))
    assert refused["error"]["code"] == -32002
    assert "overloaded" in refused["error"]["message"]
    c.send({"jsonrpc": "2.0", "id": call["id"], "result": None})
    assert c.wait_response(first)["result"]["status"] == "ok"
    assert c.wait_response(queued)["result"]["value"] == "queued ran"
    c.close()


def test_cancelling_a_queued_run_answers_cancelled_without_running_it(start_daemon, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("max_concurrent_runs = 1\nqueue_depth = 4\n")
    d = start_daemon("--config", str(config))
    c: RpcClient = d.connect()
    first = c.request("run", {"code": "await hold()", "tools": [{"name": "hold"}]})
    call = c.recv()
    queued = c.request("run", {"code": "print('must not run')"})
    wait_for_status(c, lambda s: s["runs_queued"] == 1)
    assert c.call("run/cancel", {"request_id": queued})["result"] == {"cancelled": True}
    r = c.wait_response(queued)["result"]
    assert r["status"] == "cancelled" and r["stdout"] == ""
    c.send({"jsonrpc": "2.0", "id": call["id"], "result": None})
    assert c.wait_response(first)["result"]["status"] == "ok"
    c.close()
