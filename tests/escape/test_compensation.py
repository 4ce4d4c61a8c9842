"""Older kernels, same guarantees: each Landlock feature the ABI in use lacks is stopped by the
compensating layer the daemon chose at start-up (`daemon/src/sandbox/coverage.rs`).

The suite runs at several ABI levels (`PTCD_ESCAPE_LANDLOCK_MAX_ABI`; tests/run-all.sh does 1, 2,
4 and 6). Every case asserts the denial at every level; the errno differs where another layer
answers (Landlock's filesystem rules: EACCES; seccomp: EPERM), and the case says which it expects.
"""

from conftest import landlock_abi_in_use

ABI = landlock_abi_in_use()


def victim(sb) -> str:
    return str(sb.daemon.readable_dir / "victim")


def assert_victim_intact(sb) -> None:
    assert (sb.daemon.readable_dir / "victim").read_text() == "precious\n"


def test_truncate_of_a_readable_world_writable_file_is_denied(sb):
    """Landlock ABI 3's truncate right; below it, seccomp denies truncate(2). The run's uid could
    write the file (mode 0666): only these layers stand in the way."""
    expected = "DENIED PermissionError EACCES" if ABI >= 3 else "DENIED PermissionError EPERM"
    got = sb.attempt(f"import os; os.truncate({victim(sb)!r}, 0)", policy="readable-dir")
    assert got == expected
    assert_victim_intact(sb)


def test_read_only_open_with_o_trunc_is_denied(sb):
    """open(O_RDONLY|O_TRUNC) truncates a file the caller may write; Landlock ABI 3 checks it
    as truncate, below it the compensating seccomp rule refuses the flags."""
    body = f"import os; os.open({victim(sb)!r}, os.O_RDONLY | os.O_TRUNC)"
    expected = "DENIED PermissionError EACCES" if ABI >= 3 else "DENIED PermissionError EPERM"
    assert sb.attempt(body, policy="readable-dir") == expected
    assert_victim_intact(sb)


def test_reading_the_readable_file_still_works(sb):
    r = sb.run(f"print(open({victim(sb)!r}).read(), end='')", policy="readable-dir")
    assert r["status"] == "ok" and r["stdout"] == "precious\n"


def test_truncating_in_scratch_still_works_with_a_writable_fd(sb):
    r = sb.run("""
        with open('f', 'w') as f: f.write('abcdef')
        with open('f', 'r+') as f: f.truncate(2)
        with open('f', 'w') as f: f.write('x')   # O_WRONLY|O_TRUNC: Landlock's write right
        print(open('f').read())
    """)
    assert r["status"] == "ok" and r["stdout"] == "x\n", r


def test_signals_to_the_daemon_are_denied_without_a_per_run_uid(sb):
    """The run keeps the daemon's uid (root here): neither uids nor capabilities stop a signal.
    Landlock ABI 6 scopes signals to the run; below it, the compensating seccomp rule does.
    Both the daemon's real pid and `getppid()` (a forked run's template) are tried."""
    body = f"import os; os.kill({sb.daemon.pid}, 0)"
    assert sb.attempt(body, policy="no-identity") == "DENIED PermissionError EPERM"
    body = "import os; os.kill(os.getppid(), 0)"
    assert sb.attempt(body, policy="no-identity") == "DENIED PermissionError EPERM"
    body = "import os; os.kill(1, 0)"
    assert sb.attempt(body, policy="no-identity") == "DENIED PermissionError EPERM"


def test_signals_to_the_run_itself_still_work_without_a_per_run_uid(sb):
    r = sb.run("""
        import os, signal, threading
        got = []
        signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
        os.kill(os.getpid(), signal.SIGUSR1)
        signal.raise_signal(signal.SIGUSR1)
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)
        print(len(got))
    """, policy="no-identity")
    assert r["status"] == "ok" and r["stdout"] == "3\n", r


def test_cross_directory_rename_in_scratch(sb):
    """Differs by level, by design: Landlock ABI 1 has no refer right and denies every
    cross-directory rename (EXDEV), even inside the scratch dir (stricter, nothing to
    compensate); from ABI 2 the scratch dir's refer right allows it."""
    body = """
        import os
        os.mkdir('a'); os.mkdir('b'); open('a/f', 'w').close()
        os.rename('a/f', 'b/f')
    """
    expected = "ALLOWED" if ABI >= 2 else "DENIED OSError EXDEV"
    assert sb.attempt(body) == expected
