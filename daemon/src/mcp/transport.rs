//! Connecting to one MCP server: a stdio child or a streamable HTTP endpoint, up to an
//! initialized rmcp client session ([`Connection`]).
//!
//! Stdio: the child is started by `sandbox::spawn_mcp_server` (the daemon's single spawn path);
//! its stdout is read by rmcp's bounded line reader (`max_line_bytes`; a longer line is dropped,
//! and announced by [`Connection::oversized`] so the calls pending then fail at once, naming the
//! limit, instead of waiting for their timeout), its
//! stderr drained into a 4 KiB tail (`stderr.rs`). The child leads its own process group; closing
//! the connection kills the group and reaps the child, with a deadline.
//! HTTP: rmcp's streamable HTTP client with the table's headers, its SSE events and JSON bodies
//! capped at `max_line_bytes` too.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rmcp::model::{ClientConfig, Implementation};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, Peer, RoleClient, ServiceExt};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::process::Child;
use tokio_util::sync::CancellationToken;

use super::stderr::{self, StderrTail};
use crate::config::{McpServerConfig, McpTransport};
use crate::sandbox::spawn::{spawn_mcp_server, McpServerCommand};

/// How long closing a connection waits for its child to be reaped after SIGKILL.
const REAP_DEADLINE: Duration = Duration::from_secs(2);

/// How long an error about a server that went away waits for the rest of its stderr.
const STDERR_SETTLE: Duration = Duration::from_millis(500);

/// The daemon's side of the session: it serves nothing to the server (no sampling, no roots),
/// and notes `notifications/tools/list_changed` so the tool list is fetched again.
#[derive(Clone, Default)]
pub struct Handler {
    list_changed: Arc<AtomicBool>,
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changed.store(true, Ordering::Release);
    }

    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        info.client_info = Implementation::new("ptcd", env!("CARGO_PKG_VERSION"));
        info
    }
}

/// An initialized session with one server (and, for stdio, its process).
pub struct Connection {
    peer: Peer<RoleClient>,
    /// Taken by [`Connection::close`].
    service: tokio::sync::Mutex<Option<RunningService<RoleClient, Handler>>>,
    list_changed: Arc<AtomicBool>,
    /// The stdio server's process, taken by [`Connection::close`].
    process: tokio::sync::Mutex<Option<Process>>,
    pid: Option<u32>,
    tail: Option<Arc<StderrTail>>,
    /// Fired when the stdio server's stderr reached its end.
    drained: CancellationToken,
    /// How many lines from the server were dropped for being over `max_line_bytes`.
    oversized: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Connection {
    /// Starts (stdio) or reaches (HTTP) the server and runs `initialize`, by `deadline` (the
    /// start's `startup_timeout_ms`); a stdio child that misses it is killed and reaped. (A
    /// dropped future kills the child's group too; tokio reaps it.)
    pub async fn open(
        config: &McpServerConfig,
        max_line_bytes: usize,
        deadline: tokio::time::Instant,
    ) -> Result<Self, String> {
        let late = || {
            format!(
                "did not start within startup_timeout_ms = {}",
                config.startup_timeout_ms
            )
        };
        let handler = Handler::default();
        let list_changed = handler.list_changed.clone();
        let oversized = Arc::new(tokio::sync::watch::Sender::new(0u64));
        match &config.transport {
            McpTransport::Stdio {
                command,
                args,
                env,
                cwd,
            } => {
                let mut child = spawn_mcp_server(&McpServerCommand {
                    command,
                    args,
                    env,
                    cwd: cwd.as_deref(),
                })
                .map_err(|e| format!("cannot start {command:?}: {e}"))?;
                let tail = Arc::new(StderrTail::default());
                let (Some(stdin), Some(stdout), Some(err)) =
                    (child.stdin.take(), child.stdout.take(), child.stderr.take())
                else {
                    return Err("the child's pipes are missing".into());
                };
                let drained = CancellationToken::new();
                let done = drained.clone();
                let drainer = tokio::spawn({
                    let tail = tail.clone();
                    async move {
                        stderr::drain(err, tail).await;
                        done.cancel();
                    }
                });
                let mut process = Process {
                    child,
                    tail,
                    drainer,
                    drained,
                };
                let reader = LineWatch::new(stdout, max_line_bytes, oversized.clone());
                let transport = AsyncRwTransport::new_client(reader, stdin)
                    .with_max_line_length(max_line_bytes);
                // The handshake, unless the server exits first (rmcp would only notice at the
                // deadline) or the deadline passes.
                let handshake = tokio::select! {
                    served = tokio::time::timeout_at(deadline, handler.serve(transport)) => served,
                    status = process.child.wait() => {
                        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                        process.kill().await;
                        return Err(format!(
                            "exited during start-up ({status}){}",
                            process.tail.suffix()
                        ));
                    }
                };
                match handshake {
                    Ok(Ok(service)) => Ok(Connection {
                        peer: service.peer().clone(),
                        service: tokio::sync::Mutex::new(Some(service)),
                        list_changed,
                        pid: process.child.id(),
                        tail: Some(process.tail.clone()),
                        drained: process.drained.clone(),
                        process: tokio::sync::Mutex::new(Some(process)),
                        oversized,
                    }),
                    Ok(Err(e)) => {
                        process.kill().await;
                        Err(format!("initialize failed: {e}{}", process.tail.suffix()))
                    }
                    Err(_) => {
                        process.kill().await;
                        Err(format!("{}{}", late(), process.tail.suffix()))
                    }
                }
            }
            McpTransport::Http { url, headers } => {
                let headers = headers
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((
                            http::HeaderName::from_bytes(k.as_bytes()).ok()?,
                            http::HeaderValue::from_str(v).ok()?,
                        ))
                    })
                    .collect();
                let transport = StreamableHttpClientTransport::from_config(
                    StreamableHttpClientTransportConfig::with_uri(url.as_str())
                        .custom_headers(headers)
                        .max_sse_event_size(max_line_bytes)
                        .max_json_response_size(max_line_bytes),
                );
                let service = tokio::time::timeout_at(deadline, handler.serve(transport))
                    .await
                    .map_err(|_| late())?
                    .map_err(|e| format!("initialize failed: {e}"))?;
                Ok(Connection {
                    peer: service.peer().clone(),
                    service: tokio::sync::Mutex::new(Some(service)),
                    list_changed,
                    process: tokio::sync::Mutex::new(None),
                    pid: None,
                    tail: None,
                    drained: CancellationToken::new(),
                    oversized,
                })
            }
        }
    }

    pub fn peer(&self) -> &Peer<RoleClient> {
        &self.peer
    }

    /// The session ended (the server exited or closed the stream, or it was closed here). A
    /// stdio server that has exited counts as closed at once, even before rmcp has read the end
    /// of its stdout: a call must not be sent to a dead server just after a crash.
    pub fn is_closed(&self) -> bool {
        if self.peer.is_transport_closed() {
            return true;
        }
        if self.pid.is_none() {
            return false; // HTTP: no process of ours
        }
        match self.process.try_lock() {
            Ok(mut process) => match process.as_mut() {
                Some(p) => !matches!(p.child.try_wait(), Ok(None)),
                None => true, // taken by `close`
            },
            // Being closed right now.
            Err(_) => false,
        }
    }

    /// The server said its tool list changed since it was last fetched.
    pub fn list_changed(&self) -> bool {
        self.list_changed.load(Ordering::Acquire)
    }

    /// Called just before the tool list is fetched.
    pub fn clear_list_changed(&self) {
        self.list_changed.store(false, Ordering::Release);
    }

    /// Resolves when the server sends a line over `max_line_bytes` (dropped unread) after this
    /// was called; never, for a server that keeps to the limit.
    pub fn oversized(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut seen = self.oversized.subscribe();
        seen.mark_unchanged();
        async move {
            if seen.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The stdio server's pid, while it has not been reaped.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// `"; stderr: <tail>"` once the server's stderr has ended (waiting at most
    /// [`STDERR_SETTLE`]): the last words of a server that went away.
    pub async fn last_words(&self) -> String {
        if self.tail.is_some() {
            let _ = tokio::time::timeout(STDERR_SETTLE, self.drained.cancelled()).await;
        }
        self.stderr_suffix()
    }

    /// `"; stderr: <tail>"` for error messages (empty for HTTP or a quiet server).
    pub fn stderr_suffix(&self) -> String {
        self.tail.as_ref().map(|t| t.suffix()).unwrap_or_default()
    }

    /// Ends the session: stops rmcp's loop, kills the stdio server's process group and reaps
    /// it. Every wait is bounded; calling it again does nothing.
    pub async fn close(&self) {
        let service = self.service.lock().await.take();
        if let Some(mut service) = service {
            let _ = tokio::time::timeout(REAP_DEADLINE, service.close()).await;
        }
        let process = self.process.lock().await.take();
        if let Some(mut process) = process {
            process.kill().await;
        }
    }
}

/// A stdio server's process: its child handle, stderr tail and the task draining stderr.
struct Process {
    child: Child,
    tail: Arc<StderrTail>,
    drainer: tokio::task::JoinHandle<()>,
    drained: CancellationToken,
}

impl Process {
    /// SIGKILL to the whole group, then reap the leader (bounded).
    async fn kill(&mut self) {
        self.signal_group();
        if tokio::time::timeout(REAP_DEADLINE, self.child.wait())
            .await
            .is_err()
        {
            tracing::error!(pid = ?self.child.id(), "MCP server not reaped after SIGKILL");
        }
        // Its last words (a grandchild outside the group may hold the pipe: bounded).
        let _ = tokio::time::timeout(STDERR_SETTLE, self.drained.cancelled()).await;
        self.drainer.abort();
    }

    /// Kills the process group, only while the leader is unreaped (its pid, hence the group
    /// id, cannot have been reused yet).
    fn signal_group(&self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill with a negative pid signals that process group; no memory involved.
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A connection dropped without `close` (a start abandoned at its deadline): kill the
        // group; `kill_on_drop` and tokio's orphan reaper take care of the leader.
        self.signal_group();
        self.drainer.abort();
    }
}

/// A reader that counts the lines longer than `max` going through it (rmcp drops them) and
/// wakes whoever waits for one ([`Connection::oversized`]).
struct LineWatch<R> {
    inner: R,
    max: usize,
    current: usize,
    counted: bool,
    oversized: Arc<tokio::sync::watch::Sender<u64>>,
}

impl<R> LineWatch<R> {
    fn new(inner: R, max: usize, oversized: Arc<tokio::sync::watch::Sender<u64>>) -> Self {
        LineWatch {
            inner,
            max,
            current: 0,
            counted: false,
            oversized,
        }
    }

    fn observe(&mut self, bytes: &[u8]) {
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            self.current = self.current.saturating_add(chunk.len());
            if self.current > self.max && !self.counted {
                self.counted = true;
                self.oversized.send_modify(|n| *n += 1);
            }
            if chunk.last() == Some(&b'\n') {
                self.current = 0;
                self.counted = false;
            }
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for LineWatch<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.observe(&buf.filled()[before..]);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_watch_counts_each_oversized_line_once() {
        let counter = Arc::new(tokio::sync::watch::Sender::new(0u64));
        let mut watch = LineWatch::new(&b""[..], 10, counter.clone());
        watch.observe(b"short\n");
        watch.observe(&[b'x'; 7]);
        watch.observe(&[b'x'; 7]);
        watch.observe(&[b'x'; 70]);
        watch.observe(b"x\nok\n");
        assert_eq!(*counter.borrow(), 1);
        watch.observe(&[b'y'; 11]);
        watch.observe(b"\n");
        assert_eq!(*counter.borrow(), 2);
    }
}
