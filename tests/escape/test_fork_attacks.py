"""A hostile script against the fork server (issue #14): what a run forked from a template can
reach of that template, of its siblings and of the runs before it.

A forked run must be confined exactly as a cold one: each case runs the same probe in a daemon
with `--fork-server require` (every run forked, never cold) and, where the point is equality, in
one with `--fork-server off`, and compares. Each case then checks that the daemon still serves a
forked run.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from daemon import Daemon

from conftest import UNPRIVILEGED, daemon_args

pytestmark = pytest.mark.skipif(UNPRIVILEGED, reason="the fork server needs a root daemon here")


def _daemon(mode: str) -> Iterator[Daemon]:
    workdir = Path(tempfile.mkdtemp(prefix=f"ptcd-fork-{mode}-"))
    d = Daemon(workdir, ["--fork-server", mode] + daemon_args())
    try:
        yield d
    finally:  # also when the caller skips or the generator is closed early
        d.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def forking() -> Iterator[Daemon]:
    """Skips the module where runs are not eligible (at Landlock ABI < 3 the seccomp
    compensation for truncate starts every run cold, `require` or not): nothing to attack."""
    daemons = _daemon("require")
    d = next(daemons)
    try:
        run(d, "pass")
        c = d.connect()
        counts = c.call("daemon/status")["result"]["fork_server"]
        c.close()
        if counts["runs_forked_total"] == 0:
            pytest.skip(f"runs start cold here (seccomp compensation): {counts}")
        yield d
    finally:
        daemons.close()


@pytest.fixture(scope="module")
def cold() -> Iterator[Daemon]:
    yield from _daemon("off")


def run(d: Daemon, code: str, **params) -> dict:
    c = d.connect()
    try:
        return c.run(textwrap.dedent(code), **params)
    finally:
        c.close()


def template(d: Daemon) -> dict:
    c = d.connect()
    try:
        return c.call("daemon/status")["result"]["fork_server"]["templates"][0]
    finally:
        c.close()


def assert_forks_and_serves(d: Daemon) -> None:
    """The daemon is alive and serves the next run, forked."""
    assert d.proc.poll() is None, d.log()
    c = d.connect()
    try:
        result = c.run("print(6 * 7)")
        assert (result["status"], result["stdout"]) == ("ok", "42\n"), result
        counts = c.call("daemon/status")["result"]["fork_server"]
        # Every interpreter (runs and warm pool) was forked, none started cold.
        assert counts["runs_forked_total"] > 0 and counts["runs_cold_total"] == 0, counts
    finally:
        c.close()


# Every answer a script gets when it tries to leave its confinement: syscalls with their
# return value or errno, capabilities, rlimits, fds, files. `T` is getppid(): the template when
# forked, the daemon when cold; `TUID` the template's uid (cold: an unused uid of the range).
PROBE = r"""
import ctypes, errno, json, os, resource
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
T, TUID = os.getppid(), {tuid}
def sc(nr, *a):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(x) for x in a])
    return r if r != -1 else errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno())
def tr(f):
    try:
        return repr(f())
    except BaseException as e:
        return type(e).__name__ + " " + errno.errorcode.get(getattr(e, "errno", 0) or 0, "-")
out = {{}}
class H(ctypes.Structure): _fields_ = [("v", ctypes.c_uint32), ("p", ctypes.c_int)]
class D(ctypes.Structure): _fields_ = [("e", ctypes.c_uint32), ("p", ctypes.c_uint32), ("i", ctypes.c_uint32)]
h, d = H(0x20080522, 0), (D * 2)()
out["capget"] = (libc.capget(ctypes.byref(h), d), [(x.e, x.p, x.i) for x in d])
out["ambient"] = [libc.prctl(47, 3, c, 0, 0) for c in range(41)]
out["nnp"], out["securebits"] = libc.prctl(39, 0, 0, 0, 0), libc.prctl(27, 0, 0, 0, 0)
sig = ctypes.c_int()
out["pdeathsig"] = (libc.prctl(2, ctypes.byref(sig), 0, 0, 0), sig.value)
out["rlimits"] = {{n: resource.getrlimit(getattr(resource, n)) for n in dir(resource) if n.startswith("RLIMIT_")}}
u = resource.getrusage(resource.RUSAGE_SELF)
out["cpu_from_zero"] = u.ru_utime + u.ru_stime < 5
out["ids"] = (os.getresuid()[0] == os.getresuid()[1] == os.getresuid()[2], os.getgroups())
out["fds"] = sorted(fd for fd in range(1024) if tr(lambda: os.fstat(fd)).startswith("os.stat_result"))
for name, f in [("setuid0", lambda: os.setuid(0)), ("setuid_T", lambda: os.setuid(TUID)),
                ("setresuid_T", lambda: os.setresuid(TUID, TUID, TUID)), ("setgid_T", lambda: os.setgid(TUID)),
                ("setgroups", lambda: os.setgroups([0])), ("kill_T", lambda: os.kill(T, 0)),
                ("stop_T", lambda: os.kill(T, 19)), ("mem_T", lambda: open(f"/proc/{{T}}/mem", "rb").read(1)),
                ("environ_T", lambda: open(f"/proc/{{T}}/environ", "rb").read(1)),
                ("maps_T", lambda: open(f"/proc/{{T}}/maps", "rb").read(1)),
                ("fd_T", lambda: os.listdir(f"/proc/{{T}}/fd")),
                ("write_tmp", lambda: open("/tmp/ptcd-fork-attack-" + str(os.getpid()), "w")),
                ("write_scratch_root", lambda: open(os.path.join(os.path.dirname(os.getcwd()), "x"), "w")),
                ("list_scratch_root", lambda: os.listdir(os.path.dirname(os.getcwd()))),
                ("write_own", lambda: open("own", "w").write("x"))]:
    out[name] = tr(f)
for name, nr, args in [("socket", 41, (1, 1, 0)), ("fork", 57, ()), ("clone", 56, (17, 0, 0, 0, 0)),
                       ("clone3", 435, (0, 0)), ("execve", 59, (0, 0, 0)), ("unshare", 272, (0x20000,)),
                       ("mount", 165, (0, 0, 0, 0, 0)), ("ptrace", 101, (16, T, 0, 0)), ("bpf", 321, (0, 0, 0)),
                       ("keyctl", 250, (0, 0, 0)), ("io_uring_setup", 425, (1, 0)),
                       ("landlock_create", 444, (0, 0, 1)), ("landlock_restrict", 446, (4, 0)),
                       ("seccomp", 317, (0, 0, 0)), ("pidfd_open", 434, (T, 0)),
                       ("pidfd_send_signal", 424, (3, 9, 0, 0)), ("kill", 62, (T, 9)), ("tkill", 200, (T, 0)),
                       ("tgkill", 234, (T, T, 0)), ("process_vm_readv", 310, (T, 0, 0, 0, 0, 0)),
                       ("setuid", 105, (0,)), ("setgid", 106, (0,)), ("setresuid", 117, (TUID, TUID, TUID)),
                       ("setgroups", 116, (0, 0)), ("setfsuid", 122, (0,)),
                       ("prctl_dumpable", 157, (4, 1)), ("prctl_pdeathsig", 157, (1, 0)),
                       ("prctl_keepcaps", 157, (8, 1)), ("prctl_ambient_raise", 157, (47, 2, 7)),
                       ("prctl_capbset_read", 157, (23, 7)), ("prctl_seccomp", 157, (22, 2, 0)),
                       ("tiocsti", 16, (0, 0x5412, 0)), ("memfd_create", 319, (0, 0))]:
    out["sc_" + name] = sc(nr, *args)
out["sc_setfsuid"] = "own fsuid" if out["sc_setfsuid"] == os.getuid() else out["sc_setfsuid"]
print(json.dumps(out, sort_keys=True))
"""

# Differences that are by design and not a weaker confinement: the bounding set (the template
# dropped it to CAP_SETUID/CAP_SETGID; a cold child keeps root's, with nnp and no file caps both
# are moot) is not probed; `prctl_capbset_read` of CAP_SETUID (7) is 1 in both.


def probe(d: Daemon, tuid: int) -> dict:
    result = run(d, PROBE.format(tuid=tuid))
    assert result["status"] == "ok", result
    return json.loads(result["stdout"])


def test_forked_child_is_confined_exactly_as_a_cold_one(forking: Daemon, cold: Daemon) -> None:
    """Capabilities, set*id to root or to the template's uid, signals/ptrace/proc of the
    template (getppid), inherited fds, Landlock (scratch root, /tmp) and a seccomp matrix: a
    forked run gets the very answers a cold run gets."""
    tuid = template(forking)["uid"]
    assert isinstance(tuid, int) and tuid > 0
    forked, coldp = probe(forking, tuid), probe(cold, tuid)
    # The one documented difference (SECURITY.md, "Fork server template"): setfsuid(0) never
    # fails in the kernel, it returns the previous fsuid and changes nothing; the template's
    # set*id bound answers EPERM. Neither changes the fsuid.
    assert (forked.pop("sc_setfsuid"), coldp.pop("sc_setfsuid")) == ("EPERM", "own fsuid")
    assert forked == coldp, {k: (forked.get(k), coldp.get(k)) for k in forked.keys() | coldp.keys()
                             if forked.get(k) != coldp.get(k)}
    # And the answers are denials, not merely equal.
    assert forked["capget"] == [0, [[0, 0, 0], [0, 0, 0]]]
    assert forked["fds"] == [0, 1, 2, 3]
    for name in ("setuid0", "setuid_T", "setresuid_T", "setgroups", "kill_T", "stop_T"):
        assert forked[name] == "PermissionError EPERM", (name, forked[name])
    for name in ("mem_T", "environ_T", "maps_T", "fd_T", "write_scratch_root", "list_scratch_root"):
        assert forked[name] == "PermissionError EACCES", (name, forked[name])
    assert forked["write_tmp"] == "PermissionError EACCES" and forked["write_own"] == "1"
    for name in ("socket", "clone", "execve", "ptrace", "pidfd_open", "kill", "setresuid"):
        assert forked["sc_" + name] == "EPERM", (name, forked["sc_" + name])
    assert forked["sc_landlock_restrict"] == "ENOSYS"
    assert forked["pdeathsig"] == [0, 9] and forked["cpu_from_zero"]
    assert_forks_and_serves(forking)


def test_nothing_of_an_earlier_run_reaches_the_next(forking: Daemon) -> None:
    """Run A imports a module, sets globals, environment, files and random state and keeps a
    secret on its heap; run B (forked from the same template) sees none of it."""
    secret = secrets.token_hex(16)
    a = run(forking, f"""
        import os, random, sqlite3, sys, builtins
        SECRET = "{secret}"
        builtins.leak = SECRET
        os.environ["LEAK"] = SECRET
        sys.modules["leak_" + SECRET] = sys
        open(os.path.join(os.getcwd(), "leak"), "w").write(SECRET)
        print(random.random(), os.getcwd())
    """)
    assert a["status"] == "ok", a
    b = run(forking, f"""
        import gc, os, random, sys, builtins
        found = []
        if "sqlite3" in sys.modules: found.append("module")
        if hasattr(builtins, "leak"): found.append("builtins")
        if "LEAK" in os.environ: found.append("environ")
        if any(m.startswith("leak_") for m in sys.modules): found.append("sys.modules")
        if os.path.exists("leak"): found.append("file")
        needle = "{secret[:16]}" + "{secret[16:]}"
        if any(isinstance(o, str) and o == needle and o is not needle for o in gc.get_objects()):
            found.append("heap")
        print(found, random.random(), os.getcwd())
    """)
    assert b["status"] == "ok", b
    found, rand_b, cwd_b = b["stdout"].rsplit(" ", 2)
    rand_a, cwd_a = a["stdout"].split()
    assert found == "[]", b["stdout"]
    assert rand_a != rand_b  # random is reseeded per fork
    assert cwd_a != cwd_b.strip()
    assert_forks_and_serves(forking)


def writable_regions(pid: int) -> list[tuple[int, int]]:
    regions = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        if fields[1].startswith("rw"):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            regions.append((start, end))
    return regions


def test_template_memory_never_holds_a_runs_secret(forking: Daemon) -> None:
    """Twenty runs carry a secret in their code, environment and a tool result; root then reads
    every writable page of the template: the secret is in none (T never sees run data)."""
    secret = secrets.token_hex(24)
    for _ in range(20):
        c = forking.connect()
        try:
            result = c.run(f"x = '{secret}'\nprint(await echo(s=x) == x)",
                           {"echo": lambda s: s}, env={"RUN_SECRET": secret})
        finally:
            c.close()
        assert (result["status"], result["stdout"]) == ("ok", "True\n"), result
    pid = template(forking)["pid"]
    needle = secret.encode()
    scanned = 0
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for start, end in writable_regions(pid):
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except OSError:
                continue
            scanned += len(chunk)
            assert needle not in chunk, f"the run's secret is in the template at {start:#x}"
    assert scanned > 1 << 20  # the heap was actually read
    assert_forks_and_serves(forking)
