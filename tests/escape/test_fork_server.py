"""Fork-server escapes (issue #14): a run forked from a template must be confined exactly as a
cold one, reach neither its template nor a sibling, and inherit nothing of an earlier run.

Every case passes in every mode (`PTCD_FORK_SERVER` unset, off, on, require): what it attacks is
"the process above the run" (`os.getppid()`: the template when forked, the daemon when cold) and
the template pids `daemon/status` lists, so a cold run makes the same attack on the daemon.
Asserts that only mean something for a forked run are guarded by `forked(...)`, which a run
proves from inside (its parent is not the daemon) and `daemon/status` confirms (the parent is a
listed template, `runs_forked_total` > 0). Under `require`, the default policy's runs must be
forked (marked "require-only").
"""

from __future__ import annotations

import json

from conftest import UNPRIVILEGED, Sandbox
from daemon import FORK_SERVER
from rpc import RpcClient

PROBE_PARENT = "import os\nprint('PARENT', os.getppid())\n"


def parent_of(sb: Sandbox, stdout: str) -> int:
    """The pid a run printed with PROBE_PARENT."""
    line = next(l for l in stdout.splitlines() if l.startswith("PARENT "))
    return int(line.split()[1])


def forked(sb: Sandbox, parent: int) -> bool:
    """Whether a run whose parent was `parent` was forked from a template, cross-checked with
    `daemon/status`. Under `require` (privileged daemon), default-policy runs must be."""
    if parent == sb.daemon.pid:
        assert not (FORK_SERVER == "require" and not UNPRIVILEGED), \
            "require-only: a default-policy run started cold under --fork-server require"
        return False
    fs = sb.daemon.fork_server()
    assert fs is not None, f"a run's parent {parent} is not the daemon, yet there is no fork server"
    assert parent in {t["pid"] for t in fs["templates"]}, (parent, fs)
    assert fs["runs_forked_total"] > 0, fs
    return True


def status_of(pid: int) -> dict:
    """A process's /proc status fields, read from outside (as root): a run cannot read its own."""
    out = {}
    for line in open(f"/proc/{pid}/status"):
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def caps_of(pid: int) -> dict:
    st = status_of(pid)
    return {k: int(st[k], 16) for k in ("CapEff", "CapPrm", "CapAmb", "CapInh")}


def results(sb: Sandbox, code: str, handlers: dict | None = None, **params) -> tuple[dict, int]:
    """Runs a script that prints PARENT and one JSON line `RESULTS {...}`; returns both."""
    r = sb.run(PROBE_PARENT + code, handlers, **params)
    assert r["status"] == "ok", json.dumps(r)
    line = next(l for l in r["stdout"].splitlines() if l.startswith("RESULTS "))
    return json.loads(line[len("RESULTS "):]), parent_of(sb, r["stdout"])


# Tries `expr` and records "ok" or the errno name (a script helper).
TRY = """
import ctypes as _ct, errno as _errno, json as _json, os
_libc = _ct.CDLL(None, use_errno=True)
_libc.syscall.restype = _ct.c_long
def raw_syscall(nr, *args):
    r = _libc.syscall(_ct.c_long(nr), *[_ct.c_long(a) for a in args])
    if r == -1:
        e = _ct.get_errno()
        raise OSError(e, os.strerror(e))
    return r
OUT = {}
def attempt(name, fn):
    try:
        fn()
    except OSError as e:
        OUT[name] = _errno.errorcode.get(e.errno, str(e.errno))
    except BaseException as e:
        OUT[name] = type(e).__name__
    else:
        OUT[name] = "ok"
"""

SIGKILL, SIGTERM, PTRACE_ATTACH, PTRACE_SEIZE = 9, 15, 16, 0x4206
NR_PTRACE, NR_PROCESS_VM_READV, NR_PROCESS_VM_WRITEV, NR_PIDFD_GETFD = 101, 310, 311, 438


def targets(sb: Sandbox) -> str:
    """The pids under attack, as a Python expression: the run's parent and every template
    (once none is still starting)."""
    return f"sorted({{os.getppid()}} | set({sorted(sb.daemon.wait_templates_up())!r}))"


def test_script_cannot_signal_kill_or_ptrace_the_template(sb):
    sb.assert_still_serves()  # a run of the default policy: its template is started by now
    templates_before = sb.daemon.wait_templates_up()
    out, parent = results(sb, TRY + f"""
for pid in {targets(sb)}:
    attempt(f"kill-{{pid}}", lambda: os.kill(pid, {SIGKILL}))
    attempt(f"term-{{pid}}", lambda: os.kill(pid, {SIGTERM}))
    attempt(f"probe-{{pid}}", lambda: os.kill(pid, 0))
    attempt(f"killpg-{{pid}}", lambda: os.killpg(os.getpgid(pid), {SIGTERM}))
    attempt(f"attach-{{pid}}", lambda: raw_syscall({NR_PTRACE}, {PTRACE_ATTACH}, pid, 0, 0))
    attempt(f"seize-{{pid}}", lambda: raw_syscall({NR_PTRACE}, {PTRACE_SEIZE}, pid, 0, 0))
    attempt(f"vm_readv-{{pid}}", lambda: raw_syscall({NR_PROCESS_VM_READV}, pid, 0, 0, 0, 0, 0))
    attempt(f"vm_writev-{{pid}}", lambda: raw_syscall({NR_PROCESS_VM_WRITEV}, pid, 0, 0, 0, 0, 0))
    attempt(f"pidfd_open-{{pid}}", lambda: os.pidfd_open(pid))
print("RESULTS", _json.dumps(OUT))
""")
    assert out and set(out.values()) == {"EPERM"}, out
    # The templates are the same processes as before: none was killed or replaced.
    assert templates_before <= sb.daemon.template_pids(), templates_before
    forked(sb, parent)


def test_script_cannot_read_template_memory_or_environ(sb):
    out, parent = results(sb, TRY + f"""
for pid in {targets(sb)}:
    for name in ("mem", "environ", "maps", "auxv", "stack", "syscall", "pagemap"):
        attempt(f"{{name}}-{{pid}}", lambda: open(f"/proc/{{pid}}/{{name}}", "rb").read(1))
    attempt(f"fd-{{pid}}", lambda: os.listdir(f"/proc/{{pid}}/fd"))
    attempt(f"cwd-{{pid}}", lambda: os.readlink(f"/proc/{{pid}}/cwd"))
    attempt(f"root-{{pid}}", lambda: os.listdir(f"/proc/{{pid}}/root/"))
print("RESULTS", _json.dumps(OUT))
""")
    assert out and set(out.values()) == {"EACCES"}, out
    forked(sb, parent)


FDS = TRY + """
import stat
open_fds = []
for fd in range(1024):
    try:
        os.fstat(fd)
    except OSError as e:
        assert e.errno == _errno.EBADF, (fd, e)
    else:
        open_fds.append(fd)
st = os.fstat(0)
print("RESULTS", _json.dumps({"fds": open_fds, "stdin_chr": stat.S_ISCHR(st.st_mode),
                               "stdin_rdev": [os.major(st.st_rdev), os.minor(st.st_rdev)]}))
"""


def test_no_fd_of_the_template_or_a_sibling_is_open(sb):
    """A sibling run is alive (blocked in a tool call) while this one lists its fds 0..1023:
    only 0 (/dev/null), 1, 2 (its pipes) and 3 (its control socket) are open; none of the
    template's (its socket to the daemon, its children's pidfds) or the sibling's."""
    other = RpcClient(sb.daemon.socket)
    try:
        rid = other.request("run", {"code": PROBE_PARENT + "await hold()\nprint('released')",
                                    "tools": [{"name": "hold"}]})
        call = other.recv()
        assert call["method"] == "tool/call", call
        out, parent = results(sb, FDS)
        assert out["fds"] == [0, 1, 2, 3], out
        assert out["stdin_chr"] and out["stdin_rdev"] == [1, 3], out  # /dev/null
        other.send({"jsonrpc": "2.0", "id": call["id"], "result": None})
        sibling = other.wait_response(rid)["result"]
        assert sibling["status"] == "ok" and "released" in sibling["stdout"], sibling
    finally:
        other.close()
    forked(sb, parent)


CAPS = TRY + """
import ctypes
class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]
hdr = Header(0x20080522, 0)
data = (Data * 2)()
assert _libc.capget(ctypes.byref(hdr), ctypes.byref(data)) == 0
capget = [[d.effective, d.permitted, d.inheritable] for d in data]
status = await probe(pid=os.getpid())  # /proc/self/status is not readable from inside
attempt("setuid0", lambda: os.setuid(0))
attempt("seteuid0", lambda: os.seteuid(0))
attempt("setresuid0", lambda: os.setresuid(0, 0, 0))
attempt("setgid0", lambda: os.setgid(0))
attempt("setgroups", lambda: os.setgroups([]))
attempt("setgroups0", lambda: os.setgroups([0]))
for uid in TEMPLATE_UIDS:
    attempt(f"setuid-template-{uid}", lambda: os.setuid(uid))
    attempt(f"setresuid-template-{uid}", lambda: os.setresuid(uid, uid, uid))
print("RESULTS", _json.dumps({"capget": capget, "status": status, "denied": OUT}))
"""


def test_forked_child_has_no_capabilities(sb):
    fs = sb.daemon.fork_server()
    uids = sorted({t["uid"] for t in fs["templates"] if t.get("uid") is not None}) if fs else []
    out, parent = results(sb, f"TEMPLATE_UIDS = {uids!r}\n" + CAPS, {"probe": caps_of})
    assert out["capget"] == [[0, 0, 0], [0, 0, 0]], out
    assert out["status"] == {"CapEff": 0, "CapPrm": 0, "CapAmb": 0, "CapInh": 0}, out
    assert set(out["denied"].values()) == {"EPERM"}, out
    assert len(out["denied"]) == 6 + 2 * len(uids), out
    forked(sb, parent)


def test_forked_child_cannot_fork_or_exec(sb):
    out, parent = results(sb, TRY + """
import subprocess
attempt("fork", os.fork)
attempt("clone_sigchld", lambda: raw_syscall(56, 17, 0, 0, 0, 0))
attempt("vfork", lambda: raw_syscall(58))
attempt("subprocess", lambda: subprocess.run(["/bin/true"]))
attempt("posix_spawn", lambda: os.posix_spawn("/usr/bin/true", ["true"], {}))
attempt("execv", lambda: os.execv("/usr/bin/true", ["true"]))
attempt("execveat", lambda: raw_syscall(322, -100, 0, 0, 0, 0x1000))
attempt("pidfd_open_self", lambda: os.pidfd_open(os.getpid()))
print("RESULTS", _json.dumps(OUT))
""")
    assert set(out.values()) == {"EPERM"}, out
    forked(sb, parent)


SECRET = "ptcd-forkleak-7f3a9c1e5b"  # split in two below, so run B's own code never holds it


def test_nothing_of_an_earlier_run_is_in_memory(sb):
    r = sb.run(PROBE_PARENT + f"""
import os, sys, sqlite3, linecache
LEAKED = {SECRET!r}
sys.leaked = [LEAKED, LEAKED.encode()]
os.environ["LEAKED_TOKEN"] = LEAKED
globals()["leaked_global"] = {{"k": LEAKED}}
sqlite3.connect(":memory:").execute("select ?", (LEAKED,)).fetchall()
linecache.cache["leaked.py"] = (1, None, [LEAKED], "leaked.py")
print("stored")
""", env={"RUN_A_TOKEN": SECRET})
    assert r["status"] == "ok" and "stored" in r["stdout"], r
    first_parent = parent_of(sb, r["stdout"])
    half = len(SECRET) // 2
    out, parent = results(sb, f"""
import gc, json, os, sys, linecache
needle = {SECRET[:half]!r} + {SECRET[half:]!r}
found = []
if "sqlite3" in sys.modules or "_sqlite3" in sys.modules:
    found.append("sys.modules sqlite3")
if hasattr(sys, "leaked"):
    found.append("sys.leaked")
for k, v in os.environ.items():
    if needle in k or needle in v or k in ("LEAKED_TOKEN", "RUN_A_TOKEN"):
        found.append("environ " + k)
if any(needle in "".join(map(str, entry[2] or [])) for entry in linecache.cache.values()):
    found.append("linecache")
if "leaked_global" in globals() or "LEAKED" in globals():
    found.append("globals")
def holds(x):
    if x is needle:
        return False
    if isinstance(x, str):
        return needle in x
    if isinstance(x, (bytes, bytearray)):
        return needle.encode() in x
    return False
gc.unfreeze()  # a template gc.freeze()s what it imported: get_objects() would skip it all
for obj in gc.get_objects():
    items = ()
    if isinstance(obj, dict):
        items = list(obj.keys()) + list(obj.values())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        items = list(obj)
    if any(holds(i) for i in items):
        found.append("gc " + type(obj).__name__)
        break
print("RESULTS", json.dumps({{"found": found, "objects": len(gc.get_objects())}}))
""")
    assert out["found"] == [], out
    assert out["objects"] > 1000, "the gc scan saw nothing; it proves nothing"
    forked(sb, first_parent)
    forked(sb, parent)


def test_forked_runs_get_fresh_randomness(sb):
    seen = []
    parents = []
    for _ in range(3):
        out, parent = results(sb, """
import json, os, random, secrets
print("RESULTS", json.dumps([random.random(), random.getrandbits(64), os.urandom(16).hex(), secrets.token_hex(16)]))
""")
        seen.append(out)
        parents.append(parent)
    for i in range(4):
        values = [s[i] for s in seen]
        assert len(set(values)) == len(values), (i, seen)
    for parent in parents:
        forked(sb, parent)


def test_parent_death_signal_is_sigkill_and_stdin_is_dev_null(sb):
    out, parent = results(sb, TRY + """
import stat
sig = _ct.c_int(-1)
assert _libc.prctl(2, _ct.byref(sig), 0, 0, 0) == 0   # PR_GET_PDEATHSIG
st = os.fstat(0)
print("RESULTS", _json.dumps({"pdeathsig": sig.value, "stdin_chr": stat.S_ISCHR(st.st_mode),
    "stdin_rdev": [os.major(st.st_rdev), os.minor(st.st_rdev)], "stdin_read": os.read(0, 16).hex(),
    "sid_is_self": os.getsid(0) == os.getpid()}))
""")
    assert out == {"pdeathsig": 9, "stdin_chr": True, "stdin_rdev": [1, 3], "stdin_read": "",
                   "sid_is_self": True}, out
    forked(sb, parent)


def test_each_forked_run_has_its_own_uid(sb):
    """Two runs alive at once: different uids (a privileged daemon leases one per run), and
    neither is a template's."""
    code = PROBE_PARENT + "await report(uid=os.getuid(), euid=os.geteuid())\n"
    clients = [RpcClient(sb.daemon.socket), RpcClient(sb.daemon.socket)]
    try:
        rids = [c.request("run", {"code": code, "tools": [{"name": "report"}]}) for c in clients]
        calls = [c.recv() for c in clients]  # both runs are alive now, each blocked in its call
        uids = [call["params"]["arguments"] for call in calls]
        fs = sb.daemon.fork_server()
        template_uids = {t["uid"] for t in fs["templates"] if t.get("uid") is not None} if fs else set()
        for c, call in zip(clients, calls):
            c.send({"jsonrpc": "2.0", "id": call["id"], "result": None})
        runs = [c.wait_response(rid)["result"] for c, rid in zip(clients, rids)]
    finally:
        for c in clients:
            c.close()
    for r in runs:
        assert r["status"] == "ok", r
    assert all(u["uid"] == u["euid"] for u in uids), uids
    assert not {u["uid"] for u in uids} & template_uids, (uids, template_uids)
    if not UNPRIVILEGED:  # an unprivileged daemon's runs all keep its uid
        assert uids[0]["uid"] != uids[1]["uid"], uids
    sb.assert_still_serves()
    for r in runs:
        forked(sb, parent_of(sb, r["stdout"]))
