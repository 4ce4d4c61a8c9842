//! Directories the daemon puts files in, checked so that another local user cannot steer it.
//!
//! A default path such as `/tmp/ptcd-$UID/` lies in a world-writable directory: another user can
//! create it first, as a symlink to a directory of their choice or as a directory they own (and
//! then delete or replace what the daemon puts there). So a directory is:
//! - created with mode 0700 when missing (never chmod-ed afterwards through its path);
//! - opened with `O_NOFOLLOW | O_DIRECTORY` (a symlink in its last component is refused);
//! - checked on the opened fd (`fstat`), not on the path: owned by the daemon's euid or by root,
//!   and not writable by group or others unless sticky (like `/tmp` itself, where others cannot
//!   remove or rename what the daemon created).
//!
//! Anything else is refused with an error naming the path and the problem. Used for the socket's
//! directory (`server.rs`); general enough for any directory the daemon writes into.

use std::io::ErrorKind;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SecureDirError {
    #[error("{0}: is a symbolic link; refusing to use it (another user may have created it)")]
    Symlink(PathBuf),
    #[error("{0}: is not a directory")]
    NotADirectory(PathBuf),
    #[error(
        "{path}: is owned by uid {owner}, not by this daemon's uid {euid} or root; refusing to \
         use it (another user may have created it)"
    )]
    Owner {
        path: PathBuf,
        owner: u32,
        euid: u32,
    },
    #[error(
        "{path}: mode {mode:04o} lets group or others write and is not sticky; refusing to use it"
    )]
    Writable { path: PathBuf, mode: u32 },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Makes sure `path` is a directory only the daemon (or root) controls; creates it (and missing
/// parents) with mode 0700 if absent. Returns the opened, verified directory.
pub fn ensure_dir(path: &Path) -> Result<OwnedFd, SecureDirError> {
    let io = |source| SecureDirError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
    {
        Ok(()) => {}
        // `recursive` reports an existing non-directory (or a dangling symlink) as an error;
        // opening below names the problem precisely.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => {
            if std::fs::symlink_metadata(path).is_err() {
                return Err(io(e));
            }
        }
    }
    let dir = open_nofollow(path)?;
    verify(path, &dir)?;
    Ok(dir)
}

fn open_nofollow(path: &Path) -> Result<OwnedFd, SecureDirError> {
    let c =
        std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| SecureDirError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(ErrorKind::InvalidInput, "NUL byte in path"),
        })?;
    // SAFETY: a valid C string and flags; the result is checked.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ELOOP) => SecureDirError::Symlink(path.to_path_buf()),
            Some(libc::ENOTDIR) => match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_symlink() => SecureDirError::Symlink(path.to_path_buf()),
                _ => SecureDirError::NotADirectory(path.to_path_buf()),
            },
            // Cannot even open it: say who owns it when that is the reason.
            _ => match std::fs::symlink_metadata(path) {
                Ok(m) if owner_mismatch(m.uid()).is_some() => SecureDirError::Owner {
                    path: path.to_path_buf(),
                    owner: m.uid(),
                    euid: euid(),
                },
                _ => SecureDirError::Io {
                    path: path.to_path_buf(),
                    source: e,
                },
            },
        });
    }
    // SAFETY: open returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// `Some(euid)` when `owner` is neither the daemon's euid nor root.
fn owner_mismatch(owner: u32) -> Option<u32> {
    let euid = euid();
    (owner != euid && owner != 0).then_some(euid)
}

/// Owner and mode checks on the opened directory.
fn verify(path: &Path, dir: &OwnedFd) -> Result<(), SecureDirError> {
    // SAFETY: fstat fills a zeroed stat for a valid fd.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(dir.as_raw_fd(), &mut st) } != 0 {
        return Err(SecureDirError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::last_os_error(),
        });
    }
    if let Some(euid) = owner_mismatch(st.st_uid) {
        return Err(SecureDirError::Owner {
            path: path.to_path_buf(),
            owner: st.st_uid,
            euid,
        });
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o022 != 0 && mode & libc::S_ISVTX == 0 {
        return Err(SecureDirError::Writable {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ptcd-secure-dir-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&dir);
        dir
    }

    #[test]
    fn missing_dir_is_created_private() {
        let dir = tmp("new");
        ensure_dir(&dir.join("sub")).expect("created");
        let mode = std::fs::metadata(dir.join("sub"))
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn symlink_is_refused_and_target_untouched() {
        let target = tmp("target");
        std::fs::create_dir(&target).expect("mkdir");
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let link = tmp("link");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let err = ensure_dir(&link).expect_err("symlink refused");
        assert!(matches!(err, SecureDirError::Symlink(_)), "{err}");
        let mode = std::fs::metadata(&target)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "target not chmod-ed");
        let _ = std::fs::remove_file(&link);
        let _ = std::fs::remove_dir_all(&target);
    }

    #[test]
    fn writable_by_others_without_sticky_bit_is_refused() {
        let dir = tmp("open");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = ensure_dir(&dir).expect_err("refused");
        assert!(err.to_string().contains("0777"), "{err}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        ensure_dir(&dir).expect("sticky like /tmp is fine");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
