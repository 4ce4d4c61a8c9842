//! The outbound side of one connection.
//!
//! Every line the daemon writes to a client — responses, notifications and its own `tool/call`
//! requests — goes through one queue to one writer task, so lines never interleave. The queue is
//! bounded in bytes, twice: per connection (`client_queue_bytes`) and across all connections
//! (`client_queue_total_bytes`). A line waits for both charges before it is queued, so a client
//! that stops reading stops its own producers (its runs and its reader) instead of growing the
//! daemon; the charges are given back when the writer has written the line.
//!
//! Requests the daemon sends wait in a table keyed by a typed [`OutgoingId`] (on the wire the
//! string `"t-1"`, `"t-2"`, …; lsp-server's `req_queue` has the same shape). An answer is delivered at most once, to the call that is still waiting for it; an answer for an
//! id that is no longer pending is logged and dropped, never misdelivered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::error::RpcError;
use super::message::{error_line, request_line, response_line, Id, Raw};
use crate::budget::{ByteBudget, Charge};

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

/// The id of a request the daemon sent: allocated by [`Peer::new_request_id`], `"t-N"` on the
/// wire. An answer's id matches only if it is exactly that string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutgoingId(u64);

impl OutgoingId {
    /// The outgoing id an answer refers to, if its id is one the daemon could have sent.
    pub fn from_wire(id: &Id) -> Option<OutgoingId> {
        let Id::String(text) = id else { return None };
        let n: u64 = text.strip_prefix("t-")?.parse().ok()?;
        // "t-01" or "t-+1" parse to 1 but are not what the daemon sent.
        (OutgoingId(n).to_string() == *text).then_some(OutgoingId(n))
    }

    /// The id as sent on the wire.
    pub fn to_wire(self) -> Id {
        Id::String(self.to_string())
    }
}

impl std::fmt::Display for OutgoingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "t-{}", self.0)
    }
}

impl Serialize for OutgoingId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What a queued line costs beyond its bytes (the queue slot and the `Vec` header).
const LINE_OVERHEAD: usize = 64;

/// One line waiting for the writer, with the bytes it holds in both budgets.
pub struct QueuedLine {
    pub bytes: Vec<u8>,
    _conn: Charge,
    _global: Charge,
}

/// The producing side of a connection's outbound queue.
pub struct Outbox {
    tx: mpsc::UnboundedSender<QueuedLine>,
    conn: Arc<ByteBudget>,
    global: Arc<ByteBudget>,
}

/// The writer's side of the queue.
pub struct OutboxReader {
    rx: mpsc::UnboundedReceiver<QueuedLine>,
    conn: Arc<ByteBudget>,
}

/// A queue holding at most `per_connection` bytes, charged to `global` as well.
pub fn outbox(per_connection: usize, global: Arc<ByteBudget>) -> (Outbox, OutboxReader) {
    let (tx, rx) = mpsc::unbounded_channel();
    let conn = ByteBudget::new(per_connection);
    (
        Outbox {
            tx,
            conn: conn.clone(),
            global,
        },
        OutboxReader { rx, conn },
    )
}

impl Outbox {
    /// Waits for room in both budgets, then queues the line.
    async fn push(&self, bytes: Vec<u8>) -> Result<(), PeerGone> {
        let cost = bytes.len() + LINE_OVERHEAD;
        let conn = self
            .conn
            .acquire(cost)
            .await
            .map_err(|_| PeerGone::Closed)?;
        let global = tokio::select! {
            charge = self.global.acquire(cost) => charge.map_err(|_| PeerGone::Closed)?,
            // The writer gave up while this line waited for the global budget.
            _ = self.tx.closed() => return Err(PeerGone::Closed),
        };
        let line = QueuedLine {
            bytes,
            _conn: conn,
            _global: global,
        };
        // A failed send drops the line, and with it its charges.
        self.tx.send(line).map_err(|_| PeerGone::Closed)
    }
}

impl OutboxReader {
    /// The next line; `None` once every producer is gone.
    pub async fn recv(&mut self) -> Option<QueuedLine> {
        self.rx.recv().await
    }

    /// The next line if one is queued already (the writer batches what a burst queued).
    pub fn try_recv(&mut self) -> Option<QueuedLine> {
        self.rx.try_recv().ok()
    }

    /// The writer stops: producers waiting for room fail at once, queued lines are dropped and
    /// their bytes given back.
    pub fn close(&mut self) {
        self.conn.close();
        self.rx.close();
        while self.rx.try_recv().is_ok() {}
    }
}

/// The writer queue and the table of the daemon's pending requests for one connection.
pub struct Peer {
    out: Outbox,
    next_id: AtomicU64,
    /// `None` once the client can no longer answer.
    pending: Mutex<Option<HashMap<OutgoingId, oneshot::Sender<Outcome>>>>,
}

/// A request sent to the client, waiting for its answer.
pub struct PendingRequest {
    pub id: OutgoingId,
    rx: oneshot::Receiver<Outcome>,
}

impl PendingRequest {
    /// Waits for the answer; `Err` if the connection went away first.
    pub async fn answer(self) -> Result<Outcome, PeerGone> {
        self.rx.await.map_err(|_| PeerGone::Closed)
    }
}

impl Peer {
    pub fn new(out: Outbox) -> Self {
        Peer {
            out,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(Some(HashMap::new())),
        }
    }

    fn table(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<HashMap<OutgoingId, oneshot::Sender<Outcome>>>> {
        // A poisoned lock only means another task panicked mid-insert; the map is still usable.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn send(&self, line: Vec<u8>) -> Result<(), PeerGone> {
        self.out.push(line).await
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

    /// A fresh id for [`Peer::request`]: `"t-1"`, `"t-2"`, … on the wire.
    pub fn new_request_id(&self) -> OutgoingId {
        OutgoingId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Sends a request with id `id` (from [`Peer::new_request_id`]) and registers it as pending.
    /// The caller knows the id before anything is sent, so it can always cancel it later.
    pub async fn request<T: Serialize>(
        &self,
        id: OutgoingId,
        method: &str,
        params: &T,
    ) -> Result<PendingRequest, PeerGone> {
        let (tx, rx) = oneshot::channel();
        match self.table().as_mut() {
            Some(table) => table.insert(id, tx),
            None => return Err(PeerGone::InputClosed),
        };
        if let Err(gone) = self
            .send(request_line(Some(&id.to_wire()), method, params))
            .await
        {
            self.forget(id);
            return Err(gone);
        }
        Ok(PendingRequest { id, rx })
    }

    /// Delivers a client's answer. Returns false (and drops it) if nothing waits for that id.
    pub fn deliver(&self, id: &Id, outcome: Outcome) -> bool {
        let waiting = match (OutgoingId::from_wire(id), self.table().as_mut()) {
            (Some(id), Some(table)) => table.remove(&id),
            _ => None,
        };
        match waiting {
            Some(tx) => tx.send(outcome).is_ok(),
            None => false,
        }
    }

    fn forget(&self, id: OutgoingId) -> bool {
        self.table()
            .as_mut()
            .and_then(|table| table.remove(&id))
            .is_some()
    }

    /// Withdraws a request nobody waits for any more and tells the client with `$/cancelRequest`.
    pub async fn cancel(&self, id: OutgoingId) {
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
    async fn peer_with_request() -> (Peer, OutboxReader, PendingRequest) {
        let (tx, rx) = outbox(1 << 20, ByteBudget::new(1 << 20));
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
        let line = rx.recv().await.expect("request written").bytes;
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
        peer.cancel(pending.id).await;
        let note = rx.recv().await.expect("cancel written").bytes;
        assert!(String::from_utf8_lossy(&note).contains("$/cancelRequest"));
        assert!(!peer.deliver(&Id::from("t-1"), Ok(raw("1"))));
    }

    #[test]
    fn answer_id_matches_only_the_exact_text_sent() {
        let id = OutgoingId(7);
        assert_eq!(OutgoingId::from_wire(&id.to_wire()), Some(id));
        for other in ["t-07", "t-+7", "7", "t-", "u-7"] {
            assert_eq!(OutgoingId::from_wire(&Id::from(other)), None, "{other}");
        }
        assert_eq!(OutgoingId::from_wire(&Id::Number("7".into())), None);
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

    #[tokio::test]
    async fn queue_is_bounded_in_bytes_per_connection_and_globally() {
        let global = ByteBudget::new(10_000);
        let (a, mut a_rx) = outbox(4_000, global.clone());
        let (b, _b_rx) = outbox(20_000, global.clone());
        let a = Peer::new(a);
        let b = Peer::new(b);
        let big = "x".repeat(3_000);
        a.notify("n", &big).await.expect("fits");
        // A second 3 kB line does not fit in a's 4 kB: it waits until the writer takes the first.
        let second = a.notify("n", &big);
        tokio::pin!(second);
        assert!(poll_once(second.as_mut()).await.is_none());
        let first = a_rx.recv().await.expect("queued");
        assert!(
            poll_once(second.as_mut()).await.is_none(),
            "still charged until written"
        );
        drop(first);
        second.await.expect("room after the write");
        // b is within its own budget but the global one (10 kB) is used up by a + b.
        b.notify("n", &big).await.expect("fits");
        b.notify("n", &big).await.expect("fits");
        assert!(global.in_use() > 9_000);
        let third = b.notify("n", &big);
        tokio::pin!(third);
        assert!(
            poll_once(third.as_mut()).await.is_none(),
            "global budget full"
        );
        a_rx.close();
        third.await.expect("a's queued line gave its bytes back");
        assert_eq!(
            a.notify("n", &big).await,
            Err(PeerGone::Closed),
            "a closed writer fails producers at once"
        );
    }

    async fn poll_once<F: std::future::Future + Unpin>(mut f: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
