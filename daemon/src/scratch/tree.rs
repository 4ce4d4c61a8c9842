//! Walking and removing a tree a child built, without trusting it.
//!
//! Only the fallback mode (no tmpfs: the daemon may not mount) needs these; with a tmpfs the
//! kernel caps the size and cleanup is an unmount. A child may have built anything below its
//! scratch dir: chains of directories 100,000 levels deep, symlinks swapped in while we look,
//! directories it made unreadable, entries that vanish under us. So both functions here:
//! - work relative to open directory fds (`openat`/`fstatat`/`unlinkat` with `O_NOFOLLOW` /
//!   `AT_SYMLINK_NOFOLLOW`): a symlink is never followed, whatever is swapped in;
//! - are iterative: no recursion, so no stack to overflow, and memory does not grow with the
//!   number of entries; no path strings are built per entry;
//! - treat an entry that vanished (`ENOENT`) as gone, not as an error;
//! - never name an entry in an error (the daemon may read dirs the script made unreadable);
//! - are blocking: call them on a blocking thread, never on the async runtime.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

/// Directory levels the measuring walker keeps open at once; a deeper tree is reported as
/// [`Usage::TooDeep`] (each level costs an fd and a small buffer).
pub const MAX_WALK_DEPTH: usize = 256;
/// Bytes of directory entries read at a time, per open level.
const DENTS_BUF: usize = 4096;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Opens `name` in `dir` as a directory, never following a symlink.
pub fn open_dir_at(dir: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: name is NUL-terminated; the returned fd is owned by the OwnedFd.
    let fd = cvt(unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fd was just opened and is ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `path` (its last component never a symlink) as a directory.
pub fn open_dir(path: &std::path::Path) -> io::Result<OwnedFd> {
    let c = cpath(path)?;
    open_dir_at(libc::AT_FDCWD, &c)
}

pub fn cpath(path: &std::path::Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: st is plain data filled by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

fn lstat_at(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: as above; AT_SYMLINK_NOFOLLOW: a symlink is described, not followed.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

fn unlink_at(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: name is NUL-terminated.
    cvt(unsafe { libc::unlinkat(dir, name.as_ptr(), flags) }).map(drop)
}

/// One open directory and the entries read from it but not yet handled.
struct Level {
    fd: OwnedFd,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

/// One directory entry: its name (borrowed from the level's buffer), inode and type.
struct Entry<'a> {
    name: &'a CStr,
    ino: u64,
    kind: u8,
}

impl Level {
    fn new(fd: OwnedFd) -> Level {
        Level {
            fd,
            buf: vec![0; DENTS_BUF],
            pos: 0,
            len: 0,
        }
    }

    /// The next entry other than `.` and `..`, or `None` at the end of the directory.
    fn next(&mut self) -> io::Result<Option<Entry<'_>>> {
        let (start, end, ino, kind) = loop {
            if self.pos >= self.len {
                // SAFETY: getdents64 writes at most buf.len() bytes into buf.
                let n = unsafe {
                    libc::syscall(
                        libc::SYS_getdents64,
                        self.fd.as_raw_fd(),
                        self.buf.as_mut_ptr(),
                        self.buf.len(),
                    )
                };
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                if n == 0 {
                    return Ok(None);
                }
                self.pos = 0;
                self.len = n as usize;
            }
            // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
            let at = self.pos;
            let rec = &self.buf[at..self.len];
            if rec.len() < 19 {
                return Err(io::Error::other("short directory entry"));
            }
            let mut ino = [0u8; 8];
            ino.copy_from_slice(&rec[0..8]);
            let reclen = u16::from_ne_bytes([rec[16], rec[17]]) as usize;
            if reclen < 19 || reclen > rec.len() {
                return Err(io::Error::other("malformed directory entry"));
            }
            let kind = rec[18];
            self.pos = at + reclen;
            let name = &rec[19..reclen];
            let Some(nul) = name.iter().position(|&b| b == 0) else {
                return Err(io::Error::other("unterminated directory entry"));
            };
            if &name[..nul] == b"." || &name[..nul] == b".." {
                continue;
            }
            break (at + 19, at + 19 + nul + 1, u64::from_ne_bytes(ino), kind);
        };
        let name = CStr::from_bytes_with_nul(&self.buf[start..end])
            .map_err(|_| io::Error::other("unterminated directory entry"))?;
        Ok(Some(Entry { name, ino, kind }))
    }
}

/// What a measurement found.
#[derive(Debug, PartialEq, Eq)]
pub enum Usage {
    /// Bytes allocated on disk (sparse files count what they really use).
    Bytes(u64),
    TooManyEntries,
    /// Nested deeper than [`MAX_WALK_DEPTH`].
    TooDeep,
    /// A directory could not be read; the reason names no entry.
    Unreadable(String),
}

fn vanished(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP)
    )
}

/// Measures the disk space used below the directory `dir` (an open fd), stopping after
/// `max_entries` entries. Never follows a symlink; entries that vanish meanwhile are skipped.
pub fn usage(dir: OwnedFd, max_entries: usize) -> Usage {
    let mut bytes = 0u64;
    let mut entries = 0usize;
    let mut stack = vec![Level::new(dir)];
    while let Some(level) = stack.last_mut() {
        let parent = level.fd.as_raw_fd();
        let (name, kind) = match level.next() {
            Ok(Some(e)) => (e.name.to_owned(), e.kind),
            Ok(None) => {
                stack.pop();
                continue;
            }
            Err(e) if vanished(&e) => {
                stack.pop();
                continue;
            }
            Err(e) => return Usage::Unreadable(format!("a directory could not be listed: {e}")),
        };
        entries += 1;
        if entries > max_entries {
            return Usage::TooManyEntries;
        }
        let st = match lstat_at(parent, &name) {
            Ok(st) => st,
            Err(e) if vanished(&e) => continue,
            Err(e) => return Usage::Unreadable(format!("an entry could not be examined: {e}")),
        };
        bytes = bytes.saturating_add((st.st_blocks as u64).saturating_mul(512));
        let is_dir = (st.st_mode & libc::S_IFMT) == libc::S_IFDIR || kind == libc::DT_DIR;
        if !is_dir {
            continue;
        }
        if stack.len() >= MAX_WALK_DEPTH {
            return Usage::TooDeep;
        }
        match open_dir_at(parent, &name) {
            Ok(fd) => stack.push(Level::new(fd)),
            // Replaced by a file or symlink, or removed, since the fstatat: not a dir of ours.
            Err(e) if vanished(&e) => {}
            Err(e) => {
                return Usage::Unreadable(format!("a directory could not be opened: {e}"));
            }
        }
    }
    Usage::Bytes(bytes)
}

/// Why a removal stopped.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the tree changed shape while it was removed (a parent is not where it was)")]
    Moved,
    #[error("gave up after {0} s (left for the next start-up's reclaim)")]
    TimedOut(u64),
}

/// Opens the directory `fd` by path `/proc/self/fd/N` with O_PATH to chmod it: for a daemon
/// that is not root, a child (same uid) may have made a dir unreadable or unwritable.
fn make_accessible(dir: RawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: O_PATH|O_NOFOLLOW never follows a symlink; the fd is ours.
    let fd = cvt(unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: as above.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let proc = std::ffi::CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|_| io::Error::other("fd path"))?;
    // SAFETY: the magic link resolves to exactly the dir opened above.
    cvt(unsafe { libc::chmod(proc.as_ptr(), 0o700) }).map(drop)
}

/// Removes `name` in the directory `parent` and everything below it.
///
/// Memory stays constant whatever the depth: one open directory at a time. Going down is an
/// `openat(O_NOFOLLOW)`; coming back up opens `..`, checks it is on the same filesystem, finds
/// the directory we came from by inode, and removes it. At depth 0 the directory must be the
/// one we started from (device and inode), or the removal stops with [`RemoveError::Moved`].
/// `deadline` bounds the time spent.
pub fn remove_tree(parent: RawFd, name: &CStr, deadline: Instant) -> Result<(), RemoveError> {
    // Something added to the top directory while it was emptied (only a process still running
    // could): start over, bounded by the deadline.
    while !remove_once(parent, name, deadline)? {}
    Ok(())
}

/// One pass of [`remove_tree`]: `Ok(false)` when the top directory was refilled meanwhile.
fn remove_once(parent: RawFd, name: &CStr, deadline: Instant) -> Result<bool, RemoveError> {
    match unlink_at(parent, name, libc::AT_REMOVEDIR) {
        Ok(()) => return Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            return match unlink_at(parent, name, 0) {
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => Err(e.into()),
                _ => Ok(true),
            }
        }
        Err(_) => {}
    }
    let top = match open_dir_at(parent, name) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
            make_accessible(parent, name)?;
            open_dir_at(parent, name)?
        }
        Err(e) => return Err(e.into()),
    };
    let top_st = fstat(top.as_raw_fd())?;
    let started = Instant::now();
    let mut depth: u64 = 0;
    let mut cur = Level::new(top);
    loop {
        if Instant::now() >= deadline {
            return Err(RemoveError::TimedOut(started.elapsed().as_secs()));
        }
        // Empty `cur`: unlink what is not a directory, remove empty directories, and go down
        // into the first directory that is not empty.
        let fd = cur.fd.as_raw_fd();
        let mut down = None;
        while let Some(entry) = cur.next()? {
            let name = entry.name;
            if entry.kind != libc::DT_DIR {
                match unlink_at(fd, name, 0) {
                    Ok(()) => continue,
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                    Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                        // Not root, and the child made this dir unwritable.
                        cvt(unsafe { libc::fchmod(fd, 0o700) })?;
                        unlink_at(fd, name, 0).or_else(|e| {
                            if e.raw_os_error() == Some(libc::ENOENT) {
                                Ok(())
                            } else {
                                Err(e)
                            }
                        })?;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            match unlink_at(fd, name, libc::AT_REMOVEDIR) {
                Ok(()) => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                    let _ = unlink_at(fd, name, 0);
                    continue;
                }
                Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                    cvt(unsafe { libc::fchmod(fd, 0o700) })?;
                }
                Err(_) => {}
            }
            let child = match open_dir_at(fd, name) {
                Ok(child) => child,
                Err(e) if vanished(&e) => continue,
                Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                    make_accessible(fd, name)?;
                    open_dir_at(fd, name)?
                }
                Err(e) => return Err(e.into()),
            };
            if fstat(child.as_raw_fd())?.st_dev != top_st.st_dev {
                return Err(RemoveError::Moved);
            }
            down = Some(child);
            break;
        }
        if let Some(child) = down {
            cur = Level::new(child);
            depth += 1;
            continue;
        }
        // `cur` is empty.
        if depth == 0 {
            let st = fstat(cur.fd.as_raw_fd())?;
            if (st.st_dev, st.st_ino) != (top_st.st_dev, top_st.st_ino) {
                return Err(RemoveError::Moved);
            }
            drop(cur);
            return match unlink_at(parent, name, libc::AT_REMOVEDIR) {
                Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => Ok(false),
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => Err(e.into()),
                _ => Ok(true),
            };
        }
        let me = fstat(cur.fd.as_raw_fd())?;
        let up = open_dir_at(cur.fd.as_raw_fd(), c"..")?;
        let up_st = fstat(up.as_raw_fd())?;
        if up_st.st_dev != top_st.st_dev || (depth > 1 && up_st.st_ino == top_st.st_ino) {
            return Err(RemoveError::Moved);
        }
        if depth == 1 && up_st.st_ino != top_st.st_ino {
            return Err(RemoveError::Moved);
        }
        drop(cur);
        let mut parent_level = Level::new(up);
        let mut found = None;
        while let Some(e) = parent_level.next()? {
            if e.ino == me.st_ino {
                found = Some(e.name.to_owned());
                break;
            }
        }
        let Some(child_name) = found else {
            return Err(RemoveError::Moved);
        };
        match unlink_at(parent_level.fd.as_raw_fd(), &child_name, libc::AT_REMOVEDIR) {
            // Refilled meanwhile: the next scan of the parent goes down into it again.
            Err(e) if !matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTEMPTY)) => {
                return Err(e.into())
            }
            _ => {}
        }
        // Rescan the parent from its start (its removed entries are gone).
        let fd = parent_level.fd;
        // SAFETY: lseek on our own fd.
        cvt(unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_SET) } as libc::c_int)?;
        cur = Level::new(fd);
        depth -= 1;
    }
}

/// Removes the directory at `path` and everything below it (see [`remove_tree`]); the parent
/// is opened without following a symlink in its last component.
pub fn remove_path(path: &std::path::Path, deadline: Instant) -> Result<(), RemoveError> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no parent").into());
    };
    let dir = open_dir(parent)?;
    let name = cpath(std::path::Path::new(name))?;
    remove_tree(dir.as_raw_fd(), &name, deadline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn temp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ptcd-tree-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(120)
    }

    #[test]
    fn removes_a_tree_deeper_than_any_stack_iteratively() {
        let base = temp("deep");
        // 20,000 levels, built fd-relative (paths this long could not be opened).
        let mut fd = open_dir(&base).expect("open");
        for _ in 0..20_000 {
            unsafe { libc::mkdirat(fd.as_raw_fd(), c"d".as_ptr(), 0o700) };
            fd = open_dir_at(fd.as_raw_fd(), c"d").expect("open d");
        }
        unsafe { libc::mkdirat(fd.as_raw_fd(), c"leaf".as_ptr(), 0o700) };
        drop(fd);
        remove_path(&base.join("d"), later()).expect("removed");
        assert!(!base.join("d").exists());
        std::fs::remove_dir(&base).expect("empty base");
    }

    #[test]
    fn removal_never_follows_symlinks() {
        let base = temp("links");
        let outside = temp("links-outside");
        std::fs::write(outside.join("keep"), b"x").expect("write");
        std::fs::create_dir_all(base.join("t/a/b")).expect("mkdir");
        std::os::unix::fs::symlink(&outside, base.join("t/a/link")).expect("symlink");
        std::os::unix::fs::symlink(&outside, base.join("t/a/b/link2")).expect("symlink");
        std::fs::write(base.join("t/a/b/f"), b"x").expect("write");
        remove_path(&base.join("t"), later()).expect("removed");
        assert!(!base.join("t").exists());
        assert!(outside.join("keep").exists());
        let _ = std::fs::remove_dir_all(&base);
        let _ = std::fs::remove_dir_all(&outside);
    }

    #[test]
    fn usage_counts_bytes_caps_entries_and_depth_and_skips_symlinks() {
        let base = temp("usage");
        std::fs::create_dir(base.join("sub")).expect("mkdir");
        std::fs::write(base.join("sub/a"), vec![7u8; 1 << 20]).expect("write");
        std::os::unix::fs::symlink("/usr", base.join("link")).expect("symlink");
        match usage(open_dir(&base).expect("open"), 100) {
            Usage::Bytes(n) => assert!((1 << 20..4 << 20).contains(&n), "{n}"),
            other => panic!("{other:?}"),
        }
        for i in 0..5 {
            std::fs::write(base.join(format!("f{i}")), b"x").expect("write");
        }
        assert_eq!(
            usage(open_dir(&base).expect("open"), 3),
            Usage::TooManyEntries
        );
        let mut p = base.join("deep");
        for _ in 0..=MAX_WALK_DEPTH {
            p.push("d");
        }
        std::fs::create_dir_all(&p).expect("mkdir deep");
        assert_eq!(
            usage(open_dir(&base).expect("open"), 100_000),
            Usage::TooDeep
        );
        remove_path(&base, later()).expect("removed");
    }
}
