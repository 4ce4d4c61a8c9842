"""Kernel attack surface: denied by seccomp with EPERM; syscalls outside the allowlist (newer
kernels' additions) answer ENOSYS; foreign syscall ABIs kill the process."""

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
    "quotactl_fd": (443, (0, 0, 0, 0)),
    "open_tree_attr": (467, (-100, 0, 0, 0, 0)),
    "statmount": (457, (0, 0, 0, 0)),
    "listmount": (458, (0, 0, 0, 0)),
    "inotify_init": (253, ()),
    "inotify_init1": (294, (0,)),
    "inotify_add_watch": (254, (-1, 0, 0)),
    "fanotify_init": (300, (0, 0)),
    "fanotify_mark": (301, (-1, 0, 0, -100, 0)),
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


SIOCGIFCONF, SIOCGIFHWADDR, SIOCGIFADDR, SIOCGIFINDEX = 0x8912, 0x8927, 0x8915, 0x8933

IOCTL_SETUP = """
import array, fcntl, socket, struct
def ifconf(fd):
    buf = array.array('B', bytes(4096))
    return fcntl.ioctl(fd, 0x8912, struct.pack('iL', len(buf), buf.buffer_info()[0]))
def ifreq(fd, request, name=b'lo'):
    return fcntl.ioctl(fd, request, struct.pack('16s24x', name))
"""


@pytest.mark.parametrize("fd", ["3", "socket.socketpair()[0].fileno()", "0", "1"],
                         ids=["control_fd", "socketpair", "stdin", "stdout"])
def test_blocks_listing_host_interfaces_through_socket_ioctls(sb, fd):
    # SIOCGIFCONF through the inherited control socket (or any socket) listed the host's
    # interfaces; the run sees EPERM on any fd, the daemon keeps serving.
    assert sb.attempt(f"ifconf({fd})", setup=IOCTL_SETUP) == "DENIED PermissionError EPERM"


@pytest.mark.parametrize("request_", [SIOCGIFHWADDR, SIOCGIFADDR, SIOCGIFINDEX],
                         ids=["SIOCGIFHWADDR", "SIOCGIFADDR", "SIOCGIFINDEX"])
def test_blocks_reading_host_mac_and_addresses_through_the_control_socket(sb, request_):
    assert sb.attempt(f"ifreq(3, {request_})", setup=IOCTL_SETUP) == "DENIED PermissionError EPERM"


def test_blocks_ioctl_requests_with_high_bits_set(sb):
    # The kernel takes a 32-bit request: the high half must not smuggle SIOCGIFCONF past.
    body = "raw_syscall(16, 3, (1 << 32) | 0x8912, 0)"
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


def test_blocks_listing_the_host_mount_table(sb):
    # listmount(LSMT_ROOT) returned the ids of every mount of the host's namespace.
    body = """
    import struct
    req = _ct.create_string_buffer(struct.pack('IIQQQ', 32, 0, 0xFFFFFFFFFFFFFFFF, 0, 0))
    ids = (_ct.c_uint64 * 64)()
    raw_syscall(458, _ct.addressof(req), _ct.addressof(ids), 64, 0)
    """
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


def test_blocks_inotify_watching_unlistable_directories(sb):
    # inotify on /tmp (watchable, not listable under Landlock) revealed new file names.
    body = "fd = raw_syscall(294, 0); raw_syscall(254, fd, _ct.addressof(_ct.create_string_buffer(b'/tmp')), 0x100)"
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


@pytest.mark.parametrize("mode", ["0o4755", "0o2755"])
@pytest.mark.parametrize("how", [
    "os.open('f', os.O_CREAT | os.O_WRONLY, {mode})",
    "os.open('.', os.O_TMPFILE | os.O_WRONLY, {mode})",
    "raw_syscall(2, _ct.addressof(_ct.create_string_buffer(b'f')), 0o101, {mode})",  # open
    "raw_syscall(257, -100, _ct.addressof(_ct.create_string_buffer(b'f')), 0o101, {mode})",  # openat
    "raw_syscall(85, _ct.addressof(_ct.create_string_buffer(b'f')), {mode})",  # creat
])
def test_blocks_creating_setuid_files(sb, how, mode):
    # chmod refused the setuid/setgid bits, but open(O_CREAT) applied them as given.
    body = "import os\n" + how.format(mode=mode) + "\nprint('mode', oct(os.stat('f').st_mode))"
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


def test_mkdir_drops_setgid_bits_itself(sb):
    # No filter rule needed: the kernel strips S_ISUID/S_ISGID from mkdir's mode.
    r = sb.run("import os; os.mkdir('d', 0o6755); oct(os.stat('d').st_mode)")
    assert r["status"] == "ok" and r["value"] == "0o40755", r


def test_openat2_answers_enosys_so_callers_fall_back_to_openat(sb):
    # openat2 keeps its mode in a struct seccomp cannot read.
    body = """
    import struct
    how = _ct.create_string_buffer(struct.pack('QQQ', 0o101, 0o4755, 0))
    raw_syscall(437, -100, _ct.addressof(_ct.create_string_buffer(b'f')), _ct.addressof(how), 24)
    """
    assert sb.attempt(body) == "DENIED OSError ENOSYS"


@pytest.mark.parametrize("body", [
    "a, b = socket.socketpair(); a.send(b'x', socket.MSG_OOB)",
    "a, b = socket.socketpair(); a.sendmsg([b'x'], [], socket.MSG_OOB)",
    "a, b = socket.socketpair(); a.send(b'x'); b.recv(1, socket.MSG_OOB | socket.MSG_PEEK)",
    "socket.socket(fileno=os.dup(3)).send(b'x', socket.MSG_OOB)",
])
def test_blocks_msg_oob_on_unix_stream_sockets(sb, body):
    # The CVE-2025-38236 class: out-of-band data on AF_UNIX stream sockets.
    assert sb.attempt("import os, socket; " + body) == "DENIED PermissionError EPERM"


def test_blocks_getting_a_pidfd_of_the_daemon_through_the_control_socket(sb):
    # getsockopt(SO_PEERPIDFD) on fd 3 returned a pidfd of the root daemon.
    body = "import os, socket; socket.socket(fileno=os.dup(3)).getsockopt(socket.SOL_SOCKET, 77)"
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


def test_blocks_ioctls_on_pidfds_and_files(sb):
    # PIDFD_GET_INFO on a thread's own pidfd would work; file and device ioctls are not needed.
    assert sb.attempt("import fcntl; fcntl.ioctl(open('x', 'w'), 0x80086601, bytes(8))") == \
        "DENIED PermissionError EPERM"  # FS_IOC_GETFLAGS


BPF_PROGRAM = """
import socket, struct
ret_all = _ct.create_string_buffer(struct.pack('HBBI', 0x06, 0, 0, 0x7FFF0000))  # RET ALLOW
prog = struct.pack('HxxxxxxQ', 1, _ct.addressof(ret_all))                        # sock_fprog
fprog = _ct.create_string_buffer(prog, len(prog))
"""


def test_blocks_attaching_classic_bpf_socket_filters(sb):
    # A socket filter reaches the kernel's BPF translator and JIT without the bpf() syscall.
    body = "socket.socketpair()[0].setsockopt(socket.SOL_SOCKET, 26, prog)  # SO_ATTACH_FILTER"
    assert sb.attempt(body, setup=BPF_PROGRAM) == "DENIED PermissionError EPERM"


def test_blocks_installing_more_seccomp_filters_from_the_script(sb):
    # The same BPF surface through prctl(PR_SET_SECCOMP), closed by the shim's late filter.
    body = "raw_syscall(157, 22, 2, _ct.addressof(fprog))  # prctl(PR_SET_SECCOMP, MODE_FILTER)"
    assert sb.attempt(body, setup=BPF_PROGRAM) == "DENIED PermissionError EPERM"


@pytest.mark.parametrize("nr", [470, 471, 511, 1000])
def test_syscalls_newer_than_the_allowlist_answer_enosys(sb, nr):
    assert sb.attempt(f"raw_syscall({nr}, 0, 0, 0)") == "DENIED OSError ENOSYS"


@pytest.mark.parametrize("name,nr,args", [
    ("cachestat", 451, (0, 0, 0, 0)),
    ("lsm_list_modules", 461, (0, 0, 0)),
    ("io_setup", 206, (1, 0)),
    ("pidfd_send_signal", 424, (-1, 0, 0, 0)),
    ("sync", 162, ()),
    ("mincore", 27, (0, 4096, 0)),
])
def test_reviewed_unneeded_syscalls_answer_enosys(sb, name, nr, args):
    assert sb.attempt(f"raw_syscall({nr}, *{args!r})") == "DENIED OSError ENOSYS", name


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
