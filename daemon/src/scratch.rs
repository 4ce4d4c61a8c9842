//! Per-run scratch directories: the only place a script may write.
//!
//! Each run gets `<root>/<daemon pid>-<run id>`, mode 0700, owned by the uid the child runs as.
//! The directory is removed when its [`Scratch`] guard drops, whatever ended the run. The pid
//! prefix lets a daemon starting after a crash remove exactly the directories of daemons that are
//! gone, never those of another live daemon sharing the root.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A scratch directory, removed on drop.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// Creates the run's directory under `root` (creating `root` with mode 0711 if needed, so a
    /// sandbox uid can reach its own directory but list no other). `owner` is the (uid, gid) the
    /// child runs as, when it differs from the daemon's.
    pub fn create(
        root: &Path,
        run_id: &str,
        owner: Option<(u32, u32)>,
    ) -> std::io::Result<Scratch> {
        std::fs::create_dir_all(root)?;
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o711))?;
        let dir = root.join(format!("{}-{run_id}", std::process::id()));
        std::fs::create_dir(&dir)?;
        let guard = Scratch(dir);
        std::fs::set_permissions(&guard.0, std::fs::Permissions::from_mode(0o700))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&guard.0, Some(uid), Some(gid))?;
        }
        Ok(guard)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "could not remove scratch dir");
        }
    }
}

/// Gives `dir` and everything under it to `uid`/`gid` (symlinks themselves, never their
/// targets). A persistent session's scratch dir outlives its interpreter, and a restarted
/// interpreter may run as another uid of the policy's range.
pub fn chown_tree(dir: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))?;
    if std::fs::symlink_metadata(dir)?.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Removes scratch directories left behind by daemons that are no longer running (after a
/// crash or `kill -9`). Returns how many were removed.
pub fn reclaim(root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let me = std::fs::read_link("/proc/self/exe").ok();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.split_once('-'))
            .and_then(|(p, _)| p.parse::<u32>().ok())
        else {
            continue;
        };
        if owner_alive(pid, me.as_deref()) {
            continue;
        }
        match std::fs::remove_dir_all(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(dir = %entry.path().display(), error = %e, "could not reclaim scratch dir")
            }
        }
    }
    removed
}

/// True when `pid` is a live process running the same binary as this one.
fn owner_alive(pid: u32, me: Option<&Path>) -> bool {
    match std::fs::read_link(format!("/proc/{pid}/exe")) {
        Ok(exe) => me.is_none_or(|me| exe == me),
        // A process we may not inspect is alive; be conservative and keep its dirs.
        Err(e) => e.kind() == std::io::ErrorKind::PermissionDenied,
    }
}

/// How often a running script's scratch dir is measured.
const DISK_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
/// Entries (files, dirs, links) a scratch dir may hold; more ends the run (inode exhaustion).
pub const MAX_SCRATCH_ENTRIES: usize = 100_000;

/// What a measurement found.
#[derive(Debug, PartialEq, Eq)]
pub enum Usage {
    /// Bytes allocated on disk (sparse files count what they really use).
    Bytes(u64),
    TooManyEntries,
    /// A directory could not be read (e.g. the script made it unreadable).
    Unreadable(String),
}

/// Measures the disk space used below `dir`, without following symlinks, stopping after
/// `max_entries` entries.
pub fn usage(dir: &Path, max_entries: usize) -> Usage {
    use std::os::unix::fs::MetadataExt;
    let mut bytes = 0u64;
    let mut entries = 0usize;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let listing = match std::fs::read_dir(&d) {
            Ok(listing) => listing,
            Err(e) => return Usage::Unreadable(format!("{}: {e}", d.display())),
        };
        for entry in listing {
            let Ok(entry) = entry else { continue };
            entries += 1;
            if entries > max_entries {
                return Usage::TooManyEntries;
            }
            let Ok(meta) = entry.metadata() else { continue };
            bytes = bytes.saturating_add(meta.blocks().saturating_mul(512));
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Usage::Bytes(bytes)
}

/// Watches a running script's scratch dir against its `scratch_mb` limit.
///
/// RLIMIT_FSIZE caps one file, not how many a script writes, so without this a script could fill
/// the host's disk until its wall-clock timeout. Measuring runs on a blocking thread every 100 ms;
/// what a script can write between two measurements is bounded by the file size limit and the
/// disk's speed.
pub struct DiskWatch {
    dir: PathBuf,
    limit_bytes: u64,
    interval: tokio::time::Interval,
    pending: Option<tokio::task::JoinHandle<Usage>>,
}

impl DiskWatch {
    pub fn new(dir: PathBuf, limit_mb: u64) -> DiskWatch {
        let mut interval = tokio::time::interval(DISK_CHECK_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        DiskWatch {
            dir,
            limit_bytes: limit_mb.saturating_mul(1 << 20),
            interval,
            pending: None,
        }
    }

    /// Resolves, with the reason, once the scratch dir is over its limit. Cancel-safe: a
    /// measurement under way survives being dropped from a `select!`.
    pub async fn exceeded(&mut self) -> String {
        loop {
            let handle = match &mut self.pending {
                Some(handle) => handle,
                None => {
                    self.interval.tick().await;
                    let dir = self.dir.clone();
                    self.pending.insert(tokio::task::spawn_blocking(move || {
                        usage(&dir, MAX_SCRATCH_ENTRIES)
                    }))
                }
            };
            let measured = handle.await;
            self.pending = None;
            let limit_mb = self.limit_bytes >> 20;
            match measured {
                Ok(Usage::Bytes(n)) if n > self.limit_bytes => {
                    return format!(
                        "the scratch dir used {} MiB of disk, more than scratch_mb = {limit_mb}",
                        n >> 20
                    )
                }
                Ok(Usage::TooManyEntries) => {
                    return format!(
                    "the scratch dir holds more than {MAX_SCRATCH_ENTRIES} files and directories"
                )
                }
                Ok(Usage::Unreadable(why)) => {
                    return format!("the scratch dir could not be measured ({why})")
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root(name: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("ptcd-scratch-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        root
    }

    #[test]
    fn scratch_dir_is_private_and_removed_on_drop() {
        let root = temp_root("drop");
        let scratch = Scratch::create(&root, "r-1", None).expect("create");
        let path = scratch.path().to_path_buf();
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::write(path.join("f"), b"x").expect("write");
        drop(scratch);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn usage_counts_allocated_bytes_and_caps_entries() {
        let root = temp_root("usage");
        let scratch = Scratch::create(&root, "r-3", None).expect("create");
        std::fs::create_dir(scratch.path().join("sub")).expect("mkdir");
        std::fs::write(scratch.path().join("sub/a"), vec![7u8; 1 << 20]).expect("write");
        match usage(scratch.path(), 100) {
            Usage::Bytes(n) => assert!(n >= 1 << 20, "{n}"),
            other => panic!("{other:?}"),
        }
        for i in 0..5 {
            std::fs::write(scratch.path().join(format!("f{i}")), b"x").expect("write");
        }
        assert_eq!(usage(scratch.path(), 3), Usage::TooManyEntries);
        drop(scratch);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn reclaim_removes_dirs_of_dead_daemons_only() {
        let root = temp_root("reclaim");
        std::fs::create_dir_all(root.join("999999999-r-1")).expect("dead daemon's dir");
        let live = Scratch::create(&root, "r-2", None).expect("our dir");
        assert_eq!(reclaim(&root), 1);
        assert!(live.path().exists());
        assert!(!root.join("999999999-r-1").exists());
        drop(live);
        let _ = std::fs::remove_dir_all(&root);
    }
}
