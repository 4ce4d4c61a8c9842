//! Byte budgets: how much memory clients and children can make the daemon hold, counted in bytes.
//!
//! Two shapes of back-pressure, both counting bytes, never messages:
//! - [`ByteBudget`] is a semaphore whose permits are bytes. Whoever buffers data on behalf of a
//!   client (a queued reply, a partial request line) first takes a [`Charge`] for its size and
//!   keeps it as long as the bytes are held; dropping the charge gives the bytes back. When a
//!   budget is used up, the next `acquire` waits: the reader stops reading, the writer's producers
//!   stop producing, instead of a queue growing. A request larger than the whole budget is clamped
//!   to the budget, so one oversized item can still pass on its own instead of waiting for ever.
//! - [`ByteGauge`] counts bytes that have already arrived (a child's tool-call arguments, answers
//!   waiting for the child to read them); a [`Held`] releases its bytes on drop. Over the limit
//!   the run loop stops reading the child until the gauge drains (the deadline still fires).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// The budget was closed: its owner (a connection's writer) is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the byte budget is closed")]
pub struct BudgetClosed;

/// A number of bytes that may be held at once.
#[derive(Debug)]
pub struct ByteBudget {
    sem: Arc<Semaphore>,
    limit: usize,
}

/// Bytes taken from a budget; given back on drop.
#[derive(Debug, Default)]
pub struct Charge(Option<OwnedSemaphorePermit>);

impl ByteBudget {
    /// A budget of `limit` bytes (at least 1, at most what a semaphore can count).
    pub fn new(limit: usize) -> Arc<ByteBudget> {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(ByteBudget {
            sem: Arc::new(Semaphore::new(limit)),
            limit,
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes currently charged.
    pub fn in_use(&self) -> usize {
        self.limit.saturating_sub(self.sem.available_permits())
    }

    fn clamp(&self, bytes: usize) -> u32 {
        bytes.min(self.limit).min(u32::MAX as usize) as u32
    }

    /// Waits until `bytes` (clamped to the limit) are free and takes them. Cancel-safe: a
    /// dropped call takes nothing.
    pub async fn acquire(&self, bytes: usize) -> Result<Charge, BudgetClosed> {
        let n = self.clamp(bytes);
        if n == 0 {
            return Ok(Charge(None));
        }
        self.sem
            .clone()
            .acquire_many_owned(n)
            .await
            .map(|p| Charge(Some(p)))
            .map_err(|_| BudgetClosed)
    }

    /// Fails every waiting and future `acquire`; charges already taken stay valid.
    pub fn close(&self) {
        self.sem.close();
    }
}

impl Charge {
    /// Bytes held by this charge.
    pub fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |p| p.num_permits())
    }

    /// Adds `other` (of the same budget) to this charge.
    pub fn merge(&mut self, other: Charge) {
        match (&mut self.0, other.0) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (mine @ None, theirs) => *mine = theirs,
            (Some(_), None) => {}
        }
    }

    /// Gives back everything above `keep` bytes.
    pub fn shrink_to(&mut self, keep: usize) {
        let held = self.bytes();
        if held <= keep {
            return;
        }
        if keep == 0 {
            self.0 = None;
        } else if let Some(p) = self.0.as_mut() {
            drop(p.split(held - keep));
        }
    }
}

/// Bytes a run's buffer holds against a limit, where the producer cannot be made to wait (the
/// child already sent them): over the limit the run loop stops reading the child until the
/// bytes are released. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct ByteGauge {
    inner: Arc<GaugeInner>,
}

#[derive(Debug)]
struct GaugeInner {
    held: AtomicUsize,
    limit: usize,
    freed: Notify,
}

impl ByteGauge {
    pub fn new(limit: usize) -> ByteGauge {
        ByteGauge {
            inner: Arc::new(GaugeInner {
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
    budget: ByteGauge,
    bytes: usize,
}

impl Held {
    pub fn new(budget: &ByteGauge, bytes: usize) -> Held {
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
    async fn charges_are_returned_on_drop_and_waiters_resume() {
        let budget = ByteBudget::new(100);
        let first = budget.acquire(80).await.expect("open");
        assert_eq!(budget.in_use(), 80);
        let waiting = budget.acquire(40);
        tokio::pin!(waiting);
        assert!(
            futures_poll_once(waiting.as_mut()).await.is_none(),
            "must wait while the budget is used up"
        );
        drop(first);
        let second = waiting.await.expect("open");
        assert_eq!(second.bytes(), 40);
        assert_eq!(budget.in_use(), 40);
    }

    #[tokio::test]
    async fn oversized_request_is_clamped_to_the_whole_budget() {
        let budget = ByteBudget::new(10);
        let all = budget.acquire(1000).await.expect("open");
        assert_eq!(all.bytes(), 10);
    }

    #[tokio::test]
    async fn shrink_and_merge_keep_the_count_exact() {
        let budget = ByteBudget::new(100);
        let mut c = budget.acquire(30).await.expect("open");
        c.merge(budget.acquire(20).await.expect("open"));
        assert_eq!(budget.in_use(), 50);
        c.shrink_to(10);
        assert_eq!((c.bytes(), budget.in_use()), (10, 10));
        c.shrink_to(0);
        assert_eq!(budget.in_use(), 0);
    }

    #[tokio::test]
    async fn closing_fails_waiters() {
        let budget = ByteBudget::new(10);
        let _all = budget.acquire(10).await.expect("open");
        let b = budget.clone();
        let waiter = tokio::spawn(async move { b.acquire(5).await.map(|_| ()) });
        tokio::task::yield_now().await;
        budget.close();
        assert_eq!(waiter.await.ok(), Some(Err(BudgetClosed)));
    }

    /// Polls a future once; `Some` if it completed.
    async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        let mut f = f;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }

    #[tokio::test]
    async fn has_room_waits_until_bytes_are_released() {
        let budget = ByteGauge::new(10);
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
