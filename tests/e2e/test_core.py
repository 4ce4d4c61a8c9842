"""The daemon core through its real socket: runs, the tool relay, limits, cancellation, bad input.

Each test is named for the behaviour it proves.
"""

from __future__ import annotations

import os
from pathlib import Path

from daemon import run_dirs, wait_pool_full, wait_until
from rpc import RpcClient, ToolFailure


def process_gone(pid: int) -> bool:
    """True when `pid` no longer exists at all (not even as a zombie)."""
    return not Path(f"/proc/{pid}").exists()


# --- runs -------------------------------------------------------------------------------------


def test_hello_world_prints_to_stdout(client: RpcClient) -> None:
    r = client.run('print("hello, world")')
    assert r["status"] == "ok"
    assert r["stdout"] == "hello, world\n"
    assert r["stderr"] == ""
    assert r["truncated"] == {"stdout": 0, "stderr": 0}
    assert r["run_id"].startswith("r-")
    assert r["tool_calls"] == 0
    assert isinstance(r["duration_ms"], (int, float))


def test_last_expression_is_the_value(client: RpcClient) -> None:
    assert client.run("x = 20\nx * 2 + 2")["value"] == 42
    assert client.run("{'a': [1, 2.5, None, True]}")["value"] == {"a": [1, 2.5, None, True]}
    assert client.run("x = 1")["value"] is None
    # Not JSON-serializable: its repr, as a string.
    assert client.run("{1, 2}")["value"] == "{1, 2}"


def test_inputs_are_bound_as_globals(client: RpcClient) -> None:
    r = client.run("f'{city}: {len(days)} days'", inputs={"city": "Paris", "days": [1, 2, 3]})
    assert r["value"] == "Paris: 3 days"


def test_one_tool_call_round_trips(client: RpcClient) -> None:
    seen = []

    def get_weather(city: str) -> dict:
        seen.append(city)
        return {"temp_c": 18}

    r = client.run(
        "r = await get_weather(city='Paris')\nprint(r['temp_c'])",
        {"get_weather": get_weather},
    )
    assert r["status"] == "ok", r
    assert r["stdout"] == "18\n"
    assert r["tool_calls"] == 1
    assert seen == ["Paris"]


def test_tool_call_carries_run_and_request_ids(client: RpcClient) -> None:
    rid = client.request("run", {"code": "await f(1)", "tools": [{"name": "f", "input_schema": {"properties": {"x": {}}}}]})
    call = client.recv()
    assert call["method"] == "tool/call"
    assert isinstance(call["id"], str) and call["id"].startswith("t-")
    p = call["params"]
    assert p["request_id"] == rid
    assert p["name"] == "f" and p["arguments"] == {"x": 1} and p["call_id"] == 0
    client.send({"jsonrpc": "2.0", "id": call["id"], "result": None})
    result = client.wait_response(rid)["result"]
    assert result["run_id"] == p["run_id"]


def test_fifty_gathered_calls_are_all_in_flight_at_once_and_answered_out_of_order(client: RpcClient) -> None:
    code = "rs = await asyncio.gather(*(double(i) for i in range(50)))\nrs"
    rid = client.request(
        "run",
        {"code": "import asyncio\n" + code, "tools": [{"name": "double", "input_schema": {"properties": {"n": {}}}}]},
    )
    calls = [client.recv() for _ in range(50)]  # all 50 arrive before any is answered
    assert all(c["method"] == "tool/call" for c in calls)
    for c in reversed(calls):
        client.send({"jsonrpc": "2.0", "id": c["id"], "result": c["params"]["arguments"]["n"] * 2})
    r = client.wait_response(rid)["result"]
    assert r["status"] == "ok", r
    assert r["value"] == [i * 2 for i in range(50)]
    assert r["tool_calls"] == 50


def test_tool_error_is_catchable_as_tool_error(client: RpcClient) -> None:
    def lookup(key: str) -> None:
        raise ToolFailure(f"no such key: {key}", code=-32010)

    code = (
        "try:\n"
        "    await lookup(key='k')\n"
        "except ToolError as e:\n"
        "    print('caught', e.code, e)\n"
    )
    r = client.run(code, {"lookup": lookup})
    assert r["status"] == "ok", r
    assert r["stdout"] == "caught -32010 no such key: k\n"


def test_uncaught_tool_error_fails_the_run(client: RpcClient) -> None:
    def boom() -> None:
        raise ToolFailure("service down")

    r = client.run("await boom()", {"boom": boom})
    assert r["status"] == "error"
    assert r["error"]["type"] == "ToolError"
    assert "service down" in r["error"]["message"]


def test_unknown_tool_is_a_name_error(client: RpcClient) -> None:
    r = client.run("await not_a_tool()")
    assert r["status"] == "error"
    assert r["error"]["type"] == "NameError"
    assert "not_a_tool" in r["error"]["message"]


def test_missing_argument_is_a_type_error_before_anything_is_sent(client: RpcClient) -> None:
    tools = [{"name": "f", "input_schema": {"properties": {"a": {}, "b": {}}, "required": ["a"]}}]
    r = client.run("await f(b=2)", tools=tools)
    assert r["status"] == "error"
    assert r["error"]["type"] == "TypeError"
    assert r["tool_calls"] == 0
    r = client.run("await f(1, c=3)", tools=tools)
    assert r["error"]["type"] == "TypeError" and "'c'" in r["error"]["message"]


def test_script_exception_reports_the_script_line(client: RpcClient) -> None:
    code = "x = 1\ny = 2\n\ndef f():\n    return 1 / 0\n\nf()\n"
    r = client.run(code)
    assert r["status"] == "error"
    assert r["error"]["type"] == "ZeroDivisionError"
    assert r["error"]["line"] == 5
    tb = r["error"]["traceback"]
    assert 'File "<script>", line 7' in tb and 'File "<script>", line 5' in tb
    assert "<string>" not in tb, "the shim's own frames must be trimmed"


def test_syntax_error_reports_its_line(client: RpcClient) -> None:
    r = client.run("a = 1\nb = (\n")
    assert r["status"] == "error"
    assert r["error"]["type"] == "SyntaxError"
    assert r["error"]["line"] in (2, 3)


def test_stderr_is_captured_separately(client: RpcClient) -> None:
    r = client.run("import sys\nprint('out')\nprint('err', file=sys.stderr)")
    assert (r["stdout"], r["stderr"]) == ("out\n", "err\n")


# --- limits -----------------------------------------------------------------------------------


def test_timeout_kills_the_run(client: RpcClient) -> None:
    r = client.run("while True:\n    pass", limits={"timeout_ms": 300})
    assert r["status"] == "timeout"
    assert "timeout_ms = 300" in r["error"]["message"]
    assert client.run("1")["value"] == 1


def test_unanswered_tool_call_ends_with_the_deadline_and_is_cancelled(client: RpcClient) -> None:
    # The deadline must fire while the call is out, not while the interpreter still starts: a
    # warm interpreter and a deadline far beyond a start on a loaded machine.
    wait_pool_full(client)
    rid = client.request("run", {"code": "await slow()", "tools": [{"name": "slow"}], "limits": {"timeout_ms": 3000}})
    call = client.recv()
    assert call["method"] == "tool/call"
    r = client.wait_response(rid)["result"]
    assert r["status"] == "timeout"
    cancel = client.recv() if not client.backlog else client.backlog.pop(0)
    assert cancel == {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": call["id"]}}


def test_output_cap_truncates_with_a_visible_marker(client: RpcClient) -> None:
    r = client.run("print('x' * 5000)", limits={"max_output_bytes": 1000})
    assert r["status"] == "ok"
    assert r["truncated"]["stdout"] == 4001
    assert r["stdout"].startswith("x" * 1000)
    assert "truncated" in r["stdout"] and "4001" in r["stdout"]


def test_one_gib_stdout_flood_is_truncated_and_daemon_memory_stays_bounded(daemon, client: RpcClient) -> None:
    rss_before = daemon.rss_kib()
    code = "import sys\nchunk = 'y' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n'done'"
    r = client.run(code, limits={"timeout_ms": 30000})
    assert r["status"] == "ok", r["error"] if "error" in r else r["status"]
    assert r["value"] == "done"
    cap = 1 << 20  # the default policy's max_output_bytes
    assert r["truncated"]["stdout"] == (1 << 30) - cap
    assert len(r["stdout"].encode()) < cap + 200
    # The daemon kept at most the cap of the flood: its RSS grew by far less than 1 GiB.
    assert daemon.rss_kib() - rss_before < 64 * 1024


def test_max_tool_calls_ends_the_run_with_limit_exceeded(client: RpcClient) -> None:
    r = client.run("for i in range(10):\n    await f()", {"f": lambda: 1}, limits={"max_tool_calls": 3})
    assert r["status"] == "limit_exceeded"
    assert "max_tool_calls = 3" in r["error"]["message"]
    assert r["tool_calls"] == 3


def test_max_concurrent_tool_calls_holds_back_the_rest(client: RpcClient) -> None:
    code = "import asyncio\nawait asyncio.gather(*(f(i) for i in range(6)))"
    rid = client.request(
        "run",
        {"code": code, "tools": [{"name": "f", "input_schema": {"properties": {"i": {}}}}], "limits": {"max_concurrent_tool_calls": 2}},
    )
    first = [client.recv(), client.recv()]
    # Only two may be out; answering one releases exactly one more.
    client.send({"jsonrpc": "2.0", "id": first[0]["id"], "result": 0})
    third = client.recv()
    assert third["method"] == "tool/call"
    outstanding = [first[1], third]
    answered = 1
    while answered < 6:
        c = outstanding.pop(0)
        client.send({"jsonrpc": "2.0", "id": c["id"], "result": 0})
        answered += 1
        if answered <= 4:
            outstanding.append(client.recv())
    r = client.wait_response(rid)["result"]
    assert r["status"] == "ok" and r["tool_calls"] == 6


def test_limits_looser_than_the_policy_are_refused(client: RpcClient) -> None:
    resp = client.call("run", {"code": "1", "limits": {"timeout_ms": 10**9}})
    assert resp["error"]["code"] == -32003
    assert resp["error"]["data"]["field"] == "limits.timeout_ms"


def test_unknown_policy_is_refused(client: RpcClient) -> None:
    resp = client.call("run", {"code": "1", "policy": "no-such-policy"})
    assert resp["error"]["code"] == -32004
    assert "no-such-policy" in resp["error"]["message"]


# --- cancellation and disconnects ---------------------------------------------------------------


def test_cancel_during_a_pending_tool_call(daemon, client: RpcClient) -> None:
    rid = client.request("run", {"code": "print('before')\nawait wait_forever()", "tools": [{"name": "wait_forever"}], "stream": False})
    call = client.recv()
    assert call["method"] == "tool/call"
    cid = client.request("run/cancel", {"request_id": rid})
    got = {}
    while len(got) < 3:
        m = client.recv()
        if m.get("id") == cid:
            got["cancel"] = m
        elif m.get("id") == rid:
            got["run"] = m
        elif m.get("method") == "$/cancelRequest":
            got["note"] = m
    assert got["cancel"]["result"] == {"cancelled": True}
    assert got["note"]["params"] == {"id": call["id"]}
    r = got["run"]["result"]
    assert r["status"] == "cancelled"
    assert r["stdout"] == "before\n"
    # The late answer to the cancelled call is ignored, and the connection still works.
    client.send({"jsonrpc": "2.0", "id": call["id"], "result": 1})
    assert client.run("2")["value"] == 2
    assert run_dirs(daemon.scratch) == []


def test_cancel_of_unknown_request_is_an_error(client: RpcClient) -> None:
    resp = client.call("run/cancel", {"request_id": 999})
    assert resp["error"]["code"] == -32005
    resp = client.call("run/cancel", {})
    assert resp["error"]["code"] == -32602 and resp["error"]["data"]["field"] == "request_id"


def test_client_disconnect_mid_run_kills_and_reaps_the_child(daemon) -> None:
    c = daemon.connect()
    c.request("run", {"code": "import os\nawait report(pid=os.getpid())\nwhile True:\n    pass", "tools": [{"name": "report"}]})
    call = c.recv()
    pid = call["params"]["arguments"]["pid"]
    assert not process_gone(pid)
    c.close()
    wait_until(lambda: process_gone(pid), f"child {pid} killed and reaped")
    wait_until(lambda: run_dirs(daemon.scratch) == [], "scratch dir removed")
    # process_gone() also means no zombie: a zombie keeps its /proc entry until it is reaped.
    assert pid not in daemon.descendants()
    c2 = daemon.connect()
    try:
        assert c2.run("3")["value"] == 3
    finally:
        c2.close()


def test_half_closed_client_still_gets_its_result(daemon) -> None:
    c = daemon.connect()
    c.request("run", {"code": "print('still here')"})
    c.sock.shutdown(1)  # SHUT_WR, as `printf ... | socat` does
    r = c.recv()
    assert r["result"]["stdout"] == "still here\n"
    c.close()


def test_two_connections_run_at_once_without_cross_talk(daemon) -> None:
    a, b = daemon.connect(), daemon.connect()
    tools = [{"name": "whoami"}]
    ra = a.request("run", {"code": "await whoami()", "tools": tools})
    rb = b.request("run", {"code": "await whoami()", "tools": tools})
    ca, cb = a.recv(), b.recv()
    assert ca["params"]["run_id"] != cb["params"]["run_id"]
    # Answer b first, then a, each on its own connection.
    b.send({"jsonrpc": "2.0", "id": cb["id"], "result": "b"})
    a.send({"jsonrpc": "2.0", "id": ca["id"], "result": "a"})
    assert b.wait_response(rb)["result"]["value"] == "b"
    assert a.wait_response(ra)["result"]["value"] == "a"
    a.close()
    b.close()


def test_streamed_output_arrives_as_run_output_notifications(client: RpcClient) -> None:
    rid = client.request("run", {"code": "import sys\nprint('one')\nsys.stdout.flush()\nawait sync()\nprint('two')", "tools": [{"name": "sync"}], "stream": True})
    seen: list[str] = []
    pending_call = None
    while True:
        m = client.recv()
        if m.get("method") == "run/output":
            assert m["params"]["request_id"] == rid and m["params"]["stream"] == "stdout"
            seen.append(m["params"]["text"])
        elif m.get("method") == "tool/call":
            pending_call = m["id"]
        elif m.get("id") == rid:
            break
        # The script is blocked in its tool call until "one" has been streamed: output arrives
        # while the run is still going, not with its result.
        if pending_call is not None and "".join(seen) == "one\n":
            client.send({"jsonrpc": "2.0", "id": pending_call, "result": None})
            pending_call = None
    assert "".join(seen) == "one\ntwo\n"
    assert m["result"]["stdout"] == "one\ntwo\n"


# --- bad input --------------------------------------------------------------------------------


def test_invalid_json_gets_parse_error_and_connection_survives(client: RpcClient) -> None:
    client.send_raw(b"{this is not json\n")
    m = client.recv()
    assert m == {"jsonrpc": "2.0", "id": None, "error": m["error"]} and m["error"]["code"] == -32700
    assert client.run("1")["value"] == 1


def test_oversize_line_is_refused_and_connection_survives(start_daemon) -> None:
    d = start_daemon("--max-line-bytes", "4096")
    c = d.connect()
    c.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"run","params":{"code":"' + b"x" * 10000 + b'"}}\n')
    m = c.recv()
    assert m["id"] is None and m["error"]["code"] == -32600 and "4096" in m["error"]["message"]
    assert c.run("5")["value"] == 5
    c.close()


def test_batch_is_refused(client: RpcClient) -> None:
    client.send_raw(b'[{"jsonrpc":"2.0","id":1,"method":"daemon/status"}]\n')
    m = client.recv()
    assert m["error"]["code"] == -32600 and "batch" in m["error"]["message"]


def test_unknown_method_is_method_not_found(client: RpcClient) -> None:
    m = client.call("no/such/method")
    assert m["error"]["code"] == -32601


def test_bad_params_name_the_field(client: RpcClient) -> None:
    cases = [
        ({}, "code"),
        ({"code": 5}, "code"),
        ({"code": "1", "tools": [{"name": ""}]}, "tools[0].name"),
        ({"code": "1", "inputs": []}, "inputs"),
        ({"code": "1", "limits": {"timeout_ms": "soon"}}, "limits.timeout_ms"),
        ({"code": "1", "surprise": True}, "surprise"),
    ]
    for params, field in cases:
        m = client.call("run", params)
        assert m["error"]["code"] == -32602, (params, m)
        assert m["error"]["data"]["field"] == field


def test_blank_lines_and_crlf_are_tolerated(client: RpcClient) -> None:
    client.send_raw(b'\n\r\n{"jsonrpc":"2.0","id":"s","method":"daemon/status"}\r\n')
    m = client.recv()
    assert m["id"] == "s" and "runs_total" in m["result"]


def test_wrong_jsonrpc_version_is_invalid_request_with_its_id(client: RpcClient) -> None:
    client.send({"jsonrpc": "1.0", "id": 9, "method": "run"})
    m = client.recv()
    assert m["id"] == 9 and m["error"]["code"] == -32600


# --- introspection ----------------------------------------------------------------------------


def test_initialize_describes_the_daemon(client: RpcClient) -> None:
    r = client.call("initialize", {"client_info": {"name": "test", "version": "0"}})["result"]
    assert r["protocol_version"] == "1"
    assert r["server_info"]["name"] == "ptcd"
    assert r["python"]["version"].startswith("3.")
    assert r["default_policy"] in r["policies"]
    assert set(r["sandbox"]) >= {"landlock_abi", "seccomp", "namespaces"}


def test_status_counts_runs_and_tool_calls(client: RpcClient) -> None:
    client.run("await f()", {"f": lambda: 1})
    client.run("1/0")
    s = client.call("daemon/status")["result"]
    assert s["runs_total"] == 2
    assert s["tool_calls_total"] == 1
    assert s["runs_by_status"] == {"ok": 1, "error": 1}
    assert s["connections"] == 1
    assert s["runs_active"] == 0


def test_console_transcripts_replay(daemon) -> None:
    """Replays every `tests/transcripts/*.jsonl` session, as a person would type it into socat."""
    from transcript import replay

    files = sorted((Path(__file__).parent.parent / "transcripts").glob("*.jsonl"))
    assert files, "no transcripts found"
    for path in files:
        c = daemon.connect()
        try:
            replay(c, path)
        finally:
            c.close()


def test_runs_leave_no_fds_children_or_scratch_dirs_behind(daemon, client: RpcClient) -> None:
    client.run("1")  # first run: lazily created runtime state is in place afterwards
    wait_pool_full(client)  # idle warm interpreters hold fds (control socket, pipes) too
    fds_before = len(os.listdir(f"/proc/{daemon.pid}/fd"))
    for code, limits in [
        ("print('ok')", {}),
        ("1/0", {}),
        ("while True: pass", {"timeout_ms": 200}),
        ("import os\nos.kill(os.getpid(), 9)", {}),
    ]:
        client.run(code, limits=limits)
    rid = client.request("run", {"code": "await never()", "tools": [{"name": "never"}]})
    client.recv()  # the tool call
    client.call("run/cancel", {"request_id": rid})
    assert client.wait_response(rid)["result"]["status"] == "cancelled"
    idle = wait_pool_full(client)
    assert len(os.listdir(f"/proc/{daemon.pid}/fd")) == fds_before
    # The only processes left below the daemon are the idle warm interpreters (zombies would be
    # counted too) and, with a fork server, its templates.
    assert len(daemon.run_processes()) == idle
    assert run_dirs(daemon.scratch) == []


def test_child_killed_by_a_signal_is_reported_as_crashed(client: RpcClient) -> None:
    r = client.run("import os\nprint('before', flush=True)\nos.kill(os.getpid(), 9)")
    assert r["status"] == "crashed"
    assert "SIGKILL" in r["error"]["message"]
    assert r["stdout"] == "before\n"
