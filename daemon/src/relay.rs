//! The tool calls of one run: from the child's `tool_call` to the client's `tool/call` and back.
//!
//! Each call becomes a task that waits for a concurrency permit (`max_concurrent_tool_calls`),
//! sends the request through the connection's [`Peer`] and waits for the answer. The relay keeps
//! the daemon-side id of every request still out, so that when the run ends the client is told
//! with `$/cancelRequest` about exactly the calls nobody waits for any more.
//!
//! Memory is bounded in bytes, not calls:
//! - a call's `arguments` stay the raw JSON text the child sent (about 1× their size), and one
//!   call's arguments may not exceed `max_tool_argument_bytes`;
//! - the arguments of calls not yet sent to the client are counted in a per-run [`ByteBudget`]
//!   (`max_queued_tool_argument_bytes`); the run loop stops reading the child while it is full;
//! - a call keeps its concurrency permit until its answer has been handed to the child's
//!   writer, so answers the child does not read hold at most `max_concurrent_tool_calls` slots.
//!
//! Every `tool_call` the child sends counts toward `max_tool_calls`, whether it is started or
//! refused (unknown tool, reused id, too large).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::budget::{ByteBudget, Held};
use crate::rpc::error::{self, RpcError};
use crate::rpc::peer::{Outcome, PeerGone};
use crate::rpc::{Id, Peer, Raw};

/// Identifies the run on `tool/call` requests.
pub struct RunRef {
    pub run_id: String,
    pub request_id: Id,
    /// Set for the runs of a session.
    pub session_id: Option<String>,
}

/// Byte limits on the arguments a run's calls hold in the daemon.
#[derive(Debug, Clone, Copy)]
pub struct ArgumentLimits {
    /// One call's arguments (`max_tool_argument_bytes`).
    pub per_call: usize,
    /// Arguments of calls not yet sent to the client (`max_queued_tool_argument_bytes`).
    pub queued: usize,
}

/// A finished call: its id, the answer, and the permit to release once the answer is handed to
/// the child.
pub type Answer = (u64, Outcome, Option<OwnedSemaphorePermit>);

pub struct Relay {
    peer: Arc<Peer>,
    run: Arc<RunRef>,
    tools: HashSet<String>,
    permits: Arc<Semaphore>,
    in_flight: JoinSet<Answer>,
    /// Which call each task relays, so that a task that panicked still answers its call.
    tasks: HashMap<tokio::task::Id, u64>,
    /// call id → daemon request id, for the calls sent and not yet answered.
    sent: Arc<Mutex<HashMap<u64, String>>>,
    seen_ids: HashSet<u64>,
    limits: ArgumentLimits,
    queued: ByteBudget,
    /// `tool_call` messages received so far (started or refused).
    pub count: u64,
}

/// What to do with a `tool_call` from the child.
pub enum Admission {
    /// The call was started.
    Started,
    /// Answer the child at once with this error (unknown tool, reused id, too large).
    Refused(RpcError),
}

/// The `params` of a `tool/call` request; `arguments` is copied in as raw JSON.
#[derive(Serialize)]
struct ToolCallParams<'a> {
    run_id: &'a str,
    request_id: &'a Id,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<&'a str>,
    call_id: u64,
    name: &'a str,
    arguments: &'a serde_json::value::RawValue,
}

impl Relay {
    pub fn new(
        peer: Arc<Peer>,
        run: RunRef,
        tools: HashSet<String>,
        max_concurrent: u64,
        limits: ArgumentLimits,
    ) -> Relay {
        Relay {
            peer,
            run: Arc::new(run),
            tools,
            permits: Arc::new(Semaphore::new(max_concurrent.clamp(1, 1 << 20) as usize)),
            in_flight: JoinSet::new(),
            tasks: HashMap::new(),
            sent: Arc::default(),
            seen_ids: HashSet::new(),
            limits,
            queued: ByteBudget::new(limits.queued),
            count: 0,
        }
    }

    /// The arguments of calls not yet sent to the client, against their per-run budget.
    pub fn queued_arguments(&self) -> &ByteBudget {
        &self.queued
    }

    /// Starts relaying one call (counted toward `max_tool_calls` whatever the outcome).
    pub fn start(&mut self, call_id: u64, name: String, arguments: Raw) -> Admission {
        self.count += 1;
        if !self.tools.contains(&name) {
            return Admission::Refused(RpcError::new(
                error::METHOD_NOT_FOUND,
                format!("unknown tool {name:?}"),
            ));
        }
        if !self.seen_ids.insert(call_id) {
            return Admission::Refused(RpcError::new(
                error::INVALID_REQUEST,
                format!("tool call id {call_id} was already used"),
            ));
        }
        let size = arguments.get().len();
        if size > self.limits.per_call {
            return Admission::Refused(too_large(size, self.limits.per_call));
        }
        let held = Held::new(&self.queued, size);
        let peer = self.peer.clone();
        let run = self.run.clone();
        let permits = self.permits.clone();
        let sent = self.sent.clone();
        let span = tracing::info_span!("tool_call", call = call_id, tool = %name);
        let task = async move {
            let permit = permits.acquire_owned().await.ok();
            let params = ToolCallParams {
                run_id: &run.run_id,
                request_id: &run.request_id,
                session_id: run.session_id.as_deref(),
                call_id,
                name: &name,
                arguments: &arguments,
            };
            let id = peer.new_request_id();
            lock(&sent).insert(call_id, id.clone());
            let pending = peer.request(id, "tool/call", &params).await;
            // The request line now holds the arguments (in the connection's writer queue).
            drop(arguments);
            drop(held);
            let outcome = match pending {
                Ok(pending) => {
                    let answer = pending.answer().await;
                    lock(&sent).remove(&call_id);
                    answer.unwrap_or_else(|gone| Err(unreachable_client(gone)))
                }
                Err(gone) => Err(unreachable_client(gone)),
            };
            match &outcome {
                Ok(_) => tracing::debug!("answered"),
                Err(e) => tracing::debug!(code = e.code, "answered with an error"),
            }
            (call_id, outcome, permit)
        };
        let handle = self.in_flight.spawn(task.instrument(span));
        self.tasks.insert(handle.id(), call_id);
        Admission::Started
    }

    /// True when no call is in flight.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// The next answered call. Pending forever when idle (use [`Relay::is_idle`] as a guard).
    /// Cancel-safe (`JoinSet::join_next` is).
    pub async fn next_answer(&mut self) -> Answer {
        loop {
            match self.in_flight.join_next_with_id().await {
                Some(Ok((task, answer))) => {
                    self.tasks.remove(&task);
                    return answer;
                }
                Some(Err(e)) => {
                    let call = self.tasks.remove(&e.id());
                    match call {
                        // Exactly one answer per call: a panic becomes an error for the script.
                        Some(call_id) if e.is_panic() => {
                            tracing::error!(call = call_id, "a tool call task panicked");
                            // Its request (if sent) stays in `sent`: `cancel_all` withdraws it.
                            let error = crate::unwind::panic_error("tool call", "task panicked");
                            return (call_id, Err(error), None);
                        }
                        _ => continue, // aborted: the run is ending, nothing to deliver
                    }
                }
                None => std::future::pending().await,
            }
        }
    }

    /// Ends every call still in flight and tells the client with `$/cancelRequest`.
    pub async fn cancel_all(&mut self) {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        self.tasks.clear();
        let ids: Vec<String> = lock(&self.sent).drain().map(|(_, id)| id).collect();
        for id in ids {
            self.peer.cancel(&id).await;
        }
    }
}

/// The error a call too large to relay gets (the shim refuses it before sending, too).
pub fn too_large(size: usize, limit: usize) -> RpcError {
    RpcError::new(
        error::INVALID_PARAMS,
        format!(
            "tool call arguments are {size} bytes of JSON, over max_tool_argument_bytes = {limit}"
        ),
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unreachable_client(gone: PeerGone) -> RpcError {
    RpcError::new(
        error::INTERNAL_ERROR,
        format!("tool call not answered: {gone}"),
    )
}
