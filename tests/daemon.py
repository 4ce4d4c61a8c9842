"""Starting and stopping the real `ptcd serve` for the test suites.

`PTCD_BIN` names the binary (default: `<repo>/target/debug/ptcd`, built by the README's test
command). Each daemon gets its own socket in `workdir` and its own scratch root directly under
/tmp: the scratch root must be reachable by the unprivileged sandbox uid, and pytest's `tmp_path`
lies under a 0700 directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from rpc import RpcClient

REPO = Path(__file__).resolve().parent.parent
PTCD_BIN = Path(os.environ.get("PTCD_BIN", REPO / "target" / "debug" / "ptcd"))


class Daemon:
    """A running `ptcd serve` process."""

    def __init__(
        self,
        workdir: Path,
        extra_args: list[str],
        *,
        prefix: list[str] | None = None,
        scratch: Path | None = None,
        binary: Path | None = None,
    ) -> None:
        """`prefix`: a command the daemon is started under (e.g. `setpriv ...`); `scratch`: a
        scratch root to share with another daemon (kept on stop); `binary`: another ptcd."""
        self.socket = workdir / "ptcd.sock"
        self._own_scratch = scratch is None
        self.scratch = scratch or Path(tempfile.mkdtemp(prefix="ptcd-test-scratch-"))
        if self._own_scratch:
            os.chmod(self.scratch, 0o711)
        self.log_path = workdir / "daemon.log"
        self._log = open(self.log_path, "wb")
        args = [str(binary or PTCD_BIN), "serve", "--socket", str(self.socket), "--scratch-dir", str(self.scratch)]
        self.proc = subprocess.Popen(
            (prefix or []) + args + extra_args, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        # Bounded polling for the socket to accept, checking the process is still alive.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ptcd exited with {self.proc.returncode}:\n{self.log()}")
            try:
                RpcClient(self.socket).close()
                return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError(f"ptcd did not listen within 20 s:\n{self.log()}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def connect(self) -> RpcClient:
        return RpcClient(self.socket)

    def children(self) -> set[int]:
        """Pids whose parent is the daemon, zombies included (any of its threads may fork)."""
        out = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.pid:
                out.add(int(entry.name))
        return out

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        if self._own_scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)
        return self.proc.returncode


def run_dirs(scratch: Path) -> list[Path]:
    """The scratch dirs of runs and sessions: those of idle warm interpreters (`<tag>-w-N`,
    owned by the warm pool until a run takes one) and the daemon's own `<tag>.lock` are left out."""
    if not scratch.exists():
        return []
    return [p for p in scratch.iterdir() if "-w-" not in p.name and not p.name.endswith(".lock")]


def wait_pool_full(client: RpcClient) -> int:
    """Waits until the warm pool holds as many idle interpreters as configured (no refill under
    way), so what the daemon holds for it is stable. Returns that number."""
    def full() -> bool:
        s = client.call("daemon/status")["result"]
        return s["warm_idle"] == s["warm_pool"]
    wait_until(full, "the warm pool to fill", timeout=20)
    return client.call("daemon/status")["result"]["warm_idle"]


def wait_until(predicate, what: str, timeout: float = 10.0) -> None:
    """Polls a condition the daemon must reach (a bound on a state change, not a sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for: {what}")
