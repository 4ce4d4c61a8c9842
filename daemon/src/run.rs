//! One run: from a `run` request to its result.
//!
//! [`execute`] validates the params (merging in the session's, for a session run), waits for the
//! run's turn in its session, takes a run slot, and starts an [`Interpreter`] — or takes the one a
//! persistent session kept, or a warm one from the pool (`pool.rs`) when everything fixed at its
//! start matches this run; the run then owns it exactly as if it had started it. It then drives the child with one loop that reacts to whichever
//! comes first: a control message from the child, a tool answer, the deadline, or cancellation.
//! Whatever ends the run, the same tail runs: kill the child's process group and reap it (unless a
//! persistent session keeps it after a clean `done`), cancel pending tool calls, collect the
//! captured output, remove the scratch dir (a drop guard, so even a panic cannot leak it), and
//! answer with a result.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::connection::ConnectionCtx;
use crate::interpreter::{collect_output, finish_output, Chunk, Interpreter, Streamer};
use crate::limits::Limits;
use crate::params::{check_inputs, limits_error, RunParams};
use crate::policy::Policy;
use crate::relay::{Admission, ArgumentLimits, Relay, RunRef};
use crate::rpc::codec::Frame;
use crate::rpc::error::{self, RpcError};
use crate::rpc::message::raw_null;
use crate::rpc::{Id, Raw};
use crate::runtime::{self, DoneStatus, Exec, FromShim, ScriptError};
use crate::sandbox::identity;
use crate::scratch::DiskWatch;
use crate::session::{unknown_session, Session, Turn};

/// How long a child that reported `done` may take to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_millis(500);
/// How long to wait for the output pipes to close once the child is gone.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// The `run` result, as sent to the client.
#[derive(Debug, Serialize)]
pub struct RunResult {
    pub run_id: String,
    pub status: &'static str,
    pub stdout: String,
    pub stderr: String,
    pub truncated: Truncated,
    /// The script's value, as the raw JSON the shim sent (forwarded, never re-parsed).
    pub value: Raw,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ScriptError>,
    pub tool_calls: u64,
    pub duration_ms: f64,
}

#[derive(Debug, Serialize, Default)]
pub struct Truncated {
    pub stdout: u64,
    pub stderr: u64,
}

impl RunResult {
    fn not_started(run_id: String, why: &str) -> RunResult {
        RunResult {
            run_id,
            status: "cancelled",
            stdout: String::new(),
            stderr: String::new(),
            truncated: Truncated::default(),
            value: raw_null(),
            error: Some(plain_error("Cancelled", why.into())),
            tool_calls: 0,
            duration_ms: 0.0,
        }
    }
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
    ctx: &ConnectionCtx,
    request_id: &Id,
    mut params: RunParams,
    cancel: CancellationToken,
    ticket: Option<SessionTicket>,
) -> Result<RunResult, RpcError> {
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
    check_inputs(&params.inputs, &params.settings.tools)?;
    let policy = daemon
        .policies()
        .get(params.settings.policy.as_deref())
        .map_err(|e| RpcError::new(error::UNKNOWN_POLICY, e.to_string()))?;
    let mut limits = policy.limits;
    if let Some(s) = &session {
        limits = limits.tighten(&s.limits).map_err(limits_error)?;
    }
    let limits = limits
        .tighten(&params.settings.limits)
        .map_err(limits_error)?;
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
                status = r.status,
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
struct ActiveRun<'a>(&'a crate::state::Daemon);

impl<'a> ActiveRun<'a> {
    fn count(daemon: &'a crate::state::Daemon) -> ActiveRun<'a> {
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
pub fn reserve_queue_place(daemon: &crate::state::Daemon) -> Result<(), RpcError> {
    let reserved = daemon
        .queued
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
            (q < daemon.config.queue_depth).then_some(q + 1)
        });
    if reserved.is_err() {
        return Err(RpcError::new(
            error::OVERLOADED,
            format!(
                "overloaded: {} runs are executing and {} are queued (queue_depth); try again",
                daemon.config.max_concurrent_runs, daemon.config.queue_depth
            ),
        ));
    }
    Ok(())
}

/// Takes a run slot, waiting in the queue if there is room (`place`: a queue place the run
/// already holds, from waiting for its session's turn). `Ok(None)`: cancelled while queued.
async fn admit<'a>(
    daemon: &'a crate::state::Daemon,
    cancel: &CancellationToken,
    place: Option<QueuePlace<'a>>,
) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, RpcError> {
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

/// How the run loop ended.
enum Ending {
    Done {
        status: DoneStatus,
        value: Raw,
        error: Option<ScriptError>,
    },
    Cancelled,
    Timeout,
    TooManyToolCalls,
    /// The scratch dir outgrew `scratch_mb`, with the reason.
    DiskFull(String),
    /// The control channel closed or spoke nonsense before `done`.
    ChildGone(Option<String>),
    /// Nothing ran: the launcher refused or failed.
    Refused(RpcError),
}

/// One admitted run.
struct Execution<'a> {
    ctx: &'a ConnectionCtx,
    request_id: &'a Id,
    run_id: &'a str,
    params: &'a RunParams,
    policy: &'a Policy,
    limits: Limits,
    session: Option<&'a Session>,
}

impl Execution<'_> {
    async fn start(self, cancel: CancellationToken) -> Result<RunResult, RpcError> {
        let Execution {
            ctx,
            request_id,
            run_id,
            params,
            policy,
            limits,
            session,
        } = self;
        let daemon = &ctx.daemon;
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(limits.timeout_ms);
        let persistent = session.filter(|s| s.persistent);
        let mut env = params.settings.env.clone();
        if let Some(s) = session {
            env.insert(0, ("PTCD_SESSION_ID".into(), s.id.clone()));
        }
        // A persistent session's interpreter and scratch dir outlive the run; otherwise both are
        // the run's own.
        let (mut interpreter, scratch) = match persistent {
            Some(s) => match s.take_interpreter() {
                Some(kept) => (kept, None),
                None => {
                    // A restarted interpreter runs as the session's uid, in its scratch dir.
                    let dir = s.scratch_path().ok_or_else(|| unknown_session(&s.id))?;
                    let fresh =
                        Interpreter::spawn(daemon, policy, &limits, &dir, run_id, &env, &s.leased)?;
                    (fresh, None)
                }
            },
            None => match daemon.pool.take(policy, &limits, &env, &cancel).await {
                // Started ahead of time with this policy and these limits; it gets the run's
                // environment with the exec, like a cold child.
                Some(warm) => {
                    tracing::debug!("served by a warm interpreter");
                    let (warm, scratch) = warm.into_parts();
                    (warm, Some(scratch))
                }
                None => {
                    let leased = identity::for_policy(policy);
                    let scratch = daemon
                        .scratch
                        .create_off_runtime(
                            run_id,
                            leased.lease().cloned(),
                            policy.rlimits.scratch_mb,
                        )
                        .await
                        .map_err(crate::scratch::create_error)?;
                    match Interpreter::spawn(
                        daemon,
                        policy,
                        &limits,
                        scratch.path(),
                        run_id,
                        &env,
                        &leased,
                    ) {
                        Ok(fresh) => (fresh, Some(scratch)),
                        Err(e) => {
                            scratch.remove().await;
                            return Err(e);
                        }
                    }
                }
            },
        };
        let streamer = params.stream.then(|| Streamer {
            peer: ctx.peer.clone(),
            run_id: run_id.to_string(),
            request_id: request_id.clone(),
        });
        let (output_to, output) = collect_output(limits.max_output_bytes as usize, streamer);
        interpreter.attach(Some(output_to.clone()));

        let run = RunRef {
            run_id: run_id.to_string(),
            request_id: request_id.clone(),
            session_id: session.map(|s| s.id.clone()),
        };
        let tools = &params.settings.tools;
        let names: HashSet<String> = tools.iter().map(|t| t.name.clone()).collect();
        let mut relay = Relay::new(
            ctx.peer.clone(),
            run,
            names,
            limits.max_concurrent_tool_calls,
            ArgumentLimits {
                per_call: daemon.config.max_tool_argument_bytes,
                queued: daemon.config.max_queued_tool_argument_bytes,
            },
        );
        let mut environ: Map<String, Value> = env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        environ.insert("PTCD_RUN_ID".into(), Value::String(run_id.to_string()));
        let exec = Exec {
            kind: "exec",
            code: &params.code,
            tools,
            inputs: &params.inputs,
            stream: params.stream,
            late_seccomp: interpreter.late_seccomp(),
            persistent: persistent.is_some(),
            environ,
            max_argument_bytes: daemon.config.max_tool_argument_bytes,
        };
        let mut exec_line = serde_json::to_vec(&exec)
            .map_err(|e| RpcError::internal(format!("cannot encode the job: {e}")))?;
        exec_line.push(b'\n');
        let bounds = Bounds {
            deadline,
            disk: DiskWatch::new(
                interpreter.scratch().to_path_buf(),
                policy.rlimits.scratch_mb,
                daemon.scratch.mode(),
            ),
        };
        let ending = drive(
            &mut interpreter,
            exec_line,
            &limits,
            &mut relay,
            bounds,
            &cancel,
            output_to,
        )
        .await;

        let keep = persistent.is_some() && matches!(ending, Ending::Done { .. });
        // Read before reaping: afterwards the child's CPU time is gone with it.
        let cpu_used_ms = match ending {
            Ending::ChildGone(_) => interpreter.cpu_time_ms(),
            _ => None,
        };
        let exit = match ending {
            _ if keep => None,
            Ending::Done { .. } => interpreter.exit_within(EXIT_GRACE).await,
            _ => interpreter.kill().await,
        };
        relay.cancel_all().await;
        if !keep {
            interpreter.drain_pipes(DRAIN_GRACE).await;
        }
        interpreter.attach(None);
        let [(out, out_dropped), (err, err_dropped)] = finish_output(output, DRAIN_GRACE).await;
        match persistent {
            Some(s) if keep => {
                if let Some(mut closed) = s.keep_interpreter(interpreter) {
                    closed.kill().await;
                }
            }
            _ => drop(interpreter),
        }
        // Unmounted or removed off the runtime; its uid lease (if any) goes with it.
        if let Some(scratch) = scratch {
            scratch.remove().await;
        }

        let (status, value, mut error) = match ending {
            Ending::Refused(e) => return Err(e),
            Ending::Done {
                status: DoneStatus::Ok,
                value,
                ..
            } => ("ok", value, None),
            Ending::Done {
                status: DoneStatus::Error,
                error,
                ..
            } => (
                "error",
                raw_null(),
                Some(error.unwrap_or_else(|| {
                    plain_error("Error", "the script failed without details".into())
                })),
            ),
            Ending::Cancelled => {
                let why = if daemon.stop.is_cancelled() {
                    "the daemon shut down before the run finished"
                } else if ctx.closed.is_cancelled() {
                    "the client disconnected"
                } else if session.is_some_and(|s| s.closed.is_cancelled()) {
                    "its session was closed"
                } else {
                    "the run was cancelled by run/cancel"
                };
                (
                    "cancelled",
                    raw_null(),
                    Some(plain_error("Cancelled", why.into())),
                )
            }
            Ending::Timeout => (
                "timeout",
                raw_null(),
                Some(plain_error(
                    "Timeout",
                    format!(
                        "the run exceeded its wall-clock limit (timeout_ms = {})",
                        limits.timeout_ms
                    ),
                )),
            ),
            Ending::TooManyToolCalls => (
                "limit_exceeded",
                raw_null(),
                Some(plain_error(
                    "LimitExceeded",
                    format!(
                        "the script made more than max_tool_calls = {} tool calls",
                        limits.max_tool_calls
                    ),
                )),
            ),
            Ending::DiskFull(why) => (
                "limit_exceeded",
                raw_null(),
                Some(plain_error("LimitExceeded", why)),
            ),
            Ending::ChildGone(detail) => child_gone(exit, detail, &limits, cpu_used_ms),
        };
        if persistent.is_some() && !keep {
            if let Some(e) = &mut error {
                e.message.push_str(
                    "; the session's interpreter was stopped, so its next run starts a fresh \
                     interpreter (globals are lost, the scratch dir is kept)",
                );
            }
        }
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

/// What ends a run from outside the child's control: the wall clock and the scratch dir's size.
struct Bounds {
    deadline: tokio::time::Instant,
    disk: DiskWatch,
}

/// The run loop: reacts to the child, tool answers, the deadline and cancellation.
///
/// Back-pressure instead of queues: output the child sends as control messages goes to
/// `output`, and while the collector is behind no further control message is read; while the
/// child's outbox (answers not yet written to it) or the relay's queued arguments are over their
/// byte budgets, the loop neither reads the child nor takes answers (the child waits; the
/// deadline and cancellation still fire). Every branch is cancel-safe: the line reader keeps its
/// partial line, `join_next` and `reserve` lose nothing when another branch wins.
async fn drive(
    interpreter: &mut Interpreter,
    mut exec_line: Vec<u8>,
    limits: &Limits,
    relay: &mut Relay,
    mut bounds: Bounds,
    cancel: &CancellationToken,
    output: mpsc::Sender<Chunk>,
) -> Ending {
    if interpreter.ready {
        // A persistent interpreter that finished its previous run waits for this one.
        interpreter.send(std::mem::take(&mut exec_line));
    }
    let outbox = interpreter.outbox().clone();
    let queued = relay.queued_arguments().clone();
    let mut unsent: Option<Chunk> = None;
    loop {
        let outbox_full = outbox.is_full();
        let read_child = unsent.is_none() && !outbox_full && !queued.is_full();
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ending::Cancelled,
            _ = tokio::time::sleep_until(bounds.deadline) => return Ending::Timeout,
            why = bounds.disk.exceeded() => return Ending::DiskFull(why),
            _ = outbox.has_room(), if outbox_full => {}
            _ = queued.has_room(), if queued.is_full() => {}
            (call_id, outcome, permit) = relay.next_answer(), if !relay.is_idle() && !outbox_full => {
                interpreter.send(runtime::tool_result_line(call_id, &outcome));
                // The call's slot is free once its answer is the writer's.
                drop(permit);
            }
            permit = output.reserve(), if unsent.is_some() => {
                if let (Ok(permit), Some(chunk)) = (permit, unsent.take()) {
                    permit.send(chunk);
                }
            }
            frame = interpreter.next_frame(), if read_child => {
                let line = match frame {
                    Ok(Some(Frame::Line(line))) => line,
                    Ok(Some(Frame::TooLong)) => return Ending::ChildGone(Some("the child sent an oversize control message".into())),
                    Ok(None) | Err(_) => return Ending::ChildGone(None),
                };
                let message = match FromShim::parse(&line) {
                    Ok(m) => m,
                    Err(e) => return Ending::ChildGone(Some(format!("the child sent an invalid control message: {e}"))),
                };
                drop(line);
                let ready = interpreter.ready;
                match message {
                    FromShim::Ready if !ready => {
                        interpreter.ready = true;
                        interpreter.send(std::mem::take(&mut exec_line));
                    }
                    FromShim::ToolCall { id, name, arguments } if ready => {
                        if relay.count >= limits.max_tool_calls {
                            return Ending::TooManyToolCalls;
                        }
                        if let Admission::Refused(err) = relay.start(id, name, arguments) {
                            interpreter.send(runtime::tool_result_line(id, &Err(err)));
                        }
                    }
                    FromShim::Output { stream, text } if ready => {
                        unsent = Some((stream, text.into_bytes()));
                    }
                    FromShim::Done { status, value, error } if ready => {
                        return Ending::Done { status, value, error };
                    }
                    FromShim::SandboxError { mechanism, message } if !ready => {
                        return Ending::Refused(RpcError::new(
                            error::SANDBOX_UNAVAILABLE,
                            format!("sandbox unavailable: {mechanism}: {message}; no code ran"),
                        ));
                    }
                    FromShim::LaunchError { message } if !ready => {
                        return Ending::Refused(RpcError::internal(format!("could not start the interpreter: {message}")));
                    }
                    other => {
                        return Ending::ChildGone(Some(format!("unexpected control message from the child: {}", other.describe())));
                    }
                }
            }
        }
    }
}

fn plain_error(kind: &str, message: String) -> ScriptError {
    ScriptError {
        kind: kind.into(),
        message,
        traceback: String::new(),
        line: None,
    }
}

/// The status of a run whose child went away without reporting `done`.
fn child_gone(
    exit: Option<std::process::ExitStatus>,
    detail: Option<String>,
    limits: &Limits,
    cpu_used_ms: Option<u64>,
) -> (&'static str, Raw, Option<ScriptError>) {
    use std::os::unix::process::ExitStatusExt;
    let signal = exit.and_then(|s| s.signal());
    // SIGXCPU at the soft CPU limit, or SIGKILL at the hard one (one second later) when the
    // script ignored SIGXCPU.
    let out_of_cpu = cpu_used_ms.is_some_and(|used| used >= limits.cpu_ms);
    if signal == Some(libc::SIGXCPU) || (signal == Some(libc::SIGKILL) && out_of_cpu) {
        let message = format!(
            "the script used more CPU time than cpu_ms = {}",
            limits.cpu_ms
        );
        return (
            "limit_exceeded",
            raw_null(),
            Some(plain_error("LimitExceeded", message)),
        );
    }
    let how = match (signal, exit.and_then(|s| s.code())) {
        (Some(sig), _) => format!("the interpreter was killed by signal {}", signal_name(sig)),
        (None, Some(code)) => {
            format!("the interpreter exited with status {code} without reporting a result")
        }
        _ => "the interpreter ended without reporting a result".to_string(),
    };
    let message = match detail {
        Some(d) => format!("{d}; {how}"),
        None => how,
    };
    ("crashed", raw_null(), Some(plain_error("Crashed", message)))
}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGSYS => "SIGSYS (a forbidden system call)".into(),
        libc::SIGXFSZ => "SIGXFSZ (file size limit)".into(),
        other => format!("{other}"),
    }
}
