"""Starting and stopping the real `ptcd serve` for the test suites.

`PTCD_BIN` names the binary (default: `<repo>/target/debug/ptcd`, built by the README's test
command). Each daemon gets its own socket in `workdir` and its own scratch root directly under
/tmp: the scratch root must be reachable by the unprivileged sandbox uid, and pytest's `tmp_path`
lies under a 0700 directory.

`PTCD_FORK_SERVER` (off|on|require), when set, is passed as `--fork-server <mode>` to every
daemon started here, so each suite can run with runs forked from a template (issue #14) or cold.
Under the fork server a run's interpreter is a child of its template, not of the daemon:
`descendants()` sees both, `run_processes()` leaves the templates out.
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
FORK_SERVER = os.environ.get("PTCD_FORK_SERVER") or None
if FORK_SERVER not in (None, "off", "on", "require"):
    raise RuntimeError(f"PTCD_FORK_SERVER must be off, on or require, not {FORK_SERVER!r}")


def fork_server_args() -> list[str]:
    """The `serve` flags selecting the fork-server mode of this test pass (none when unset)."""
    return ["--fork-server", FORK_SERVER] if FORK_SERVER else []


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
        if FORK_SERVER and "--fork-server" not in extra_args:
            args += fork_server_args()
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
        return {pid for pid, ppid in parents().items() if ppid == self.pid}

    def descendants(self) -> set[int]:
        """Every process below the daemon, zombies included: its children, and theirs (a
        template's forked runs) down to any depth, from one scan of /proc's ppids."""
        below: dict[int, list[int]] = {}
        for pid, ppid in parents().items():
            below.setdefault(ppid, []).append(pid)
        out: set[int] = set()
        todo = [self.pid]
        while todo:
            for pid in below.get(todo.pop(), []):
                if pid not in out:
                    out.add(pid)
                    todo.append(pid)
        return out

    def status(self) -> dict:
        """`daemon/status` over a connection of its own."""
        c = self.connect()
        try:
            return c.call("daemon/status")["result"]
        finally:
            c.close()

    def fork_server(self) -> dict | None:
        """`daemon/status`'s fork_server object, or None when the daemon has none or it is off."""
        fs = self.status().get("fork_server")
        return fs if fs and fs.get("mode") != "off" else None

    def template_pids(self) -> set[int]:
        """The pids of the daemon's fork-server templates (none without a fork server): those
        `daemon/status` lists, and its children started as one (argv ending in `template`:
        one still starting or retired has no pid in the status). A forked run inherits its
        template's argv too, but is the template's child, not the daemon's."""
        fs = self.fork_server()
        if not fs:
            return set()
        pids = {t["pid"] for t in fs["templates"] if t.get("pid")}
        for pid in self.children():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[-2:] == [b"template", b""]:
                pids.add(pid)
        return pids

    def wait_templates_up(self, timeout: float = 20) -> set[int]:
        """With a fork server: waits until no template listed is still starting (bounded poll)
        and returns their pids. Without one: the empty set at once."""
        def up() -> bool:
            fs = self.fork_server()
            return fs is None or all(t["state"] != "starting" for t in fs["templates"])
        wait_until(up, "the fork-server templates to finish starting", timeout=timeout)
        return self.template_pids()

    def run_processes(self) -> set[int]:
        """The run interpreters below the daemon (idle warm ones included), cold or forked:
        every descendant but the templates (once none is still starting: a template's launcher
        has not yet exec'd into it)."""
        self.wait_templates_up()
        return self.descendants() - self.template_pids()

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


def parents() -> dict[int, int]:
    """pid -> ppid of every process, from /proc/<pid>/stat (zombies included)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        out[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def proc_state(pid: int) -> str | None:
    """The state letter of a process (`Z` a zombie), or None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


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
