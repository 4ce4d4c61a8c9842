//! The tool calls of one run: from the child's `tool_call` to the client's `tool/call` and back.
//!
//! Each call becomes a task that waits for a concurrency permit (`max_concurrent_tool_calls`),
//! sends the request through the connection's [`Peer`] and waits for the answer. The relay keeps
//! the daemon-side id of every request still out, so that when the run ends the client is told
//! with `$/cancelRequest` about exactly the calls nobody waits for any more.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::rpc::error::{self, RpcError};
use crate::rpc::peer::{Outcome, PeerGone};
use crate::rpc::{Id, Peer};

/// Identifies the run on `tool/call` requests.
pub struct RunRef {
    pub run_id: String,
    pub request_id: Id,
    /// Set for the runs of a session.
    pub session_id: Option<String>,
}

pub struct Relay {
    peer: Arc<Peer>,
    run: Arc<RunRef>,
    tools: HashSet<String>,
    permits: Arc<Semaphore>,
    in_flight: JoinSet<(u64, Outcome)>,
    /// call id → daemon request id, for the calls sent and not yet answered.
    sent: Arc<Mutex<HashMap<u64, String>>>,
    seen_ids: HashSet<u64>,
    /// Calls started so far.
    pub count: u64,
}

/// What to do with a `tool_call` from the child.
pub enum Admission {
    /// The call was started.
    Started,
    /// Answer the child at once with this error (unknown tool, reused id).
    Refused(RpcError),
}

impl Relay {
    pub fn new(peer: Arc<Peer>, run: RunRef, tools: HashSet<String>, max_concurrent: u64) -> Relay {
        Relay {
            peer,
            run: Arc::new(run),
            tools,
            permits: Arc::new(Semaphore::new(max_concurrent.clamp(1, 1 << 20) as usize)),
            in_flight: JoinSet::new(),
            sent: Arc::default(),
            seen_ids: HashSet::new(),
            count: 0,
        }
    }

    /// Starts relaying one call.
    pub fn start(
        &mut self,
        call_id: u64,
        name: String,
        arguments: Map<String, Value>,
    ) -> Admission {
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
        self.count += 1;
        let peer = self.peer.clone();
        let run = self.run.clone();
        let permits = self.permits.clone();
        let sent = self.sent.clone();
        let span = tracing::info_span!("tool_call", call = call_id, tool = %name);
        let task = async move {
            let _permit = permits.acquire_owned().await;
            let mut params = json!({
                "run_id": run.run_id,
                "request_id": run.request_id,
                "call_id": call_id,
                "name": name,
                "arguments": arguments,
            });
            if let (Some(session), Some(p)) = (&run.session_id, params.as_object_mut()) {
                p.insert("session_id".into(), Value::String(session.clone()));
            }
            let id = peer.new_request_id();
            lock(&sent).insert(call_id, id.clone());
            let outcome = match peer.request(id, "tool/call", &params).await {
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
            (call_id, outcome)
        };
        self.in_flight.spawn(task.instrument(span));
        Admission::Started
    }

    /// True when no call is in flight.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// The next answered call. Pending forever when idle (use [`Relay::is_idle`] as a guard).
    pub async fn next_answer(&mut self) -> (u64, Outcome) {
        loop {
            match self.in_flight.join_next().await {
                Some(Ok(answer)) => return answer,
                Some(Err(_)) => continue, // a call task was aborted; nothing to deliver
                None => std::future::pending().await,
            }
        }
    }

    /// Ends every call still in flight and tells the client with `$/cancelRequest`.
    pub async fn cancel_all(&mut self) {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        let ids: Vec<String> = lock(&self.sent).drain().map(|(_, id)| id).collect();
        for id in ids {
            self.peer.cancel(&id).await;
        }
    }
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
