//! Per-run scratch directories: the only place a script may write.
//!
//! Layout: `<root>/<tag>-<id>`, where `<tag>` names one daemon process (`<pid>.<start ns>`,
//! never reused) and `<id>` the run (`r-N`), warm child (`w-N`) or persistent session (`s-N`).
//! Next to them `<root>/<tag>.lock` is `flock`ed by the live daemon for its whole life: a daemon
//! starting up ([`ScratchRoot::reclaim`]) removes exactly the dirs whose daemon holds no lock any
//! more, never those of another live daemon sharing the root, whatever binary it runs.
//!
//! Two modes, decided once at start-up ([`Mode`]):
//! - **tmpfs** (the daemon may mount: root with CAP_SYS_ADMIN): each scratch dir is a fresh tmpfs
//!   `size=<scratch_mb>m,nr_inodes=<MAX_SCRATCH_ENTRIES>,mode=0700,uid=<run uid>` mounted
//!   `nosuid,nodev` (not `noexec`: see [`tmpfs::mount_tmpfs`]). The kernel enforces `scratch_mb`: a write past it (or `fallocate`)
//!   fails with `ENOSPC`, an ordinary `OSError` in the script; the run is not ended. Hard links
//!   and renames out of it are impossible (another filesystem). Cleanup is `umount2(MNT_DETACH)`
//!   plus `rmdir`: the daemon never walks or removes what the child built.
//! - **measured** (fallback): a plain directory, measured while a run executes
//!   ([`quota::DiskWatch`]) and removed with the iterative, fd-relative remover of [`tree`].
//!
//! The root itself is created safely: `mkdir`, then opened with `O_NOFOLLOW|O_DIRECTORY`, and
//! the daemon refuses to start unless the opened dir is owned by its euid and not writable by
//! group or others (another local user could otherwise pre-create it, or plant a symlink, under
//! `/tmp`). Mounts and removals go through `/proc/self/fd/<root fd>/<name>` or fd-relative
//! calls, never through a path a non-root user could have changed.
//!
//! tmpfs pages are memory that no run's `RLIMIT_AS` and not the daemon's RSS count: 64
//! persistent sessions and 32 runs at the default `scratch_mb` (256) could pin 24 GiB. So the
//! size caps of all live scratch dirs together are bounded by [`ScratchRoot::set_total_mb`]
//! (`max_scratch_total_mb`); a dir that would go over it is refused with
//! [`io::ErrorKind::StorageFull`] (the run or session gets `-32002`), and its size comes back
//! when the dir is removed.
//!
//! A [`Scratch`] holds a clone of its uid lease: the uid returns to the pool only after the
//! dir is unmounted or removed. Removal runs on a blocking thread ([`Scratch::remove`]); a
//! guard dropped without it (a panic) still removes the dir, on a detached blocking task. Once
//! a run's script reported `done`, its tmpfs is unmounted and removed while the process exits
//! ([`Scratch::detach_early`]); the lease and the size share still wait for `remove`.

pub mod quota;
pub mod tmpfs;
pub mod tree;

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use quota::{DiskWatch, MAX_SCRATCH_ENTRIES};
pub use tmpfs::{enter_private_mount_namespace, probe_mode, Namespace};

use tmpfs::{mount_tmpfs, probe_tmpfs};

use crate::sandbox::identity::UidLease;

/// How long removing one scratch dir may take (fallback mode); what is left is reclaimed at
/// the next start-up.
const REMOVE_DEADLINE: Duration = Duration::from_secs(60);

/// How the scratch dirs of this daemon are made and capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A size-capped tmpfs per scratch dir (the kernel enforces `scratch_mb`).
    Tmpfs,
    /// A plain directory measured while a run executes (the daemon may not mount).
    Measured,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Tmpfs => "tmpfs",
            Mode::Measured => "measured",
        }
    }
}

/// Why the scratch root cannot be used; the daemon refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("scratch root {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("scratch root {path}: {problem}; refusing to use it (remove it, or pick another --scratch-dir)")]
    Unsafe { path: String, problem: String },
}

pub(crate) fn cvt(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Checks an opened directory: owned by the daemon's euid, none of `forbidden` mode bits set.
pub fn verify_private_dir(dir: &OwnedFd, forbidden: u32) -> Result<(), String> {
    // SAFETY: st is plain data filled by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstat(dir.as_raw_fd(), &mut st) }).map_err(|e| e.to_string())?;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if st.st_uid != me {
        return Err(format!(
            "it is owned by uid {}, not by the daemon's uid {me}",
            st.st_uid
        ));
    }
    let mode = st.st_mode & 0o7777;
    if mode & forbidden != 0 {
        return Err(format!(
            "its mode {mode:04o} lets group or others write to it"
        ));
    }
    Ok(())
}

/// The parent of every scratch dir of this daemon, opened and verified once.
#[derive(Debug)]
pub struct ScratchRoot {
    path: PathBuf,
    dir: OwnedFd,
    tag: String,
    mode: Mode,
    /// Our `<tag>.lock`, flocked while we live.
    lock: Mutex<Option<OwnedFd>>,
    /// MiB the size caps of all live scratch dirs may add up to (`max_scratch_total_mb`).
    total_mb: AtomicU64,
    /// MiB the live scratch dirs are capped at together.
    committed_mb: AtomicU64,
}

impl ScratchRoot {
    /// Creates (mode 0711) or opens the root safely, takes this daemon's lock in it, and decides
    /// the [`Mode`] by mounting a probe tmpfs. Blocking.
    pub fn open(path: &Path) -> Result<Arc<ScratchRoot>, RootError> {
        let io_err = |source| RootError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err)?;
        }
        let c = tree::cpath(path).map_err(io_err)?;
        // SAFETY: c is NUL-terminated.
        if let Err(e) = cvt(unsafe { libc::mkdir(c.as_ptr(), 0o711) }) {
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(io_err(e));
            }
        }
        let dir = tree::open_dir(path).map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => RootError::Unsafe {
                path: path.display().to_string(),
                problem: "it is a symlink or not a directory".into(),
            },
            _ => io_err(e),
        })?;
        verify_private_dir(&dir, 0o022).map_err(|problem| RootError::Unsafe {
            path: path.display().to_string(),
            problem,
        })?;
        // On the verified fd: sandbox uids may reach their own dir but list none.
        cvt(unsafe { libc::fchmod(dir.as_raw_fd(), 0o711) }).map_err(io_err)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let tag = format!("{}.{nanos:x}", std::process::id());
        let lock = take_lock(&dir, &tag).map_err(io_err)?;
        let mode = probe_tmpfs(&dir, &tag);
        Ok(Arc::new(ScratchRoot {
            path: path.to_path_buf(),
            dir,
            tag,
            mode,
            lock: Mutex::new(Some(lock)),
            total_mb: AtomicU64::new(u64::MAX),
            committed_mb: AtomicU64::new(0),
        }))
    }

    /// Bounds the size caps of all live scratch dirs together (`max_scratch_total_mb`).
    pub fn set_total_mb(&self, mb: u64) {
        self.total_mb.store(mb, Ordering::Relaxed);
    }

    /// MiB the live scratch dirs are capped at together (`daemon/status`).
    pub fn committed_mb(&self) -> u64 {
        self.committed_mb.load(Ordering::Relaxed)
    }

    /// Commits `mb` of the total, or refuses with `StorageFull` naming the limit.
    fn commit(&self, mb: u64) -> io::Result<()> {
        let total = self.total_mb.load(Ordering::Relaxed);
        self.committed_mb
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                c.checked_add(mb).filter(|n| *n <= total)
            })
            .map(|_| ())
            .map_err(|live| {
                io::Error::new(
                    io::ErrorKind::StorageFull,
                    format!(
                        "scratch space exhausted: live scratch dirs are capped at {live} MiB \
                         together and a new one needs {mb} MiB more (max_scratch_total_mb = \
                         {total}); try again when runs or sessions have ended"
                    ),
                )
            })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the scratch dir of run (or warm child, or session) `id`, owned by the lease's
    /// uid (gid = uid) when there is one, capped at `size_mb` in tmpfs mode. Blocking but quick
    /// (a mkdir and a mount).
    pub fn create(
        self: &Arc<Self>,
        id: &str,
        lease: Option<Arc<UidLease>>,
        size_mb: u64,
    ) -> io::Result<Scratch> {
        let name = CString::new(format!("{}-{id}", self.tag)).map_err(io::Error::other)?;
        let size_mb = size_mb.max(1);
        self.commit(size_mb)?;
        // SAFETY: name is NUL-terminated.
        if let Err(e) = cvt(unsafe { libc::mkdirat(self.dir.as_raw_fd(), name.as_ptr(), 0o700) }) {
            self.committed_mb.fetch_sub(size_mb, Ordering::AcqRel);
            return Err(e);
        }
        // From here the guard gives the size back when the dir is removed.
        let mut guard = Scratch {
            root: self.clone(),
            path: self.path.join(name.to_string_lossy().as_ref()),
            name,
            mounted: false,
            lease: None,
            size_mb,
            done: false,
            early: None,
        };
        // SAFETY: geteuid/getegid cannot fail.
        let (uid, gid) = match &lease {
            Some(l) => (l.uid, l.uid),
            None => unsafe { (libc::geteuid(), libc::getegid()) },
        };
        match self.mode {
            Mode::Tmpfs => {
                mount_tmpfs(&self.at(&guard.name)?, size_mb, uid, gid)?;
                guard.mounted = true;
            }
            Mode::Measured => {
                let fd = tree::open_dir_at(self.dir.as_raw_fd(), &guard.name)?;
                cvt(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) })?;
                cvt(unsafe { libc::fchmod(fd.as_raw_fd(), 0o700) })?;
            }
        }
        guard.lease = lease;
        Ok(guard)
    }

    /// [`ScratchRoot::create`] on a blocking thread (a mount takes the kernel's namespace lock,
    /// which other mounts on the host may hold).
    pub async fn create_off_runtime(
        self: &Arc<Self>,
        id: &str,
        lease: Option<Arc<UidLease>>,
        size_mb: u64,
    ) -> io::Result<Scratch> {
        let (root, id) = (self.clone(), id.to_string());
        tokio::task::spawn_blocking(move || root.create(&id, lease, size_mb))
            .await
            .map_err(io::Error::other)?
    }

    /// `/proc/self/fd/<root fd>/<name>`: a path that reaches exactly the verified root.
    fn at(&self, name: &CStr) -> io::Result<CString> {
        CString::new(format!(
            "/proc/self/fd/{}/{}",
            self.dir.as_raw_fd(),
            name.to_string_lossy()
        ))
        .map_err(io::Error::other)
    }

    /// Unmounts (if mounted) and removes `name`, a direct child of the root.
    fn remove_entry(&self, name: &CStr, mounted: bool) -> Result<(), tree::RemoveError> {
        if mounted || self.mode == Mode::Tmpfs {
            let target = self.at(name)?;
            // SAFETY: target is NUL-terminated. EINVAL: not a mount point (a plain leftover, or
            // already unmounted); ENOENT: already removed (`Scratch::detach_early`).
            if let Err(e) = cvt(unsafe {
                libc::umount2(target.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW)
            }) {
                if mounted && !matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT)) {
                    return Err(e.into());
                }
            }
        }
        tree::remove_tree(self.dir.as_raw_fd(), name, Instant::now() + REMOVE_DEADLINE)
    }

    /// Removes the scratch dirs of daemons that are gone (crash, `kill -9`): those whose
    /// `<tag>.lock` no process holds. Tmpfs leftovers are unmounted, the rest removed with the
    /// iterative remover. Blocking: call it on a blocking thread. Returns how many were removed.
    pub fn reclaim(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return 0;
        };
        let mut tags: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let tag = match name.strip_suffix(".lock") {
                Some(tag) => tag.to_string(),
                None => match name.split_once('-') {
                    Some((tag, _)) => tag.to_string(),
                    None => continue,
                },
            };
            let valid = tag.split_once('.').map_or_else(
                || tag.bytes().all(|b| b.is_ascii_digit()),
                |(pid, n)| {
                    pid.bytes().all(|b| b.is_ascii_digit())
                        && n.bytes().all(|b| b.is_ascii_hexdigit())
                },
            );
            if valid && !tag.is_empty() && tag != self.tag {
                tags.entry(tag).or_default().push(name);
            }
        }
        let mut removed = 0;
        for (tag, names) in tags {
            let lock_name = format!("{tag}.lock");
            let held = match self.dead_lock(&tag, &lock_name) {
                Some(held) => held,
                None => continue,
            };
            let mut all = true;
            for name in names.iter().filter(|n| **n != lock_name) {
                let Ok(c) = CString::new(name.as_str()) else {
                    continue;
                };
                match self.remove_entry(&c, false) {
                    Ok(()) => removed += 1,
                    Err(e) => {
                        all = false;
                        tracing::warn!(dir = %name, error = %e, "could not reclaim scratch dir");
                    }
                }
            }
            if all && held.is_some() {
                if let Ok(c) = CString::new(lock_name) {
                    // SAFETY: c is NUL-terminated; we hold the lock we unlink.
                    unsafe { libc::unlinkat(self.dir.as_raw_fd(), c.as_ptr(), 0) };
                }
            }
        }
        removed
    }

    /// Whether the daemon `tag` is gone: `Some(Some(lock fd))` when we now hold its lock,
    /// `Some(None)` for dirs with no lock file (left by an older ptcd whose pid is gone, or by a
    /// reclaim that stopped half-way), `None` when it is alive.
    fn dead_lock(&self, tag: &str, lock_name: &str) -> Option<Option<OwnedFd>> {
        let c = CString::new(lock_name).ok()?;
        // SAFETY: c is NUL-terminated; the fd is owned below.
        let fd = unsafe {
            libc::openat(
                self.dir.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            if io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT) {
                return None;
            }
            // No lock file: an older ptcd named its dirs `<pid>-…`; keep them while that pid
            // lives. A new-style tag without a lock lost it to an interrupted reclaim.
            if !tag.contains('.') && Path::new(&format!("/proc/{tag}")).exists() {
                return None;
            }
            return Some(None);
        }
        // SAFETY: fd was just opened and is ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: flock on our fd.
        if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return None;
        }
        Some(Some(fd))
    }

    /// Shutdown: every scratch dir is gone; drop and remove this daemon's lock file.
    pub fn release(&self) {
        if let Some(fd) = self.lock.lock().unwrap_or_else(|p| p.into_inner()).take() {
            if let Ok(c) = CString::new(format!("{}.lock", self.tag)) {
                // SAFETY: c is NUL-terminated.
                unsafe { libc::unlinkat(self.dir.as_raw_fd(), c.as_ptr(), 0) };
            }
            drop(fd);
        }
    }
}

/// Creates `<tag>.lock` already locked: written as `<tag>.lock.tmp`, flocked, then renamed, so
/// a reclaiming daemon never sees an unlocked lock file of a live daemon.
fn take_lock(dir: &OwnedFd, tag: &str) -> io::Result<OwnedFd> {
    let tmp = CString::new(format!("{tag}.lock.tmp")).map_err(io::Error::other)?;
    let lock = CString::new(format!("{tag}.lock")).map_err(io::Error::other)?;
    // SAFETY: NUL-terminated names; the fd is owned below.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            tmp.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    cvt(unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) })?;
    cvt(unsafe {
        libc::renameat(
            dir.as_raw_fd(),
            tmp.as_ptr(),
            dir.as_raw_fd(),
            lock.as_ptr(),
        )
    })?;
    Ok(fd)
}

/// A scratch dir, removed by [`Scratch::remove`] or, failing that, on drop.
#[derive(Debug)]
pub struct Scratch {
    root: Arc<ScratchRoot>,
    name: CString,
    path: PathBuf,
    mounted: bool,
    /// Released only after the dir is gone.
    lease: Option<Arc<UidLease>>,
    /// Its share of `max_scratch_total_mb`, given back after removal.
    size_mb: u64,
    done: bool,
    /// A tmpfs unmounted and removed ahead of [`Scratch::remove`] ([`Scratch::detach_early`]):
    /// whether that worked.
    early: Option<tokio::task::JoinHandle<bool>>,
}

impl Scratch {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unmounts or removes the dir on a blocking thread and waits for it (unless
    /// [`Scratch::detach_early`] already did); then the uid lease it holds is released.
    pub async fn remove(mut self) {
        let removed = match self.early.take() {
            Some(early) => early.await.unwrap_or(false),
            None => false,
        };
        let job = self.cleanup(removed);
        if removed {
            job(); // only the accounting is left: no blocking thread for it
        } else {
            let _ = tokio::task::spawn_blocking(job).await;
        }
    }

    /// A tmpfs scratch dir: unmount (`MNT_DETACH`) and remove it now, on a blocking thread,
    /// while the process that used it may still be exiting. The detached tmpfs lives on only
    /// while that process holds its cwd or an fd in it (a forked child's template Landlock
    /// layer no longer covers it: new opens there fail), and no other process can reach it; the
    /// uid lease and the size share stay until [`Scratch::remove`], which waits for this (and
    /// removes the dir itself if this failed). A plain dir (measured mode) is left for
    /// `remove`: it is removed only once nothing can write into it any more.
    pub fn detach_early(&mut self) {
        if !self.mounted || self.done || self.early.is_some() {
            return;
        }
        let root = self.root.clone();
        let name = self.name.clone();
        self.early = Some(tokio::task::spawn_blocking(move || {
            root.remove_entry(&name, true).is_ok()
        }));
    }

    /// What removal does: the dir (unless `removed` already), then the size share and the
    /// uid lease.
    fn cleanup(&mut self, removed: bool) -> impl FnOnce() + Send + 'static {
        self.done = true;
        let root = self.root.clone();
        let name = self.name.clone();
        let mounted = self.mounted;
        let lease = self.lease.take();
        let size_mb = std::mem::take(&mut self.size_mb);
        move || {
            let outcome = if removed {
                Ok(())
            } else {
                root.remove_entry(&name, mounted)
            };
            if let Err(e) = outcome {
                tracing::warn!(dir = %name.to_string_lossy(), error = %e, "could not remove scratch dir");
            }
            root.committed_mb.fetch_sub(size_mb, Ordering::AcqRel);
            drop(lease);
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let job = self.cleanup(false);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(job)),
            Err(_) => job(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_root(name: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("ptcd-scratch-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        root
    }

    #[tokio::test]
    async fn scratch_dir_is_private_and_removed() {
        let path = temp_root("drop");
        let root = ScratchRoot::open(&path).expect("root");
        let scratch = root.create("r-1", None, 8).expect("create");
        let dir = scratch.path().to_path_buf();
        let mode = std::fs::metadata(&dir)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::write(dir.join("f"), b"x").expect("write");
        scratch.remove().await;
        assert!(!dir.exists());
        root.release();
        assert_eq!(std::fs::read_dir(&path).expect("list").count(), 0);
        let _ = std::fs::remove_dir_all(&path);
    }

    #[tokio::test]
    async fn a_tmpfs_detached_early_is_gone_while_its_size_share_stays_until_remove() {
        use std::io::Write;
        let path = temp_root("early");
        let root = ScratchRoot::open(&path).expect("root");
        let mut scratch = root.create("r-1", None, 8).expect("create");
        let dir = scratch.path().to_path_buf();
        // A process still exiting: it has a file open in its scratch dir.
        let mut held = std::fs::File::create(dir.join("f")).expect("create a file");
        scratch.detach_early();
        match scratch.early.take() {
            Some(early) => {
                assert_eq!(root.mode(), Mode::Tmpfs);
                assert!(early.await.expect("join"), "the early unmount failed");
                assert!(!dir.exists(), "the dir outlived its early removal");
                assert_eq!(root.committed_mb.load(Ordering::Acquire), 8);
                held.write_all(b"still writable, reachable by nobody else")
                    .expect("the holder keeps its detached tmpfs");
            }
            None => {
                assert_eq!(root.mode(), Mode::Measured); // left for remove()
                assert!(dir.exists());
            }
        }
        scratch.remove().await;
        assert!(!dir.exists());
        assert_eq!(root.committed_mb.load(Ordering::Acquire), 0);
        root.release();
        let _ = std::fs::remove_dir_all(&path);
    }

    #[test]
    fn reclaim_removes_dirs_of_dead_daemons_only() {
        let path = temp_root("reclaim");
        let dead = ScratchRoot::open(&path).expect("dead daemon's root");
        let dead_dir = dead
            .create("r-1", None, 8)
            .expect("dead dir")
            .path()
            .to_path_buf();
        // Simulate the crash: its lock fd closes, its dirs stay (the guard is leaked).
        let leftover = dead.create("r-2", None, 8).expect("dir");
        let leftover_path = leftover.path().to_path_buf();
        std::mem::forget(leftover);
        drop(dead.lock.lock().unwrap().take());
        let live = ScratchRoot::open(&path).expect("a live daemon");
        let live_dir = live.create("r-1", None, 8).expect("live dir");
        let me = ScratchRoot::open(&path).expect("our root");
        assert!(!dead_dir.exists());
        assert_eq!(me.reclaim(), 1);
        assert!(!leftover_path.exists());
        assert!(
            live_dir.path().exists(),
            "a live daemon's dir was reclaimed"
        );
        drop(live_dir);
        let _ = std::fs::remove_dir_all(&path);
    }

    #[test]
    fn a_symlinked_or_foreign_root_is_refused() {
        let base = temp_root("unsafe");
        std::fs::create_dir_all(base.join("elsewhere")).expect("mkdir");
        std::os::unix::fs::symlink(base.join("elsewhere"), base.join("link")).expect("symlink");
        let err = ScratchRoot::open(&base.join("link")).expect_err("symlink");
        assert!(err.to_string().contains("symlink"), "{err}");
        std::fs::set_permissions(
            base.join("elsewhere"),
            std::fs::Permissions::from_mode(0o777),
        )
        .expect("chmod");
        let err = ScratchRoot::open(&base.join("elsewhere")).expect_err("world-writable");
        assert!(
            err.to_string().contains("lets group or others write"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&base);
    }
}
