"""Where the daemon's socket is, following the contract's precedence.

An explicit ``socket=`` wins, then ``PTCD_SOCKET``, then the daemon's own default:
``$XDG_RUNTIME_DIR/ptcd.sock``; for root, ``/run/ptcd/ptcd.sock`` (the systemd location) when it
exists; else ``/tmp/ptcd-$UID/ptcd.sock``. The client cannot know whether a root daemon was started
by systemd, so it looks for the systemd socket and otherwise uses the fallback the daemon would.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_socket_path", "resolve_socket_path"]

SYSTEMD_SOCKET = "/run/ptcd/ptcd.sock"


def default_socket_path() -> str:
    """The daemon's default socket path for this user (ignores ``PTCD_SOCKET``)."""
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return str(Path(runtime_dir) / "ptcd.sock")
    uid = os.getuid()
    if uid == 0 and os.path.exists(SYSTEMD_SOCKET):
        return SYSTEMD_SOCKET
    return f"/tmp/ptcd-{uid}/ptcd.sock"


def resolve_socket_path(socket: str | os.PathLike[str] | None = None) -> str:
    """``socket`` if given, else ``$PTCD_SOCKET``, else :func:`default_socket_path`."""
    if socket is not None:
        return os.fspath(socket)
    from_env = os.environ.get("PTCD_SOCKET")
    if from_env:
        return from_env
    return default_socket_path()
