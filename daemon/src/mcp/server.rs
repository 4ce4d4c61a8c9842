//! One server's lifecycle: lazy start shared by concurrent callers, crash detection, restart
//! with back-off, shutdown, and the counters `daemon/status` shows.
//!
//! States: `idle` (never started) → `starting` → `running` → (the session closed: a crash, or a
//! start that failed) `failed` → on the next use, once its back-off has passed, `starting`
//! again … → `stopped` (daemon shutdown; final). A start is spawn + `initialize` + `tools/list`
//! within `startup_timeout_ms`; only one runs at a time and every caller waiting meanwhile gets
//! its outcome. Back-off after `n` failures in a row ([`backoff`]): the first retry is
//! immediate, then 1 s doubling up to 30 s; during it callers fail fast with the reason and
//! the time left. A call answered by the server (even with an error) resets the count.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::transport::Connection;
use super::McpTool;
use crate::config::McpServerConfig;

/// How long after its own deadline a start may take to kill and reap what it started.
const BACKSTOP: Duration = Duration::from_secs(5);

/// The longest back-off between restarts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long to wait before the next start after `failures` failures in a row: 0 after the
/// first, then 1 s, 2 s, 4 s, … capped at [`MAX_BACKOFF`].
pub fn backoff(failures: u32) -> Duration {
    match failures {
        0 | 1 => Duration::ZERO,
        n => Duration::from_secs(1u64 << (n - 2).min(5)).min(MAX_BACKOFF),
    }
}

/// A running server's connection and its tools.
pub type Ready = (Arc<Connection>, Arc<[McpTool]>);

enum State {
    Idle,
    Starting,
    Running(Arc<Connection>),
    Failed { why: String, retry_at: Instant },
    Stopped,
}

struct Inner {
    state: State,
    /// Failed starts and crashes since the last call the server answered.
    failures: u32,
    /// Successful starts after the first.
    restarts: u64,
    /// Starts begun so far.
    attempts: u64,
    /// Starts ended so far, either way (a caller that waited for the start lock compares it: a
    /// start that ended while it waited was the one it waited for).
    finished: u64,
    started: bool,
    calls_total: u64,
    tools: Arc<[McpTool]>,
}

/// The shared core of one configured server (`McpServer` and its call futures hold it).
pub struct Core {
    pub name: String,
    pub config: McpServerConfig,
    pub max_line_bytes: usize,
    inner: Mutex<Inner>,
    /// Serializes starts (and tool-list refreshes).
    start: Arc<tokio::sync::Mutex<()>>,
    /// Fired by shutdown (or the daemon's `stop`): starts give up, nothing starts again.
    stopping: CancellationToken,
}

impl Core {
    pub fn new(
        name: String,
        config: McpServerConfig,
        max_line_bytes: usize,
        stopping: CancellationToken,
    ) -> Core {
        Core {
            name,
            config,
            max_line_bytes,
            inner: Mutex::new(Inner {
                state: State::Idle,
                failures: 0,
                restarts: 0,
                attempts: 0,
                finished: 0,
                started: false,
                calls_total: 0,
                tools: Arc::from(Vec::new()),
            }),
            start: Arc::new(tokio::sync::Mutex::new(())),
            stopping,
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The running connection and the tool list, starting the server if needed.
    ///
    /// The start itself runs in a task of its own, holding the start lock: a caller that gives
    /// up (its run ended) never leaves a half-made start behind, and the callers waiting for the
    /// lock get its outcome. (Being a runtime task, it also forks from a worker thread that lives
    /// as long as the daemon, which `PR_SET_PDEATHSIG` needs.)
    pub async fn connection(self: &Arc<Self>) -> Result<Ready, String> {
        // Read first: a start that ends from here on is one this caller waits for.
        let seen = self.inner().finished;
        if let Some(ready) = self.ready()? {
            return Ok(ready);
        }
        let start = tokio::select! {
            guard = self.start.clone().lock_owned() => guard,
            _ = self.stopping.cancelled() => return Err(stopped()),
        };
        // Someone else may have started it (or failed) while this caller waited: a failure of
        // that start is this caller's too (not a reason to start again at once).
        if let Some(why) = self.failed_since(seen) {
            return Err(why);
        }
        if let Some(ready) = self.ready()? {
            return Ok(ready);
        }
        let core = self.clone();
        tokio::spawn(async move {
            let outcome = core.start().await;
            drop(start);
            outcome
        })
        .await
        .unwrap_or_else(|e| Err(format!("its start failed: {e}")))
    }

    /// One start (or tool-list refresh), recorded in the state; the caller holds the start lock.
    async fn start(&self) -> Result<Ready, String> {
        // A running connection whose tool list changed is kept; only the list is fetched again.
        let reuse = {
            let mut inner = self.inner();
            let reuse = match &inner.state {
                State::Running(c) => Some(c.clone()),
                _ => None,
            };
            inner.state = State::Starting;
            inner.attempts += 1;
            reuse
        };
        let refresh = reuse.is_some();
        let limit = Duration::from_millis(self.config.startup_timeout_ms);
        let deadline = tokio::time::Instant::now() + limit;
        // `start_once` keeps the deadline itself (and kills what it started); this outer bound
        // is only a backstop.
        let outcome = tokio::select! {
            outcome = tokio::time::timeout_at(deadline + BACKSTOP, self.start_once(reuse, deadline)) => {
                outcome.unwrap_or_else(|_| Err(self.late()))
            }
            _ = self.stopping.cancelled() => Err(stopped()),
        };
        let mut inner = self.inner();
        inner.finished += 1;
        if matches!(inner.state, State::Stopped) {
            // Shut down meanwhile: what was started goes too (dropping it kills its group).
            if let Ok((connection, _)) = outcome {
                tokio::spawn(async move { connection.close().await });
            }
            return Err(stopped());
        }
        match outcome {
            Ok((connection, tools)) => {
                if inner.started && !refresh {
                    inner.restarts += 1;
                }
                inner.started = true;
                inner.tools = tools.clone();
                inner.state = State::Running(connection.clone());
                tracing::info!(server = %self.name, pid = ?connection.pid(), tools = tools.len(), "MCP server started");
                Ok((connection, tools))
            }
            Err(why) => {
                tracing::warn!(server = %self.name, error = %why, "MCP server failed to start");
                self.fail(&mut inner, why.clone());
                Err(why)
            }
        }
    }

    /// Why the server is down, if a start ended since `seen` starts had ended, and failed.
    fn failed_since(&self, seen: u64) -> Option<String> {
        let inner = self.inner();
        match &inner.state {
            State::Failed { why, .. } if inner.finished != seen => Some(why.clone()),
            _ => None,
        }
    }

    /// The running connection (refreshing nothing), `None` when a start is due, or why not.
    fn ready(&self) -> Result<Option<Ready>, String> {
        let mut inner = self.inner();
        match &inner.state {
            State::Running(c) if c.is_closed() => {
                let why = format!(
                    "the server exited or closed its stream{}",
                    c.stderr_suffix()
                );
                let closed = c.clone();
                self.fail(&mut inner, why);
                tokio::spawn(async move { closed.close().await });
                // Due now when this was the first failure in a row.
                self.due(&inner)
            }
            State::Running(c) if c.list_changed() => Ok(None),
            State::Running(c) => Ok(Some((c.clone(), inner.tools.clone()))),
            State::Stopped => Err(stopped()),
            _ => self.due(&inner),
        }
    }

    /// `None` when a start may begin now; the reason and time left while backing off.
    fn due(&self, inner: &Inner) -> Result<Option<Ready>, String> {
        if let State::Failed { why, retry_at } = &inner.state {
            let left = retry_at.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                return Err(format!(
                    "{why} (restarting it in {:.1} s)",
                    left.as_secs_f64()
                ));
            }
        }
        Ok(None)
    }

    fn fail(&self, inner: &mut Inner, why: String) {
        inner.failures = inner.failures.saturating_add(1);
        inner.state = State::Failed {
            why,
            retry_at: Instant::now() + backoff(inner.failures),
        };
    }

    /// Opens a connection (or reuses `reuse`, a refresh after `tools/list_changed`) and lists
    /// its tools (the caller bounds the time).
    async fn start_once(
        &self,
        reuse: Option<Arc<Connection>>,
        deadline: tokio::time::Instant,
    ) -> Result<Ready, String> {
        let connection = match reuse {
            Some(c) => c,
            None => Arc::new(Connection::open(&self.config, self.max_line_bytes, deadline).await?),
        };
        connection.clear_list_changed();
        let listed = list_tools(connection.peer(), self.max_line_bytes);
        let why = match tokio::time::timeout_at(deadline, listed).await {
            Ok(Ok(tools)) => return Ok((connection, tools.into())),
            Ok(Err(e)) => format!("{e}{}", connection.stderr_suffix()),
            Err(_) => format!("{}{}", self.late(), connection.stderr_suffix()),
        };
        connection.close().await;
        Err(why)
    }

    fn late(&self) -> String {
        format!(
            "did not start within startup_timeout_ms = {}",
            self.config.startup_timeout_ms
        )
    }

    /// The call was answered by the server: count it and forget earlier failures.
    pub fn answered(&self) {
        self.inner().failures = 0;
    }

    pub fn count_call(&self) {
        let mut inner = self.inner();
        inner.calls_total = inner.calls_total.saturating_add(1);
    }

    /// `connection` went away during a call: mark the server failed (once) and close it.
    pub async fn gone(&self, connection: &Arc<Connection>) -> String {
        let why = format!(
            "the server exited or closed its stream{}",
            connection.last_words().await
        );
        let mut inner = self.inner();
        if let State::Running(c) = &inner.state {
            if Arc::ptr_eq(c, connection) {
                self.fail(&mut inner, why.clone());
                let closed = connection.clone();
                tokio::spawn(async move { closed.close().await });
            }
        }
        why
    }

    /// Stops the server for good: kills and reaps a stdio child (bounded).
    pub async fn shutdown(&self) {
        self.stopping.cancel();
        let previous = std::mem::replace(&mut self.inner().state, State::Stopped);
        if let State::Running(connection) = previous {
            connection.close().await;
        }
    }

    /// This server's `daemon/status` entry.
    pub fn status(&self) -> Value {
        let inner = self.inner();
        let (state, error, pid) = match &inner.state {
            State::Idle => ("idle", None, None),
            State::Starting => ("starting", None, None),
            State::Running(c) if c.is_closed() => (
                "failed",
                Some("the server exited or closed its stream".to_string()),
                None,
            ),
            State::Running(c) => ("running", None, c.pid()),
            State::Failed { why, .. } => ("failed", Some(why.clone()), None),
            State::Stopped => ("stopped", None, None),
        };
        let mut status = json!({
            "state": state,
            "tools": inner.tools.len(),
            "calls_total": inner.calls_total,
            "restarts": inner.restarts,
        });
        if let Some(error) = error {
            status["error"] = error.into();
        }
        if let Some(pid) = pid {
            status["pid"] = pid.into();
        }
        status
    }
}

/// Every page of `tools/list`, refused once the tools add up to more than `max_bytes` of JSON
/// (a server cannot make the daemon hold an endless list, page after page).
async fn list_tools(
    peer: &rmcp::Peer<rmcp::RoleClient>,
    max_bytes: usize,
) -> Result<Vec<McpTool>, String> {
    let mut tools = Vec::new();
    let mut bytes = 0usize;
    let mut cursor = None;
    loop {
        let params = cursor
            .take()
            .map(|c| rmcp::model::PaginatedRequestParams::default().with_cursor(Some(c)));
        let page = peer
            .list_tools(params)
            .await
            .map_err(|e| format!("tools/list failed: {e}"))?;
        for tool in page.tools {
            bytes = bytes.saturating_add(serde_json::to_string(&tool).map_or(0, |t| t.len()));
            if bytes > max_bytes {
                return Err(format!(
                    "its tool list is over max_line_bytes = {max_bytes} bytes of JSON"
                ));
            }
            tools.push(McpTool::from(tool));
        }
        match page.next_cursor {
            Some(next) if !next.is_empty() => cursor = Some(next),
            _ => return Ok(tools),
        }
    }
}

fn stopped() -> String {
    "stopped (the daemon is shutting down)".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_immediate_then_doubles_from_one_second_to_thirty() {
        let secs: Vec<u64> = (0..10).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [0, 0, 1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
