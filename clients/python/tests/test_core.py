"""The sans-IO core, the result rendering, the error mapping and socket resolution (no daemon)."""

from __future__ import annotations

import json

import pytest

import ptcd
from ptcd._errors import error_from_wire
from ptcd._protocol import (
    CancelRequested,
    LineBuffer,
    LineTooLong,
    OutputReceived,
    ProtocolViolation,
    ResponseReceived,
    RpcCore,
    ToolCallRequested,
    UnhandledRequest,
)


def test_requests_get_increasing_int_ids_on_one_line() -> None:
    core = RpcCore()
    first, line1 = core.request("run", {"code": "print('a\\nb')\n1"})
    second, _ = core.request("daemon/status", {})
    assert (first, second) == (1, 2)
    assert line1.endswith(b"\n") and line1.count(b"\n") == 1
    assert json.loads(line1) == {"jsonrpc": "2.0", "id": 1, "method": "run", "params": {"code": "print('a\\nb')\n1"}}
    assert core.pending == {1: "run", 2: "daemon/status"}


def test_responses_are_correlated_and_typed() -> None:
    core = RpcCore()
    request_id, _ = core.request("run", {"code": "1"})
    event = core.receive(b'{"jsonrpc":"2.0","id":1,"result":{"status":"ok"}}\r\n')
    assert event == ResponseReceived(request_id, "run", result={"status": "ok"})
    core.request("run", {"code": "1", "policy": "nope"})
    event = core.receive(b'{"jsonrpc":"2.0","id":2,"error":{"code":-32004,"message":"unknown policy"}}')
    assert isinstance(event, ResponseReceived) and isinstance(event.error, ptcd.UnknownPolicy)
    # A duplicate or unknown answer is reported, never misdelivered.
    assert isinstance(core.receive(b'{"jsonrpc":"2.0","id":2,"result":{}}'), ProtocolViolation)


def test_incoming_tool_call_cancel_and_output() -> None:
    core = RpcCore()
    call = core.receive(
        b'{"jsonrpc":"2.0","id":"t-1","method":"tool/call","params":{"run_id":"r-7","request_id":1,'
        b'"call_id":0,"name":"get_weather","arguments":{"city":"Paris"}}}'
    )
    assert call == ToolCallRequested("t-1", "r-7", 1, None, 0, "get_weather", {"city": "Paris"})
    assert core.receive(b'{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"t-1"}}') == CancelRequested("t-1")
    output = core.receive(
        b'{"jsonrpc":"2.0","method":"run/output","params":{"run_id":"r-7","request_id":1,"stream":"stdout","text":"hi\\n"}}'
    )
    assert output == OutputReceived("r-7", 1, "stdout", "hi\n")


def test_unknown_methods_and_garbage() -> None:
    core = RpcCore()
    event = core.receive(b'{"jsonrpc":"2.0","id":"t-9","method":"bogus/method","params":{}}')
    assert isinstance(event, UnhandledRequest)
    assert json.loads(event.reply)["error"]["code"] == -32601
    assert core.receive(b"") is None
    assert core.receive(b"   \r\n") is None
    assert isinstance(core.receive(b"{not json"), ProtocolViolation)
    assert isinstance(core.receive(b"[1,2]"), ProtocolViolation)
    bad_call = core.receive(b'{"jsonrpc":"2.0","id":"t-2","method":"tool/call","params":{"arguments":{}}}')
    assert isinstance(bad_call, ProtocolViolation) and bad_call.reply is not None


def test_replies_encode_results_and_errors() -> None:
    core = RpcCore()
    assert json.loads(core.result("t-1", '{"temp_c":18}')) == {"jsonrpc": "2.0", "id": "t-1", "result": {"temp_c": 18}}
    error = json.loads(core.error("t-2", -32000, "ValueError: boom"))
    assert error == {"jsonrpc": "2.0", "id": "t-2", "error": {"code": -32000, "message": "ValueError: boom"}}


def test_outgoing_line_limit() -> None:
    core = RpcCore(max_line_bytes=100)
    with pytest.raises(ptcd.InvalidRequest, match="line limit"):
        core.request("run", {"code": "x" * 200})
    assert core.pending == {}


def test_line_buffer_framing() -> None:
    buffer = LineBuffer(max_line_bytes=10)
    assert buffer.feed(b"ab") == []
    assert buffer.feed(b"c\r\n\n  \nde\nf") == [b"abc", b"de"]
    assert buffer.feed(b"\n") == [b"f"]
    with pytest.raises(LineTooLong):
        buffer.feed(b"x" * 11)


def test_every_contract_code_maps_to_a_typed_exception() -> None:
    expected = {
        -32700: ptcd.ParseError,
        -32600: ptcd.InvalidRequest,
        -32601: ptcd.MethodNotFound,
        -32602: ptcd.InvalidParams,
        -32603: ptcd.InternalError,
        -32001: ptcd.UnknownSession,
        -32002: ptcd.Overloaded,
        -32003: ptcd.LimitsExceedPolicy,
        -32004: ptcd.UnknownPolicy,
        -32005: ptcd.UnknownRun,
        -32006: ptcd.SandboxUnavailable,
        -32007: ptcd.ShuttingDown,
        -32008: ptcd.McpServerUnavailable,
    }
    for code, cls in expected.items():
        error = error_from_wire({"code": code, "message": "m", "data": {"field": "limits.timeout_ms"}})
        assert type(error) is cls and error.code == code and isinstance(error, ptcd.PtcdError)
    invalid = error_from_wire({"code": -32602, "message": "bad", "data": {"field": "code"}})
    assert isinstance(invalid, ptcd.InvalidParams) and invalid.field == "code"
    other = error_from_wire({"code": -1, "message": "odd"})
    assert type(other) is ptcd.PtcdError and other.code == -1


def test_mcp_server_unavailable_names_the_server() -> None:
    error = error_from_wire({"code": -32008, "message": "MCP server unavailable: my-db: spawn failed: No such file"})
    assert isinstance(error, ptcd.McpServerUnavailable) and error.server == "my-db"
    with_data = error_from_wire({"code": -32008, "message": "MCP server unavailable: x: y", "data": {"server": "d"}})
    assert isinstance(with_data, ptcd.McpServerUnavailable) and with_data.server == "d"
    assert ptcd.McpServerUnavailable("something else").server is None


def test_render_ok_error_and_truncation() -> None:
    ok = ptcd.RunResult.from_wire(
        {"run_id": "r-1", "status": "ok", "stdout": "hello\n", "stderr": "", "value": {"a": 1},
         "truncated": {"stdout": 0, "stderr": 0}, "tool_calls": 2, "duration_ms": 5.5}
    )
    assert ok.ok and ok.tool_calls == 2
    assert ok.render() == 'hello\n{"a":1}'
    assert ok.text == ok.render()

    cut = ptcd.RunResult.from_wire({"run_id": "r-2", "status": "ok", "stdout": "xxx", "truncated": {"stdout": 4096}})
    assert "[stdout truncated: 4096 bytes omitted]" in cut.render()

    failed = ptcd.RunResult.from_wire(
        {"run_id": "r-3", "status": "error", "stdout": "before\n", "value": None,
         "error": {"type": "ZeroDivisionError", "message": "division by zero",
                   "traceback": 'Traceback (most recent call last):\n  File "<script>", line 2, in <module>\n'
                                "ZeroDivisionError: division by zero\n", "line": 2}}
    )
    assert not failed.ok and failed.error is not None and failed.error.line == 2
    text = failed.render()
    assert text.startswith("before\nerror: ZeroDivisionError: division by zero\nTraceback")
    assert text.count("division by zero") == 1

    empty = ptcd.RunResult.from_wire({"run_id": "r-4", "status": "ok"})
    assert empty.render() == "(no output)"


def test_socket_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTCD_SOCKET", "/env/ptcd.sock")
    assert ptcd.resolve_socket_path("/explicit.sock") == "/explicit.sock"
    assert ptcd.resolve_socket_path() == "/env/ptcd.sock"
    monkeypatch.delenv("PTCD_SOCKET")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert ptcd.resolve_socket_path() == "/run/user/1000/ptcd.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert ptcd.default_socket_path() in ("/run/ptcd/ptcd.sock", f"/tmp/ptcd-{__import__('os').getuid()}/ptcd.sock")


def test_limits_only_sends_what_is_set() -> None:
    assert ptcd.Limits(timeout_ms=500, max_tool_calls=3).to_wire() == {"timeout_ms": 500, "max_tool_calls": 3}
