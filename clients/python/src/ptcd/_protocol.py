"""The sans-IO core: framing, request ids, and classification of what the daemon sends.

Nothing here touches a socket or an event loop. The core turns outgoing calls into bytes and
incoming lines into typed events; the asyncio transport (``_client.py``) owns the I/O and decides
what to do with each event. Keeping the protocol logic pure means it is unit-tested without a
daemon, and a different transport (trio, a thread, a test harness) can reuse it unchanged.

Wire facts encoded here (see the contract): one JSON object per ``\\n``-terminated line, ``\\r\\n``
tolerated and blank lines ignored; ids are scoped per direction (ours are ints, the daemon's are
strings such as ``"t-1"``); the daemon sends ``tool/call`` requests and the ``$/cancelRequest`` and
``run/output`` notifications.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, Union

from ._errors import InvalidRequest, PtcdError, error_from_wire

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "LineBuffer",
    "LineTooLong",
    "RpcCore",
    "Event",
    "ResponseReceived",
    "ToolCallRequested",
    "CancelRequested",
    "OutputReceived",
    "UnhandledRequest",
    "ProtocolViolation",
    "encode_json",
]

#: The daemon's default line limit (16 MiB). Outgoing lines longer than this would be rejected with
#: ``-32600`` and an ``id: null`` that cannot be correlated, so the client refuses them up front.
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024

JsonId = Union[int, str]


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def encode_json(value: Any) -> str:
    """Compact JSON that is guaranteed to fit on one line (``json`` escapes newlines in strings)."""
    return _encode(value)


def _loads(line: bytes) -> Any:
    """``json.loads(line)``, taking the shorter way for the daemon's UTF-8 lines.

    A line that is not plain UTF-8 JSON goes through ``json.loads`` itself (BOMs, UTF-16/32,
    surrogates, and the errors), so the outcome is the same either way.
    """
    try:
        text = line.decode("utf-8")
        value, end = _scan(text, 0)  # what `json.loads` does, minus its whitespace skipping
        if end == len(text):
            return value
    except (ValueError, StopIteration):
        pass
    return json.loads(line)


class LineTooLong(ValueError):
    """An incoming line exceeded the configured limit."""


class LineBuffer:
    """Incremental splitter of a byte stream into lines, bounded by ``max_line_bytes``.

    The asyncio transport uses ``StreamReader.readline`` (which enforces the same bound), but the
    buffer makes the framing rules explicit and testable, and serves transports without readline.
    """

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._max = max_line_bytes
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the complete lines it finished (without ``\\n``; blank ones dropped)."""
        self._buf += data
        lines: list[bytes] = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                break
            line = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            if len(line) > self._max:
                raise LineTooLong(f"incoming line of {len(line)} bytes exceeds {self._max}")
            line = line.rstrip(b"\r")
            if line.strip():
                lines.append(line)
        if len(self._buf) > self._max:
            raise LineTooLong(f"incoming line exceeds {self._max} bytes")
        return lines


# --------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class ResponseReceived:
    """The answer to one of our requests: ``error`` is set (typed) or ``result`` is the value."""

    id: int
    method: str
    result: Any = None
    error: PtcdError | None = None


@dataclass(frozen=True)
class ToolCallRequested:
    """The daemon asks us to run a tool for a script (a ``tool/call`` request)."""

    id: JsonId
    run_id: str | None
    request_id: JsonId | None
    session_id: str | None
    call_id: int | None
    name: str
    arguments: dict[str, Any]

    # The generated frozen __init__ sets each field through object.__setattr__, a few microseconds
    # per event; one is made per tool call, so this one fills the instance dict directly (dataclass
    # keeps an __init__ the class defines).
    def __init__(
        self,
        id: JsonId,
        run_id: str | None,
        request_id: JsonId | None,
        session_id: str | None,
        call_id: int | None,
        name: str,
        arguments: dict[str, Any],
    ) -> None:
        fields = self.__dict__
        fields["id"] = id
        fields["run_id"] = run_id
        fields["request_id"] = request_id
        fields["session_id"] = session_id
        fields["call_id"] = call_id
        fields["name"] = name
        fields["arguments"] = arguments


@dataclass(frozen=True)
class CancelRequested:
    """``$/cancelRequest``: the daemon no longer wants the answer to its request ``id``."""

    id: JsonId


@dataclass(frozen=True)
class OutputReceived:
    """``run/output``: a chunk of a streaming run's stdout or stderr."""

    run_id: str | None
    request_id: JsonId | None
    stream: str
    text: str


@dataclass(frozen=True)
class UnhandledRequest:
    """A request we do not implement; ``reply`` is the ready-made ``-32601`` answer to send."""

    id: JsonId
    method: str
    reply: bytes


@dataclass(frozen=True)
class ProtocolViolation:
    """Something the daemon sent that the contract does not allow; logged and otherwise ignored.

    ``reply`` is set when the contract wants an answer anyway (an invalid request with an id).
    """

    reason: str
    line: bytes
    reply: bytes | None = None


Event = Union[
    ResponseReceived,
    ToolCallRequested,
    CancelRequested,
    OutputReceived,
    UnhandledRequest,
    ProtocolViolation,
]


# ------------------------------------------------------------------------------------------ core


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


class RpcCore:
    """Request-id allocation, pending-request bookkeeping and incoming-message classification."""

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        self._next_id = 1
        self._pending: dict[int, str] = {}

    # ---- outgoing

    def request(self, method: str, params: dict[str, Any] | None = None) -> tuple[int, bytes]:
        """Allocate an id for a new request and return it with the encoded line.

        Raises :class:`ValueError` if ``params`` is not JSON-encodable, and
        :class:`~ptcd.InvalidRequest` if the line would exceed the daemon's line limit.
        """
        request_id = self._next_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        line = self._finish(encode_json(message))
        self._next_id += 1
        self._pending[request_id] = method
        return request_id, line

    def forget(self, request_id: int) -> None:
        """Stop expecting an answer to ``request_id`` (a late answer is then a violation, not a crash)."""
        self._pending.pop(request_id, None)

    @property
    def pending(self) -> dict[int, str]:
        return dict(self._pending)

    def notification(self, method: str, params: dict[str, Any] | None = None) -> bytes:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        return self._finish(encode_json(message))

    def result(self, request_id: JsonId, result_json: str) -> bytes:
        """Answer a daemon request with an already-encoded JSON result (checked by the caller)."""
        line = f'{{"jsonrpc":"2.0","id":{_encode(request_id)},"result":{result_json}}}\n'.encode("utf-8")
        if len(line) > self.max_line_bytes:  # `_finish`, inline: this is once per tool call
            raise self._too_long(len(line))
        return line

    def error(self, request_id: JsonId | None, code: int, message: str, data: Any = None) -> bytes:
        err: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            err["data"] = data
        return self._finish(encode_json({"jsonrpc": "2.0", "id": request_id, "error": err}))

    def _finish(self, text: str) -> bytes:
        line = text.encode("utf-8") + b"\n"
        if len(line) > self.max_line_bytes:
            raise self._too_long(len(line))
        return line

    def _too_long(self, size: int) -> InvalidRequest:
        return InvalidRequest(
            f"message of {size} bytes exceeds the daemon's line limit of {self.max_line_bytes} bytes"
        )

    # ---- incoming

    def receive(self, line: bytes) -> Event | None:
        """Classify one incoming line. Blank lines give ``None``."""
        line = line.rstrip(b"\r\n")
        if not line.strip():
            return None
        try:
            message = _loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return ProtocolViolation(f"daemon sent a line that is not JSON: {exc}", line)
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return ProtocolViolation("daemon sent something that is not a JSON-RPC 2.0 object", line)

        params = message.get("params")
        if message.get("method") == "tool/call" and type(params) is dict:
            # The common case, checked as `_incoming_call` would (JSON values have exact types,
            # so `type(...) is` matches its `isinstance`); anything else falls through to it.
            request_id: Any = message.get("id")
            kind = type(request_id)
            if kind is str or kind is int:
                name = params.get("name")
                arguments = params.get("arguments", {})
                if type(name) is str and type(arguments) is dict:
                    run_id = params.get("run_id")
                    run_request_id = params.get("request_id")
                    kind = type(run_request_id)
                    session_id = params.get("session_id")
                    call_id = params.get("call_id")
                    return ToolCallRequested(
                        request_id,
                        run_id if type(run_id) is str else None,
                        run_request_id if kind is int or kind is str else None,
                        session_id if type(session_id) is str else None,
                        call_id if isinstance(call_id, int) else None,
                        name,
                        arguments,
                    )

        if "method" in message:
            return self._incoming_call(message, line)
        if "result" in message or "error" in message:
            return self._incoming_response(message, line)
        return ProtocolViolation("message is neither a request nor a response", line)

    def _incoming_response(self, message: dict[str, Any], line: bytes) -> Event:
        response_id = message.get("id")
        if not isinstance(response_id, int) or isinstance(response_id, bool):
            # id null: the daemon could not tie an error to a request (unparseable or too long line).
            error = message.get("error")
            return ProtocolViolation(f"daemon reported an error for no request: {error!r}", line)
        method = self._pending.pop(response_id, None)
        if method is None:
            return ProtocolViolation(f"answer to unknown request id {response_id}", line)
        if "error" in message and message["error"] is not None:
            return ResponseReceived(response_id, method, error=error_from_wire(message["error"]))
        return ResponseReceived(response_id, method, result=message.get("result"))

    def _incoming_call(self, message: dict[str, Any], line: bytes) -> Event:
        method = message["method"]
        params = message.get("params")
        has_id = "id" in message and message["id"] is not None
        if not isinstance(method, str) or (params is not None and not isinstance(params, dict)):
            reply = self.error(message["id"], -32600, "invalid request") if has_id and _is_id(message["id"]) else None
            return ProtocolViolation("malformed request from the daemon", line, reply)
        params = params or {}

        if not has_id:  # notification
            if method == "$/cancelRequest":
                target = params.get("id")
                if not isinstance(target, (int, str)) or isinstance(target, bool):
                    return ProtocolViolation("$/cancelRequest without a valid id", line)
                return CancelRequested(target)
            if method == "run/output":
                return OutputReceived(
                    run_id=_opt_str(params.get("run_id")),
                    request_id=params.get("request_id") if _is_id(params.get("request_id")) else None,
                    stream=str(params.get("stream", "stdout")),
                    text=str(params.get("text", "")),
                )
            return ProtocolViolation(f"unknown notification {method!r}", line)

        request_id = message["id"]
        if not _is_id(request_id):
            return ProtocolViolation("request id is neither a string nor an integer", line)
        if method == "tool/call":
            name = params.get("name")
            arguments = params.get("arguments", {})
            if not isinstance(name, str) or not isinstance(arguments, dict):
                reply = self.error(request_id, -32602, "tool/call needs a string name and an object of arguments")
                return ProtocolViolation("malformed tool/call", line, reply)
            call_id = params.get("call_id")
            return ToolCallRequested(
                id=request_id,
                run_id=_opt_str(params.get("run_id")),
                request_id=params.get("request_id") if _is_id(params.get("request_id")) else None,
                session_id=_opt_str(params.get("session_id")),
                call_id=call_id if isinstance(call_id, int) else None,
                name=name,
                arguments=arguments,
            )
        return UnhandledRequest(request_id, method, self.error(request_id, -32601, f"method not found: {method}"))


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
