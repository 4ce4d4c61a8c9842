//! Giving memory back to the operating system after bursts.
//!
//! glibc keeps freed memory in its arenas (one per thread that allocated, up to 8 × cores) and
//! returns little of it on its own: after a burst of large requests the daemon's RSS stayed at its
//! peak. Three measures, all cheap:
//! - [`configure_allocator`] caps the number of arenas (`M_ARENA_MAX`), so a burst spread over the
//!   runtime's worker threads fragments fewer heaps, and fixes glibc's trim and mmap thresholds at
//!   their initial 128 KiB: left dynamic, the first large block freed (an 8 MiB block) raised the
//!   trim threshold to 16 MiB, and a second arena's free top (which `malloc_trim` never releases,
//!   only the main arena's) kept 4 MiB resident after a burst;
//! - idle blocking-pool threads end after [`BLOCKING_KEEP_ALIVE`], not tokio's 10 s: a burst of 50
//!   clients left 30 of them, each with its stack pages and its malloc cache;
//! - [`trim_when_idle`] calls `malloc_trim(0)` (which also releases free pages inside the heaps)
//!   once there was client traffic (or a runtime thread ended, handing its malloc cache back) since
//!   the last trim and then none for a tick, i.e. when a burst has just ended, never in the middle
//!   of steady traffic. Bytes are no measure of what a burst allocated: 500 small runs from 50
//!   clients moved under 1 MiB but left 17 MiB of free heap (and the blocking threads they needed)
//!   behind. A trim of a heap that size costs about a millisecond, once per burst.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often the trimmer looks at the traffic counter.
const TICK: Duration = Duration::from_millis(500);
/// At most this many malloc arenas.
const ARENA_MAX: i32 = 2;
/// glibc's initial trim and mmap thresholds, fixed (see [`configure_allocator`]).
const TRIM_THRESHOLD: i32 = 128 * 1024;
const MMAP_THRESHOLD: i32 = 128 * 1024;
/// How long an idle blocking-pool thread lives (tokio's default is 10 s).
pub const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(1);

/// Runtime threads that exited: each gave its malloc cache back to an arena, to be trimmed.
static THREADS_STOPPED: AtomicU64 = AtomicU64::new(0);

/// The runtime's `on_thread_stop` hook.
pub fn thread_stopped() {
    THREADS_STOPPED.fetch_add(1, Ordering::Relaxed);
}

/// Bytes the daemon moved for clients (read and written), a proxy for what it allocated.
#[derive(Debug, Default)]
pub struct Activity(AtomicU64);

impl Activity {
    pub fn note(&self, bytes: usize) {
        self.0.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Bytes moved plus runtime threads stopped: either leaves free memory behind.
    fn total(&self) -> u64 {
        self.0.load(Ordering::Relaxed) + THREADS_STOPPED.load(Ordering::Relaxed)
    }
}

/// Caps glibc's arenas; call once at start-up, before the runtime's threads exist.
pub fn configure_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Returns free heap memory to the OS.
pub fn trim() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory; it takes the allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Trims after each burst of client traffic until `stop` fires.
pub async fn trim_when_idle(activity: std::sync::Arc<Activity>, stop: CancellationToken) {
    let mut trimmed_at = activity.total();
    let mut last_seen = trimmed_at;
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = activity.total();
        let quiet = now == last_seen;
        last_seen = now;
        if quiet && now != trimmed_at {
            trimmed_at = now;
            // Here, on a worker: the daemon is quiet, and the trim takes about a millisecond. Not
            // on a blocking thread, whose own exit a second later would count as a reason to trim.
            trim();
            tracing::debug!("returned free memory to the OS after a burst");
        }
    }
}
