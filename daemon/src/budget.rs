//! A byte budget: how many bytes a buffer holds, and a way to wait until it holds fewer.
//!
//! The daemon bounds what a child can make it hold in bytes, not in message counts, and applies
//! back-pressure instead of queueing: when a buffer is over its budget, the run loop stops
//! reading the child until the buffer drains (the deadline still fires meanwhile). Used for the
//! daemon→child control writer and for the tool-call arguments the relay holds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Bytes currently held against a limit. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct ByteBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    held: AtomicUsize,
    limit: usize,
    freed: Notify,
}

impl ByteBudget {
    pub fn new(limit: usize) -> ByteBudget {
        ByteBudget {
            inner: Arc::new(Inner {
                held: AtomicUsize::new(0),
                limit,
                freed: Notify::new(),
            }),
        }
    }

    /// Counts `n` more bytes as held (may go over the limit: the caller stops taking more).
    pub fn add(&self, n: usize) {
        self.inner.held.fetch_add(n, Ordering::AcqRel);
    }

    /// Counts `n` bytes as freed and wakes whoever waits for room.
    pub fn release(&self, n: usize) {
        let _ = self
            .inner
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
                Some(h.saturating_sub(n))
            });
        self.inner.freed.notify_waiters();
    }

    pub fn held(&self) -> usize {
        self.inner.held.load(Ordering::Acquire)
    }

    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// True while the held bytes are at or over the limit.
    pub fn is_full(&self) -> bool {
        self.held() >= self.inner.limit
    }

    /// Resolves once the held bytes are under the limit. Cancel-safe.
    pub async fn has_room(&self) {
        loop {
            let freed = self.inner.freed.notified();
            tokio::pin!(freed);
            // Register before checking, so a release between the check and the wait is seen.
            freed.as_mut().enable();
            if !self.is_full() {
                return;
            }
            freed.await;
        }
    }
}

/// Releases its bytes from a budget when dropped (an aborted task still gives them back).
#[derive(Debug)]
pub struct Held {
    budget: ByteBudget,
    bytes: usize,
}

impl Held {
    pub fn new(budget: &ByteBudget, bytes: usize) -> Held {
        budget.add(bytes);
        Held {
            budget: budget.clone(),
            bytes,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn has_room_waits_until_bytes_are_released() {
        let budget = ByteBudget::new(10);
        let held = Held::new(&budget, 12);
        assert!(budget.is_full());
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { budget.has_room().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(held);
        waiter.await.expect("waiter finishes");
        assert_eq!(budget.held(), 0);
    }
}
