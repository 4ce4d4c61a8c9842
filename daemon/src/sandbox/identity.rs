//! Per-run unprivileged identities: when the daemon runs as root, each child gets a uid/gid of
//! its own from the policy's range (no passwd entry needed), held until the run ends.
//!
//! A uid per concurrent run means `RLIMIT_NPROC` counts only that run's threads, runs cannot
//! signal or ptrace each other, and files one run leaves behind are not another run's.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

static IN_USE: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// A uid taken from the pool; returned when the last clone is dropped.
#[derive(Debug)]
pub struct UidLease {
    pub uid: u32,
}

impl PartialEq for UidLease {
    fn eq(&self, other: &Self) -> bool {
        self.uid == other.uid
    }
}

impl Drop for UidLease {
    fn drop(&mut self) {
        IN_USE
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.uid);
    }
}

/// Takes the lowest free uid in `first..=last`, or `None` when all are in use.
pub fn lease(first: u32, last: u32) -> Option<Arc<UidLease>> {
    let mut in_use = IN_USE.lock().unwrap_or_else(|p| p.into_inner());
    let uid = (first..=last).find(|u| !in_use.contains(u))?;
    in_use.insert(uid);
    Some(Arc::new(UidLease { uid }))
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
    fn leases_are_distinct_and_returned() {
        let a = lease(4_000_000_000, 4_000_000_001).unwrap();
        let b = lease(4_000_000_000, 4_000_000_001).unwrap();
        assert_ne!(a.uid, b.uid);
        assert!(lease(4_000_000_000, 4_000_000_001).is_none());
        let freed = a.uid;
        drop(a);
        assert_eq!(lease(4_000_000_000, 4_000_000_001).unwrap().uid, freed);
    }
}
