"""Typed exceptions for every error the wire contract can produce.

The daemon reports failures as JSON-RPC error objects with a numeric ``code``. Callers should not
have to compare integers, so each contract code maps to its own exception class, all deriving from
:class:`PtcdError` (which keeps ``code`` and ``data`` for anything more specific). Two more classes
cover what happens below the protocol: the daemon is not there (:class:`DaemonNotRunning`) or the
connection went away while something was pending (:class:`ConnectionClosed`).

:class:`ToolError` is the other direction: a tool handler may raise it to choose the exact error
object the script sees (its ``code``, ``message`` and ``data``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "TOOL_ERROR_CODE",
    "PtcdError",
    "ParseError",
    "InvalidRequest",
    "MethodNotFound",
    "InvalidParams",
    "InternalError",
    "UnknownSession",
    "Overloaded",
    "LimitsExceedPolicy",
    "UnknownPolicy",
    "UnknownRun",
    "SandboxUnavailable",
    "ShuttingDown",
    "McpServerUnavailable",
    "ConnectionClosed",
    "DaemonNotRunning",
    "ToolError",
    "error_from_wire",
]

#: JSON-RPC error code this client uses when a tool handler fails. It sits in the range JSON-RPC
#: reserves for implementation-defined server errors and is distinct from every contract code, so
#: the script's ``ToolError.code`` tells "the tool failed" apart from protocol trouble.
TOOL_ERROR_CODE = -32000


class PtcdError(Exception):
    """Base class of every error this library raises about the daemon or the protocol.

    ``code`` is the JSON-RPC error code (``None`` for errors that did not come from the daemon) and
    ``data`` the error's optional ``data`` member.
    """

    code: int | None = None

    def __init__(self, message: str, *, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.data = data

    def __str__(self) -> str:
        if self.code is None:
            return self.message
        return f"{self.message} (code {self.code})"


class ParseError(PtcdError):
    """-32700: the daemon could not parse a line as JSON (or UTF-8)."""

    code = -32700


class InvalidRequest(PtcdError):
    """-32600: not a JSON-RPC 2.0 request, a batch, or a line over the size limit."""

    code = -32600


class MethodNotFound(PtcdError):
    """-32601: the daemon has no such method."""

    code = -32601


class InvalidParams(PtcdError):
    """-32602: the params were rejected; ``field`` names the offending field when the daemon says."""

    code = -32602

    @property
    def field(self) -> str | None:
        if isinstance(self.data, dict):
            field = self.data.get("field")
            return field if isinstance(field, str) else None
        return None


class InternalError(PtcdError):
    """-32603: the daemon failed internally."""

    code = -32603


class UnknownSession(PtcdError):
    """-32001: no session with that id (on this connection)."""

    code = -32001


class Overloaded(PtcdError):
    """-32002: too many concurrent runs; try again later."""

    code = -32002


class LimitsExceedPolicy(PtcdError):
    """-32003: the requested limits are looser than the policy allows (limits may only tighten)."""

    code = -32003


class UnknownPolicy(PtcdError):
    """-32004: no policy with that name."""

    code = -32004


class UnknownRun(PtcdError):
    """-32005: no run or request with that id."""

    code = -32005


class SandboxUnavailable(PtcdError):
    """-32006: a confinement the policy requires is missing on this host; the daemon fails closed."""

    code = -32006


class ShuttingDown(PtcdError):
    """-32007: the daemon is shutting down and takes no new work."""

    code = -32007


class McpServerUnavailable(PtcdError):
    """-32008: an MCP server named in ``mcp_servers`` could not start or list its tools when it was
    attached; the message says which and why (``"MCP server unavailable: <name>: <why>"``).

    ``server`` is the server's config name, read from the message (``None`` if it has another form).
    A server that breaks *during* a run is not this error: the script's call raises ``ToolError``.
    """

    code = -32008

    @property
    def server(self) -> str | None:
        if isinstance(self.data, dict) and isinstance(self.data.get("server"), str):
            server: str = self.data["server"]
            return server
        prefix = "MCP server unavailable: "
        if self.message.startswith(prefix):
            name = self.message[len(prefix) :].split(":", 1)[0].strip()
            return name or None
        return None


class ConnectionClosed(PtcdError, ConnectionError):
    """The connection ended (daemon exit, or this client closed) while a request was pending."""


class DaemonNotRunning(PtcdError, ConnectionError):
    """Nothing listens on the socket; the message says where we looked and how to start ptcd."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class ToolError(Exception):
    """Raise from a tool handler to send the script this exact error.

    Any other exception a handler raises is sent as ``code=TOOL_ERROR_CODE`` with the message
    ``"<ExceptionType>: <message>"``; raising ``ToolError`` sends ``message`` as it is, with the given
    ``code`` and ``data``. Either way the script's ``await tool(...)`` raises its own ``ToolError``.
    """

    def __init__(self, message: str, *, code: int = TOOL_ERROR_CODE, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.data = data


_BY_CODE: dict[int | None, type[PtcdError]] = {
    cls.code: cls
    for cls in (
        ParseError,
        InvalidRequest,
        MethodNotFound,
        InvalidParams,
        InternalError,
        UnknownSession,
        Overloaded,
        LimitsExceedPolicy,
        UnknownPolicy,
        UnknownRun,
        SandboxUnavailable,
        ShuttingDown,
        McpServerUnavailable,
    )
}


def error_from_wire(error: Any) -> PtcdError:
    """Turn a JSON-RPC ``error`` member into the matching typed exception.

    Unknown codes (and malformed error objects) become a plain :class:`PtcdError`, never a crash.
    """
    if not isinstance(error, dict):
        return PtcdError(f"malformed error object from the daemon: {error!r}")
    code = error.get("code")
    message = error.get("message")
    if not isinstance(message, str):
        message = repr(message)
    data = error.get("data")
    if isinstance(code, int) and not isinstance(code, bool) and code in _BY_CODE:
        return _BY_CODE[code](message, data=data)
    return PtcdError(message, code=code if isinstance(code, int) else None, data=data)
