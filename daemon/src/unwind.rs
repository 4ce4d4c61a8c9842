//! Exactly one answer per request, even when its task panics.
//!
//! A `run` executes in its own task; a panic there used to end the task silently: the client
//! never got an answer and the run's counters stayed raised. [`catch_panic`] polls a future inside
//! `catch_unwind`, so a panic becomes an `Err` the caller answers with `-32603`. Everything the
//! future held is dropped while unwinding, so the counters and slots it holds must be drop
//! guards (see `run/mod.rs`: `ActiveRun`, `QueuePlace`, the slot permit, the scratch dir).

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A future that yields `Err` with the panic's message instead of unwinding into its caller.
pub struct CatchPanic<F> {
    inner: Pin<Box<F>>,
}

/// Wraps `future` so that a panic while polling it becomes `Err(message)`.
pub fn catch_panic<F: Future>(future: F) -> CatchPanic<F> {
    CatchPanic {
        inner: Box::pin(future),
    }
}

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner.as_mut();
        // The future is not polled again after a panic (its state is dropped by the caller),
        // so observing a broken invariant inside it is impossible: AssertUnwindSafe is sound.
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".into());
                Poll::Ready(Err(message))
            }
        }
    }
}

/// What a request (or tool call) whose task panicked is told.
pub fn panic_message(what: &str, message: &str) -> String {
    format!(
        "internal error: the daemon failed while handling this {what} ({message}); \
         the daemon is still running"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Counted<'a>(&'a AtomicU64);

    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }

    #[tokio::test]
    async fn a_panicking_future_becomes_an_error_and_its_guards_run() {
        let active = AtomicU64::new(0);
        let outcome = catch_panic(async {
            active.fetch_add(1, Ordering::Relaxed);
            let _guard = Counted(&active);
            tokio::task::yield_now().await;
            if active.load(Ordering::Relaxed) == 1 {
                panic!("boom in a run");
            }
            7
        })
        .await;
        assert_eq!(outcome, Err("boom in a run".to_string()));
        assert_eq!(
            active.load(Ordering::Relaxed),
            0,
            "the guard restored the counter"
        );
        let message = panic_message("run", "boom in a run");
        assert!(message.contains("boom in a run") && message.contains("still running"));
    }

    #[tokio::test]
    async fn a_finishing_future_passes_its_output() {
        assert_eq!(catch_panic(async { 7 }).await, Ok(7));
    }
}
