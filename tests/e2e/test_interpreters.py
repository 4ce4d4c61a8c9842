"""Any CPython >= 3.10: the system interpreter, a venv (and its site-packages under the
site-packages policy), a pyenv build with a shared libpython; `ptcd doctor` proves each with a
real confined run and refuses what cannot work (not CPython, too old, unreachable by the runs'
uid) with a clear message.

The pyenv cases use the test VM's pyenv (`/root/.pyenv`, under a 0700 /root): as it is, the
runs' uid cannot reach it; relocated to a reachable prefix (what `PYENV_ROOT=/opt/pyenv` gives)
it runs. A uv-managed Python needs a download from outside, not available here; a uv Python is a
relocatable `--enable-shared` build like the relocated pyenv one (`{libpython}` covers both).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from daemon import PTCD_BIN

SYSTEM_PYTHON = Path("/usr/bin/python3")
PYENV = Path("/root/.pyenv/versions/3.12.1")
PYENV_OLD = Path("/root/.pyenv/versions/3.9.18/bin/python3.9")


def doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(PTCD_BIN), "doctor", *args], capture_output=True, text=True,
                          timeout=120)


def run_ok(client, code: str, **params) -> dict:
    resp = client.call("run", {"code": code, **params})
    assert "result" in resp, resp
    assert resp["result"]["status"] == "ok", resp["result"]
    return resp["result"]


@pytest.fixture(scope="module")
def venv() -> Path:
    """A venv of the system interpreter (symlinks, no pip) with one package in site-packages."""
    d = Path(tempfile.mkdtemp(prefix="ptcd-venv-"))
    d.chmod(0o755)
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(d / "v")], check=True,
                   timeout=60)
    site = next((d / "v" / "lib").glob("python3.*/site-packages"))
    (site / "ptcd_venv_pkg.py").write_text("VALUE = 'from the venv'\n")
    yield d / "v"
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def relocated_pyenv() -> Path:
    """The VM's pyenv 3.12 (a shared-libpython build) at a prefix every uid can reach: hard links
    of its tree, and a copy of the binary whose RUNPATH names the new prefix (pyenv bakes its
    prefix in, as a build with PYENV_ROOT=/opt/pyenv would have /opt/pyenv)."""
    if not (PYENV / "bin" / "python3.12").exists():
        pytest.skip("no pyenv 3.12.1 under /root/.pyenv on this host")
    base = Path(f"/tmp/ptcdpy-{os.getpid()}")
    prefix = base / "3.12.1"
    base.mkdir(mode=0o755)
    base.chmod(0o755)
    subprocess.run(["cp", "-al", str(PYENV), str(prefix)], check=True, timeout=120)
    binary = prefix / "bin" / "python3.12"
    data = binary.read_bytes()
    old = f"{PYENV}/lib".encode()
    new = f"{prefix}/lib".encode()
    assert len(new) <= len(old) and data.count(old + b"\0") == 1
    binary.unlink()  # a hard link to the original: write a copy instead
    binary.write_bytes(data.replace(old + b"\0", new + b"\0" * (len(old) - len(new) + 1)))
    binary.chmod(0o755)
    yield binary
    shutil.rmtree(base, ignore_errors=True)


def test_doctor_refuses_perl_as_not_cpython():
    out = doctor("--python", "/usr/bin/perl")
    assert out.returncode == 1
    assert "interpreter       NOT USABLE: /usr/bin/perl: not a CPython interpreter" in out.stdout
    assert "NOT OK" in out.stdout


def test_doctor_refuses_an_interpreter_the_run_uid_cannot_reach():
    if not (PYENV / "bin" / "python3.12").exists() or os.stat("/root").st_mode & 0o001:
        pytest.skip("needs a pyenv under a 0700 /root")
    out = doctor("--python", str(PYENV / "bin" / "python3.12"))
    assert out.returncode == 1
    assert "cannot execute" in out.stdout and "/root is mode 700" in out.stdout, out.stdout


def test_serve_refuses_to_start_with_an_unreachable_interpreter(tmp_path):
    if not (PYENV / "bin" / "python3.12").exists() or os.stat("/root").st_mode & 0o001:
        pytest.skip("needs a pyenv under a 0700 /root")
    out = subprocess.run([str(PTCD_BIN), "serve", "--socket", str(tmp_path / "s"),
                          "--python", str(PYENV / "bin" / "python3.12")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "/root is mode 700" in out.stderr, out.stderr


def test_doctor_refuses_cpython_older_than_3_10():
    if not PYENV_OLD.exists():
        pytest.skip("no pyenv 3.9 on this host")
    out = doctor("--python", str(PYENV_OLD))
    assert out.returncode == 1
    assert "CPython 3.9 is too old: ptcd needs CPython 3.10 or newer" in out.stdout


def test_doctor_proves_the_system_interpreter_with_a_confined_run():
    out = doctor()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "policy default" in out.stdout
    assert "probe run: ok: CPython 3." in out.stdout


def test_doctor_probe_catches_what_static_checks_miss(tmp_path):
    """A policy whose required path is missing passes the static checks; the probe run is
    refused and doctor says so."""
    policy = tmp_path / "missing.toml"
    policy.write_text('extends = "default"\nname = "missing"\ndescription = "x"\n'
                      '[[filesystem]]\npath = "/nonexistent/ptcd"\naccess = "read"\n'
                      'reason = "a required path that is not there"\n')
    out = doctor("--policy-dir", str(tmp_path))
    assert "policy missing" in out.stdout
    section = out.stdout.split("policy missing", 1)[1]
    assert "probe run: FAILED: refused (-32006)" in section
    assert "/nonexistent/ptcd" in section


def test_venv_interpreter_runs_and_imports_its_site_packages(start_daemon, venv):
    d = start_daemon("--python", str(venv / "bin" / "python3"))
    c = d.connect()
    try:
        r = run_ok(c, "import sys; print(sys.version_info[:2] >= (3, 10))")
        assert r["stdout"] == "True\n"
        r = run_ok(c, "import ptcd_venv_pkg; print(ptcd_venv_pkg.VALUE)", policy="site-packages")
        assert r["stdout"] == "from the venv\n"
        # The default policy runs without `site`: the venv's packages are not importable.
        resp = c.call("run", {"code": "import ptcd_venv_pkg"})
        assert resp["result"]["status"] == "error"
        assert "ModuleNotFoundError" in str(resp["result"]), resp
        assert d.proc.poll() is None
    finally:
        c.close()
    out = doctor("--python", str(venv / "bin" / "python3"))
    assert out.returncode == 0, out.stdout
    assert f"site-packages on sys.path: {venv}/lib/python" in out.stdout


def test_pyenv_shared_libpython_build_runs_confined(start_daemon, relocated_pyenv):
    out = doctor("--python", str(relocated_pyenv))
    assert out.returncode == 0, out.stdout
    assert "probe run: ok: CPython 3.12 ran confined" in out.stdout
    d = start_daemon("--python", str(relocated_pyenv))
    c = d.connect()
    try:
        r = run_ok(c, "import sys, hashlib, sqlite3; print(sys.version_info[:2], sys.prefix)")
        assert r["stdout"] == f"(3, 12) {relocated_pyenv.parent.parent}\n"
        # The uid sees only what the policy allows: not the rest of the prefix's lib dir.
        resp = c.call("run", {"code": f"import os; os.listdir({str(relocated_pyenv.parent.parent / 'lib')!r})"})
        assert resp["result"]["status"] == "error" and "PermissionError" in str(resp["result"])
    finally:
        c.close()
