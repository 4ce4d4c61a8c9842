//! One run: from a `run` request to its result.
//!
//! [`execute`] validates the params (merging in the session's, for a session run), waits for the
//! run's turn in its session, takes a run slot, and hands the admitted run to `Execution::start`,
//! which does four jobs, one module each:
//! - choose the child (`child::choose`): the interpreter a persistent session kept, a warm one
//!   from the pool when everything fixed at its start matches, or a cold start; the run then owns
//!   it exactly as if it had started it;
//! - drive it (`drive::drive`): one loop reacting to whichever comes first — a control message,
//!   a tool answer, the deadline, the scratch dir's size, or cancellation;
//! - the tail (`child::release`), the same whatever ended the run: kill the child's process
//!   group and reap it (unless a persistent session keeps it after a clean `done`), withdraw
//!   pending tool calls, collect the captured output, remove the scratch dir (a drop guard, so
//!   even a panic cannot leak it);
//! - map the ending to the result (`result::conclude`): a [`RunStatus`], the value, the error.
//!
//! A run knows nothing about connections: it gets a [`RunContext`] (the daemon, the requester
//! that serves the declared tools and receives streamed output, the "requester gone" signal).

mod child;
mod drive;
mod output;
mod result;
mod sources;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::confined::ConfinedChild;
use crate::daemon::Daemon;
use crate::error::RequestError;
use crate::limits::Limits;
use crate::params::{check_inputs, RunParams};
use crate::policy::Policy;
use crate::relay::{ArgumentLimits, Relay};
use crate::rpc::Id;
use crate::scratch::DiskWatch;
use crate::session::{unknown_session, Session, Turn};
use crate::shim::Exec;
use crate::tool_source::{Requester, RunIdentity, ToolRouter};
use drive::Tripwires;
use output::{collect_output, Streamer};
use result::{conclude, CancelCause};
pub use result::{RunResult, RunStatus, Truncated};

/// What a run needs from whoever asked for it (rmcp's `RequestContext { ct, peer }`): the
/// daemon, the requester (the source of the request's declared tools and the receiver of
/// streamed output) and the signal that the requester is gone. A connection builds one for its
/// client; nothing in a run knows about connections.
#[derive(Clone)]
pub struct RunContext {
    pub daemon: Arc<Daemon>,
    pub requester: Arc<dyn Requester>,
    /// Fired when the requester is gone: its runs are cancelled ("the client disconnected").
    pub gone: CancellationToken,
}

/// A session run's session and its place in the session's queue, taken when the request
/// arrived.
pub struct SessionTicket {
    pub session: Arc<Session>,
    pub turn: Turn,
    /// The run must wait for an earlier run of its session and holds a place in the daemon's
    /// queue for it (taken in the connection's reader with [`reserve_queue_place`]).
    pub queued: bool,
}

/// Executes one `run` request. `Err` only when nothing ran (bad params, policy, overload,
/// sandbox unavailable); a script that fails still gives `Ok` with its status.
pub async fn execute(
    ctx: &RunContext,
    request_id: &Id,
    mut params: RunParams,
    cancel: CancellationToken,
    ticket: Option<SessionTicket>,
) -> Result<RunResult, RequestError> {
    let daemon = &ctx.daemon;
    // The queue place the reader took for a run that waits for its session's turn; given back
    // however this returns.
    let place = ticket
        .as_ref()
        .filter(|t| t.queued)
        .map(|_| QueuePlace(&daemon.queued));
    let (session, turn) = match (&params.session_id, ticket) {
        (None, _) => (None, None),
        (Some(id), Some(t)) if t.session.id == *id => (Some(t.session), Some(t.turn)),
        (Some(id), _) => return Err(unknown_session(id)),
    };
    if let Some(s) = &session {
        params.settings = std::mem::take(&mut params.settings).within(s)?;
    }
    // MCP servers (`-32008` when one is unusable now) and discovery built-ins.
    let routes = sources::extend(daemon, &mut params.settings, session.as_deref()).await?;
    check_inputs(&params.inputs, &params.settings.tools)?;
    let policy = daemon
        .policies()
        .get(params.settings.policy.as_deref())
        .map_err(|e| RequestError::UnknownPolicy(e.to_string()))?;
    let mut limits = policy.limits;
    if let Some(s) = &session {
        limits = limits.tighten(&s.limits)?;
    }
    let limits = limits.tighten(&params.settings.limits)?;
    // Hold the turn until the run has ended: the session's next run waits for it.
    let _turn = match (turn, &session) {
        (Some(mut turn), Some(s)) => {
            tokio::select! {
                _ = turn.wait() => {}
                _ = cancel.cancelled() => {}
            }
            if s.closed.is_cancelled() {
                return Err(unknown_session(&s.id));
            }
            if cancel.is_cancelled() {
                let why = "the run was cancelled while it waited for the session's earlier runs; no code ran";
                return Ok(RunResult::not_started(daemon.new_run_id(), why));
            }
            Some(turn)
        }
        _ => None,
    };
    let Some(_slot) = admit(daemon, &cancel, place).await? else {
        let why = "the run was cancelled while it waited for a free slot; no code ran";
        return Ok(RunResult::not_started(daemon.new_run_id(), why));
    };
    let run_id = daemon.new_run_id();
    let span = tracing::info_span!("run", run = %run_id, request = %request_id);
    async {
        let _active = ActiveRun::count(daemon);
        let run = Execution {
            ctx,
            request_id,
            run_id: &run_id,
            params: &params,
            policy: &policy,
            limits,
            session: session.as_deref(),
            routes,
        };
        let result = run.start(cancel).await;
        if let Ok(r) = &result {
            daemon.stats.runs_total.fetch_add(1, Ordering::Relaxed);
            daemon
                .stats
                .tool_calls_total
                .fetch_add(r.tool_calls, Ordering::Relaxed);
            daemon.stats.count_status(r.status);
            tracing::info!(
                status = r.status.as_str(),
                tool_calls = r.tool_calls,
                duration_ms = r.duration_ms,
                "run finished"
            );
        }
        result
    }
    .instrument(span)
    .await
}

/// Counts a run in `runs_active` for as long as it lives, even if its task panics or is dropped.
struct ActiveRun<'a>(&'a crate::daemon::Daemon);

impl<'a> ActiveRun<'a> {
    fn count(daemon: &'a crate::daemon::Daemon) -> ActiveRun<'a> {
        daemon.stats.runs_active.fetch_add(1, Ordering::Relaxed);
        ActiveRun(daemon)
    }
}

impl Drop for ActiveRun<'_> {
    fn drop(&mut self) {
        self.0.stats.runs_active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Gives back a queue place when dropped (a cancelled or panicking waiter too).
struct QueuePlace<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts one more run in the daemon's queue (`queue_depth`), or refuses with `-32002`. The
/// caller owns the place: a [`QueuePlace`] gives it back.
pub fn reserve_queue_place(daemon: &crate::daemon::Daemon) -> Result<(), RequestError> {
    let reserved = daemon
        .queued
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
            (q < daemon.config.queue_depth).then_some(q + 1)
        });
    if reserved.is_err() {
        return Err(RequestError::Overloaded(format!(
            "{} runs are executing and {} are queued (queue_depth); try again",
            daemon.config.max_concurrent_runs, daemon.config.queue_depth
        )));
    }
    Ok(())
}

/// Takes a run slot, waiting in the queue if there is room (`place`: a queue place the run
/// already holds, from waiting for its session's turn). `Ok(None)`: cancelled while queued.
async fn admit<'a>(
    daemon: &'a crate::daemon::Daemon,
    cancel: &CancellationToken,
    place: Option<QueuePlace<'a>>,
) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, RequestError> {
    if let Ok(permit) = daemon.run_slots.clone().try_acquire_owned() {
        return Ok(Some(permit));
    }
    // Keep the place already held, or reserve one (or refuse at once).
    let _place = match place {
        Some(place) => place,
        None => {
            reserve_queue_place(daemon)?;
            QueuePlace(&daemon.queued)
        }
    };
    let permit = tokio::select! {
        permit = daemon.run_slots.clone().acquire_owned() => permit.ok(),
        _ = cancel.cancelled() => None,
    };
    Ok(permit)
}

/// One admitted run.
struct Execution<'a> {
    ctx: &'a RunContext,
    request_id: &'a Id,
    run_id: &'a str,
    params: &'a RunParams,
    policy: &'a Policy,
    limits: Limits,
    session: Option<&'a Session>,
    /// Routes for the tools the requester does not serve (MCP tools, discovery built-ins).
    routes: sources::Routes,
}

impl Execution<'_> {
    /// Chooses the child, drives it, lets it go, and maps the ending to the result.
    async fn start(self, cancel: CancellationToken) -> Result<RunResult, RequestError> {
        let Execution {
            ctx,
            request_id,
            run_id,
            params,
            policy,
            limits,
            session,
            routes,
        } = self;
        let daemon = &ctx.daemon;
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(limits.timeout_ms);
        let persistent = session.filter(|s| s.persistent);
        let mut env = params.settings.env.clone();
        if let Some(s) = session {
            env.insert(0, ("PTCD_SESSION_ID".into(), s.id.clone()));
        }
        let mut child =
            child::choose(daemon, policy, &limits, run_id, &env, persistent, &cancel).await?;
        let run = RunIdentity {
            run_id: run_id.to_string(),
            request_id: request_id.clone(),
            session_id: session.map(|s| s.id.clone()),
        };
        let streamer = params.stream.then(|| Streamer {
            to: ctx.requester.clone(),
            run: Arc::new(run.clone()),
        });
        let (output_to, output) = collect_output(limits.max_output_bytes as usize, streamer);
        child.interpreter.attach(Some(output_to.clone()));

        let tools = &params.settings.tools;
        let mut router = ToolRouter::for_run(
            ctx.requester.clone(),
            sources::requester_tools(tools, &routes),
        );
        for (name, source) in routes {
            router.route(name, source);
        }
        let mut relay = Relay::new(
            router,
            run,
            limits.max_concurrent_tool_calls,
            ArgumentLimits {
                per_call: daemon.config.max_tool_argument_bytes,
                queued: daemon.config.max_queued_tool_argument_bytes,
            },
        );
        let exec_line = exec_line(
            daemon,
            params,
            &env,
            run_id,
            persistent.is_some(),
            &child.interpreter,
        )?;
        let tripwires = Tripwires {
            deadline,
            disk: DiskWatch::new(
                child.interpreter.scratch().to_path_buf(),
                policy.rlimits.scratch_mb,
                daemon.scratch.mode(),
            ),
        };
        let ending = drive::drive(
            &mut child.interpreter,
            exec_line,
            &limits,
            &mut relay,
            tripwires,
            &cancel,
            output_to,
        )
        .await;
        let released = child::release(child, &ending, persistent, &mut relay, output).await;

        let cause = if daemon.stop.is_cancelled() {
            CancelCause::Shutdown
        } else if ctx.gone.is_cancelled() {
            CancelCause::RequesterGone
        } else if session.is_some_and(|s| s.closed.is_cancelled()) {
            CancelCause::SessionClosed
        } else {
            CancelCause::RunCancel
        };
        let (status, value, mut error) = conclude(ending, &limits, cause, released.child)?;
        if persistent.is_some() && !released.kept {
            if let Some(e) = &mut error {
                e.message.push_str(
                    "; the session's interpreter was stopped, so its next run starts a fresh \
                     interpreter (globals are lost, the scratch dir is kept)",
                );
            }
        }
        let [(out, out_dropped), (err, err_dropped)] = released.output;
        Ok(RunResult {
            run_id: run_id.to_string(),
            status,
            stdout: out,
            stderr: err,
            truncated: Truncated {
                stdout: out_dropped,
                stderr: err_dropped,
            },
            value,
            error,
            tool_calls: relay.count,
            duration_ms: (started.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
        })
    }
}

/// The `exec` message for the child: the script, its tools and inputs, and its environment
/// (the client's `env` plus `PTCD_RUN_ID`, applied by the shim before the script runs).
fn exec_line(
    daemon: &Daemon,
    params: &RunParams,
    env: &[(String, String)],
    run_id: &str,
    persistent: bool,
    interpreter: &ConfinedChild,
) -> Result<Vec<u8>, RequestError> {
    let mut environ: Map<String, Value> = env
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    environ.insert("PTCD_RUN_ID".into(), Value::String(run_id.to_string()));
    let exec = Exec {
        kind: "exec",
        code: &params.code,
        tools: &params.settings.tools,
        inputs: &params.inputs,
        stream: params.stream,
        late_seccomp: interpreter.late_seccomp(),
        persistent,
        environ,
        max_argument_bytes: daemon.config.max_tool_argument_bytes,
    };
    let mut line = serde_json::to_vec(&exec)
        .map_err(|e| RequestError::internal(format!("cannot encode the job: {e}")))?;
    line.push(b'\n');
    Ok(line)
}
