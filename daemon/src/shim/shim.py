"""ptcd runtime shim: runs one model-written script inside a confined CPython child.

Why it exists: the daemon cannot run Python itself, and the script must not see the daemon. So every
run (or every persistent session, see below) gets a fresh interpreter, started by the daemon as
``/usr/bin/python3 -I -S -B -c <this file>`` with a clean environment, stdout/stderr on pipes and
**fd 3** a connected AF_UNIX stream socket (the control channel). This shim turns that socket into
``async def`` tool functions, runs the script with top-level ``await``, and reports how it ended.
Stdlib only; it never calls socket(2), fork or exec, so it works under the daemon's seccomp filter.

Control protocol: one JSON object per line (UTF-8, ``\\n``-terminated), both directions.

  shim -> daemon  {"type":"ready"}                              imports done, waiting for the job
  daemon -> shim  {"type":"exec","code":str,"tools":[ToolDef],"inputs":{name:json},
                   "late_seccomp":null|hex,"stream":bool,"persistent":bool,
                   "environ":{name:str},"max_argument_bytes":int}  once, or once per run if persistent
  shim -> daemon  {"type":"tool_call","id":int,"name":wire name,"arguments":{...}}   ids 0,1,2,...
  daemon -> shim  {"type":"tool_result","id":int,"result":any}
                | {"type":"tool_result","id":int,"error":{"code":int,"message":str,"data"?:any}}
  shim -> daemon  {"type":"output","stream":"stdout"|"stderr","text":str}   persistent mode only
  shim -> daemon  {"type":"done","status":"ok","value":json|repr-string}
                | {"type":"done","status":"error","error":{"type","message","traceback","line"}}

ToolDef: {"name", "py_name", "params": [schema order], "required": [...], "any_kwargs": bool,
"description": str|null, "namespace": str|null}. A tool with a ``namespace`` (an MCP server's
tools) is not a global itself: it is an attribute of a ``Namespace`` object bound under that name
(``await sqlite.read_query(query=...)``), whose ``repr()`` lists its tools. ``late_seccomp`` is a classic BPF program (8-byte ``sock_filter``
entries, native endian, hex-encoded) installed before any user code runs. A call whose arguments
encode to more than ``max_argument_bytes`` raises ``ToolError`` (code -32602) in the script and is
not sent; arguments nested too deeply for ``json`` raise ``ValueError``. The daemon writes every
``tool_result`` with ``{"type":"tool_result","id":N,`` first: a result nested too deeply for
``json`` fails that call with ``ToolError`` (-32603) instead of ending the shim. Unknown ``tool_result``
ids are ignored; any other unexpected message ends the shim (exit 2, reason on stderr); EOF on
fd 3 means the daemon is gone (exit 1). After ``done`` the shim exits 0 with ``os._exit``:
interpreter finalization is slow and there is nothing to clean up.

Persistent mode (``exec.persistent``, a persistent session): after ``done`` the shim waits for the
next ``exec`` instead of exiting. The script's globals, its event loop and its imports survive
(like a notebook); each exec rebinds the tools (a tool no longer offered disappears) and the
inputs, and sets ``environ`` in ``os.environ`` (dropping the names the previous exec set and this
one does not). ``sys.stdout``/``sys.stderr`` become writers that send ``output`` messages (chunks
of at most 32 Ki characters; flushed at that size, at each newline when streaming, before each
tool call and before ``done``), so the daemon attributes each run exactly its own output. Bytes
written to fd 1/2 directly still go to the pipes. The late seccomp filter is installed once.

Script semantics: globals are a fresh ``__main__`` module holding ``ToolError``, the tools and then
the inputs (an input shadows a tool of the same name). A tool checks its arguments like a Python
signature would, and that they are JSON, before sending anything (TypeError / ValueError). Parts of
the script that await run in an event loop; parts that do not run outside one, so a script may also
call ``asyncio.run(main())`` itself.
"""

import os
import sys

# Started by shim/mod.rs's BOOTSTRAP, which read this source from that fd: nothing else needs it.
if globals().get("_SHIM_FD") is not None:
    os.close(globals().pop("_SHIM_FD"))

sys.modules["ssl"] = None  # type: ignore[assignment]  # no network anyway; saves ~15 ms at start-up

import asyncio  # noqa: E402  (also loads ast, linecache, socket, traceback, types)
import ast  # noqa: E402
import builtins  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import linecache  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import traceback  # noqa: E402
import types  # noqa: E402
from typing import Any, Callable, Dict, List, NoReturn, Optional, Tuple  # noqa: E402

CONTROL_FD = 3
SCRIPT = "<script>"
CO_COROUTINE = 0x0080  # code flag set when a top-level await made the module a coroutine
MAX_TEXT = 64 * 1024  # cap on repr values, messages and tracebacks in "done"
OUTPUT_CHUNK = 32 * 1024  # characters per "output" message (persistent mode)
EXIT_DAEMON_GONE, EXIT_PROTOCOL = 1, 2
# How every tool_result line the daemon writes begins (used only when the rest cannot be decoded).
_RESULT_PREFIX = re.compile(rb'\{"type":"tool_result","id":(\d+),')


class ToolError(Exception):
    """A tool answered with an error; ``code``, ``message`` and ``data`` are the client's."""

    def __init__(self, message: str, code: int = -32000, data: Any = None) -> None:
        super().__init__(message)
        self.message, self.code, self.data = message, code, data


def _die(reason: str, status: int) -> NoReturn:
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__  # never forward through a dead channel
    _flush_std()
    try:
        os.write(2, f"ptcd shim: {reason}\n".encode("utf-8", "replace"))
    finally:
        os._exit(status)


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()  # type: ignore[union-attr]
        except Exception:
            pass


# A tool call's arguments, strict (what _encode does), made once: json.dumps with options builds
# an encoder per call.
_ARGUMENTS = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _encode(msg: Dict[str, Any], strict: bool = True) -> bytes:
    """One protocol line. Strict: raise on NaN, non-JSON types and lone surrogates."""
    text = json.dumps(msg, ensure_ascii=False, allow_nan=not strict, separators=(",", ":"))
    return text.encode("utf-8", "strict" if strict else "replace") + b"\n"


def _decode(line: bytes) -> Dict[str, Any]:
    try:
        msg = json.loads(line)
    except ValueError as exc:
        _die(f"malformed control message: {exc}", EXIT_PROTOCOL)
    if not isinstance(msg, dict):
        _die("malformed control message: not an object", EXIT_PROTOCOL)
    return msg


# --- control socket and confinement ------------------------------------------------------------

def _open_control() -> socket.socket:
    try:
        sock = socket.socket(fileno=CONTROL_FD)  # adopts fd 3; does not call socket(2)
    except OSError as exc:
        _die(f"fd {CONTROL_FD} is not a usable control socket: {exc}", EXIT_DAEMON_GONE)
    sock.setblocking(True)  # the inherited file description might be O_NONBLOCK
    return sock


_SECCOMP_CALLS: Any = None  # (libc, sock_fprog type), made once: by the template for its children


def _seccomp_calls() -> Any:
    """ctypes' libc and ``struct sock_fprog``, made on first use (a template makes them before
    it forks, so its children share them instead of each loading ctypes' view of libc)."""
    global _SECCOMP_CALLS
    if _SECCOMP_CALLS is None:
        import ctypes  # only here: costs start-up time and is useless without a filter

        class SockFprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        _SECCOMP_CALLS = (ctypes.CDLL(None, use_errno=True), SockFprog)
    return _SECCOMP_CALLS


def _seccomp_program(program_hex: str) -> Any:
    """A BPF program (hex) as the ``struct sock_fprog`` prctl takes, with the buffer it points
    into (kept alive together)."""
    import ctypes

    prog = bytes.fromhex(program_hex)
    if not prog or len(prog) % 8 or len(prog) // 8 > 4096:
        raise ValueError(f"bad BPF program length: {len(prog)} bytes")
    _, sock_fprog = _seccomp_calls()
    filt = ctypes.create_string_buffer(prog, len(prog))
    return sock_fprog(len(prog) // 8, ctypes.cast(filt, ctypes.c_void_p)), filt


def _install_seccomp(program: Any) -> None:
    """Dumpable off, then stack a BPF filter on this (only) thread: the daemon's hex, or one
    made by ``_seccomp_program`` (a template's preloaded filters)."""
    import ctypes

    fprog, _ = _seccomp_program(program) if isinstance(program, str) else program
    libc, _ = _seccomp_calls()
    ul = ctypes.c_ulong
    # prctl is variadic: pass every argument as unsigned long (the kernel checks unused ones are 0).
    for option, arg2, arg3 in ((38, ul(1), ul(0)),          # PR_SET_NO_NEW_PRIVS
                               (4, ul(0), ul(0)),           # PR_SET_DUMPABLE 0
                               (22, ul(2), ctypes.byref(fprog))):  # PR_SET_SECCOMP, MODE_FILTER
        if libc.prctl(ul(option), arg2, arg3, ul(0), ul(0)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"prctl({option}): {os.strerror(err)}")


_WRITE_BATCH = 4096  # bytes of queued control lines sent without waiting for the loop's turn


class Channel:
    """The control socket: blocking before and after the script, non-blocking under asyncio.

    It sends tool calls and routes results to the awaiting callers. Every line goes to ``_write``
    whole and unsent bytes queue in order, so lines never interleave however many calls are in
    flight. No asyncio transport: ``done`` is sent with a blocking ``sendall`` once no loop runs,
    so no script code can run after it.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock, self._fd = sock, sock.fileno()
        self._in = bytearray()
        self._out = bytearray()  # unsent bytes; a send is scheduled or awaited while non-empty
        self._writing = False  # the loop watches fd 3 for writability
        self._pending: Dict[int, "asyncio.Future[Any]"] = {}
        self._next_id = 0
        self._wire_names: Dict[str, bytes] = {}  # tool name -> its JSON string, encoded once
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self.max_argument_bytes: Optional[int] = None  # from the exec (max_tool_argument_bytes)

    def read_job(self) -> Dict[str, Any]:
        """Outside the loop: block until the exec line (bytes after it stay queued)."""
        self._sock.setblocking(True)
        while b"\n" not in self._in:
            try:
                chunk = self._sock.recv(1 << 16)
            except OSError as exc:
                _die(f"control channel lost: {exc}", EXIT_DAEMON_GONE)
            if not chunk:
                _die("control channel closed before exec", EXIT_DAEMON_GONE)
            self._in += chunk
        end = self._in.index(b"\n")
        job = _decode(bytes(self._in[:end]))
        del self._in[:end + 1]
        ok = (job.get("type") == "exec" and isinstance(job.get("code"), str)
              and isinstance(job.get("tools") or [], list)
              and isinstance(job.get("inputs") or {}, dict)
              and isinstance(job.get("environ") or {}, dict)
              and isinstance(job.get("late_seccomp"), (str, type(None))))
        if not ok:
            _die("malformed control message: expected a valid exec", EXIT_PROTOCOL)
        return job

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        """Serve fd 3 from the running loop: ours, or one the script made with asyncio.run()."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._fd)
                self._loop.remove_writer(self._fd)
            self._loop, self._writing = loop, False
            self._sock.setblocking(False)
            loop.add_reader(self._fd, self._on_readable)
            if self._out:
                loop.call_soon(self._on_writable)
            self._dispatch()
        elif self._sock.getblocking():  # a blocking send happened since (persistent mode)
            self._sock.setblocking(False)
        return loop

    def _on_readable(self) -> None:
        try:
            data = self._sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            _die(f"control channel lost: {exc}", EXIT_DAEMON_GONE)
        if not data:
            _die("control channel closed by the daemon", EXIT_DAEMON_GONE)
        self._in += data
        self._dispatch()

    def _write(self, line: bytes, batch: bool = False) -> None:
        """Queue ``line`` behind the unsent bytes and send now. A ``batch`` line (a tool call)
        waits for the end of this turn of the loop, or until a batch's worth is queued (so the
        daemon already works on the first calls of a large gather while the script makes the
        rest): 1000 gathered calls take a few dozen sends, not 1000. Output is never held back."""
        if not self._out and batch:
            assert self._loop is not None
            self._loop.call_soon(self._on_writable)
        self._out += line
        if (not batch or len(self._out) >= _WRITE_BATCH) and not self._writing:
            self._on_writable()

    def _on_writable(self) -> None:
        """Send what is queued; wait for the socket to be writable while some is left."""
        if not self._out:
            return
        try:
            sent = self._sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            _die(f"control channel lost: {exc}", EXIT_DAEMON_GONE)
        del self._out[:sent]
        if self._loop is None or self._loop.is_closed():
            return
        if self._out and not self._writing:
            self._writing = True
            self._loop.add_writer(self._fd, self._on_writable)
        elif not self._out and self._writing:
            self._writing = False
            self._loop.remove_writer(self._fd)

    def _dispatch(self) -> None:
        while True:
            end = self._in.find(b"\n")
            if end < 0:
                return
            line = bytes(self._in[:end]).strip()
            del self._in[:end + 1]
            if line:
                self._on_line(line)

    def _on_line(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except RecursionError:
            # Valid JSON nested deeper than Python's json can decode: fail that call, not the run.
            # The daemon writes every tool_result with its id first (see shim/mod.rs).
            match = _RESULT_PREFIX.match(line)
            if match is None:
                _die("malformed control message: nested too deeply", EXIT_PROTOCOL)
            msg = {"type": "tool_result", "id": int(match.group(1)), "error": {
                "code": -32603, "message": "the tool's answer is nested too deeply for Python's "
                "json module to decode (RecursionError)"}}
        except ValueError as exc:
            _die(f"malformed control message: {exc}", EXIT_PROTOCOL)
        if not isinstance(msg, dict):
            _die("malformed control message: not an object", EXIT_PROTOCOL)
        self._on_message(msg)

    def _on_message(self, msg: Dict[str, Any]) -> None:
        call_id, error = msg.get("id"), msg.get("error")
        if (msg.get("type") != "tool_result" or type(call_id) is not int
                or not isinstance(error, (dict, type(None)))):
            _die(f"malformed control message: unexpected {str(msg)[:200]}", EXIT_PROTOCOL)
        fut = self._pending.pop(call_id, None)
        if fut is None or fut.done():  # unknown id, or the caller was cancelled: ignore
            return
        if error is not None:
            fut.set_exception(ToolError(str(error.get("message", "")), error.get("code", -32000),
                                        error.get("data")))
        else:
            fut.set_result(msg.get("result"))

    async def call(self, name: str, arguments: Dict[str, Any]) -> Any:
        call_id = self._next_id
        try:
            args = _ARGUMENTS.encode(arguments).encode("utf-8")
        except RecursionError:
            raise ValueError("tool arguments are nested too deeply to encode as JSON") from None
        if self.max_argument_bytes is not None and len(args) > self.max_argument_bytes:
            raise ToolError(f"tool call arguments are {len(args)} bytes of JSON, over "
                            f"max_tool_argument_bytes = {self.max_argument_bytes}", -32602)
        wire_name = self._wire_names.get(name)
        if wire_name is None:
            wire_name = self._wire_names[name] = _encode({"name": name})[8:-2]  # the JSON string
        # What _encode({"type", "id", "name", "arguments"}) gives, without re-encoding the rest.
        line = b'{"type":"tool_call","id":%d,"name":%b,"arguments":%b}\n' % (call_id, wire_name, args)
        self._next_id += 1
        fut = self._bind_loop().create_future()
        self._pending[call_id] = fut
        # Output printed before a call is "output produced so far" if the run ends while the
        # call is pending (cancel, timeout), so push it to the daemon first.
        _flush_std()
        self._write(line, batch=True)
        try:
            return await fut
        finally:
            self._pending.pop(call_id, None)

    def send_blocking(self, line: bytes) -> None:
        """Outside the loop: send what is still queued, then this line."""
        try:
            self._sock.setblocking(True)
            self._sock.sendall(bytes(self._out) + line)
        except OSError as exc:
            _die(f"control channel lost: {exc}", EXIT_DAEMON_GONE)
        self._out.clear()
        if self._writing and self._loop is not None and not self._loop.is_closed():
            self._loop.remove_writer(self._fd)
        self._writing = False

    def send(self, line: bytes) -> None:
        """From anywhere: queued behind earlier lines inside our loop, blocking outside it."""
        try:
            running: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is self._loop:
            self._write(line)
        else:
            self.send_blocking(line)


class Forward(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` of a persistent interpreter: text becomes ``output``
    messages, so the daemon can give each run exactly the output it produced."""

    def __init__(self, channel: Channel, name: str, fd: int) -> None:
        super().__init__()
        self._channel, self._name, self._fd = channel, name, fd
        self._parts: List[str] = []
        self._size = 0
        self.line_buffering = False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fd

    def write(self, text: str) -> int:  # type: ignore[override]
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text:
            self._parts.append(text)
            self._size += len(text)
            if self._size >= OUTPUT_CHUNK or (self.line_buffering and "\n" in text):
                self.flush()
        return len(text)

    def flush(self) -> None:
        if not self._parts:
            return
        text = "".join(self._parts)
        self._parts.clear()
        self._size = 0
        for start in range(0, len(text), OUTPUT_CHUNK):
            msg = {"type": "output", "stream": self._name, "text": text[start:start + OUTPUT_CHUNK]}
            self._channel.send(_encode(msg, strict=False))


# --- tools, script, result --------------------------------------------------------------------

def _qualified(spec: Dict[str, Any]) -> str:
    """The name the script calls: ``read_query``, or ``sqlite.read_query`` in a namespace."""
    ns = spec.get("namespace")
    return f"{ns}.{spec['py_name']}" if ns else spec["py_name"]


def _bind(spec: Dict[str, Any], args: tuple, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """Map a call onto the tool's arguments object, raising TypeError like Python would."""
    params = [] if spec.get("any_kwargs") else spec.get("params") or []  # read, never changed
    if len(args) > len(params):
        given = f"{len(args)} {'was' if len(args) == 1 else 'were'} given"
        raise TypeError(f"{_qualified(spec)}() takes {len(params)} positional argument"
                        f"{'' if len(params) == 1 else 's'} but {given}")
    bound = dict(zip(params, args))
    for key, value in kwargs.items():
        if key in bound:
            raise TypeError(f"{_qualified(spec)}() got multiple values for argument '{key}'")
        if key not in params and not spec.get("any_kwargs"):
            raise TypeError(f"{_qualified(spec)}() got an unexpected keyword argument '{key}'")
        bound[key] = value
    missing = [p for p in spec.get("required") or [] if p not in bound]
    if missing:
        names = " and ".join(", ".join(repr(m) for m in missing).rsplit(", ", 1))
        raise TypeError(f"{_qualified(spec)}() missing {len(missing)} required argument"
                        f"{'' if len(missing) == 1 else 's'}: {names}")
    return bound


def _make_tool(spec: Dict[str, Any], channel: Channel) -> Callable[..., Any]:
    async def tool(*args: Any, **kwargs: Any) -> Any:
        return await channel.call(spec["name"], _bind(spec, args, kwargs))

    tool.__name__ = spec["py_name"]
    tool.__qualname__ = _qualified(spec)
    tool.__doc__ = spec.get("description")
    return tool


class Namespace:
    """An MCP server's tools as one global: ``await sqlite.read_query(query=...)``."""

    def __init__(self, name: str, tools: Dict[str, Callable[..., Any]]) -> None:
        # Into the instance dict, never through setattr: a tool named like a special attribute
        # (``__class__``) is then merely unreachable instead of breaking the object.
        vars(self).update(tools)
        self.__name = name
        self.__tools = dict(tools)

    def __repr__(self) -> str:
        return f"<namespace {self.__name}: {', '.join(sorted(self.__tools))}>"

    def __dir__(self) -> List[str]:
        return sorted(self.__tools)

    def __getattr__(self, attr: str) -> Any:
        # Only reached for a name that is not one of the tools.
        if attr.startswith("__"):
            raise AttributeError(attr)
        tools = ", ".join(f"{self.__name}.{t}" for t in sorted(self.__tools)) or "none"
        raise AttributeError(f"namespace {self.__name!r} has no tool {attr!r}; its tools: {tools}")


class State:
    """What a persistent interpreter keeps from one exec to the next."""

    def __init__(self) -> None:
        self.namespace: Optional[Dict[str, Any]] = None
        self.tools: Dict[str, Any] = {}  # global name -> tool function or Namespace
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.environ: Dict[str, str] = {}
        self.seccomp_installed = False
        self.forwards: List[Forward] = []


def _script_globals(job: Dict[str, Any], channel: Channel, state: State) -> Dict[str, Any]:
    """``__main__``'s globals: ToolError and asyncio, then the tools, then the inputs (these win).

    A fresh module, or in persistent mode the one the previous runs used: their tools that are
    still bound under their name are removed first. ``asyncio`` is pre-bound because scripts
    gather tool calls with it so often; it is imported by the shim anyway."""
    if state.namespace is None:
        module = types.ModuleType("__main__")
        sys.modules["__main__"] = module
        state.namespace = module.__dict__
        state.namespace.update(__builtins__=builtins, ToolError=ToolError, asyncio=asyncio)
    namespace = state.namespace
    for name, fn in state.tools.items():
        if namespace.get(name) is fn:
            del namespace[name]
    state.tools = {}
    groups: Dict[str, Dict[str, Callable[..., Any]]] = {}
    for spec in job.get("tools") or []:
        if not (isinstance(spec, dict) and isinstance(spec.get("name"), str)
                and isinstance(spec.get("py_name"), str)
                and isinstance(spec.get("namespace"), (str, type(None)))):
            _die(f"malformed tool definition: {str(spec)[:200]}", EXIT_PROTOCOL)
        if spec.get("namespace") is None:
            state.tools[spec["py_name"]] = namespace[spec["py_name"]] = _make_tool(spec, channel)
        else:
            groups.setdefault(spec["namespace"], {})[spec["py_name"]] = _make_tool(spec, channel)
    for ns_name, tools in groups.items():
        state.tools[ns_name] = namespace[ns_name] = Namespace(ns_name, tools)  # type: ignore
    namespace.update(job.get("inputs") or {})
    return namespace


def _compile(source: str) -> List[types.CodeType]:
    """Body (exec) and, if the script ends with an expression, that expression (eval)."""
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    # Each line ends with exactly one "\n": CPython 3.11 places the traceback's carets assuming so.
    lines = [line.rstrip() + "\n" for line in source.splitlines()]
    linecache.cache[SCRIPT] = (len(source), None, lines, SCRIPT)
    try:
        tree = compile(source, SCRIPT, "exec", flags | ast.PyCF_ONLY_AST, dont_inherit=True)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        codes = [compile(tree, SCRIPT, "exec", flags, dont_inherit=True)]
        if last is not None:
            expr = ast.Expression(last.value)
            codes.append(compile(expr, SCRIPT, "eval", flags, dont_inherit=True))
        return codes
    except SyntaxError as exc:  # errors found after parsing carry no source text: add it
        if exc.text is None and exc.lineno:
            exc.text = linecache.getline(SCRIPT, exc.lineno) or None
        raise


def _run_script(job: Dict[str, Any], channel: Channel, state: State) -> Any:
    """Run the body, then the final expression; a part that awaits runs in our event loop.

    A part without top-level await runs outside any loop, so ``asyncio.run(main())`` works too.
    """
    codes = _compile(job["code"])
    namespace = _script_globals(job, channel, state)
    value = None
    for code in codes:
        value = eval(code, namespace)
        if code.co_flags & CO_COROUTINE:
            if state.loop is None or state.loop.is_closed():
                state.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(state.loop)
            value = state.loop.run_until_complete(value)
    return value if len(codes) == 2 else None


def _script_only(te: traceback.TracebackException, seen: set) -> None:
    """Drop every frame that is not the script's, through the whole exception chain."""
    if id(te) in seen:
        return
    seen.add(id(te))
    te.stack = traceback.StackSummary.from_list([f for f in te.stack if f.filename == SCRIPT])
    for linked in (te.__cause__, te.__context__, *(getattr(te, "exceptions", None) or ())):
        if linked is not None:
            _script_only(linked, seen)


def _error_info(exc: BaseException) -> Dict[str, Any]:
    te = traceback.TracebackException.from_exception(exc)
    _script_only(te, set())
    line = te.stack[-1].lineno if te.stack else None
    if line is None and isinstance(exc, SyntaxError) and exc.filename == SCRIPT:
        line = exc.lineno
    return {"type": type(exc).__name__, "message": str(exc)[:MAX_TEXT],
            "traceback": "".join(te.format())[-MAX_TEXT:], "line": line}


def _name_error_hint(exc: BaseException, state: State) -> None:
    """An unknown name (often a misspelt or missing tool) lists the tools this run has."""
    if type(exc) is NameError and len(exc.args) == 1 and isinstance(exc.args[0], str):
        names = []
        for name, tool in sorted(state.tools.items()):
            if isinstance(tool, Namespace):
                names.extend(f"{name}.{t}" for t in dir(tool))
            else:
                names.append(name)
        tools = ", ".join(names) or "none"
        exc.args = (f"{exc.args[0]}; available tools: {tools}",)


def _done_line(outcome: Tuple[bool, Any]) -> bytes:
    ok, payload = outcome
    if ok:
        try:
            return _encode({"type": "done", "status": "ok", "value": payload})
        except Exception:
            try:
                text = repr(payload)[:MAX_TEXT]
            except Exception as exc:
                text = f"<unrepresentable {type(payload).__name__}: {type(exc).__name__}>"
            return _encode({"type": "done", "status": "ok", "value": text}, strict=False)
    try:
        error = _error_info(payload)
    except Exception as exc:  # e.g. MemoryError while formatting: still say what happened
        error = {"type": type(payload).__name__, "message": f"(unformattable: {exc!r})",
                 "traceback": "", "line": None}
    return _encode({"type": "done", "status": "error", "error": error}, strict=False)


def _prepare(job: Dict[str, Any], channel: Channel, state: State) -> None:
    """Output, environment and confinement for this exec."""
    stream = bool(job.get("stream"))
    if job.get("persistent") and not state.forwards:
        state.forwards = [Forward(channel, "stdout", 1), Forward(channel, "stderr", 2)]
        _flush_std()
        sys.stdout, sys.stderr = state.forwards  # type: ignore[assignment]
    if state.forwards:
        for forward in state.forwards:
            forward.line_buffering = stream
    elif stream:
        # The client watches output as it happens: hand it over line by line.
        for std in (sys.stdout, sys.stderr):
            std.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    limit = job.get("max_argument_bytes")
    channel.max_argument_bytes = limit if type(limit) is int and limit > 0 else None
    environ = {str(k): str(v) for k, v in (job.get("environ") or {}).items()}
    for name in state.environ:
        if name not in environ:
            os.environ.pop(name, None)
    _set_environ(environ)
    state.environ = environ
    if job.get("late_seccomp") is not None and not state.seccomp_installed:
        try:
            _install_seccomp(job["late_seccomp"])
        except Exception as exc:
            error = {"type": "SandboxError", "message": f"late seccomp filter not installed: {exc}",
                     "traceback": "", "line": None}
            done = {"type": "done", "status": "error", "error": error}
            channel.send_blocking(_encode(done, strict=False))
            os._exit(0)
        state.seccomp_installed = True


def _set_environ(values: Dict[str, str], drop_others: bool = False) -> None:
    """Sets ``values`` in ``os.environ`` (and so in the C environment); ``drop_others``: and
    removes every other name. A name that already has its value is left alone (in a forked
    child every change copies pages it shares with its template)."""
    current = os.environ.copy()
    for name in current:
        if drop_others and name not in values:
            del os.environ[name]
    for name, value in values.items():
        if current.get(name) != value:
            os.environ[name] = value


def main() -> None:
    channel = Channel(_open_control())
    channel.send_blocking(_encode({"type": "ready"}))
    state = State()
    while True:
        job = channel.read_job()
        _prepare(job, channel, state)
        outcome: Tuple[bool, Any]
        try:
            outcome = (True, _run_script(job, channel, state))
        except BaseException as exc:  # SystemExit and KeyboardInterrupt are results too
            _name_error_hint(exc, state)
            outcome = (False, exc)
        _flush_std()
        channel.send_blocking(_done_line(outcome))
        if not job.get("persistent"):
            os._exit(0)



# --- fork server: the template and the children forked from it ---------------------------------
#
# A template ("T", started by the daemon with the extra argument ``template``) imports all of the
# above once, never runs script code and never sees a run's code, inputs, environment or results.
# Its fd 3 is a SOCK_SEQPACKET socket to the daemon (one message per record):
#
#   daemon -> T  {"type":"template","late_seccomp":hex|null,"seccomp":[hex]} once, first: T's own
#                late filter, and the filters its children install on T's (those that take back
#                what T may do beyond a run: ``seccomp::forked_child_filters``), parsed once
#   T -> daemon  {"type":"ready","pid":int}
#   daemon -> T  {"type":"fork","id":int} + SCM_RIGHTS [control, stdout, stderr(, landlock ruleset)]
#   T -> daemon  {"type":"forked","id":int,"pid":int} + SCM_RIGHTS [pidfd]
#              | {"type":"fork_failed","id":int,"message":str}
#   T -> daemon  {"type":"exited","id":int,"status":raw wait status,"cpu_ms":int}  (T reaps)
#   daemon -> T  {"type":"retire"}        exit once the last child is reaped
#
# A forked child ("C") moves the received fds to 3/1/2/4, closes every other fd, reads ONE
# ``confine`` line from its control socket (written there by the daemon before the fork request)
# and applies it to itself in the cold launcher's order (see ``_confine``); any failure is a
# ``sandbox_error`` line and exit 126, before any script byte. Then it is an ordinary shim. The
# job names the seccomp filters that stand for its run plan's by digest (``seccomp_sha256``): C
# installs T's preloaded filters only when their digest is that one, and refuses otherwise.

EXIT_REFUSED = 126
_MAX_CONFINE_LINE = 16 << 20
_LIBC: Any = None  # ctypes' view of libc, loaded once by the template
# The filters a child of the template installs: (digest, [program]), parsed once by the template
# from its first message. A child installs them only when its confine job names the same digest.
_PRELOADED: Optional[Tuple[str, List[Any]]] = None


def filters_digest(programs: List[str]) -> str:
    """SHA-256 (hex) of a filter list: its hex programs joined by newlines. The daemon computes
    the same of the filters a run's child installs (``forkserver::filters_digest``)."""
    try:
        from _sha256 import sha256  # type: ignore[import-not-found]  # 3.11: no OpenSSL
    except ImportError:
        try:
            from _sha2 import sha256  # type: ignore[import-not-found,no-redef]  # 3.12+
        except ImportError:
            from hashlib import sha256  # type: ignore[no-redef]
    return sha256("\n".join(programs).encode("ascii")).hexdigest()


def _preload(programs: Any) -> None:
    """In T: parse its children's filters once (they share them)."""
    global _PRELOADED
    if not (isinstance(programs, list) and programs and all(isinstance(p, str) for p in programs)):
        _die("fork server: the template message carries no child filters", EXIT_PROTOCOL)
    _PRELOADED = (filters_digest(programs), [_seccomp_program(p) for p in programs])


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    import ctypes

    ul = ctypes.c_ulong
    if _LIBC.prctl(ul(option), ul(arg2), ul(arg3), ul(0), ul(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


_CAPS_TYPES: Any = None  # capget/capset's (header, data[2]) ctypes types, made once by the template


def _caps_types() -> Any:
    """Made on first use; the template makes them before it forks (a ctypes type costs ~70 µs
    and private memory in every child that builds its own)."""
    global _CAPS_TYPES
    if _CAPS_TYPES is None:
        import ctypes

        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                        ("inheritable", ctypes.c_uint32)]

        _CAPS_TYPES = (Header, Data * 2)
    return _CAPS_TYPES


def _capabilities(clear: bool) -> Tuple[int, int, int]:
    """capget (or capset to all zero first): (effective, permitted, inheritable), all 64 bits."""
    import ctypes

    header_type, data_type = _caps_types()
    header, data = header_type(0x20080522, 0), data_type()  # _LINUX_CAPABILITY_VERSION_3
    call = _LIBC.capset if clear else _LIBC.capget
    if call(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{'capset' if clear else 'capget'}: {os.strerror(err)}")
    if clear:
        return _capabilities(False)
    return tuple(data[0].__getattribute__(f) | (data[1].__getattribute__(f) << 32)  # type: ignore
                 for f in ("effective", "permitted", "inheritable"))


_RLIMITS = {"cpu": "RLIMIT_CPU", "as": "RLIMIT_AS", "fsize": "RLIMIT_FSIZE",
            "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "core": "RLIMIT_CORE",
            "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE"}


class _Refused(Exception):
    def __init__(self, kind: str, mechanism: Optional[str], message: str) -> None:
        super().__init__(message)
        self.kind, self.mechanism, self.message = kind, mechanism, message


def _step(kind: str, mechanism: Optional[str], what: Callable[[], Any]) -> Any:
    try:
        return what()
    except _Refused:
        raise
    except Exception as exc:
        raise _Refused(kind, mechanism, f"{exc}") from None


def _confine(job: Dict[str, Any], template_pid: int) -> None:
    """The cold launcher's steps, applied by a forked child to itself, in the same order."""
    import resource

    identity = job.get("identity")
    if identity is not None:
        uid, gid = int(identity["uid"]), int(identity["gid"])

        def switch() -> None:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            _prctl(47, 4)  # PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL
            # From the template's uid to the run's (both non-zero) the kernel keeps the
            # template's CAP_SETUID/CAP_SETGID: drop every capability explicitly, then check.
            caps = _capabilities(clear=True)
            if any(caps):
                raise OSError(f"capabilities left after capset: {caps}")
            if os.getuid() != uid or os.geteuid() != uid or os.getgid() != gid or os.getgroups():
                raise OSError("the uid/gid switch did not take")
            try:
                os.setuid(0)
            except PermissionError:
                return
            raise OSError("uid 0 could be regained after dropping it")

        _step("sandbox_error", "identity", switch)
        cwd = job["cwd"]
        if not os.access(cwd, os.R_OK | os.W_OK | os.X_OK):
            raise _Refused("launch_error", None,
                           f"the scratch dir {cwd} is not reachable by the run's uid")

    def parent_death() -> None:
        _prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
        if os.getppid() != template_pid:
            raise OSError("the fork server exited before the child started")

    _step("launch_error", None, parent_death)
    _step("launch_error", None, os.setsid)

    def rlimits() -> None:
        for r in job.get("rlimits") or []:
            which = getattr(resource, _RLIMITS[r["resource"]])
            _, current_hard = resource.getrlimit(which)
            hard = int(r["hard"])
            if current_hard != resource.RLIM_INFINITY:
                hard = min(hard, current_hard)
            try:
                resource.setrlimit(which, (min(int(r["soft"]), hard), hard))
            except (OSError, ValueError) as exc:
                raise OSError(f"{_RLIMITS[r['resource']]} = {r['soft']}/{hard}: {exc}") from None

    _step("sandbox_error", "rlimits", rlimits)
    _step("sandbox_error", "no_new_privs", lambda: _prctl(38, 1))  # PR_SET_NO_NEW_PRIVS
    if job.get("landlock"):
        def landlock() -> None:
            import ctypes

            # landlock_restrict_self(ruleset fd 4, 0): 446 on every architecture.
            if _LIBC.syscall(ctypes.c_long(446), ctypes.c_long(4), ctypes.c_long(0)) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"restrict_self: {os.strerror(err)}")
            os.close(4)

        _step("sandbox_error", "landlock", landlock)
    # The child filters, preloaded by the template: the job names them by digest. No
    # digest, or another one than the template's (another policy's), installs nothing and refuses.
    digest = job.get("seccomp_sha256")
    if _PRELOADED is None or not isinstance(digest, str) or digest != _PRELOADED[0]:
        raise _Refused("sandbox_error", "seccomp",
                       "the run's seccomp filters are not the ones its template preloaded")
    for program in _PRELOADED[1]:
        _step("sandbox_error", "seccomp", lambda: _install_seccomp(program))
    _step("launch_error", None, lambda: os.chdir(job["cwd"]))
    _set_environ({str(k): str(v) for k, v in job.get("env") or []}, drop_others=True)


def _forked_child(template: socket.socket, fds: List[int], template_pid: int) -> NoReturn:
    """In C, right after the fork: fds, then the confine job, then an ordinary shim."""
    import fcntl

    try:
        template.detach()  # its finalizer must never close the fd 3 we are about to reuse
        parked = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64) for fd in fds]
        for fd, target in zip(parked, (CONTROL_FD, 1, 2, 4)):
            os.dup2(fd, target, inheritable=False)
        os.closerange(5 if len(fds) == 4 else 4, 1 << 20)
    except BaseException as exc:  # no control channel to report on: the daemon sees it close
        _die(f"forked child: fds: {exc}", EXIT_REFUSED)
    try:
        line = bytearray()
        while not line.endswith(b"\n"):
            chunk = os.read(CONTROL_FD, 1 << 16)
            if not chunk or len(line) > _MAX_CONFINE_LINE:
                _die("control channel closed before the confine job", EXIT_DAEMON_GONE)
            line += chunk
        job = json.loads(line)
        if not isinstance(job, dict) or job.get("type") != "confine":
            raise _Refused("launch_error", None, "expected a confine job")
        _confine(job, template_pid)
    except BaseException as exc:
        if isinstance(exc, _Refused):
            report = {"type": exc.kind, "message": exc.message}
            if exc.mechanism:
                report["mechanism"] = exc.mechanism
        else:
            report = {"type": "launch_error", "message": f"confining the forked child: {exc!r}"}
        try:
            os.write(CONTROL_FD, _encode(report, strict=False))
        finally:
            os._exit(EXIT_REFUSED)
    main()
    os._exit(0)


def _template_main() -> NoReturn:
    """T: fork a child per request, reap them, never run anything it receives."""
    global _LIBC
    import ctypes
    import fcntl  # noqa: F401  (imported once here for every forked child)
    import gc
    import resource  # noqa: F401
    import select

    _LIBC = _seccomp_calls()[0]
    # What a child's confinement calls, resolved once here (ctypes caches a looked-up function on
    # the CDLL object and a structure type is a class: made per child, each costs copied pages).
    for name in ("prctl", "capget", "capset", "syscall"):
        getattr(_LIBC, name)
    _capabilities(False)
    sys.argv[1:] = []  # a forked child's sys.argv is a cold child's: ['-c']
    ctl = socket.socket(fileno=CONTROL_FD)
    ctl.setblocking(True)

    def receive(size: int = 1 << 16) -> Tuple[Dict[str, Any], List[int]]:
        data, fds, flags, _ = socket.recv_fds(ctl, size, 4)
        if not data:
            os._exit(0)  # the daemon is gone (our children get SIGKILL with us)
        if flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC):
            _die("fork server: truncated message", EXIT_PROTOCOL)
        return _decode(data), fds

    def send(msg: Dict[str, Any], fds: Optional[List[int]] = None) -> None:
        socket.send_fds(ctl, [_encode(msg)], fds or [])

    first, fds = receive()
    if first.get("type") != "template" or fds:
        _die("fork server: expected the template message", EXIT_PROTOCOL)
    if first.get("late_seccomp") is not None:
        _install_seccomp(first["late_seccomp"])
    for _ in range(_WARM_UP_ROUNDS):
        _warm_up()
    _flush_std()
    # Last, so that the hex and its parsing leave no hole below what warm-up allocated.
    _preload(first.pop("seccomp", None))
    gc.collect()
    gc.freeze()  # what is imported now is shared with every child, not copied on first touch
    pid = os.getpid()
    send({"type": "ready", "pid": pid})
    poller = select.poll()
    poller.register(CONTROL_FD, select.POLLIN)
    live: Dict[int, Tuple[int, int]] = {}  # pidfd -> (request id, pid)
    retiring = False
    while True:
        if retiring and not live:
            os._exit(0)
        # Exits first: a finished run's answer waits for its exit report, a fork request (most
        # often a warm-pool refill) can wait for the time a reap takes.
        for fd, _events in sorted(poller.poll(), key=lambda event: event[0] == CONTROL_FD):
            if fd != CONTROL_FD:
                request, child = live.pop(fd)
                poller.unregister(fd)
                _, status, usage = os.wait4(child, 0)
                os.close(fd)
                cpu_ms = int((usage.ru_utime + usage.ru_stime) * 1000)
                send({"type": "exited", "id": request, "status": status, "cpu_ms": cpu_ms})
                continue
            msg, fds = receive()
            kind, request = msg.get("type"), msg.get("id")
            if kind == "retire" and not fds:
                retiring = True
                continue
            if kind != "fork" or type(request) is not int or len(fds) not in (3, 4):
                _die(f"fork server: unexpected message {kind!r} with {len(fds)} fds", EXIT_PROTOCOL)
            if threading_active() != 1:
                _die("fork server: more than one thread", EXIT_PROTOCOL)
            _flush_std()
            try:
                child = os.fork()
            except OSError as exc:
                for f in fds:
                    os.close(f)
                send({"type": "fork_failed", "id": request, "message": str(exc)})
                continue
            if child == 0:
                _forked_child(ctl, fds, pid)
            pidfd = os.pidfd_open(child)  # before any wait: the pid cannot be reused under us
            for f in fds:
                os.close(f)
            live[pidfd] = (request, child)
            poller.register(pidfd, select.POLLIN)
            send({"type": "forked", "id": request, "pid": child}, [pidfd])


# Rounds of ``_warm_up``: CPython 3.11 rewrites a function's bytecode in place once it has run a
# few times (quickening, then specialization); done here, the children share it instead of each
# copying every page of the code it runs.
_WARM_UP_ROUNDS = 10


def _warm_up() -> None:
    """In T, before ``gc.freeze()``: pay once what every run pays on first use (compiling with
    top-level await, an event loop, a tool call's encoding and binding, formatting an error), so
    that forked children share the caches and objects this creates instead of each building, and
    so copying, their own. Fixed code of this module only, never anything a run sent; best
    effort (a step the template's filters refuse is skipped), and it leaves no fd, loop or
    script line behind."""
    try:
        codes = _compile("await asyncio.sleep(0)\nvalue = [1 + 1]\nvalue[0]")
        namespace: Dict[str, Any] = {"__builtins__": builtins, "asyncio": asyncio}
        loop = asyncio.new_event_loop()
        try:
            for code in codes:
                result = eval(code, namespace)
                if code.co_flags & CO_COROUTINE:
                    loop.run_until_complete(result)
        finally:
            loop.close()
            asyncio.set_event_loop(None)
    except Exception:
        pass
    linecache.cache.pop(SCRIPT, None)
    spec = {"name": "t", "py_name": "t", "params": ["x"], "required": ["x"]}
    _decode(_encode({"type": "tool_call", "id": 0, "name": "t",
                     "arguments": _bind(spec, (1,), {})}))
    try:
        raise ValueError("warm-up")
    except ValueError as exc:
        _error_info(exc)
    _done_line((True, 2))
    # A child replaces its environment with its run's (``_confine``, ``_prepare``): the same
    # calls, with T's own environment, which they leave as it was.
    _set_environ(os.environ.copy(), drop_others=True)


def threading_active() -> int:
    """Threads of this process (the template must fork with exactly one). A stat needs no
    Landlock right; procfs counts a task dir's links as 2 + its threads."""
    try:
        return os.stat("/proc/self/task").st_nlink - 2
    except OSError:
        return 1


if sys.argv[1:] == ["template"]:
    _template_main()
main()
