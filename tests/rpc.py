"""A deliberately small, blocking JSON-RPC client for the test suites.

It speaks the wire contract directly (one JSON object per line), so the tests see exactly what
a `socat` user would see. `run()` answers the daemon's `tool/call` requests with plain Python
functions; the lower-level `send()`/`recv()` let a test interleave messages as it likes.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Callable

# A bound on how long a test waits for the daemon's next message: a hang fails the test instead
# of hanging the suite.
RECV_TIMEOUT_S = 30.0


class ToolFailure(Exception):
    """Raise from a handler to answer the tool call with a JSON-RPC error."""

    def __init__(self, message: str, code: int = -32000, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


class RpcClient:
    def __init__(self, path: Path | str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(RECV_TIMEOUT_S)
        try:
            self.sock.connect(str(path))
        except OSError:
            self.sock.close()
            raise
        self._buf = b""
        self._next_id = 1
        self.backlog: list[dict] = []  # messages received while waiting for something else

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, message: dict) -> None:
        self.send_raw(json.dumps(message).encode() + b"\n")

    def recv(self) -> dict:
        """The next message from the daemon (backlog first)."""
        if self.backlog:
            return self.backlog.pop(0)
        while b"\n" not in self._buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("daemon closed the connection")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def new_id(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i

    def request(self, method: str, params: Any = None, id: Any = None) -> Any:
        """Sends a request; returns its id."""
        rid = self.new_id() if id is None else id
        msg: dict = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return rid

    def wait_response(self, rid: Any, handlers: dict[str, Callable[..., Any]] | None = None) -> dict:
        """Reads until the response to `rid`, answering tool calls with `handlers` on the way.

        Other messages (notifications, responses to other ids) go to `self.backlog`.
        """
        skipped: list[dict] = []
        try:
            while True:
                msg = self.recv()
                if msg.get("method") == "tool/call" and handlers is not None:
                    self.answer_tool_call(msg, handlers)
                elif "method" not in msg and msg.get("id") == rid:
                    return msg
                else:
                    skipped.append(msg)
        finally:
            self.backlog = skipped + self.backlog

    def answer_tool_call(self, msg: dict, handlers: dict[str, Callable[..., Any]]) -> None:
        params = msg["params"]
        try:
            result = handlers[params["name"]](**params["arguments"])
        except ToolFailure as e:
            err: dict = {"code": e.code, "message": str(e)}
            if e.data is not None:
                err["data"] = e.data
            self.send({"jsonrpc": "2.0", "id": msg["id"], "error": err})
            return
        self.send({"jsonrpc": "2.0", "id": msg["id"], "result": result})

    def call(self, method: str, params: Any = None) -> dict:
        """A request and its response (the whole response message)."""
        return self.wait_response(self.request(method, params))

    def run(self, code: str, handlers: dict[str, Callable[..., Any]] | None = None, **params: Any) -> dict:
        """Runs `code`; returns the `result` object (asserting the run was not refused)."""
        handlers = handlers or {}
        if "tools" not in params and handlers:
            params["tools"] = [{"name": name} for name in handlers]
        resp = self.wait_response(self.request("run", {"code": code, **params}), handlers)
        assert "result" in resp, f"run was refused: {resp}"
        return resp["result"]
