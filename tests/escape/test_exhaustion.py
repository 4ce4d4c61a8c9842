"""Resource exhaustion: rlimits (address space, CPU, file size, open files, threads), the run's
wall-clock timeout and output caps; each ends the run, never the daemon."""

from conftest import UNPRIVILEGED


def test_memory_bomb_gets_memory_error(sb):
    body = "b = bytearray(2 << 30)"
    assert sb.attempt(body, limits={"memory_mb": 256}) == "DENIED MemoryError -"


def test_growing_memory_bomb_gets_memory_error(sb):
    body = """
    chunks = []
    while True:
        chunks.append(bytearray(16 << 20))
    """
    assert sb.attempt(body, limits={"memory_mb": 256}) == "DENIED MemoryError -"


def test_thread_bomb_is_capped(sb):
    body = """
    import threading
    stop = threading.Event()
    threads = []
    try:
        while True:
            t = threading.Thread(target=stop.wait)
            t.start()
            threads.append(t)
    finally:
        stop.set()
        print("threads started:", len(threads))
    """
    if not UNPRIVILEGED:
        # RLIMIT_NPROC of the run's own uid: thread creation fails long before memory runs out.
        assert sb.attempt(body) == "DENIED RuntimeError -"
        return
    # Differs unprivileged: RLIMIT_NPROC is not set (one uid for the daemon and every run, so it
    # would count all of them; SECURITY.md, "Running unprivileged"), and threads are bounded by
    # RLIMIT_AS instead. Creation then fails (RuntimeError), or a thread that was created dies of
    # MemoryError before telling `Thread.start()` it started, and CPython's `start()` waits for it
    # forever: the run ends at its deadline. Which one depends on the host's load; either way the
    # bomb is contained, and `sb.run` checks the daemon still serves.
    result = sb.run(body, limits={"timeout_ms": 5000})
    ended = (result["status"], (result.get("error") or {}).get("type"))
    assert result["status"] == "timeout" or ended in {("error", "RuntimeError"), ("error", "MemoryError")}, result


def test_fd_exhaustion_gets_emfile(sb):
    body = """
    files = []
    while True:
        files.append(open('/dev/null'))
    """
    assert sb.attempt(body) == "DENIED OSError EMFILE"


def test_disk_filling_file_is_capped(sb):
    body = """
    chunk = b'x' * (1 << 20)
    with open('big', 'wb', buffering=0) as f:
        for _ in range(100):
            f.write(chunk)
    """
    assert sb.attempt(body) == "DENIED OSError EFBIG"


def test_disk_filling_with_many_capped_files_gets_enospc(sb):
    # Each file stays under file_size_mb (64); together they pass scratch_mb (256). On a tmpfs
    # scratch dir the kernel refuses the write past 256 MiB: an ordinary OSError the script can
    # handle, and the run goes on. (The measured fallback ends the run instead:
    # tests/hardening/test_scratch_and_uids.py.)
    body = """
    chunk = b'x' * (1 << 20)
    for i in range(1000):
        with open(f'part{i}', 'wb', buffering=0) as f:
            for _ in range(32):
                f.write(chunk)
    """
    if sb.scratch_mode() == "measured":
        # Differs unprivileged (PTCD_ESCAPE_UNPRIVILEGED): no tmpfs; the daemon measures the
        # scratch dir and ends the run instead.
        r = sb.run(body, limits={"timeout_ms": 20000})
        assert r["status"] == "limit_exceeded", r
        assert "more than scratch_mb = 256" in r["error"]["message"], r
        return
    assert sb.scratch_mode() == "tmpfs"
    assert sb.attempt(body, limits={"timeout_ms": 20000}) == "DENIED OSError ENOSPC"


def test_inode_flood_gets_enospc(sb):
    # The tmpfs has nr_inodes = 100001: the next file cannot be created.
    body = "for i in range(200000):\n        open(f'f{i}', 'w').close()"
    if sb.scratch_mode() == "measured":
        # Differs unprivileged: the measured scratch dir ends the run past 100,000 entries.
        r = sb.run("for i in range(200000):\n    open(f'f{i}', 'w').close()",
                   limits={"timeout_ms": 20000})
        assert r["status"] == "limit_exceeded", r
        assert "more than 100000 files and directories" in r["error"]["message"], r
        return
    assert sb.scratch_mode() == "tmpfs"
    assert sb.attempt(body, limits={"timeout_ms": 20000}) == "DENIED OSError ENOSPC"


def test_cpu_loop_hits_the_cpu_limit(sb):
    r = sb.run("while True:\n    pass", limits={"cpu_ms": 1000, "timeout_ms": 20000})
    assert r["status"] == "limit_exceeded", r
    assert "cpu_ms" in r["error"]["message"]


def test_cpu_loop_that_ignores_signals_is_killed(sb):
    code = """
    import signal
    for s in (signal.SIGXCPU, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    while True:
        pass
    """
    r = sb.run(code, limits={"cpu_ms": 1000, "timeout_ms": 20000})
    # SIGXCPU is ignored, so the hard CPU limit (one second later) kills it with SIGKILL; the
    # daemon reads the child's CPU time before reaping it and reports the limit, not a crash.
    assert r["status"] == "limit_exceeded", r
    assert "cpu_ms = 1000" in r["error"]["message"], r


def test_sleep_hits_the_wall_clock_timeout(sb):
    r = sb.run("import time; time.sleep(60)", limits={"timeout_ms": 1000})
    assert r["status"] == "timeout", r
    assert "timeout_ms = 1000" in r["error"]["message"], r


def test_sigstop_on_itself_hits_the_timeout(sb):
    r = sb.run("import os, signal; os.kill(os.getpid(), signal.SIGSTOP)", limits={"timeout_ms": 1000})
    assert r["status"] == "timeout", r


def test_output_flood_is_truncated(sb):
    code = """
    import sys
    line = 'x' * 1023 + '\\n'
    for _ in range(20000):
        sys.stdout.write(line)
    """
    r = sb.run(code, limits={"max_output_bytes": 10000})
    assert r["status"] == "ok", r
    assert r["truncated"]["stdout"] > 20_000_000 - 20_000
    assert len(r["stdout"]) < 11000


def test_segfault_is_reported_as_a_crash(sb):
    r = sb.run("import ctypes; ctypes.string_at(0)")
    assert r["status"] == "crashed", r
    assert "SIGSEGV" in r["error"]["message"]


def test_infinite_recursion_is_a_python_error(sb):
    assert sb.attempt("def f(): return f()\nf()") == "DENIED RecursionError -"
