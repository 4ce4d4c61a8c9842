"""The listening socket: permissions, a live owner is never displaced, stale files are replaced."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import time
from pathlib import Path

from daemon import PTCD_BIN


def test_socket_is_created_with_mode_0600(daemon) -> None:
    assert stat.S_IMODE(os.stat(daemon.socket).st_mode) == 0o600


def test_refuses_to_start_when_a_live_daemon_owns_the_socket(daemon, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(PTCD_BIN), "serve", "--socket", str(daemon.socket), "--scratch-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=20,
    )
    assert proc.returncode != 0
    assert "already listening" in proc.stderr
    # The first daemon still serves.
    c = daemon.connect()
    assert c.run("7")["value"] == 7
    c.close()


def test_replaces_a_stale_socket_file(start_daemon, tmp_path: Path) -> None:
    first = start_daemon()
    path = first.socket
    first.proc.kill()  # leaves the socket file behind
    first.proc.wait()
    assert path.exists()
    proc = subprocess.Popen(
        [str(PTCD_BIN), "serve", "--socket", str(path), "--scratch-dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        # Wait (bounded) until the new daemon answers on the old path. A connect alone is not
        # enough: the stale socket can still accept one for a moment (a child the killed daemon
        # was forking holds its listener until its exec), but nothing there ever answers.
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(2)
                    s.connect(str(path))
                    s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"initialize"}\n')
                    if b'"result"' not in s.recv(65536):
                        raise OSError("no answer")
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "daemon did not take over the stale socket"
                time.sleep(0.01)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert proc.returncode == 0
    assert not path.exists(), "the socket file is removed at shutdown"


def test_refuses_to_replace_a_file_that_is_not_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "not-a-socket"
    path.write_text("precious")
    proc = subprocess.run(
        [str(PTCD_BIN), "serve", "--socket", str(path), "--scratch-dir", str(tmp_path / "s")],
        capture_output=True, text=True, timeout=20,
    )
    assert proc.returncode != 0
    assert "not a socket" in proc.stderr
    assert path.read_text() == "precious"
