//! A small async JSON-RPC client of the daemon's socket, as `ptcd mcp` uses it.
//!
//! One connection, many requests in flight: each request gets a numeric id and a slot in the
//! pending table; a reader task matches responses to slots and routes `run/output`
//! notifications to the request they name. The daemon may also *call* us (`tool/call`): `ptcd
//! mcp` declares no client tools, so any such call is answered with an error at once (a script
//! can only reach tools the daemon serves itself: MCP servers and the discovery built-ins).
//!
//! Memory: a line from the daemon is bounded ([`MAX_LINE_BYTES`]); streamed output waits in a
//! bounded queue per request and is dropped, not buffered, when the MCP host reads slower than
//! the script prints (the final result carries the output anyway).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use crate::rpc::codec::{Frame, LineReader};

/// The longest line accepted from the daemon. A run result holds at most `max_output_bytes` of
/// stdout and of stderr plus the value; this leaves room for the largest policy's.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// Streamed output chunks queued per request before further chunks are dropped.
const OUTPUT_QUEUE: usize = 256;

/// A failed request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DaemonError {
    /// The daemon answered with a JSON-RPC error.
    #[error("{message} (error {code})")]
    Rpc {
        code: i64,
        message: String,
        data: Option<Value>,
    },
    /// The connection is gone (daemon stopped or restarted).
    #[error("lost the connection to the ptcd daemon: {0}")]
    Gone(String),
}

impl DaemonError {
    /// The JSON-RPC error code, if the daemon answered with one.
    pub fn code(&self) -> Option<i64> {
        match self {
            DaemonError::Rpc { code, .. } => Some(*code),
            DaemonError::Gone(_) => None,
        }
    }
}

/// One `run/output` notification's payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// `"stdout"` or `"stderr"`.
    pub stream: String,
    pub text: String,
}

struct Slot {
    answer: oneshot::Sender<Result<Value, DaemonError>>,
    output: Option<mpsc::Sender<Output>>,
}

#[derive(Default)]
struct Table {
    slots: HashMap<u64, Slot>,
    /// Set when the reader stopped: new requests fail at once.
    closed: Option<String>,
}

/// A request sent and not yet answered.
pub struct Call {
    pub id: u64,
    pub answer: oneshot::Receiver<Result<Value, DaemonError>>,
    /// The request's `run/output` notifications (when asked for).
    pub output: Option<mpsc::Receiver<Output>>,
}

/// A connection to the daemon. Cheap to clone.
#[derive(Clone)]
pub struct DaemonClient {
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    table: Arc<Mutex<Table>>,
    next_id: Arc<AtomicU64>,
}

impl DaemonClient {
    /// Connects to the daemon's socket and starts the reader task.
    pub async fn connect(path: &Path) -> std::io::Result<DaemonClient> {
        let stream = UnixStream::connect(path).await?;
        let (read, write) = stream.into_split();
        let client = DaemonClient {
            writer: Arc::new(tokio::sync::Mutex::new(write)),
            table: Arc::new(Mutex::new(Table::default())),
            next_id: Arc::new(AtomicU64::new(1)),
        };
        let reader = client.clone();
        tokio::spawn(async move {
            let why = reader.read_loop(BufReader::new(read)).await;
            reader.close(why);
        });
        Ok(client)
    }

    /// Sends a request and waits for its answer.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, DaemonError> {
        let call = self.start(method, params, false).await?;
        call.answer
            .await
            .unwrap_or_else(|_| Err(DaemonError::Gone("the reader stopped".into())))
    }

    /// Sends a request; its answer (and, with `with_output`, its `run/output` notifications)
    /// arrive on the returned [`Call`].
    pub async fn start(
        &self,
        method: &str,
        params: Value,
        with_output: bool,
    ) -> Result<Call, DaemonError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer_tx, answer) = oneshot::channel();
        let (output_tx, output) = if with_output {
            let (tx, rx) = mpsc::channel(OUTPUT_QUEUE);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        {
            let mut table = lock(&self.table);
            if let Some(why) = &table.closed {
                return Err(DaemonError::Gone(why.clone()));
            }
            table.slots.insert(
                id,
                Slot {
                    answer: answer_tx,
                    output: output_tx,
                },
            );
        }
        let line = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        if let Err(e) = self.send(&line).await {
            lock(&self.table).slots.remove(&id);
            return Err(e);
        }
        Ok(Call { id, answer, output })
    }

    /// True once the connection is gone.
    pub fn is_closed(&self) -> bool {
        lock(&self.table).closed.is_some()
    }

    async fn send(&self, message: &Value) -> Result<(), DaemonError> {
        let mut line = serde_json::to_vec(message).map_err(|e| DaemonError::Gone(e.to_string()))?;
        line.push(b'\n');
        let mut writer = self.writer.lock().await;
        writer
            .write_all(&line)
            .await
            .map_err(|e| DaemonError::Gone(e.to_string()))
    }

    /// Reads until the daemon closes the connection; returns why it ended.
    async fn read_loop(&self, read: BufReader<tokio::net::unix::OwnedReadHalf>) -> String {
        let mut lines = LineReader::new(read, MAX_LINE_BYTES);
        loop {
            match lines.next_frame().await {
                Ok(Some(Frame::Line(line))) => self.dispatch(&line).await,
                Ok(Some(Frame::TooLong)) => {
                    // Its id is unknown: the request it answered would wait forever, so end the
                    // connection (every pending request fails with this message).
                    return format!("the daemon sent a line longer than {MAX_LINE_BYTES} bytes");
                }
                Ok(None) => return "the daemon closed the connection".into(),
                Err(e) => return format!("reading from the daemon: {e}"),
            }
        }
    }

    async fn dispatch(&self, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let Ok(message) = serde_json::from_slice::<Value>(line) else {
            tracing::warn!("ignoring a line from the daemon that is not JSON");
            return;
        };
        match (message.get("method"), message.get("id")) {
            (Some(method), Some(id)) => {
                // A request from the daemon: we declare no tools, so none is ours to answer.
                let method = method.as_str().unwrap_or_default();
                let error = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601,
                    "message": format!("ptcd mcp declares no client tools (method {method})")}});
                if let Err(e) = self.send(&error).await {
                    tracing::debug!(%e, "answering a daemon request");
                }
            }
            (Some(method), None) => {
                if method == "run/output" {
                    self.route_output(message.get("params"));
                }
            }
            (None, Some(id)) => self.deliver(id, &message),
            (None, None) => {
                tracing::warn!("ignoring a message from the daemon without id or method")
            }
        }
    }

    fn route_output(&self, params: Option<&Value>) {
        let Some(params) = params else { return };
        let Some(id) = params.get("request_id").and_then(Value::as_u64) else {
            return;
        };
        let output = Output {
            stream: params
                .get("stream")
                .and_then(Value::as_str)
                .unwrap_or("stdout")
                .to_string(),
            text: params
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        };
        let table = lock(&self.table);
        if let Some(tx) = table.slots.get(&id).and_then(|s| s.output.as_ref()) {
            // Full: the host reads slower than the script prints; the result has the output.
            let _ = tx.try_send(output);
        }
    }

    fn deliver(&self, id: &Value, message: &Value) {
        let Some(id) = id.as_u64() else {
            tracing::warn!(%id, "ignoring a response to an id we never sent");
            return;
        };
        let Some(slot) = lock(&self.table).slots.remove(&id) else {
            tracing::warn!(id, "ignoring a response to no pending request");
            return;
        };
        let outcome = match message.get("error") {
            Some(error) => Err(DaemonError::Rpc {
                code: error.get("code").and_then(Value::as_i64).unwrap_or(-32603),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("error without message")
                    .to_string(),
                data: error.get("data").cloned(),
            }),
            None => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
        };
        let _ = slot.answer.send(outcome);
    }

    /// Fails every pending request and every later one with `why`.
    fn close(&self, why: String) {
        let slots = {
            let mut table = lock(&self.table);
            table.closed = Some(why.clone());
            std::mem::take(&mut table.slots)
        };
        for (_, slot) in slots {
            let _ = slot.answer.send(Err(DaemonError::Gone(why.clone())));
        }
    }
}

fn lock(table: &Mutex<Table>) -> std::sync::MutexGuard<'_, Table> {
    table
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    /// A fake daemon on a socket pair: answers what the test scripts.
    async fn pair() -> (DaemonClient, tokio::net::UnixStream) {
        let dir = std::env::temp_dir().join(format!(
            "ptcd-mcp-client-test-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let (client, accepted) = tokio::join!(DaemonClient::connect(&path), listener.accept());
        std::fs::remove_dir_all(&dir).unwrap();
        (client.unwrap(), accepted.unwrap().0)
    }

    fn rand_suffix() -> u64 {
        use std::time::{SystemTime, UNIX_EPOCH};
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn answers_out_of_order_reach_their_requests_and_output_its_run() {
        let (client, server) = pair().await;
        let (read, mut write) = server.into_split();
        let mut lines = tokio::io::BufReader::new(read).lines();
        let a = client
            .start("run", json!({"code": "a"}), true)
            .await
            .unwrap();
        let b = client
            .start("run", json!({"code": "b"}), false)
            .await
            .unwrap();
        let first: Value =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(first["id"], a.id);
        write
            .write_all(
                format!(
                    "{}\n{}\n{}\n",
                    json!({"jsonrpc":"2.0","method":"run/output","params":{"run_id":"r-1","request_id":a.id,"stream":"stdout","text":"hi\n"}}),
                    json!({"jsonrpc":"2.0","id":b.id,"error":{"code":-32008,"message":"MCP server unavailable: x: gone"}}),
                    json!({"jsonrpc":"2.0","id":a.id,"result":{"status":"ok"}}),
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let err = b.answer.await.unwrap().unwrap_err();
        assert_eq!(err.code(), Some(-32008));
        assert_eq!(a.answer.await.unwrap().unwrap()["status"], "ok");
        let mut output = a.output.unwrap();
        assert_eq!(
            output.recv().await.unwrap(),
            Output {
                stream: "stdout".into(),
                text: "hi\n".into()
            }
        );
    }

    #[tokio::test]
    async fn a_tool_call_from_the_daemon_is_refused_not_left_waiting() {
        let (_client, server) = pair().await;
        let (read, mut write) = server.into_split();
        let mut lines = tokio::io::BufReader::new(read).lines();
        write
            .write_all(
                b"{\"jsonrpc\":\"2.0\",\"id\":\"t-1\",\"method\":\"tool/call\",\"params\":{}}\n",
            )
            .await
            .unwrap();
        let answer: Value =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(answer["id"], "t-1");
        assert_eq!(answer["error"]["code"], -32601);
    }

    #[tokio::test]
    async fn a_closed_connection_fails_pending_and_later_requests() {
        let (client, server) = pair().await;
        let call = client.start("run", json!({}), false).await.unwrap();
        drop(server);
        assert!(matches!(
            call.answer.await.unwrap(),
            Err(DaemonError::Gone(_))
        ));
        assert!(matches!(
            client.call("initialize", json!({})).await,
            Err(DaemonError::Gone(_))
        ));
    }
}
