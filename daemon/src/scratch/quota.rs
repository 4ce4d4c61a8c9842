//! The measured disk quota of the fallback mode (the daemon may not mount a tmpfs).
//!
//! RLIMIT_FSIZE caps one file, not how many a script writes, so without a tmpfs the daemon
//! measures a running script's scratch dir every 100 ms with the fd-relative walker of
//! [`super::tree`] on a blocking thread, and ends the run `limit_exceeded` when it is over
//! `scratch_mb`, holds more than [`MAX_SCRATCH_ENTRIES`] entries or nests deeper than
//! [`super::tree::MAX_WALK_DEPTH`] levels. What a script can write between two measurements is
//! bounded only by the file size limit and the disk's speed (`fallocate` reserves instantly), and
//! nothing is measured between the runs of a persistent session: the tmpfs mode has neither gap.

use std::path::PathBuf;

use super::tree::{self, Usage};
use super::Mode;

/// How often a running script's scratch dir is measured.
const DISK_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
/// Entries (files, dirs, links) a scratch dir may hold; more ends the run (inode exhaustion).
/// Also the tmpfs's `nr_inodes`.
pub const MAX_SCRATCH_ENTRIES: usize = 100_000;

/// Watches a running script's scratch dir against its `scratch_mb` limit (fallback mode only;
/// with a tmpfs it never fires: the kernel enforces the size).
pub struct DiskWatch {
    dir: PathBuf,
    limit_bytes: u64,
    enabled: bool,
    interval: tokio::time::Interval,
    pending: Option<tokio::task::JoinHandle<Usage>>,
}

impl DiskWatch {
    pub fn new(dir: PathBuf, limit_mb: u64, mode: Mode) -> DiskWatch {
        let mut interval = tokio::time::interval(DISK_CHECK_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        DiskWatch {
            dir,
            limit_bytes: limit_mb.saturating_mul(1 << 20),
            enabled: mode == Mode::Measured,
            interval,
            pending: None,
        }
    }

    /// Resolves, with the reason, once the scratch dir is over its limit. Cancel-safe: a
    /// measurement under way survives being dropped from a `select!`.
    pub async fn exceeded(&mut self) -> String {
        if !self.enabled {
            return std::future::pending().await;
        }
        loop {
            let handle = match &mut self.pending {
                Some(handle) => handle,
                None => {
                    self.interval.tick().await;
                    let dir = self.dir.clone();
                    self.pending.insert(tokio::task::spawn_blocking(move || {
                        match tree::open_dir(&dir) {
                            Ok(fd) => tree::usage(fd, MAX_SCRATCH_ENTRIES),
                            Err(e) => {
                                Usage::Unreadable(format!("its directory could not be opened: {e}"))
                            }
                        }
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
                Ok(Usage::TooDeep) => {
                    return format!(
                        "the scratch dir nests directories deeper than {} levels",
                        tree::MAX_WALK_DEPTH
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
