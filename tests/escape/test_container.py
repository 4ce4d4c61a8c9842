"""Containers: the daemon under a container runtime's default capability set (Docker/Podman:
no CAP_SYS_ADMIN, no CAP_SYS_RESOURCE, ...) and a container's lower rlimits, reproduced around
the real daemon with setpriv and prlimit. ptcd works there (per-run uids, Landlock, seccomp,
measured scratch dirs) or fails closed naming what is missing.

The same daemon in a real container: deploy/Containerfile, deploy/kubernetes/ (and
deploy/README.md for what was checked with podman).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import UNPRIVILEGED, daemon_args
from daemon import Daemon

pytestmark = pytest.mark.skipif(UNPRIVILEGED, reason="differs unprivileged: these cases start "
                                "their own root daemon with a container's capability set")

# Docker's and Podman's default capability set (moby/oci defaults).
CONTAINER_CAPS = ["chown", "dac_override", "fowner", "fsetid", "kill", "setgid", "setuid",
                  "setpcap", "net_bind_service", "net_raw", "sys_chroot", "mknod", "audit_write",
                  "setfcap"]
POLICY_DIR = Path(__file__).resolve().parent / "policies"


REPO = Path(__file__).resolve().parent.parent.parent


def kubernetes_example_caps() -> list[str]:
    """The capabilities deploy/kubernetes/sidecar.yaml adds back after dropping ALL."""
    text = (REPO / "deploy" / "kubernetes" / "sidecar.yaml").read_text()
    line = next(l for l in text.splitlines() if l.strip().startswith("add: ["))
    return [c.strip().strip('"').lower() for c in line.split("[", 1)[1].rstrip("]").split(",")]


def container_prefix(memlock_kib: int | None = None, caps_list=None) -> list[str]:
    caps = ",".join(["-all"] + [f"+{c}" for c in (caps_list or CONTAINER_CAPS)])
    prefix = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]
    if memlock_kib is not None:
        prefix = ["prlimit", f"--memlock={memlock_kib * 1024}:{memlock_kib * 1024}"] + prefix
    return prefix


def netns_policy(dir_: Path) -> Path:
    text = (POLICY_DIR / "no-identity.toml").read_text()
    text = text.replace('name = "no-identity"', 'name = "netns"')
    text = text.replace("[network_namespace]\nenabled = false", "[network_namespace]\nenabled = true")
    assert "enabled = true\nreason" in text.split("[network_namespace]")[1][:40]
    dir_.mkdir()
    (dir_ / "netns.toml").write_text(text)
    return dir_


@pytest.fixture
def container_daemon(tmp_path):
    started = []

    def start(*extra: str, memlock_kib: int | None = None, caps=None) -> Daemon:
        d = Daemon(_dir(tmp_path, len(started)),
                   list(extra) + daemon_args(), prefix=container_prefix(memlock_kib, caps))
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


def _dir(tmp_path: Path, n: int) -> Path:
    p = tmp_path / f"d{n}"
    p.mkdir()
    return p


def caps_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise AssertionError("no CapEff")


CAP_SYS_ADMIN = 21
CAP_SYS_RESOURCE = 24


def test_works_under_a_container_capability_set(container_daemon):
    d = container_daemon()
    eff = caps_of(d.pid)
    assert not eff & (1 << CAP_SYS_ADMIN) and not eff & (1 << CAP_SYS_RESOURCE)
    c = d.connect()
    try:
        sandbox = c.call("initialize")["result"]["sandbox"]
        # No CAP_SYS_ADMIN: no tmpfs per run; the scratch dir is measured.
        assert sandbox["scratch"] == "measured"
        assert sandbox["seccomp"] is True and sandbox["landlock_abi"] >= 1
        code = ("import os, json\n"
                "try:\n    open('/etc/shadow')\n    shadow = 'READ'\n"
                "except PermissionError:\n    shadow = 'EACCES'\n"
                "print(json.dumps([os.getuid(), shadow]))")
        r = c.call("run", {"code": code})["result"]
        assert r["status"] == "ok", r
        uid, shadow = json.loads(r["stdout"])
        assert 64000 <= uid <= 64999  # CAP_SETUID is in the set: per-run uids still work
        assert shadow == "EACCES"
        r = c.call("run", {"code": "import socket; socket.socket()"})["result"]
        assert r["status"] == "error" and "PermissionError" in r["error"]["type"], r
        assert c.call("run", {"code": "print(6 * 7)"})["result"]["stdout"] == "42\n"
    finally:
        c.close()
    assert d.proc.poll() is None


def test_container_rlimits_lower_than_the_policy_are_kept_not_raised(container_daemon):
    """A container's hard RLIMIT_MEMLOCK below the policy's 64 KiB: raising it would need
    CAP_SYS_RESOURCE; the launcher keeps the lower (stricter) limit instead of failing."""
    d = container_daemon(memlock_kib=32)
    c = d.connect()
    try:
        code = "import resource; print(resource.getrlimit(resource.RLIMIT_MEMLOCK))"
        r = c.call("run", {"code": code})["result"]
        assert r["status"] == "ok", r
        assert r["stdout"] == "(32768, 32768)\n"
    finally:
        c.close()
    assert d.proc.poll() is None


def test_a_network_namespace_policy_fails_closed_naming_cap_sys_admin(container_daemon, tmp_path):
    d = container_daemon("--policy-dir", str(netns_policy(tmp_path / "pol")))
    c = d.connect()
    try:
        resp = c.call("run", {"code": "print('code ran')", "policy": "netns"})
        assert "error" in resp, resp
        assert resp["error"]["code"] == -32006
        msg = resp["error"]["message"]
        assert "network_namespace" in msg and "CAP_SYS_ADMIN" in msg, msg
        # The default policy still runs.
        assert c.call("run", {"code": "print(1)"})["result"]["stdout"] == "1\n"
    finally:
        c.close()
    assert d.proc.poll() is None


def test_works_with_exactly_the_kubernetes_example_capabilities(container_daemon):
    """The sidecar example's securityContext (drop ALL, add six): runs get their own uid, a run
    killed at its timeout is ended, and every scratch dir is removed afterwards."""
    from daemon import run_dirs, wait_until
    caps = kubernetes_example_caps()
    assert "sys_admin" not in caps and len(caps) == 6, caps
    d = container_daemon(caps=caps)
    c = d.connect()
    try:
        code = ("import os\nos.makedirs('a/b/c')\nopen('a/b/c/f', 'w').write('x')\n"
                "os.chmod('a/b', 0o500)\nprint(os.getuid())")
        r = c.call("run", {"code": code})["result"]
        assert r["status"] == "ok", r
        assert 64000 <= int(r["stdout"]) <= 64999
        r = c.call("run", {"code": "import time; time.sleep(60)",
                           "limits": {"timeout_ms": 500}})["result"]
        assert r["status"] == "timeout", r
        wait_until(lambda: run_dirs(d.scratch) == [], "the scratch dirs to be removed")
        assert c.call("run", {"code": "print(6 * 7)"})["result"]["stdout"] == "42\n"
    finally:
        c.close()
    assert d.proc.poll() is None


def test_fails_closed_without_cap_kill_instead_of_leaving_unstoppable_runs(container_daemon):
    """Per-run uids without CAP_KILL: the daemon could start a run it cannot end at its
    timeout. Every run on a per-run-uid policy is refused, naming the capability."""
    caps = [c for c in kubernetes_example_caps() if c != "kill"]
    d = container_daemon(caps=caps)
    c = d.connect()
    try:
        resp = c.call("run", {"code": "import time; time.sleep(60)", "limits": {"timeout_ms": 500}})
        assert "error" in resp, resp
        assert resp["error"]["code"] == -32006
        assert "identity" in resp["error"]["message"] and "CAP_KILL" in resp["error"]["message"]
    finally:
        c.close()
    assert d.proc.poll() is None
