//! The outbound side of one connection.
//!
//! Every line the daemon writes to a client — responses, notifications and its own `tool/call`
//! requests — goes through one bounded queue to one writer task, so lines never interleave and a
//! client that stops reading slows down only its own runs.
//!
//! Requests the daemon sends wait in a table keyed by their string id (`"t-1"`, `"t-2"`, …).
//! An answer is delivered at most once, to the call that is still waiting for it; an answer for an
//! id that is no longer pending is logged and dropped, never misdelivered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::error::RpcError;
use super::message::{error_line, request_line, response_line, Id, Raw};

/// The outcome of a request the daemon sent: the client's result (raw JSON, forwarded as it
/// came) or error.
pub type Outcome = Result<Raw, RpcError>;

/// Why an outbound request has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerGone {
    #[error("the client closed the connection")]
    Closed,
    #[error(
        "the client stopped sending (its side of the connection is shut down), so it cannot answer"
    )]
    InputClosed,
}

/// The writer queue and the table of the daemon's pending requests for one connection.
pub struct Peer {
    out: mpsc::Sender<Vec<u8>>,
    next_id: AtomicU64,
    /// `None` once the client can no longer answer.
    pending: Mutex<Option<HashMap<String, oneshot::Sender<Outcome>>>>,
}

/// A request sent to the client, waiting for its answer.
pub struct PendingRequest {
    pub id: String,
    rx: oneshot::Receiver<Outcome>,
}

impl PendingRequest {
    /// Waits for the answer; `Err` if the connection went away first.
    pub async fn answer(self) -> Result<Outcome, PeerGone> {
        self.rx.await.map_err(|_| PeerGone::Closed)
    }
}

impl Peer {
    pub fn new(out: mpsc::Sender<Vec<u8>>) -> Self {
        Peer {
            out,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(Some(HashMap::new())),
        }
    }

    fn table(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<HashMap<String, oneshot::Sender<Outcome>>>> {
        // A poisoned lock only means another task panicked mid-insert; the map is still usable.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn send(&self, line: Vec<u8>) -> Result<(), PeerGone> {
        self.out.send(line).await.map_err(|_| PeerGone::Closed)
    }

    pub async fn respond<T: Serialize>(&self, id: &Id, result: &T) -> Result<(), PeerGone> {
        self.send(response_line(id, result)).await
    }

    pub async fn respond_error(&self, id: &Id, error: &RpcError) -> Result<(), PeerGone> {
        self.send(error_line(id, error)).await
    }

    pub async fn notify<T: Serialize>(&self, method: &str, params: &T) -> Result<(), PeerGone> {
        self.send(request_line(None, method, params)).await
    }

    /// A fresh id for [`Peer::request`]: `"t-1"`, `"t-2"`, …
    pub fn new_request_id(&self) -> String {
        format!("t-{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Sends a request with id `id` (from [`Peer::new_request_id`]) and registers it as pending.
    /// The caller knows the id before anything is sent, so it can always cancel it later.
    pub async fn request<T: Serialize>(
        &self,
        id: String,
        method: &str,
        params: &T,
    ) -> Result<PendingRequest, PeerGone> {
        let (tx, rx) = oneshot::channel();
        match self.table().as_mut() {
            Some(table) => table.insert(id.clone(), tx),
            None => return Err(PeerGone::InputClosed),
        };
        if let Err(gone) = self
            .send(request_line(Some(&Id::String(id.clone())), method, params))
            .await
        {
            self.forget(&id);
            return Err(gone);
        }
        Ok(PendingRequest { id, rx })
    }

    /// Delivers a client's answer. Returns false (and drops it) if nothing waits for that id.
    pub fn deliver(&self, id: &Id, outcome: Outcome) -> bool {
        let waiting = match (id, self.table().as_mut()) {
            (Id::String(id), Some(table)) => table.remove(id),
            _ => None,
        };
        match waiting {
            Some(tx) => tx.send(outcome).is_ok(),
            None => false,
        }
    }

    fn forget(&self, id: &str) -> bool {
        self.table()
            .as_mut()
            .and_then(|table| table.remove(id))
            .is_some()
    }

    /// Withdraws a request nobody waits for any more and tells the client with `$/cancelRequest`.
    pub async fn cancel(&self, id: &str) {
        if self.forget(id) {
            let _ = self.notify("$/cancelRequest", &json!({ "id": id })).await;
        }
    }

    /// The client can no longer answer: fail every pending request and refuse new ones.
    pub fn close_input(&self) {
        // Dropping the senders wakes every waiter with `PeerGone::Closed`.
        self.table().take();
    }

    /// True once the client can no longer answer requests.
    pub fn input_closed(&self) -> bool {
        self.table().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Raw {
        serde_json::value::RawValue::from_string(text.into()).expect("valid JSON")
    }

    /// A peer with one `tool/call` sent, its outbound queue, and the pending request.
    async fn peer_with_request() -> (Peer, mpsc::Receiver<Vec<u8>>, PendingRequest) {
        let (tx, rx) = mpsc::channel(8);
        let peer = Peer::new(tx);
        let pending = peer
            .request(peer.new_request_id(), "tool/call", &json!({}))
            .await
            .expect("queue open");
        (peer, rx, pending)
    }

    #[tokio::test]
    async fn answer_is_delivered_once_to_its_request() {
        let (peer, mut rx, pending) = peer_with_request().await;
        let line = rx.recv().await.expect("request written");
        assert!(String::from_utf8_lossy(&line).contains("\"id\":\"t-1\""));
        assert!(peer.deliver(&Id::from("t-1"), Ok(raw("42"))));
        assert!(
            !peer.deliver(&Id::from("t-1"), Ok(raw("43"))),
            "second answer must be dropped"
        );
        let answer = pending.answer().await.expect("answered");
        assert_eq!(answer.map(|r| r.get().to_string()), Ok("42".to_string()));
    }

    #[tokio::test]
    async fn cancelled_request_sends_cancel_notification_and_ignores_late_answer() {
        let (peer, mut rx, pending) = peer_with_request().await;
        let _request = rx.recv().await;
        peer.cancel(&pending.id).await;
        let note = rx.recv().await.expect("cancel written");
        assert!(String::from_utf8_lossy(&note).contains("$/cancelRequest"));
        assert!(!peer.deliver(&Id::from("t-1"), Ok(raw("1"))));
    }

    #[tokio::test]
    async fn closing_input_fails_pending_and_new_requests() {
        let (peer, _rx, pending) = peer_with_request().await;
        peer.close_input();
        assert_eq!(pending.answer().await.err(), Some(PeerGone::Closed));
        assert_eq!(
            peer.request(peer.new_request_id(), "tool/call", &json!({}))
                .await
                .err(),
            Some(PeerGone::InputClosed)
        );
    }
}
