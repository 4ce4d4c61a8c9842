"""Sessions through the real socket: `session/create`, `session/close`, `run` with `session_id`,
and persistent interpreters.

Each test is named for the behaviour it proves. Ordering is established by the protocol itself
(requests sent before answers, tool calls held unanswered), never by sleeping.
"""

from __future__ import annotations

import os
from pathlib import Path

from rpc import RpcClient
from daemon import run_dirs, wait_until
from test_core import process_gone


def create(client: RpcClient, **params) -> str:
    m = client.call("session/create", params)
    assert "result" in m, m
    return m["result"]["session_id"]


def error_of(m: dict) -> tuple[int, str | None]:
    assert "error" in m, m
    return m["error"]["code"], (m["error"].get("data") or {}).get("field")


# --- session/create ---------------------------------------------------------------------------


def test_create_returns_an_id_and_the_python_names_of_the_tools(client: RpcClient) -> None:
    m = client.call("session/create", {"tools": [{"name": "get-weather"}, {"name": "class"},
                                                 {"name": "web", "allowed_callers": ["direct"]}]})
    assert m["result"]["session_id"].startswith("s-")
    assert m["result"]["tools"] == ["get_weather", "class_"]


def test_create_validates_like_run(client: RpcClient) -> None:
    assert error_of(client.call("session/create", {"policy": "nope"}))[0] == -32004
    assert error_of(client.call("session/create", {"limits": {"timeout_ms": 10**9}})) == (-32003, "limits.timeout_ms")
    assert error_of(client.call("session/create", {"env": {"PTCD_X": "1"}})) == (-32602, "env.PTCD_X")
    assert error_of(client.call("session/create", {"persistent": "yes"})) == (-32602, "persistent")
    assert error_of(client.call("session/create", {"colour": 1})) == (-32602, "colour")


def test_unconfigured_mcp_servers_are_refused_with_a_clear_message(client: RpcClient) -> None:
    m = client.call("session/create", {"mcp_servers": ["github"]})
    assert error_of(m) == (-32602, "mcp_servers[0]")
    assert "unknown MCP server \"github\"" in m["error"]["message"]
    assert "none are configured" in m["error"]["message"]
    assert "result" in client.call("session/create", {"mcp_servers": []})


# --- runs in a session ------------------------------------------------------------------------


def test_session_tools_and_env_reach_runs(client: RpcClient) -> None:
    sid = create(client, tools=[{"name": "get-count"}], env={"GREETING": "hi"})
    rid = client.request("run", {"session_id": sid, "code": (
        "import os\nn = await get_count()\n"
        "[n, os.environ['GREETING'], os.environ['PTCD_SESSION_ID'], os.environ['PTCD_RUN_ID']]")})
    call = client.recv()
    assert call["method"] == "tool/call"
    assert call["params"]["session_id"] == sid
    assert call["params"]["name"] == "get-count"
    client.send({"jsonrpc": "2.0", "id": call["id"], "result": 7})
    r = client.wait_response(rid)["result"]
    assert r["status"] == "ok", r
    assert r["value"] == [7, "hi", sid, r["run_id"]]


def test_run_tools_and_env_are_added_to_the_session_and_replace_same_names(client: RpcClient) -> None:
    sid = create(client, tools=[{"name": "get-value"}, {"name": "other"}], env={"A": "session", "B": "session"})
    r = client.run(
        "import os\n[await get_value(), await other(), os.environ['A'], os.environ['B']]",
        {"get_value": lambda: "run's", "other": lambda: "session's"},
        session_id=sid, tools=[{"name": "get_value"}], env={"A": "run"})
    assert r["status"] == "ok", r
    # `get_value` now has the run's wire name: the handler keyed "get_value" answered it.
    assert r["value"] == ["run's", "session's", "run", "session"]


def test_run_policy_must_be_the_sessions(client: RpcClient) -> None:
    sid = create(client)
    m = client.call("run", {"session_id": sid, "code": "1", "policy": "site-packages"})
    assert error_of(m) == (-32602, "policy")
    assert client.run("1", session_id=sid, policy="default")["value"] == 1


def test_run_limits_may_only_tighten_the_sessions(client: RpcClient) -> None:
    sid = create(client, limits={"timeout_ms": 5000})
    assert error_of(client.call("run", {"session_id": sid, "code": "1", "limits": {"timeout_ms": 6000}})) \
        == (-32003, "limits.timeout_ms")
    r = client.run("import time\ntime.sleep(5)", session_id=sid, limits={"timeout_ms": 200})
    assert r["status"] == "timeout"


def test_runs_in_a_session_execute_one_at_a_time_in_arrival_order(client: RpcClient) -> None:
    sid = create(client, tools=[{"name": "enter"}, {"name": "leave"}])
    ids = [client.request("run", {"session_id": sid, "code": f"await enter(i={i})\nawait leave(i={i})\n{i}"})
           for i in range(4)]
    events: list[tuple[str, int]] = []
    results = {}
    while len(results) < len(ids):
        m = client.recv()
        if m.get("method") == "tool/call":
            p = m["params"]
            events.append((p["name"], p["arguments"]["i"]))
            client.send({"jsonrpc": "2.0", "id": m["id"], "result": None})
        elif m.get("id") in ids:
            results[m["id"]] = m["result"]
    assert [results[i]["value"] for i in ids] == [0, 1, 2, 3]
    assert events == [(step, i) for i in range(4) for step in ("enter", "leave")]


def test_unknown_and_closed_sessions_are_refused(client: RpcClient) -> None:
    assert error_of(client.call("run", {"code": "1", "session_id": "s-999999"}))[0] == -32001
    sid = create(client)
    assert client.call("session/close", {"session_id": sid})["result"] == {}
    assert error_of(client.call("session/close", {"session_id": sid}))[0] == -32001
    assert error_of(client.call("run", {"code": "1", "session_id": sid}))[0] == -32001
    assert error_of(client.call("session/close", {}))[1] == "session_id"


def test_sessions_belong_to_their_connection(daemon, client: RpcClient) -> None:
    sid = create(client)
    other = daemon.connect()
    try:
        assert error_of(other.call("run", {"code": "1", "session_id": sid}))[0] == -32001
    finally:
        other.close()


def test_closing_a_session_cancels_its_running_run(client: RpcClient) -> None:
    sid = create(client, tools=[{"name": "hang"}])
    rid = client.request("run", {"session_id": sid, "code": "print('before')\nawait hang()"})
    call = client.recv()
    assert call["method"] == "tool/call"
    close_id = client.request("session/close", {"session_id": sid})
    run = client.wait_response(rid)["result"]
    assert run["status"] == "cancelled" and "session was closed" in run["error"]["message"]
    assert run["stdout"] == "before\n"
    assert client.wait_response(close_id)["result"] == {}


# --- persistent sessions ----------------------------------------------------------------------


def test_persistent_globals_survive_across_runs(client: RpcClient) -> None:
    sid = create(client, persistent=True)
    assert client.run("import json\nx = 41\ndef double(v):\n    return 2 * v", session_id=sid)["status"] == "ok"
    r = client.run("json.dumps(double(x + 1) // 2)", session_id=sid)
    assert r["status"] == "ok", r
    assert r["value"] == "42"
    # A script that raises does not lose the state either.
    assert client.run("x = 1\nraise ValueError('no')", session_id=sid)["status"] == "error"
    assert client.run("x", session_id=sid)["value"] == 1


def test_persistent_tools_are_rebound_each_run(client: RpcClient) -> None:
    sid = create(client, persistent=True, tools=[{"name": "base"}])
    r = client.run("[await base(), await extra()]", {"base": lambda: 1, "extra": lambda: 2},
                   session_id=sid, tools=[{"name": "extra"}])
    assert r["value"] == [1, 2], r
    r = client.run("'extra' in globals(), await base()", {"base": lambda: 3}, session_id=sid)
    assert r["value"] == [False, 3], r


def test_persistent_runs_get_exactly_their_own_output(client: RpcClient) -> None:
    sid = create(client, persistent=True, limits={"max_output_bytes": 100})
    a = client.run("import sys\nfor i in range(3):\n    print('a', i)\nprint('err a', file=sys.stderr)", session_id=sid)
    b = client.run("print('b', end='')\nsys.stdout.write('!')", session_id=sid)
    c = client.run("print('x' * 150)", session_id=sid)
    d = client.run("pass", session_id=sid)
    assert (a["stdout"], a["stderr"]) == ("a 0\na 1\na 2\n", "err a\n")
    assert (b["stdout"], b["stderr"]) == ("b!", "")
    assert c["truncated"] == {"stdout": 51, "stderr": 0}
    assert c["stdout"].startswith("x" * 100)
    assert (d["stdout"], d["stderr"], d["truncated"]) == ("", "", {"stdout": 0, "stderr": 0})


def test_persistent_output_is_streamed_when_asked(client: RpcClient) -> None:
    sid = create(client, persistent=True, tools=[{"name": "wait"}])
    client.run("y = 0", session_id=sid)
    rid = client.request("run", {"session_id": sid, "stream": True, "code": "print('early')\nawait wait()\nprint('late')"})
    seen = []
    while True:
        m = client.recv()
        if m.get("method") == "run/output":
            seen.append(m["params"]["text"])
        elif m.get("method") == "tool/call":
            # "early" was flushed before the call.
            client.send({"jsonrpc": "2.0", "id": m["id"], "result": None})
        elif m.get("id") == rid:
            r = m["result"]
            break
    assert r["stdout"] == "early\nlate\n"
    assert "".join(seen) == "early\nlate\n"


def test_a_timed_out_persistent_run_resets_the_interpreter_and_the_next_run_works(client: RpcClient) -> None:
    sid = create(client, persistent=True)
    first = client.run("import os\nx = 1\nopen('notes.txt', 'w').write('kept')\nos.getpid()", session_id=sid)
    assert first["status"] == "ok", first
    r = client.run("while True:\n    pass", session_id=sid, limits={"timeout_ms": 300})
    assert r["status"] == "timeout"
    assert "next run starts a fresh interpreter" in r["error"]["message"]
    wait_until(lambda: process_gone(first["value"]), "the old interpreter is gone")
    after = client.run("'x' in globals(), open('notes.txt').read(), os.getpid() if 'os' in globals() else None",
                       session_id=sid)
    assert after["status"] == "ok", after
    assert after["value"] == [False, "kept", None]
    assert client.run("x = 5\nx", session_id=sid)["value"] == 5


def test_a_crashed_persistent_run_also_resets(client: RpcClient) -> None:
    sid = create(client, persistent=True)
    client.run("x = 1", session_id=sid)
    r = client.run("import os\nos._exit(3)", session_id=sid)
    assert r["status"] == "crashed" and "fresh interpreter" in r["error"]["message"]
    assert client.run("'x' in globals()", session_id=sid)["value"] is False


def test_persistent_runs_cannot_change_cpu_or_memory_limits(client: RpcClient) -> None:
    sid = create(client, persistent=True, limits={"memory_mb": 512})
    m = client.call("run", {"session_id": sid, "code": "1", "limits": {"cpu_ms": 1000}})
    assert error_of(m) == (-32602, "limits.cpu_ms")


def test_disconnect_closes_sessions_killing_the_interpreter_and_removing_its_scratch_dir(daemon) -> None:
    c = daemon.connect()
    sid = create(c, persistent=True)
    r = c.run("import os\n[os.getpid(), os.getcwd()]", session_id=sid)
    pid, scratch = r["value"]
    assert Path(scratch).parent == daemon.scratch
    assert not process_gone(pid)
    c.close()
    wait_until(lambda: process_gone(pid), "the session's interpreter is reaped")
    wait_until(lambda: not Path(scratch).exists(), "the session's scratch dir is removed")
    assert run_dirs(daemon.scratch) == []


def test_session_close_kills_the_persistent_interpreter(daemon, client: RpcClient) -> None:
    sid = create(client, persistent=True)
    pid, scratch = client.run("import os\n[os.getpid(), os.getcwd()]", session_id=sid)["value"]
    assert client.call("session/close", {"session_id": sid})["result"] == {}
    # close answers once the interpreter is reaped and the dir removed.
    assert process_gone(pid)
    assert not os.path.exists(scratch)


def test_open_sessions_per_connection_are_capped(client: RpcClient) -> None:
    ids = []
    for _ in range(64):
        ids.append(client.call("session/create", {})["result"]["session_id"])
    refused = client.call("session/create", {})
    assert refused["error"]["code"] == -32002
    assert "64 open sessions" in refused["error"]["message"]
    assert client.call("session/close", {"session_id": ids[0]})["result"] == {}
    assert "result" in client.call("session/create", {})
