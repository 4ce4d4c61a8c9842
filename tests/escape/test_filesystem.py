"""Filesystem escapes: Landlock allows reading the interpreter and stdlib, writing the scratch dir
only; the unprivileged per-run uid stops metadata changes Landlock does not cover."""

import pytest

from conftest import landlock_abi_in_use

STDLIB_FILE = "/usr/lib/python3.11/os.py"


def test_blocks_reading_etc_shadow(sb):
    assert sb.attempt("open('/etc/shadow').read()") == "DENIED PermissionError EACCES"


def test_blocks_reading_etc_passwd(sb):
    assert sb.attempt("open('/etc/passwd').read()") == "DENIED PermissionError EACCES"


def test_blocks_reading_root_ssh_keys(sb):
    assert sb.attempt("open('/root/.ssh/id_rsa').read()") == "DENIED PermissionError EACCES"


def test_blocks_listing_home_dirs(sb):
    assert sb.attempt("import os; os.listdir('/root')") == "DENIED PermissionError EACCES"
    assert sb.attempt("import os; os.listdir('/home')") == "DENIED PermissionError EACCES"


def test_blocks_proc_pid_environ_of_init(sb):
    assert sb.attempt("open('/proc/1/environ').read()") == "DENIED PermissionError EACCES"


# Made on the daemon's real pid and on `os.getppid()` (the fork-server template of a forked run,
# the daemon of a cold one): both denied.
@pytest.mark.parametrize("target", ["daemon", "parent"])
def test_blocks_proc_environ_of_the_daemon(sb, target):
    pid = sb.daemon.pid if target == "daemon" else "{os.getppid()}"
    body = f"import os; open(f'/proc/{pid}/environ').read()"
    assert sb.attempt(body) == "DENIED PermissionError EACCES"


@pytest.mark.parametrize("target", ["daemon", "parent"])
def test_blocks_proc_mem_of_the_daemon(sb, target):
    pid = sb.daemon.pid if target == "daemon" else "{os.getppid()}"
    body = f"import os; open(f'/proc/{pid}/mem', 'rb').read(1)"
    assert sb.attempt(body) == "DENIED PermissionError EACCES"


def test_blocks_reading_sys(sb):
    assert sb.attempt("import os; os.listdir('/sys/class/net')") == "DENIED PermissionError EACCES"


def test_blocks_writing_dev_shm(sb):
    assert sb.attempt("open('/dev/shm/ptcd-escape', 'w')") == "DENIED PermissionError EACCES"


def test_blocks_writing_and_listing_tmp(sb):
    assert sb.attempt("open('/tmp/ptcd-escape', 'w')") == "DENIED PermissionError EACCES"
    assert sb.attempt("import os; os.listdir('/tmp')") == "DENIED PermissionError EACCES"


def test_blocks_writing_the_stdlib(sb):
    assert sb.attempt(f"open('{STDLIB_FILE}', 'a').write('#')") == "DENIED PermissionError EACCES"


def test_blocks_truncate_outside_scratch(sb):
    # Below Landlock ABI 3 (no truncate right) the compensating seccomp rule answers first: EPERM.
    expected = "EACCES" if landlock_abi_in_use() >= 3 else "EPERM"
    assert sb.attempt(f"import os; os.truncate('{STDLIB_FILE}', 0)") == f"DENIED PermissionError {expected}"


def test_blocks_unlink_outside_scratch(sb):
    assert sb.attempt(f"import os; os.unlink('{STDLIB_FILE}')") == "DENIED PermissionError EACCES"


def test_blocks_rename_outside_scratch(sb):
    body = f"import os; os.rename('{STDLIB_FILE}', '/usr/lib/python3.11/os_moved.py')"
    assert sb.attempt(body) == "DENIED PermissionError EACCES"


def test_blocks_moving_a_file_out_into_scratch(sb):
    body = f"import os; os.rename('{STDLIB_FILE}', 'os.py')"
    # A tmpfs scratch dir is another filesystem: the kernel refuses the rename before Landlock
    # is asked. A plain scratch dir (measured mode): Landlock refuses it.
    expected = "DENIED OSError EXDEV" if sb.scratch_mode() == "tmpfs" else "DENIED PermissionError EACCES"
    assert sb.attempt(body) == expected


def test_blocks_mkdir_outside_scratch(sb):
    assert sb.attempt("import os; os.mkdir('/usr/lib/python3.11/evil')") == "DENIED PermissionError EACCES"


def test_blocks_chmod_outside_scratch(sb):
    assert sb.attempt(f"import os; os.chmod('{STDLIB_FILE}', 0o777)") == "DENIED PermissionError EPERM"


def test_blocks_chown_outside_scratch(sb):
    assert sb.attempt(f"import os; os.chown('{STDLIB_FILE}', os.getuid(), os.getgid())") == \
        "DENIED PermissionError EPERM"


def test_blocks_utime_outside_scratch(sb):
    assert sb.attempt(f"import os; os.utime('{STDLIB_FILE}', (0, 0))") == "DENIED PermissionError EPERM"


def test_blocks_symlink_escape(sb):
    body = """
    import os
    os.symlink('/etc/shadow', 'shadow-link')
    open('shadow-link').read()
    """
    assert sb.attempt(body) == "DENIED PermissionError EACCES"


def test_blocks_symlinked_directory_escape(sb):
    body = """
    import os
    os.symlink('/root', 'root-link')
    os.listdir('root-link')
    """
    assert sb.attempt(body) == "DENIED PermissionError EACCES"


def test_blocks_hard_link_escape(sb):
    # As above: EXDEV on a tmpfs scratch dir, Landlock's EPERM on a plain one.
    expected = "DENIED OSError EXDEV" if sb.scratch_mode() == "tmpfs" else "DENIED PermissionError EPERM"
    assert sb.attempt("import os; os.link('/etc/passwd', 'passwd-link')") == expected


def test_blocks_setuid_bit_in_scratch(sb):
    body = """
    import os
    open('suid', 'w').close()
    os.chmod('suid', 0o4755)
    """
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


def test_blocks_setgid_bit_in_scratch(sb):
    body = """
    import os
    open('sgid', 'w').close()
    os.chmod('sgid', 0o2755)
    """
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


def test_blocks_creating_device_files(sb):
    body = "import os, stat; os.mknod('null2', 0o666 | stat.S_IFCHR, os.makedev(1, 3))"
    assert sb.attempt(body) == "DENIED PermissionError EPERM"


def test_blocks_opening_raw_devices(sb):
    assert sb.attempt("open('/dev/zero', 'rb').read(1)") == "DENIED PermissionError EACCES"


def test_blocks_o_path_dirfd_escape(sb):
    body = """
    import os
    d = os.open('/etc', os.O_PATH | os.O_DIRECTORY)   # O_PATH itself is harmless
    os.open('shadow', os.O_RDONLY, dir_fd=d)
    """
    assert sb.attempt(body) == "DENIED PermissionError EACCES"


def test_blocks_o_path_reopen_through_proc(sb):
    body = """
    import os
    fd = os.open('/etc/passwd', os.O_PATH)
    open(f'/proc/self/fd/{fd}').read()
    """
    assert sb.attempt(body) == "DENIED PermissionError EACCES"


def test_blocks_listing_other_runs_scratch_dirs(sb):
    assert sb.attempt("import os; os.listdir('..')") == "DENIED PermissionError EACCES"


def test_blocks_writing_stdlib_bytecode_cache(sb):
    body = "open('/usr/lib/python3.11/__pycache__/evil.cpython-311.pyc', 'wb')"
    assert sb.attempt(body) == "DENIED PermissionError EACCES"


def test_blocks_reading_site_packages_on_default_policy(sb):
    assert sb.attempt("import os; os.listdir('/usr/lib/python3/dist-packages')") == \
        "DENIED PermissionError EACCES"
