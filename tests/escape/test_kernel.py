"""Kernel attack surface: denied by seccomp with EPERM; foreign syscall ABIs kill the process."""

import pytest

DENIED_SYSCALLS = {
    # name: (number on x86_64, arguments)
    "io_uring_setup": (425, (8, 0)),
    "bpf": (321, (5, 0, 0)),
    "keyctl": (250, (0, 0)),
    "add_key": (248, (0, 0, 0, 0, -3)),
    "userfaultfd": (323, (0,)),
    "perf_event_open": (298, (0, 0, -1, -1, 0)),
    "mount": (165, (0, 0, 0, 0, 0)),
    "umount2": (166, (0, 0)),
    "init_module": (175, (0, 0, 0)),
    "finit_module": (313, (0, 0, 0)),
    "delete_module": (176, (0, 0)),
    "kexec_load": (246, (0, 0, 0, 0)),
    "reboot": (169, (0xFEE1DEAD, 672274793, 0x4321FEDC, 0)),
    "clock_settime": (227, (0, 0)),
    "settimeofday": (164, (0, 0)),
    "sethostname": (170, (0, 0)),
    "swapon": (167, (0, 0)),
    "open_by_handle_at": (304, (-100, 0, 0)),
    "modify_ldt": (154, (1, 0, 0)),
    "shmget": (29, (0, 4096, 0o1600)),
}


@pytest.mark.parametrize("name", sorted(DENIED_SYSCALLS))
def test_blocks_kernel_attack_surface_syscall(sb, name):
    nr, args = DENIED_SYSCALLS[name]
    assert sb.attempt(f"raw_syscall({nr}, *{args!r})") == "DENIED PermissionError EPERM", name


def test_blocks_setting_the_clock(sb):
    assert sb.attempt("import time; time.clock_settime(time.CLOCK_REALTIME, 0)") == \
        "DENIED PermissionError EPERM"


def test_blocks_setting_the_hostname(sb):
    assert sb.attempt("import socket; socket.sethostname('pwned')") == "DENIED PermissionError EPERM"


def test_blocks_personality_changes_but_allows_queries(sb):
    assert sb.attempt("raw_syscall(135, 0x0008)") == "DENIED PermissionError EPERM"  # PER_LINUX32
    assert sb.attempt("raw_syscall(135, 0xffffffff)") == "ALLOWED"


def test_blocks_tiocsti_terminal_injection(sb):
    body = "import fcntl, termios; fcntl.ioctl(0, termios.TIOCSTI, b'x')"
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


def test_kills_x32_syscalls(sb):
    r = sb.run(SYSCALL_PREFIX + "raw_syscall(0x40000000 | 39)\nprint('survived')")
    assert r["status"] == "crashed", r
    assert "SIGSYS" in r["error"]["message"]
    assert "survived" not in r["stdout"]


def test_kills_int_0x80_i386_syscalls(sb):
    code = """
    import ctypes, mmap
    # mov eax, 20 (i386 getpid); int 0x80; ret
    page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(b"\\xb8\\x14\\x00\\x00\\x00\\xcd\\x80\\xc3")
    addr = ctypes.addressof(ctypes.c_char.from_buffer(page))
    ctypes.CFUNCTYPE(ctypes.c_int)(addr)()
    print('survived')
    """
    r = sb.run(code)
    assert r["status"] == "crashed", r
    assert "SIGSYS" in r["error"]["message"]
    assert "survived" not in r["stdout"]


SYSCALL_PREFIX = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def raw_syscall(nr, *args):
    return libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
"""
