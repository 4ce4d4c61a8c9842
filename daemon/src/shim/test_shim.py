"""Tests for the runtime shim: each one spawns the real shim the way the daemon does
(``python3 -I -S -B -c <bootstrap.py>``, fd 3 = one end of a socketpair, fd 4 = the source)
and plays the daemon.

Run: ``python3 -m pytest daemon/src/shim/test_shim.py``. ``PTCD_TEST_PYTHON`` picks another
interpreter for the children (default /usr/bin/python3).
"""

import fcntl
import hashlib
import json
import os
import platform
import socket
import struct
import subprocess
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

SHIM_SOURCE = (Path(__file__).parent / "shim.py").read_text()
BOOTSTRAP = (Path(__file__).parent / "bootstrap.py").read_text()  # the daemon's `-c` (shim/mod.rs)
PYTHON = os.environ.get("PTCD_TEST_PYTHON", "/usr/bin/python3")
TIMEOUT = 20.0  # seconds; only a guard against hanging, never used to synchronise


def tool(name: str, params=(), required=(), any_kwargs=False, py_name=None, description=None,
         namespace=None):
    return {"name": name, "py_name": py_name or name, "params": list(params),
            "required": list(required), "any_kwargs": any_kwargs, "description": description,
            "namespace": namespace}


READ_QUERY = tool("my-db.read_query", ["query"], ["query"], py_name="read_query", namespace="my_db")
LIST_TABLES = tool("my-db.list_tables", py_name="list_tables", namespace="my_db")


ECHO = tool("echo", ["x", "y"], ["x"])


def launch(control: socket.socket, *args: str) -> "subprocess.Popen[bytes]":
    """The shim as the launcher starts it: ``control`` on fd 3, the source on fd 4 (a memfd),
    ``-c`` the bootstrap, an empty environment."""
    source = os.memfd_create("ptcd-shim")
    os.write(source, SHIM_SOURCE.encode())
    fds = (control.fileno(), source)

    def place_fds() -> None:  # runs in the child between fork and exec
        parked = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds]  # neither clobbers the other
        for fd, target in zip(parked, (3, 4)):
            os.dup2(fd, target)  # the dup is inheritable
        for fd in parked:
            os.close(fd)

    try:
        return subprocess.Popen(
            [PYTHON, "-I", "-S", "-B", "-c", BOOTSTRAP, *args], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={}, close_fds=False,
            preexec_fn=place_fds)
    finally:
        os.close(source)


class Shim:
    """One shim child plus the daemon's end of its control socket."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self.proc = launch(theirs)
        theirs.close()
        ours.settimeout(TIMEOUT)
        self.sock = ours
        self.reader = ours.makefile("rb")
        self.tool_calls: List[Dict[str, Any]] = []

    def recv(self) -> Dict[str, Any]:
        line = self.reader.readline()
        assert line.endswith(b"\n"), f"control channel ended: {line!r}"
        return json.loads(line)

    def send(self, msg: Dict[str, Any]) -> None:
        self.sock.sendall(json.dumps(msg).encode() + b"\n")

    def start(self, code: str, tools=(), inputs=None, late_seccomp: Optional[str] = None,
              **extra: Any) -> None:
        assert self.recv() == {"type": "ready"}
        self.send({"type": "exec", "code": code, "tools": list(tools), "inputs": inputs or {},
                   "late_seccomp": late_seccomp, **extra})

    def next_call(self) -> Dict[str, Any]:
        msg = self.recv()
        assert msg["type"] == "tool_call", msg
        self.tool_calls.append(msg)
        return msg

    def serve(self, answer: Callable[[Dict[str, Any]], Dict[str, Any]]) -> Dict[str, Any]:
        """Answer tool calls until ``done``; returns it."""
        while True:
            msg = self.recv()
            if msg["type"] == "done":
                return msg
            assert msg["type"] == "tool_call", msg
            self.tool_calls.append(msg)
            self.send({"type": "tool_result", "id": msg["id"], **answer(msg)})

    def finish(self):
        out, err = self.proc.communicate(timeout=TIMEOUT)
        return out.decode(), err.decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        self.reader.close()
        self.sock.close()


@pytest.fixture
def shim():
    s = Shim()
    yield s
    s.kill()


def echo_arguments(msg):
    return {"result": msg["arguments"]}


def run(shim: Shim, code: str, tools=(), inputs=None, answer=echo_arguments, late_seccomp=None):
    """Run a script to its end; returns (done, stdout, stderr) and checks the clean exit."""
    shim.start(code, tools, inputs, late_seccomp)
    done = shim.serve(answer)
    out, err = shim.finish()
    assert shim.proc.returncode == 0, err
    return done, out, err


# --- values and output ------------------------------------------------------------------------

def test_hello_world_prints_to_stdout_and_a_script_without_await_runs(shim):
    done, out, err = run(shim, 'print("hello, world")\nimport sys\nprint("warn", file=sys.stderr)')
    assert done == {"type": "done", "status": "ok", "value": None}
    assert (out, err) == ("hello, world\n", "warn\n")


def test_the_source_fd_is_closed_before_the_script_runs(shim):
    """fd 4 carried the shim's source (bootstrap.py): a script finds it closed."""
    code = "import os\ntry:\n    os.fstat(4)\n    r = 'open'\nexcept OSError as e:\n    r = e.errno\nr"
    done, _, _ = run(shim, code)
    assert done == {"type": "done", "status": "ok", "value": 9}  # EBADF


def test_unterminated_output_is_flushed_before_done(shim):
    done, out, _ = run(shim, 'import sys\nsys.stdout.write("no newline")\n1')
    assert (done["value"], out) == (1, "no newline")


@pytest.mark.parametrize("code, value", [
    ("1 + 2", 3),
    ("x = 5\n{'a': [x, None, True], 'b': 'é'}", {"a": [5, None, True], "b": "é"}),
    ("x = 5", None),
    ("import asyncio\nawait asyncio.sleep(0)\n'after await'", "after await"),
])
def test_last_expression_statement_is_the_value(shim, code, value):
    done, _, _ = run(shim, code)
    assert done == {"type": "done", "status": "ok", "value": value}


@pytest.mark.parametrize("code, value", [
    ("class Thing:\n    def __repr__(self):\n        return 'Thing()'\nThing()", "Thing()"),
    ("{1, 2}", "{1, 2}"),
    ("float('nan')", "nan"),
    ("'\\ud800'", "'\\ud800'"),
])
def test_non_json_value_is_reported_as_its_repr(shim, code, value):
    done, _, _ = run(shim, code)
    assert done == {"type": "done", "status": "ok", "value": value}


def test_huge_repr_is_truncated_to_64_kib(shim):
    done, _, _ = run(shim, "{'x' * 100_000}")
    assert len(done["value"]) == 64 * 1024


def test_inputs_are_bound_as_globals(shim):
    done, _, _ = run(shim, "[city, n * 2, opts['deep']]",
                     inputs={"city": "Paris", "n": 21, "opts": {"deep": [1]}})
    assert done["value"] == ["Paris", 42, [1]]


def test_script_globals_look_like_main_module(shim):
    code = ("import sys\n"
            "[__name__, type(__builtins__).__name__, sys.modules['__main__'].__dict__ is globals(),"
            " issubclass(ToolError, Exception), echo.__name__, echo.__doc__]")
    done, _, _ = run(shim, code, tools=[tool("echo", description="Echo it.")])
    assert done["value"] == ["__main__", "module", True, True, "echo", "Echo it."]


# --- tool calls -------------------------------------------------------------------------------

def test_one_tool_call_round_trip(shim):
    code = "r = await get_weather('Paris', units='C')\nprint(r['temp_c'])\nr"
    tools = [tool("get-weather", ["city", "units"], ["city"], py_name="get_weather")]
    done, out, _ = run(shim, code, tools, answer=lambda m: {"result": {"temp_c": 18}})
    assert shim.tool_calls == [{"type": "tool_call", "id": 0, "name": "get-weather",
                                "arguments": {"city": "Paris", "units": "C"}}]
    assert (done["value"], out) == ({"temp_c": 18}, "18\n")


def test_fifty_gathered_calls_answered_in_reverse_order(shim):
    shim.start("import asyncio\nawait asyncio.gather(*(echo(i) for i in range(50)))", [ECHO])
    calls = [shim.next_call() for _ in range(50)]
    assert sorted(c["id"] for c in calls) == list(range(50))
    for call in reversed(calls):
        shim.send({"type": "tool_result", "id": call["id"], "result": call["arguments"]["x"] * 10})
    done = shim.recv()
    assert done == {"type": "done", "status": "ok", "value": [i * 10 for i in range(50)]}
    shim.finish()


def test_call_over_max_argument_bytes_is_a_tool_error_and_is_not_sent(shim):
    code = ("try:\n    await echo('x' * 2000)\nexcept ToolError as e:\n    r = [e.code, e.message]\n"
            "r.append(await echo('small'))\nr")
    shim.start(code, [ECHO], max_argument_bytes=1000)
    done = shim.serve(lambda m: {"result": m["arguments"]["x"]})
    assert done["value"] == [-32602, "tool call arguments are 2008 bytes of JSON, over "
                             "max_tool_argument_bytes = 1000", "small"]
    assert [c["arguments"] for c in shim.tool_calls] == [{"x": "small"}]


def test_arguments_nested_too_deeply_to_encode_are_a_value_error(shim):
    code = ("v = []\nfor _ in range(100000):\n    v = [v]\n"
            "try:\n    await echo(v)\nexcept ValueError as e:\n    r = str(e)\nr")
    done, _, _ = run(shim, code, [ECHO])
    assert done["value"] == "tool arguments are nested too deeply to encode as JSON"
    assert shim.tool_calls == []


def test_deep_tool_result_fails_only_its_call_with_a_tool_error(shim):
    code = ("import asyncio\nr = await asyncio.gather(echo(1), echo(2), return_exceptions=True)\n"
            "[type(r[0]).__name__, r[0].code, 'nested too deeply' in r[0].message, r[1]]")
    shim.start(code, [ECHO])
    first, second = shim.next_call(), shim.next_call()
    depth = 100_000
    deep = b'{"type":"tool_result","id":%d,"result":' % first["id"] + b"[" * depth + b"]" * depth
    shim.sock.sendall(deep + b"}\n")
    shim.send({"type": "tool_result", "id": second["id"], "result": "fine"})
    done = shim.recv()
    assert done["value"] == ["ToolError", -32603, True, "fine"], done
    shim.finish()


def test_moderately_deep_result_is_decoded(shim):
    shim.start("await echo(1)", [ECHO])
    call = shim.next_call()
    nested: Any = []
    for _ in range(200):
        nested = [nested]
    shim.send({"type": "tool_result", "id": call["id"], "result": nested})
    assert shim.recv()["value"] == nested
    shim.finish()


def test_script_may_run_its_own_loop_with_asyncio_run(shim):
    code = ("import asyncio\nasync def main():\n    return await asyncio.gather(echo(1), echo(2))\n"
            "first = asyncio.run(main())\nsecond = asyncio.run(main())\n[first, second]")
    done, _, _ = run(shim, code, [ECHO], answer=lambda m: {"result": m["arguments"]["x"]})
    assert done["value"] == [[1, 2], [1, 2]]
    assert [c["id"] for c in shim.tool_calls] == [0, 1, 2, 3]


def test_unknown_tool_result_id_is_ignored(shim):
    shim.start("await echo(1)", [ECHO])
    call = shim.next_call()
    shim.send({"type": "tool_result", "id": 999, "result": "stray"})
    shim.send({"type": "tool_result", "id": call["id"], "result": "right"})
    assert shim.recv() == {"type": "done", "status": "ok", "value": "right"}


def test_tool_error_is_catchable_with_code_message_and_data(shim):
    code = ("try:\n    await echo(1)\nexcept ToolError as e:\n"
            "    caught = [type(e).__name__, e.code, e.message, str(e), e.data]\ncaught")
    error = {"code": -32010, "message": "city not found", "data": {"city": "Atlantis"}}
    done, _, _ = run(shim, code, [ECHO], answer=lambda m: {"error": error})
    assert done["value"] == ["ToolError", -32010, "city not found", "city not found",
                             {"city": "Atlantis"}]


def test_uncaught_tool_error_is_reported_with_script_frames_only(shim):
    done, _, _ = run(shim, "x = 1\nawait echo(x)", [ECHO],
                     answer=lambda m: {"error": {"code": 7, "message": "nope"}})
    err = done["error"]
    assert (done["status"], err["type"], err["message"], err["line"]) == \
        ("error", "ToolError", "nope", 2)
    assert err["traceback"] == ('Traceback (most recent call last):\n'
                                '  File "<script>", line 2, in <module>\n'
                                '    await echo(x)\nToolError: nope\n')


@pytest.mark.parametrize("call, message", [
    ("echo()", "echo() missing 1 required argument: 'x'"),
    ("echo(1, z=2)", "echo() got an unexpected keyword argument 'z'"),
    ("echo(1, x=2)", "echo() got multiple values for argument 'x'"),
    ("echo(1, 2, 3)", "echo() takes 2 positional arguments but 3 were given"),
    ("echo(x={1})", "Object of type set is not JSON serializable"),
])
def test_bad_arguments_raise_before_any_tool_call_is_sent(shim, call, message):
    code = f"try:\n    await {call}\nexcept (TypeError, ValueError) as e:\n    msg = str(e)\nmsg"
    done, _, _ = run(shim, code, [ECHO])
    assert done == {"type": "done", "status": "ok", "value": message}
    assert shim.tool_calls == []


def test_any_kwargs_tool_takes_any_keywords_but_no_positionals(shim):
    code = ("try:\n    await anything(1)\nexcept TypeError as e:\n    msg = str(e)\n"
            "[msg, await anything(a=1, b=[2])]")
    done, _, _ = run(shim, code, [tool("anything", any_kwargs=True)])
    assert done["value"] == ["anything() takes 0 positional arguments but 1 was given",
                             {"a": 1, "b": [2]}]
    assert [c["arguments"] for c in shim.tool_calls] == [{"a": 1, "b": [2]}]


# --- failures ---------------------------------------------------------------------------------

def test_exception_reports_script_line_and_a_traceback_without_shim_frames(shim):
    code = "def helper(v):\n    return 1 / v\n\nx = 0\nhelper(x)\n"
    done, _, _ = run(shim, code)
    err = done["error"]
    assert (done["status"], err["type"], err["message"], err["line"]) == \
        ("error", "ZeroDivisionError", "division by zero", 2)
    tb = err["traceback"]
    assert tb.startswith("Traceback (most recent call last):\n")
    assert 'File "<script>", line 5, in <module>\n    helper(x)' in tb
    assert 'File "<script>", line 2, in helper\n    return 1 / v' in tb
    assert "<string>" not in tb and "asyncio" not in tb
    assert tb.endswith("ZeroDivisionError: division by zero\n")


def test_chained_exception_keeps_both_parts_script_only(shim):
    code = ("import json\ntry:\n    json.loads('{')\nexcept ValueError as e:\n"
            "    raise RuntimeError('bad input') from e\n")
    done, _, _ = run(shim, code)
    tb = done["error"]["traceback"]
    assert "direct cause" in tb and "json/" not in tb and "<string>" not in tb
    assert done["error"]["line"] == 5


@pytest.mark.parametrize("code, line", [("x = 1\nx x\n", 2), ("x = 1\n\nreturn x\n", 3)])
def test_syntax_error_reports_its_line_with_caret_display(shim, code, line):
    done, _, _ = run(shim, code)
    err = done["error"]
    assert (err["type"], err["line"]) == ("SyntaxError", line)
    assert err["traceback"].startswith(f'  File "<script>", line {line}\n')
    assert "^" in err["traceback"] and "<string>" not in err["traceback"]


def test_sys_exit_is_an_error_carrying_the_code(shim):
    done, out, _ = run(shim, "import sys\nprint('bye')\nsys.exit(3)")
    assert out == "bye\n"
    assert (done["status"], done["error"]["type"], done["error"]["message"],
            done["error"]["line"]) == ("error", "SystemExit", "3", 3)


def test_keyboard_interrupt_in_a_gathered_task_is_reported(shim):
    code = "import asyncio\nasync def f():\n    raise KeyboardInterrupt\nawait asyncio.gather(f())"
    done, _, _ = run(shim, code)
    assert (done["status"], done["error"]["type"], done["error"]["line"]) == \
        ("error", "KeyboardInterrupt", 3)


# --- the control channel ----------------------------------------------------------------------

def test_child_exits_when_control_fd_closes_during_a_tool_call(shim):
    shim.start("await echo(1)\nprint('must not run')", [ECHO])
    shim.next_call()
    shim.sock.shutdown(socket.SHUT_RDWR)
    out, err = shim.finish()
    assert shim.proc.returncode == 1 and out == ""
    assert "control channel closed" in err


def test_child_exits_when_control_fd_closes_before_exec(shim):
    assert shim.recv() == {"type": "ready"}
    shim.sock.shutdown(socket.SHUT_RDWR)
    shim.finish()
    assert shim.proc.returncode == 1


def test_malformed_daemon_message_ends_the_child_with_a_reason(shim):
    shim.start("await echo(1)", [ECHO])
    shim.next_call()
    shim.sock.sendall(b"{not json\n")
    _, err = shim.finish()
    assert shim.proc.returncode == 2 and "malformed control message" in err


# --- late seccomp -----------------------------------------------------------------------------

def bpf(*instructions) -> str:
    """Assemble ``(code, jt, jf, k)`` tuples into the hex wire form (struct sock_filter)."""
    return b"".join(struct.pack("=HBBI", *ins) for ins in instructions).hex()


LD_ABS_W, JEQ_K, RET_K = 0x20, 0x15, 0x06
AUDIT_ARCH_X86_64, NR_GETPPID = 0xC000003E, 110
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, EPERM = 0x7FFF0000, 0x00050000, 1
DENY_GETPPID = bpf(
    (LD_ABS_W, 0, 0, 4),                          # A = seccomp_data.arch
    (JEQ_K, 0, 3, AUDIT_ARCH_X86_64),             # other arch -> allow
    (LD_ABS_W, 0, 0, 0),                          # A = seccomp_data.nr
    (JEQ_K, 0, 1, NR_GETPPID),
    (RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM),
    (RET_K, 0, 0, SECCOMP_RET_ALLOW),
)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="filter assembled for x86_64")
def test_late_seccomp_filter_is_in_force_when_the_script_runs(shim):
    code = "import os, ctypes\n[os.getppid(), ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)]"
    done, _, _ = run(shim, code, late_seccomp=DENY_GETPPID)
    # getppid() answers -EPERM (raw -1); PR_GET_DUMPABLE (3) shows the shim turned dumpable off.
    assert done == {"type": "done", "status": "ok", "value": [-1, 0]}


def test_without_late_seccomp_the_same_script_sees_its_parent(shim):
    done, _, _ = run(shim, "import os\nos.getppid()")
    assert done["value"] == os.getpid()


@pytest.mark.parametrize("program", ["zz", "00" * 12, bpf((LD_ABS_W, 0, 0, 0))])
def test_bad_late_seccomp_program_is_a_sandbox_error_and_the_script_never_runs(shim, program):
    done, out, _ = run(shim, "print('ran')", late_seccomp=program)
    assert (done["status"], done["error"]["type"]) == ("error", "SandboxError")
    assert out == ""


# --- persistent mode (several execs) ----------------------------------------------------------

def exec_persistent(shim: Shim, code: str, tools=(), inputs=None, stream=False, environ=None) -> None:
    shim.send({"type": "exec", "code": code, "tools": list(tools), "inputs": inputs or {},
               "late_seccomp": None, "persistent": True, "stream": stream, "environ": environ or {}})


def serve_with_output(shim: Shim, answer=echo_arguments):
    """Answer tool calls until ``done``; returns (done, stdout text, stderr text, messages)."""
    out, err, seen = [], [], []
    while True:
        msg = shim.recv()
        seen.append(msg)
        if msg["type"] == "done":
            return msg, "".join(out), "".join(err), seen
        if msg["type"] == "output":
            (out if msg["stream"] == "stdout" else err).append(msg["text"])
            continue
        assert msg["type"] == "tool_call", msg
        shim.send({"type": "tool_result", "id": msg["id"], **answer(msg)})


def test_persistent_shim_serves_several_execs_keeping_globals(shim):
    assert shim.recv() == {"type": "ready"}
    exec_persistent(shim, "import math\nx = 20\ndef f(v):\n    return v + 2")
    assert serve_with_output(shim)[0]["value"] is None
    exec_persistent(shim, "f(x * 2)")
    assert serve_with_output(shim)[0]["value"] == 42
    assert shim.proc.poll() is None  # still waiting for the next exec
    shim.sock.shutdown(socket.SHUT_WR)
    shim.finish()
    assert shim.proc.returncode == 1  # the daemon went away


def test_persistent_output_goes_through_the_control_channel_per_exec(shim):
    assert shim.recv() == {"type": "ready"}
    exec_persistent(shim, "import sys\nprint('one')\nprint('warn', file=sys.stderr)\nsys.stdout.write('tail')")
    done, out, err, _ = serve_with_output(shim)
    assert (done["status"], out, err) == ("ok", "one\ntail", "warn\n")
    exec_persistent(shim, "print('two')")
    done, out, err, _ = serve_with_output(shim)
    assert (out, err) == ("two\n", "")
    shim.sock.shutdown(socket.SHUT_WR)
    out, _ = shim.finish()
    assert out == ""  # nothing went to the stdout pipe


def test_persistent_output_before_a_tool_call_is_sent_before_the_call(shim):
    assert shim.recv() == {"type": "ready"}
    exec_persistent(shim, "print('before')\nawait echo(1)\nprint('after')", [ECHO])
    done, out, _, seen = serve_with_output(shim)
    kinds = [m["type"] for m in seen]
    assert kinds == ["output", "tool_call", "output", "done"], seen
    assert out == "before\nafter\n"


def test_persistent_stream_mode_sends_each_line(shim):
    assert shim.recv() == {"type": "ready"}
    exec_persistent(shim, "print('a')\nprint('b')", stream=True)
    _, _, _, seen = serve_with_output(shim)
    assert [m.get("text") for m in seen if m["type"] == "output"] == ["a\n", "b\n"]


def test_persistent_exec_rebinds_tools_and_environment(shim):
    assert shim.recv() == {"type": "ready"}
    exec_persistent(shim, "import os\n[echo.__name__, os.environ['A']]", [ECHO], environ={"A": "1"})
    assert serve_with_output(shim)[0]["value"] == ["echo", "1"]
    exec_persistent(shim, "['echo' in globals(), os.environ.get('A'), os.environ['B']]", environ={"B": "2"})
    assert serve_with_output(shim)[0]["value"] == [False, None, "2"]


def test_persistent_errors_keep_the_interpreter(shim):
    assert shim.recv() == {"type": "ready"}
    exec_persistent(shim, "y = 1\nraise KeyError('k')")
    assert serve_with_output(shim)[0]["status"] == "error"
    exec_persistent(shim, "y + 1")
    assert serve_with_output(shim)[0]["value"] == 2


# --- MCP namespaces ---------------------------------------------------------------------------

def test_namespaced_tools_are_attributes_of_one_global_sending_the_wire_name(shim):
    code = ("r = await my_db.read_query(query='select 1')\n"
            "[r, await echo(1), 'read_query' in globals(), repr(my_db)]")
    done, _, _ = run(shim, code, [READ_QUERY, LIST_TABLES, ECHO])
    assert done["status"] == "ok", done
    assert done["value"] == [{"query": "select 1"}, {"x": 1}, False,
                             "<namespace my_db: list_tables, read_query>"]
    assert [c["name"] for c in shim.tool_calls] == ["my-db.read_query", "echo"]


def test_namespaced_tool_checks_arguments_under_its_qualified_name(shim):
    done, _, _ = run(shim, "await my_db.read_query()", [READ_QUERY])
    assert done["error"]["type"] == "TypeError"
    assert "my_db.read_query() missing 1 required argument: 'query'" in done["error"]["message"]
    assert shim.tool_calls == []


def test_unknown_attribute_of_a_namespace_lists_its_tools(shim):
    done, _, _ = run(shim, "await my_db.drop_everything()", [READ_QUERY, LIST_TABLES])
    assert done["error"]["type"] == "AttributeError"
    assert "my_db.list_tables, my_db.read_query" in done["error"]["message"]


def test_name_error_hint_lists_namespaced_tools_qualified(shim):
    done, _, _ = run(shim, "await read_query(query='x')", [READ_QUERY, ECHO])
    assert done["error"]["type"] == "NameError"
    assert "available tools: echo, my_db.read_query" in done["error"]["message"]


def test_malformed_namespace_ends_the_shim(shim):
    bad = dict(READ_QUERY, namespace=3)
    shim.start("1", [bad])
    _, err = shim.finish()
    assert shim.proc.returncode == 2 and "malformed tool definition" in err


def test_persistent_rebinding_removes_a_namespace_no_longer_attached(shim):
    assert shim.recv() == {"type": "ready"}
    exec_persistent(shim, "kept = my_db\n'my_db' in globals()", [READ_QUERY])
    assert serve_with_output(shim)[0]["value"] is True
    exec_persistent(shim, "['my_db' in globals(), 'kept' in globals()]", [ECHO])
    assert serve_with_output(shim)[0]["value"] == [False, True]


def test_a_namespaced_tool_named_like_a_special_attribute_breaks_nothing(shim):
    odd = tool("s.__class__", py_name="__class__", namespace="s")
    done, _, _ = run(shim, "[type(s).__name__, await s.x(1)]",
                     [odd, tool("s.x", ["v"], py_name="x", namespace="s")])
    assert done["status"] == "ok", done
    assert done["value"] == ["Namespace", {"v": 1}]


# --- fork server: the child filters a template preloads and the children it forks --------------

def filters_digest(programs: List[str]) -> str:
    """What the daemon sends as a confine job's ``seccomp_sha256`` (``forkserver::filters_digest``)."""
    return hashlib.sha256("\n".join(programs).encode("ascii")).hexdigest()


ALLOW_ALL = bpf((RET_K, 0, 0, SECCOMP_RET_ALLOW))


class Template:
    """A shim in template mode (fd 3: a SOCK_SEQPACKET socket) and the daemon's end of it."""

    def __init__(self, first: Dict[str, Any]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = launch(theirs, "template")
        theirs.close()
        ours.settimeout(TIMEOUT)
        self.sock = ours
        self.next_id = 0
        self.sock.send(json.dumps(first).encode())

    def recv(self) -> Tuple[Dict[str, Any], List[int]]:
        data, fds, _, _ = socket.recv_fds(self.sock, 1 << 16, 4)
        assert data, "the template closed its socket"
        return json.loads(data), fds

    def fork(self, job: Dict[str, Any]) -> Tuple[Shim, int]:
        """Writes ``job`` to a new control socket and has T fork a child on it: (child, id)."""
        child = Shim.__new__(Shim)
        ours, theirs = socket.socketpair()
        ours.settimeout(TIMEOUT)
        ours.sendall(json.dumps(job).encode() + b"\n")
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        self.next_id += 1
        socket.send_fds(self.sock, [json.dumps({"type": "fork", "id": self.next_id}).encode()],
                        [theirs.fileno(), out_w, err_w])
        theirs.close()
        os.close(out_w)
        os.close(err_w)
        msg, fds = self.recv()
        assert (msg["type"], msg["id"], len(fds)) == ("forked", self.next_id, 1), msg
        os.close(fds[0])
        os.close(out_r)
        os.close(err_r)
        child.sock, child.reader, child.tool_calls = ours, ours.makefile("rb"), []
        return child, self.next_id

    def exit_status(self, request: int) -> int:
        while True:
            msg, _ = self.recv()
            if msg["type"] == "exited" and msg["id"] == request:
                return msg["status"]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()
        self.sock.close()


def confine_job(tmp_path: Path, **seccomp: Any) -> Dict[str, Any]:
    return {"type": "confine", "identity": None, "cwd": str(tmp_path), "rlimits": [],
            "landlock": False, "env": [["LANG", "C.UTF-8"], ["HOME", str(tmp_path)]], **seccomp}


@pytest.fixture
def template():
    started: List[Template] = []

    def start(first: Dict[str, Any]) -> Template:
        started.append(Template(first))
        return started[-1]

    yield start
    for t in started:
        t.kill()


@pytest.mark.skipif(platform.machine() != "x86_64", reason="filter assembled for x86_64")
def test_forked_child_installs_the_preloaded_filters_its_job_names(template, tmp_path):
    t = template({"type": "template", "late_seccomp": None, "seccomp": [DENY_GETPPID]})
    assert t.recv()[0]["type"] == "ready"
    child, request = t.fork(confine_job(tmp_path, seccomp_sha256=filters_digest([DENY_GETPPID])))
    child.start("import os\n[os.getppid(), os.getcwd(), os.environ['HOME']]")
    done = child.recv()
    # The run's filter is in force (getppid answers -EPERM); the rest of the job applied too.
    assert done == {"type": "done", "status": "ok", "value": [-1, str(tmp_path), str(tmp_path)]}
    assert t.exit_status(request) == 0


@pytest.mark.parametrize("seccomp", [
    pytest.param({"seccomp_sha256": filters_digest([ALLOW_ALL])}, id="another-policys-filters"),
    pytest.param({"seccomp_sha256": filters_digest([DENY_GETPPID, ALLOW_ALL])}, id="a-superset"),
    pytest.param({"seccomp_sha256": filters_digest([])}, id="no-filters"),
    pytest.param({}, id="no-digest"),
    pytest.param({"seccomp_sha256": None}, id="null-digest"),
    pytest.param({"seccomp_sha256": [filters_digest([DENY_GETPPID])]}, id="not-a-string"),
    # The old job format: the programs themselves, which a child no longer takes from a job.
    pytest.param({"seccomp": [ALLOW_ALL]}, id="programs-instead-of-a-digest"),
    pytest.param({"seccomp": [DENY_GETPPID]}, id="the-right-programs-without-a-digest"),
])
def test_forked_child_refuses_a_job_that_does_not_name_its_templates_filters(
        template, tmp_path, seccomp):
    """A child never starts with other filters than its template's preloaded child filters, nor
    with none: it says sandbox_error (seccomp) and exits 126 before any script byte."""
    t = template({"type": "template", "late_seccomp": None, "seccomp": [DENY_GETPPID]})
    assert t.recv()[0]["type"] == "ready"
    child, request = t.fork(confine_job(tmp_path, **seccomp))
    msg = child.recv()
    assert (msg["type"], msg.get("mechanism")) == ("sandbox_error", "seccomp"), msg
    assert "preloaded" in msg["message"]
    assert child.reader.readline() == b""  # it exited: no script can reach it
    status = t.exit_status(request)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 126, status
    child.sock.close()


@pytest.mark.parametrize("first", [
    pytest.param({"type": "template", "late_seccomp": None}, id="no-run-filters"),
    pytest.param({"type": "template", "late_seccomp": None, "seccomp": []}, id="empty"),
    pytest.param({"type": "template", "late_seccomp": None, "seccomp": "00"}, id="not-a-list"),
    pytest.param({"type": "template", "late_seccomp": None, "seccomp": ["zz"]}, id="not-hex"),
])
def test_template_without_valid_run_filters_never_says_ready(template, first):
    t = template(first)
    out, err = t.proc.communicate(timeout=TIMEOUT)
    assert t.proc.returncode != 0, (out, err)
    assert t.sock.recv(1 << 16) == b""  # it closed the socket without a ready


def test_filters_digest_is_the_one_the_daemon_computes():
    # forkserver.rs's test `filters_digest_is_the_sha256_the_shim_computes` has the same value.
    assert filters_digest(["ab", "cd"]) == \
        "41b72d4bfcbee9afefc1319dc198260e7dfd43b16d45f56b3bdded5e8427fea7"
