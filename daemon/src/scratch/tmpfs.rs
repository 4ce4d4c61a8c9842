//! The tmpfs side of scratch dirs: mounting one capped tmpfs per scratch dir, finding out at
//! start-up whether this daemon may mount at all, and the daemon's own mount namespace.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::{cvt, tree, Mode, MAX_SCRATCH_ENTRIES};

/// Mounts a tmpfs of `size_mb` MiB and `MAX_SCRATCH_ENTRIES + 1` inodes on `target`, its root
/// dir mode 0700 and owned by `uid`/`gid`.
pub(super) fn mount_tmpfs(target: &CStr, size_mb: u64, uid: u32, gid: u32) -> io::Result<()> {
    let options = CString::new(format!(
        "size={size_mb}m,nr_inodes={},mode=0700,uid={uid},gid={gid}",
        MAX_SCRATCH_ENTRIES + 1
    ))
    .map_err(io::Error::other)?;
    // SAFETY: NUL-terminated strings; the data argument is the option string tmpfs parses.
    cvt(unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            // Not MS_NOEXEC: under MemoryDenyWriteExecute (the unit's PR_SET_MDWE) libffi makes
            // ctypes callbacks by mapping a temp file in TMPDIR (the scratch dir) executable;
            // noexec turned that into MemoryError. Executing a scratch file stays impossible:
            // Landlock grants execute on the interpreter only and the late seccomp filter
            // denies execve.
            libc::MS_NOSUID | libc::MS_NODEV,
            options.as_ptr().cast(),
        )
    })
}

/// What [`enter_private_mount_namespace`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// The daemon now has a mount namespace of its own (host mounts still propagate in).
    Private,
    /// Not permitted (unprivileged, or no CAP_SYS_ADMIN): scratch dirs will be measured anyway.
    Shared,
}

/// Moves the daemon into a mount namespace of its own, before any thread exists (a
/// multi-threaded process may not unshare it). Its scratch tmpfs mounts (and its children, which
/// inherit the namespace) then live only there: they never appear in the host's mount table, and
/// when the daemon dies (even by `kill -9`) and its children with it, the kernel frees the
/// namespace and every tmpfs in it; what is left are empty mount-point dirs that the next
/// start-up reclaims. `/` is made a recursive slave: host mounts still propagate in, ours never
/// out. Under systemd, `PrivateMounts=yes` has already done the same.
pub fn enter_private_mount_namespace() -> Namespace {
    // SAFETY: unshare and mount with constant arguments; called while single-threaded.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Namespace::Shared;
        }
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_SLAVE,
            std::ptr::null(),
        ) != 0
        {
            // Still private enough to be safe (mounts may propagate out): say so in the log.
            return Namespace::Shared;
        }
    }
    Namespace::Private
}

/// The mode a daemon started like this process would use (for `ptcd doctor`): tries to mount
/// a tmpfs on a fresh private dir under `$TMPDIR`.
pub fn probe_mode() -> Mode {
    let dir = std::env::temp_dir().join(format!("ptcd-doctor-{}", std::process::id()));
    if std::fs::create_dir(&dir).is_err() {
        return Mode::Measured;
    }
    let mode = match tree::open_dir(&dir) {
        Ok(fd) => probe_tmpfs(&fd, "probe"),
        Err(_) => Mode::Measured,
    };
    let _ = std::fs::remove_dir(&dir);
    mode
}

/// Whether this daemon may mount a tmpfs in the root: tries once, on a probe dir.
pub(super) fn probe_tmpfs(dir: &OwnedFd, tag: &str) -> Mode {
    let Ok(name) = CString::new(format!("{tag}-probe")) else {
        return Mode::Measured;
    };
    // SAFETY: NUL-terminated names.
    if cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o700) }).is_err() {
        return Mode::Measured;
    }
    let Ok(target) = CString::new(format!(
        "/proc/self/fd/{}/{}",
        dir.as_raw_fd(),
        name.to_string_lossy()
    )) else {
        return Mode::Measured;
    };
    let mode = match mount_tmpfs(&target, 1, 0, 0) {
        Ok(()) => {
            // SAFETY: as above.
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
            Mode::Tmpfs
        }
        Err(e) => {
            tracing::info!(error = %e, "cannot mount a tmpfs; scratch dirs are measured instead");
            Mode::Measured
        }
    };
    // SAFETY: as above.
    unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) };
    mode
}
