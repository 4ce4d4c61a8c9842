"""Typed results of a run, and the compact text that goes back to the model.

The daemon answers every run that executed with a result object, even when the script failed: a
failed script is information for the model, not an exception for the host program. ``RunResult``
keeps every field of the contract, and :meth:`RunResult.render` produces the short text meant to be
returned to the model as the tool result: what the script printed (with a note where output was
cut), then the value of its last expression, or the error with the script's own traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

__all__ = ["RunStatus", "RunError", "Truncated", "RunResult", "Limits"]

RunStatus = Literal["ok", "error", "timeout", "cancelled", "limit_exceeded", "crashed"]


@dataclass(frozen=True)
class RunError:
    """Why a run did not end ``ok``: the exception (for ``error``) or the limit hit, in words."""

    type: str
    message: str
    traceback: str | None = None
    line: int | None = None

    @classmethod
    def from_wire(cls, data: Any) -> RunError | None:
        if not isinstance(data, Mapping):
            return None if data is None else cls(type="Error", message=str(data))
        line = data.get("line")
        traceback = data.get("traceback")
        return cls(
            type=str(data.get("type") or "Error"),
            message=str(data.get("message") or ""),
            traceback=traceback if isinstance(traceback, str) and traceback else None,
            line=line if isinstance(line, int) else None,
        )


@dataclass(frozen=True)
class Truncated:
    """Bytes of stdout/stderr the daemon dropped because of ``max_output_bytes`` (0 if none)."""

    stdout: int = 0
    stderr: int = 0


@dataclass(frozen=True)
class Limits:
    """Typed form of the contract's Limits; pass it (or a plain dict) as ``limits=``.

    Only set fields are sent; limits may only tighten the policy's (looser ones raise
    :class:`~ptcd.LimitsExceedPolicy`).
    """

    timeout_ms: int | None = None
    cpu_ms: int | None = None
    memory_mb: int | None = None
    max_output_bytes: int | None = None
    max_tool_calls: int | None = None
    max_concurrent_tool_calls: int | None = None

    def to_wire(self) -> dict[str, int]:
        return {key: value for key, value in self.__dict__.items() if value is not None}


@dataclass(frozen=True)
class RunResult:
    """The outcome of one ``run`` (every field of the contract, plus helpers)."""

    run_id: str
    status: str
    stdout: str = ""
    stderr: str = ""
    truncated: Truncated = field(default_factory=Truncated)
    value: Any = None
    error: RunError | None = None
    tool_calls: int = 0
    duration_ms: float = 0.0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: Any) -> RunResult:
        if not isinstance(data, Mapping):
            raise TypeError(f"run result is not an object: {data!r}")
        truncated = data.get("truncated") or {}
        return cls(
            run_id=str(data.get("run_id", "")),
            status=str(data.get("status", "")),
            stdout=str(data.get("stdout") or ""),
            stderr=str(data.get("stderr") or ""),
            truncated=Truncated(
                stdout=int(truncated.get("stdout") or 0), stderr=int(truncated.get("stderr") or 0)
            ),
            value=data.get("value"),
            error=RunError.from_wire(data.get("error")),
            tool_calls=int(data.get("tool_calls") or 0),
            duration_ms=float(data.get("duration_ms") or 0.0),
            raw=dict(data),
        )

    @property
    def ok(self) -> bool:
        """True when the script ran to completion without an exception."""
        return self.status == "ok"

    def render(self) -> str:
        """Compact text for the model: output, then the value or the error with its traceback.

        Ok runs: stdout (and a note if it was cut), stderr if any (warnings are worth reading),
        then the last expression's value if it is not null (strings as they are, anything else as
        compact JSON). Other runs: stdout, stderr, then ``"<status>: <type>: <message>"`` and the
        script's traceback, whose own closing ``Type: message`` lines are not repeated.
        """
        parts: list[str] = []
        if self.stdout:
            parts.append(self.stdout.rstrip("\n"))
        if self.truncated.stdout:
            parts.append(f"[stdout truncated: {self.truncated.stdout} bytes omitted]")
        if self.stderr:
            parts.append("[stderr]\n" + self.stderr.rstrip("\n"))
        if self.truncated.stderr:
            parts.append(f"[stderr truncated: {self.truncated.stderr} bytes omitted]")
        if self.ok:
            if self.value is not None:
                parts.append(self.value if isinstance(self.value, str) else _compact(self.value))
            return "\n".join(parts) if parts else "(no output)"
        if self.error is not None:
            error = f"{self.error.type}: {self.error.message}" if self.error.message else self.error.type
            lines = _without_closing_error((self.error.traceback or "").rstrip("\n").splitlines(), error)
            headline = f"{self.status}: {error}"
            if any(line.strip() for line in lines):
                headline += "\n" + "\n".join(lines)
            parts.append(headline)
        else:
            parts.append(self.status)
        return "\n".join(parts)

    @property
    def text(self) -> str:
        """Same as :meth:`render`."""
        return self.render()

    def __str__(self) -> str:
        return self.render()


def _without_closing_error(lines: list[str], error: str) -> list[str]:
    """``lines`` minus a closing ``Type: message`` (possibly module-qualified, possibly several
    lines long) equal to ``error``, which the headline already shows."""
    expected = error.splitlines() or [error]
    n = len(expected)
    if len(lines) < n or lines[len(lines) - n + 1 :] != expected[1:]:
        return lines
    first = lines[-n]
    if first == expected[0] or first.endswith("." + expected[0]):
        return lines[:-n]
    return lines


def _compact(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(value)
