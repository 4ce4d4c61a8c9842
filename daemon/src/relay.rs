//! The tool calls of one run: from the child's `tool_call` to a tool source and back.
//!
//! Each call becomes a future that waits for a concurrency permit (`max_concurrent_tool_calls`)
//! and hands the call to the source the run's [`ToolRouter`] names for the tool (the requesting
//! client, `client_source.rs`, an MCP server, the discovery built-ins). The relay never sees a
//! connection. The calls are polled by the run's own task (a `FuturesUnordered`, through
//! [`Relay::next_answer`]), not spawned: a burst of 1000 gathered calls made 1000 tasks, each
//! scheduled, woken across worker threads and joined, which cost more than relaying the call.
//! So a call makes progress while the run loop takes answers (not while the child's outbox is
//! full: the child is not reading its answers, and new requests to the source wait too). When
//! the run ends, [`Relay::cancel_all`] fires the calls' cancellation token and gives every
//! source [`WITHDRAW_GRACE`] to withdraw its calls (the client source sends `$/cancelRequest`),
//! then drops what is left.
//!
//! Memory is bounded in bytes, not calls:
//! - a call's `arguments` stay the raw JSON text the child sent (about 1× their size), and one
//!   call's arguments may not exceed `max_tool_argument_bytes`;
//! - the arguments of calls not yet sent on are counted in a per-run [`ByteGauge`]
//!   (`max_queued_tool_argument_bytes`) until the source drops them; the run loop stops reading
//!   the child while it is full;
//! - a call keeps its concurrency permit until its answer has been handed to the child's
//!   writer, so answers the child does not read hold at most `max_concurrent_tool_calls` slots.
//!
//! Every `tool_call` the child sends counts toward `max_tool_calls`, whether it is started or
//! refused (unknown tool, reused id, too large).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::budget::{ByteGauge, Held};
use crate::rpc::error::{self, RpcError};
use crate::rpc::Raw;
use crate::tool_source::{Arguments, RunIdentity, ToolCall, ToolError, ToolRouter};

/// How long sources get to withdraw their calls when the run ends, before the calls are dropped.
pub const WITHDRAW_GRACE: Duration = Duration::from_secs(2);

/// Byte limits on the arguments a run's calls hold in the daemon.
#[derive(Debug, Clone, Copy)]
pub struct ArgumentLimits {
    /// One call's arguments (`max_tool_argument_bytes`).
    pub per_call: usize,
    /// Arguments of calls not yet sent on (`max_queued_tool_argument_bytes`).
    pub queued: usize,
}

/// The outcome of one call: the tool's result (raw JSON) or why there is none.
pub type Outcome = Result<Raw, ToolError>;

/// A finished call: its id, the outcome, and the permit to release once the outcome is handed
/// to the child.
pub type Answer = (u64, Outcome, Option<OwnedSemaphorePermit>);

/// One call in flight: it yields its answer, a panic included ([`crate::unwind::catch_panic`]).
type InFlight = Pin<Box<dyn Future<Output = Answer> + Send>>;

pub struct Relay {
    router: ToolRouter,
    run: Arc<RunIdentity>,
    permits: Arc<Semaphore>,
    in_flight: FuturesUnordered<InFlight>,
    /// Fired when the run ends: every source withdraws its calls.
    withdraw: CancellationToken,
    seen_ids: HashSet<u64>,
    limits: ArgumentLimits,
    queued: ByteGauge,
    /// `tool_call` messages received so far (started or refused).
    pub count: u64,
}

/// What to do with a `tool_call` from the child.
pub enum Admission {
    /// The call was started.
    Started,
    /// Answer the child at once with this error (unknown tool, reused id, too large).
    Refused(ToolError),
}

impl Relay {
    pub fn new(
        router: ToolRouter,
        run: RunIdentity,
        max_concurrent: u64,
        limits: ArgumentLimits,
    ) -> Relay {
        Relay {
            router,
            run: Arc::new(run),
            permits: Arc::new(Semaphore::new(max_concurrent.clamp(1, 1 << 20) as usize)),
            in_flight: FuturesUnordered::new(),
            withdraw: CancellationToken::new(),
            seen_ids: HashSet::new(),
            limits,
            queued: ByteGauge::new(limits.queued),
            count: 0,
        }
    }

    /// The arguments of calls not yet sent on, against their per-run budget.
    pub fn queued_arguments(&self) -> &ByteGauge {
        &self.queued
    }

    /// Starts relaying one call (counted toward `max_tool_calls` whatever the outcome).
    pub fn start(&mut self, call_id: u64, name: String, arguments: Raw) -> Admission {
        self.count += 1;
        let Some(source) = self.router.source(&name).cloned() else {
            return Admission::Refused(ToolError::Unknown(name));
        };
        if !self.seen_ids.insert(call_id) {
            return Admission::Refused(ToolError::ReusedId(call_id));
        }
        let size = arguments.get().len();
        if size > self.limits.per_call {
            return Admission::Refused(ToolError::TooLarge {
                size,
                limit: self.limits.per_call,
            });
        }
        let arguments = Arguments::new(arguments, Held::new(&self.queued, size));
        let run = self.run.clone();
        let permits = self.permits.clone();
        let withdraw = self.withdraw.clone();
        let span = tracing::debug_span!("tool_call", call = call_id, tool = %name);
        let task = async move {
            let permit = tokio::select! {
                permit = permits.acquire_owned() => permit.ok(),
                _ = withdraw.cancelled() => return (call_id, Err(ToolError::Cancelled), None),
            };
            let call = ToolCall {
                run,
                call_id,
                name,
                arguments,
            };
            let outcome = source.call(call, withdraw).await;
            match &outcome {
                Ok(_) => tracing::debug!("answered"),
                Err(e) => tracing::debug!(error = %e, "answered with an error"),
            }
            (call_id, outcome, permit)
        };
        let answered = crate::unwind::catch_panic(task.instrument(span));
        self.in_flight.push(Box::pin(async move {
            answered.await.unwrap_or_else(|message| {
                // Exactly one answer per call: a panic becomes an error for the script.
                tracing::error!(call = call_id, panic = %message, "a tool call panicked");
                let message = crate::unwind::panic_message("tool call", &message);
                (call_id, Err(ToolError::Internal(message)), None)
            })
        }));
        Admission::Started
    }

    /// True when no call is in flight.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// The next answered call; polling it is what moves every call in flight on. Pending
    /// forever when idle (use [`Relay::is_idle`] as a guard). Cancel-safe (an answer is taken
    /// out of the set only in the poll that returns it).
    pub async fn next_answer(&mut self) -> Answer {
        match self.in_flight.next().await {
            Some(answer) => answer,
            None => std::future::pending().await,
        }
    }

    /// Ends every call still in flight: each source withdraws its calls (the client source
    /// sends `$/cancelRequest`) within [`WITHDRAW_GRACE`]; what is left then is dropped.
    pub async fn cancel_all(&mut self) {
        self.withdraw.cancel();
        let withdrawn = async { while self.in_flight.next().await.is_some() {} };
        if tokio::time::timeout(WITHDRAW_GRACE, withdrawn)
            .await
            .is_err()
        {
            tracing::warn!("tool calls not withdrawn in time; dropping them");
            self.in_flight.clear();
        }
    }
}

/// How a failed tool call is shown to the script: the one mapping from [`ToolError`] to the
/// JSON-RPC-shaped error object of the shim's `ToolError` (`code`, `message`, `data`).
pub fn tool_error_object(error: &ToolError) -> RpcError {
    let code = match error {
        ToolError::Failed(object) => return object.clone(),
        ToolError::Unknown(_) => error::METHOD_NOT_FOUND,
        ToolError::ReusedId(_) => error::INVALID_REQUEST,
        ToolError::TooLarge { .. } => error::INVALID_PARAMS,
        ToolError::Unreachable(_) | ToolError::Cancelled | ToolError::Internal(_) => {
            error::INTERNAL_ERROR
        }
    };
    RpcError::new(code, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::Id;
    use crate::tool_source::{ToolFuture, ToolSource};

    /// A source whose behaviour the test picks per tool name.
    struct Fake;

    impl ToolSource for Fake {
        fn call(&self, call: ToolCall, cancel: CancellationToken) -> ToolFuture {
            Box::pin(async move {
                match call.name.as_str() {
                    "echo" => Ok(serde_json::value::RawValue::from_string(
                        call.arguments.raw().get().to_string(),
                    )
                    .unwrap_or_else(|_| crate::rpc::message::raw_null())),
                    "polite" => {
                        cancel.cancelled().await;
                        Err(ToolError::Cancelled)
                    }
                    "deaf" => std::future::pending().await,
                    _ => panic!("a source bug"),
                }
            })
        }
    }

    fn relay() -> Relay {
        let source: Arc<dyn crate::tool_source::ToolSource> = Arc::new(Fake);
        let names = ["echo", "polite", "deaf", "boom"].map(String::from);
        let run = RunIdentity {
            run_id: "r-1".into(),
            request_id: Id::from("q"),
            session_id: None,
        };
        let limits = ArgumentLimits {
            per_call: 64,
            queued: 1 << 20,
        };
        Relay::new(ToolRouter::for_run(source, names), run, 4, limits)
    }

    fn raw(text: &str) -> Raw {
        serde_json::value::RawValue::from_string(text.into())
            .unwrap_or_else(|_| crate::rpc::message::raw_null())
    }

    #[tokio::test]
    async fn calls_are_routed_to_their_source_and_refusals_are_counted() {
        let mut relay = relay();
        assert!(matches!(
            relay.start(1, "echo".into(), raw(r#"{"a":1}"#)),
            Admission::Started
        ));
        let (id, outcome, _permit) = relay.next_answer().await;
        assert_eq!(id, 1);
        assert_eq!(
            outcome.map(|r| r.get().to_string()),
            Ok(r#"{"a":1}"#.into())
        );
        let refused = |a: Admission| match a {
            Admission::Refused(e) => Some(e),
            Admission::Started => None,
        };
        assert_eq!(
            refused(relay.start(2, "nope".into(), raw("{}"))),
            Some(ToolError::Unknown("nope".into()))
        );
        assert_eq!(
            refused(relay.start(1, "echo".into(), raw("{}"))),
            Some(ToolError::ReusedId(1))
        );
        let big = format!(r#"{{"x":"{}"}}"#, "y".repeat(100));
        assert!(matches!(
            refused(relay.start(3, "echo".into(), raw(&big))),
            Some(ToolError::TooLarge { limit: 64, .. })
        ));
        assert_eq!(relay.count, 4, "refused calls count toward max_tool_calls");
        assert_eq!(relay.queued_arguments().held(), 0);
    }

    #[tokio::test]
    async fn a_panicking_source_still_answers_its_call() {
        let mut relay = relay();
        relay.start(7, "boom".into(), raw("{}"));
        let (id, outcome, _) = relay.next_answer().await;
        assert_eq!(id, 7);
        assert!(matches!(outcome, Err(ToolError::Internal(m)) if m.contains("still running")));
    }

    #[tokio::test]
    async fn cancel_all_withdraws_calls_and_drops_a_source_that_ignores_it() {
        let mut relay = relay();
        relay.start(1, "polite".into(), raw("{}"));
        relay.start(2, "deaf".into(), raw("{}"));
        // Bounded by WITHDRAW_GRACE: the deaf call is dropped, not waited for forever.
        tokio::time::timeout(WITHDRAW_GRACE * 5, relay.cancel_all())
            .await
            .expect("cancel_all ends");
        assert!(relay.is_idle());
        assert_eq!(relay.queued_arguments().held(), 0, "arguments given back");
    }
}
