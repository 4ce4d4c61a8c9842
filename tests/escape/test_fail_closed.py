"""Fail closed: a layer the policy requires that cannot apply means no script code runs, and the
run is answered with -32006 naming the layer."""

import subprocess
from pathlib import Path

import pytest

from conftest import LANDLOCK_MAX_ABI, UNPRIVILEGED, landlock_abi_in_use
from daemon import PTCD_BIN

FEATURE_ABI = {"filesystem": 1, "refer": 2, "truncate": 3, "tcp": 4, "device_ioctl": 5,
               "abstract_unix_scope": 6, "signal_scope": 6}

POLICY_DIR = Path(__file__).resolve().parent / "policies"

SANDBOX_UNAVAILABLE = -32006


def marker_code(path: Path) -> str:
    return f"open({str(path)!r}, 'w').write('code ran')"


def world_writable_dir(sb) -> Path:
    # Under the daemon's scratch root (mode 0711, reachable by every sandbox uid): if a layer
    # silently failed open, the run's uid could write here.
    d = sb.daemon.scratch / "markers"
    d.mkdir(exist_ok=True)
    d.chmod(0o777)
    return d


def test_fails_closed_when_landlock_abi_is_unavailable(sb):
    marker = world_writable_dir(sb) / "landlock"
    err = sb.refused(marker_code(marker), policy="failclosed-landlock")
    assert err["code"] == SANDBOX_UNAVAILABLE
    assert "landlock" in err["message"] and "ABI 99" in err["message"]
    assert not marker.exists()


def test_fails_closed_when_the_cgroup_is_missing(sb):
    marker = world_writable_dir(sb) / "cgroup"
    err = sb.refused(marker_code(marker), policy="failclosed-cgroup")
    assert err["code"] == SANDBOX_UNAVAILABLE
    assert "cgroup" in err["message"]
    assert not marker.exists()


@pytest.mark.skipif(UNPRIVILEGED, reason="differs unprivileged: no per-run uids are leased, so "
                    "no uid can run out (SECURITY.md, Running unprivileged)")
def test_fails_closed_when_no_uid_is_free(sb):
    """One uid in the policy's range: a second concurrent run cannot get an identity."""
    from rpc import RpcClient
    marker = world_writable_dir(sb) / "identity"
    first = RpcClient(sb.daemon.socket)
    try:
        rid = first.request("run", {"code": "await hold()", "tools": [{"name": "hold"}],
                                     "policy": "one-uid"})
        call = first.recv()  # the first run is executing and holds the only uid
        assert call["method"] == "tool/call", call
        err = sb.refused(marker_code(marker), policy="one-uid")
        assert err["code"] == SANDBOX_UNAVAILABLE
        assert "identity" in err["message"]
        first.send({"jsonrpc": "2.0", "id": call["id"], "result": None})
        assert first.wait_response(rid)["result"]["status"] == "ok"
    finally:
        first.close()
    assert not marker.exists()
    # the uid is free again
    assert sb.run("1", policy="one-uid")["status"] == "ok"


def test_initialize_reports_what_is_enforced(sb):
    res = sb.client.call("initialize", {})["result"]
    assert res["sandbox"]["seccomp"] is True
    assert res["sandbox"]["landlock_abi"] == landlock_abi_in_use()
    assert res["sandbox"]["landlock_max_abi"] == LANDLOCK_MAX_ABI
    # Every feature the ABI in use lacks is covered by a named layer, none by "nothing".
    comp = res["sandbox"]["compensations"]
    assert {c["feature"] for c in comp} == {
        f for f, abi in FEATURE_ABI.items() if abi > landlock_abi_in_use()}
    assert all(c["by"] in ("landlock", "seccomp", "identity") for c in comp), comp
    assert {"default", "site-packages", "failclosed-landlock"} <= set(res["policies"])


def test_doctor_reports_host_capabilities():
    out = subprocess.run([str(PTCD_BIN), "doctor"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    for word in ("landlock", "seccomp", "user namespaces", "cgroups", "interpreter"):
        assert word in out.stdout
    assert "policy default" in out.stdout and "can be enforced" in out.stdout


def test_policy_check_accepts_builtin_and_names_bad_fields(tmp_path):
    good = subprocess.run([str(PTCD_BIN), "policy", "check", str(POLICY_DIR / "one-uid.toml")],
                          capture_output=True, text=True, timeout=30)
    assert good.returncode == 0, good.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text((POLICY_DIR / "one-uid.toml").read_text().replace("threads = 64", "threads = 0"))
    out = subprocess.run([str(PTCD_BIN), "policy", "check", str(bad)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode != 0
    assert "limits.threads" in out.stderr
