//! Sessions: tools, env, policy and limits shared by several runs of one connection, and — when
//! persistent — one interpreter kept across those runs.
//!
//! A session belongs to the connection that created it and is closed when that connection ends.
//! Its runs execute one at a time, in the order their requests arrived: each `run` takes a
//! [`Turn`] synchronously in the connection's reader (so arrival order is the queue order, not
//! the order in which tasks happen to be scheduled) and waits for the previous turn to end.
//!
//! A persistent session keeps its [`ConfinedChild`] between runs (taken out by the run that uses
//! it, put back when that run ended with `done`), one scratch dir (a tmpfs where the daemon may
//! mount) and one uid lease for its whole life: an interpreter restarted after a crash runs as the
//! same uid, so nothing of the first tenant's is ever owned by a uid another run may get.
//! Closing a session cancels its running run, refuses the queued ones with `-32001`, then kills
//! the interpreter and removes the scratch dir.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::confined::ConfinedChild;
use crate::daemon::Daemon;
use crate::error::{RequestError, SandboxUnavailable};
use crate::limits::LimitsRequest;
use crate::params::{reject_unknown, RunSettings};
use crate::sandbox::identity::{self, Leased};
use crate::scratch::Scratch;
use crate::tools::ToolDef;

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// One session.
pub struct Session {
    pub id: String,
    /// The tool specs as sent (for `tools/definition`), as JSON text (see `RunSettings::specs`).
    pub specs: Vec<Box<serde_json::value::RawValue>>,
    pub tools: Vec<ToolDef>,
    /// The policy's resolved name.
    pub policy: String,
    pub limits: LimitsRequest,
    pub env: Vec<(String, String)>,
    /// MCP servers attached to every run of the session, by config name (each run attaches
    /// them again: cheap for a running server, and a crashed one is restarted).
    pub mcp_servers: Vec<String>,
    pub persistent: bool,
    /// Fired when the session is closed (a child of the connection's token).
    pub closed: CancellationToken,
    tail: Mutex<Option<oneshot::Receiver<()>>>,
    interpreter: Mutex<Option<ConfinedChild>>,
    scratch: Mutex<Option<Scratch>>,
    /// A persistent session's uid, held for the session's whole life: every interpreter it
    /// starts runs as this uid, and the uid returns to the pool only after the session's last
    /// interpreter is reaped and its scratch dir unmounted (or removed).
    pub leased: Leased,
    /// A persistent session's place in `max_persistent_sessions`, returned when the session is
    /// dropped (after `shut_down` has killed its interpreter and removed its scratch dir).
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// A run's place in its session's queue. Dropping it lets the next run go.
pub struct Turn {
    previous: Option<oneshot::Receiver<()>>,
    _mine: oneshot::Sender<()>,
}

impl Turn {
    /// Resolves when every earlier run of the session has ended.
    pub async fn wait(&mut self) {
        if let Some(previous) = self.previous.take() {
            let _ = previous.await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Session {
    /// Whether a run of the session has not ended yet (one more run would have to wait).
    pub fn busy(&self) -> bool {
        let mut tail = lock(&self.tail);
        let busy = matches!(
            tail.as_mut().map(|last| last.try_recv()),
            Some(Err(tokio::sync::oneshot::error::TryRecvError::Empty))
        );
        if !busy {
            // Ended (a completed receiver must not be awaited again), or no run yet.
            *tail = None;
        }
        busy
    }

    /// Joins the end of the session's queue.
    pub fn enqueue(&self) -> Turn {
        let (mine, next) = oneshot::channel();
        let previous = lock(&self.tail).replace(next);
        Turn {
            previous,
            _mine: mine,
        }
    }

    /// The kept interpreter, if any (persistent sessions).
    pub fn take_interpreter(&self) -> Option<ConfinedChild> {
        lock(&self.interpreter).take()
    }

    /// Keeps the interpreter for the next run; a closed session gets it back only to drop it.
    pub fn keep_interpreter(&self, interpreter: ConfinedChild) -> Option<ConfinedChild> {
        let mut slot = lock(&self.interpreter);
        if self.closed.is_cancelled() {
            return Some(interpreter);
        }
        *slot = Some(interpreter);
        None
    }

    /// The session's scratch dir (persistent sessions).
    pub fn scratch_path(&self) -> Option<std::path::PathBuf> {
        lock(&self.scratch).as_ref().map(|s| s.path().to_path_buf())
    }

    /// Cancels the session's runs, waits for them to end, kills the interpreter, removes the
    /// scratch dir.
    async fn shut_down(&self) {
        self.closed.cancel();
        self.enqueue().wait().await;
        let kept = self.take_interpreter();
        if let Some(mut interpreter) = kept {
            interpreter.kill().await;
        }
        let scratch = lock(&self.scratch).take();
        if let Some(scratch) = scratch {
            scratch.remove().await;
        }
    }
}

/// Sessions one connection may hold open at once: each persistent one keeps an interpreter alive
/// outside the run slots, so the number is bounded.
pub const MAX_SESSIONS_PER_CONNECTION: usize = 64;

/// The sessions of one connection.
#[derive(Default, Clone)]
pub struct Sessions(Arc<Mutex<HashMap<String, Arc<Session>>>>);

impl Sessions {
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.0).get(id).cloned()
    }

    /// `session/create`. The session's runs are cancelled when `closed` (the connection's
    /// token) fires.
    pub async fn create(
        &self,
        daemon: &Daemon,
        closed: &CancellationToken,
        params: Value,
    ) -> Result<Value, RequestError> {
        let mut map = match params {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            _ => {
                return Err(RequestError::invalid_params(
                    "params",
                    "params must be an object",
                ))
            }
        };
        let settings = RunSettings::take(&mut map)?;
        let persistent = match map.remove("persistent") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(_) => {
                return Err(RequestError::invalid_params(
                    "persistent",
                    "persistent must be a boolean",
                ))
            }
        };
        reject_unknown(&map, "session/create")?;
        if lock(&self.0).len() >= MAX_SESSIONS_PER_CONNECTION {
            return Err(RequestError::Overloaded(format!(
                "this connection already has {MAX_SESSIONS_PER_CONNECTION} open sessions; close one first"
            )));
        }
        let policy = daemon
            .policies()
            .get(settings.policy.as_deref())
            .map_err(|e| RequestError::UnknownPolicy(e.to_string()))?;
        policy
            .limits
            .tighten(&settings.limits)
            .map_err(RequestError::from)?;
        // The servers must be usable now (`-32008` otherwise); each run checks them again.
        let attached =
            crate::attach::for_request(&daemon.mcp, &[], &settings.mcp_servers, &settings.tools)
                .await?;
        let mcp_tools = crate::attach::tool_defs(&attached);
        let slot = if persistent {
            let max = daemon.config.max_persistent_sessions;
            match daemon.session_slots.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    return Err(RequestError::Overloaded(format!(
                        "the daemon already has {max} open persistent sessions \
                         (max_persistent_sessions); close one or try again later"
                    )))
                }
            }
        } else {
            None
        };
        let id = format!("s-{}", NEXT_SESSION.fetch_add(1, Ordering::Relaxed));
        let (scratch, leased) = if persistent {
            let leased = identity::for_policy(&policy);
            if let Leased::Refused(why) = &leased {
                return Err(RequestError::SandboxUnavailable(SandboxUnavailable {
                    mechanism: "identity".into(),
                    message: why.to_string(),
                }));
            }
            // A mount takes the kernel's namespace lock: never on the async runtime.
            let dir = daemon
                .scratch
                .create_off_runtime(&id, leased.lease().cloned(), policy.rlimits.scratch_mb)
                .await
                .map_err(RequestError::scratch)?;
            (Some(dir), leased)
        } else {
            (None, Leased::Unswitched)
        };
        let mut names: Vec<String> = settings.tools.iter().map(|t| t.py_name.clone()).collect();
        names.extend(mcp_tools.iter().map(ToolDef::script_name));
        let result = json!({"session_id": id, "tools": names});
        let session = Session {
            id: id.clone(),
            specs: settings.specs,
            tools: settings.tools,
            policy: policy.name.clone(),
            limits: settings.limits,
            env: settings.env,
            mcp_servers: attached
                .iter()
                .map(|a| a.server.name().to_string())
                .collect(),
            persistent,
            closed: closed.child_token(),
            tail: Mutex::new(None),
            interpreter: Mutex::new(None),
            scratch: Mutex::new(scratch),
            leased,
            _slot: slot,
        };
        // Checked again: `session/create` runs in its own task (attaching MCP servers may wait),
        // so several creates of one connection can pass the first check together.
        let refused = {
            let mut sessions = lock(&self.0);
            if sessions.len() >= MAX_SESSIONS_PER_CONNECTION {
                Some(session)
            } else {
                sessions.insert(id.clone(), Arc::new(session));
                None
            }
        };
        if let Some(session) = refused {
            session.shut_down().await;
            return Err(RequestError::Overloaded(format!(
                "this connection already has {MAX_SESSIONS_PER_CONNECTION} open sessions; close one first"
            )));
        }
        tracing::info!(session = %id, persistent, "session created");
        Ok(result)
    }

    /// `session/close`: waits for the session's runs to end (its running run is cancelled).
    pub async fn close(&self, params: &Value) -> Result<Value, RequestError> {
        let id = session_id_param(params)?;
        let session = lock(&self.0)
            .remove(id)
            .ok_or_else(|| unknown_session(id))?;
        session.shut_down().await;
        tracing::info!(session = %id, "session closed");
        Ok(json!({}))
    }

    /// Closes every session (the connection ended; its runs have already ended).
    pub async fn close_all(&self) {
        let all: Vec<Arc<Session>> = lock(&self.0).drain().map(|(_, s)| s).collect();
        for session in all {
            session.shut_down().await;
        }
    }
}

/// The `session_id` param of `session/close` (required).
fn session_id_param(params: &Value) -> Result<&str, RequestError> {
    params
        .get("session_id")
        .and_then(Value::as_str)
        .ok_or_else(|| RequestError::invalid_params("session_id", "session_id must be a string"))
}

pub fn unknown_session(id: &str) -> RequestError {
    RequestError::UnknownSession(id.to_string())
}
