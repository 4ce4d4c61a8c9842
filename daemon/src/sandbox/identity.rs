//! Per-run unprivileged identities: when the daemon runs as root, each child gets a uid/gid of
//! its own from the policy's range (no passwd entry needed), held until nothing of it is left.
//!
//! A uid per concurrent run means `RLIMIT_NPROC` counts only that run's threads, runs cannot
//! signal or ptrace each other, and files one run leaves behind are not another run's.
//!
//! Leases are host-wide, not per process: two daemons on one host must never hand out the same
//! uid. A lease is an `flock(LOCK_EX|LOCK_NB)` on `<uid>.lock` in [`LEASE_DIR`] (root-owned,
//! 0700, opened without following a symlink and checked on the fd), held on an open fd for the
//! lease's life; the kernel drops it if the daemon dies. Lock files are never unlinked (an unlink
//! would let two holders lock two different inodes under one name); there is at most one per uid
//! of the policies' ranges.
//!
//! The lease is an `Arc`: the run's plan (and so its child), its scratch dir and, for a
//! persistent session, the session each hold a clone, so the uid returns to the pool only when
//! the child is reaped and the scratch dir unmounted or removed.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::policy::Policy;

/// Where the host-wide uid leases live (shared by every daemon on the host).
pub const LEASE_DIR: &str = "/run/ptcd-uid-leases";

/// A uid held host-wide; returned when the last clone is dropped (its lock fd closes).
#[derive(Debug)]
pub struct UidLease {
    pub uid: u32,
    _lock: OwnedFd,
}

impl PartialEq for UidLease {
    fn eq(&self, other: &Self) -> bool {
        self.uid == other.uid
    }
}

/// A run's identity, decided before its scratch dir and plan exist (an injected fact for the
/// pure `plan::build`).
#[derive(Debug, Clone, PartialEq)]
pub enum Leased {
    /// The daemon does not switch uids (not root, or the policy has no identity).
    Unswitched,
    Uid(Arc<UidLease>),
    /// Every uid of the range is held (by this or another daemon), or leasing failed.
    Refused(String),
}

impl Leased {
    pub fn lease(&self) -> Option<&Arc<UidLease>> {
        match self {
            Leased::Uid(l) => Some(l),
            _ => None,
        }
    }
}

/// Why the lease directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LeaseDirError {
    #[error("uid lease dir {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("uid lease dir {path}: {problem}; refusing to use it")]
    Unsafe { path: String, problem: String },
}

/// The open lease directory.
#[derive(Debug)]
pub struct LeaseDir {
    dir: OwnedFd,
}

impl LeaseDir {
    /// Creates `path` (mode 0700) if missing and opens it; refuses a symlink, a directory not
    /// owned by the daemon's euid, or one others may write or list.
    pub fn open(path: &Path) -> Result<LeaseDir, LeaseDirError> {
        let io_err = |source| LeaseDirError::Io {
            path: path.display().to_string(),
            source,
        };
        let c = crate::scratch::tree::cpath(path).map_err(io_err)?;
        // SAFETY: c is NUL-terminated.
        if unsafe { libc::mkdir(c.as_ptr(), 0o700) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(io_err(e));
            }
        }
        let dir = crate::scratch::tree::open_dir(path).map_err(io_err)?;
        crate::scratch::verify_private_dir(&dir, 0o077).map_err(|problem| {
            LeaseDirError::Unsafe {
                path: path.display().to_string(),
                problem,
            }
        })?;
        Ok(LeaseDir { dir })
    }

    /// Takes the lowest uid in `first..=last` no process on the host holds.
    pub fn lease(&self, first: u32, last: u32) -> io::Result<Option<UidLease>> {
        for uid in first..=last {
            let name = CString::new(format!("{uid}.lock")).map_err(io::Error::other)?;
            // SAFETY: name is NUL-terminated; the fd is owned below.
            let fd = unsafe {
                libc::openat(
                    self.dir.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    0o600,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: fd was just opened and is ours.
            let lock = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: flock on our fd.
            if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(Some(UidLease { uid, _lock: lock }));
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(e);
            }
        }
        Ok(None)
    }
}

/// The host's lease directory, opened (and checked) once.
pub fn host_leases() -> Result<&'static LeaseDir, String> {
    static DIR: OnceLock<Result<LeaseDir, String>> = OnceLock::new();
    DIR.get_or_init(|| LeaseDir::open(Path::new(LEASE_DIR)).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// The identity a child of `policy` runs as: a fresh host-wide lease when the daemon is root
/// and the policy asks for per-run uids.
pub fn for_policy(policy: &Policy) -> Leased {
    let Some((first, last)) = policy.identity else {
        return Leased::Unswitched;
    };
    if !daemon_is_root() {
        return Leased::Unswitched;
    }
    let dir = match host_leases() {
        Ok(dir) => dir,
        Err(e) => return Leased::Refused(e),
    };
    match dir.lease(first, last) {
        Ok(Some(lease)) => Leased::Uid(Arc::new(lease)),
        Ok(None) => Leased::Refused(format!(
            "every uid in {first}-{last} is in use by another run (of this or another daemon on this host)"
        )),
        Err(e) => Leased::Refused(format!("cannot lease a uid in {first}-{last}: {e}")),
    }
}

/// Whether the daemon can switch the child to another uid.
pub fn daemon_is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_exclusive_across_opens_and_returned_on_drop() {
        let path = std::env::temp_dir().join(format!("ptcd-leases-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        // Two independent opens stand for two daemons: flock conflicts between them.
        let one = LeaseDir::open(&path).expect("open");
        let two = LeaseDir::open(&path).expect("open again");
        let a = one.lease(4_000_000_000, 4_000_000_001).unwrap().unwrap();
        let b = two.lease(4_000_000_000, 4_000_000_001).unwrap().unwrap();
        assert_ne!(a.uid, b.uid);
        assert!(one.lease(4_000_000_000, 4_000_000_001).unwrap().is_none());
        let freed = a.uid;
        drop(a);
        assert_eq!(
            two.lease(4_000_000_000, 4_000_000_001)
                .unwrap()
                .unwrap()
                .uid,
            freed
        );
        let _ = std::fs::remove_dir_all(&path);
    }

    #[test]
    fn a_symlinked_or_open_lease_dir_is_refused() {
        let base = std::env::temp_dir().join(format!("ptcd-leases-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("real")).expect("mkdir");
        std::os::unix::fs::symlink(base.join("real"), base.join("link")).expect("symlink");
        assert!(LeaseDir::open(&base.join("link")).is_err());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(base.join("real"), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let err = LeaseDir::open(&base.join("real")).expect_err("world-writable");
        assert!(err.to_string().contains("refusing"), "{err}");
        let _ = std::fs::remove_dir_all(&base);
    }
}
