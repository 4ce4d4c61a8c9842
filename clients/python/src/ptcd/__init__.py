"""Python client for ptcd, the programmatic tool calling daemon.

Instead of one model turn per tool call, the model writes a short Python script; ptcd runs it in a
confined CPython and relays each of the script's tool calls back to this client, whose handlers
are plain Python functions. Only what the script prints (or its final value) goes back to the model.

    async with ptcd.AsyncClient() as client:
        result = await client.run(code, tools=[get_weather])
        tool_result_for_the_model = result.render()

See ``ptcd.Client`` for the blocking equivalent, and ``ptcd.tool`` for naming/describing tools.
"""

from ._client import AsyncClient, OutputCallback, SessionInfo
from ._errors import (
    TOOL_ERROR_CODE,
    ConnectionClosed,
    DaemonNotRunning,
    InternalError,
    InvalidParams,
    InvalidRequest,
    LimitsExceedPolicy,
    McpServerUnavailable,
    MethodNotFound,
    Overloaded,
    ParseError,
    PtcdError,
    SandboxUnavailable,
    ShuttingDown,
    ToolError,
    UnknownPolicy,
    UnknownRun,
    UnknownSession,
)
from ._result import Limits, RunError, RunResult, RunStatus, Truncated
from ._socket import default_socket_path, resolve_socket_path
from ._sync import Client
from ._tools import Tool, ToolLike, as_tool, tool

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "Client",
    "OutputCallback",
    "SessionInfo",
    "RunResult",
    "RunError",
    "RunStatus",
    "Truncated",
    "Limits",
    "Tool",
    "ToolLike",
    "tool",
    "as_tool",
    "default_socket_path",
    "resolve_socket_path",
    "TOOL_ERROR_CODE",
    "ToolError",
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
    "__version__",
]
