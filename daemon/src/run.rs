//! One run: from a `run` request to its result.
//!
//! [`execute`] validates the params, takes a run slot, creates the scratch dir, starts the child
//! through [`crate::sandbox`], then drives it with one loop that reacts to whichever comes first:
//! a control message from the child, a tool answer, the deadline, or cancellation. Whatever ends
//! the run, the same tail runs: kill the child's process group, reap it, cancel pending tool
//! calls, collect the captured output, remove the scratch dir (a drop guard, so even a panic
//! cannot leak it), and answer with a result.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::connection::ConnectionCtx;
use crate::limits::{Limits, LimitsRequest};
use crate::policy::Policy;
use crate::relay::{Admission, Relay, RunRef};
use crate::rpc::codec::{Frame, LineReader};
use crate::rpc::error::{self, RpcError};
use crate::rpc::{Id, Peer};
use crate::runtime::{self, DoneStatus, Exec, FromShim, ScriptError};
use crate::sandbox::{self, SandboxError};
use crate::scratch::Scratch;
use crate::tools::{parse_tools, ToolDef};

/// Longest control line the daemon accepts from a child (a tool call's arguments).
const MAX_CONTROL_LINE: usize = 16 << 20;
/// How long a child that reported `done` may take to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_millis(500);
/// How long to wait for the output pipes to close once the child is gone.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// The validated params of a `run` request.
#[derive(Debug)]
pub struct RunParams {
    pub code: String,
    pub tools: Vec<ToolDef>,
    pub policy: Option<String>,
    pub limits: LimitsRequest,
    pub inputs: Map<String, Value>,
    pub env: Vec<(String, String)>,
    pub stream: bool,
}

/// The `run` result, as sent to the client.
#[derive(Debug, Serialize)]
pub struct RunResult {
    pub run_id: String,
    pub status: &'static str,
    pub stdout: String,
    pub stderr: String,
    pub truncated: Truncated,
    pub value: Value,
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

impl RunParams {
    /// Parses `run` params, naming the offending field on error.
    pub fn parse(params: Value) -> Result<RunParams, RpcError> {
        let Value::Object(mut map) = params else {
            return Err(RpcError::invalid_params(
                "params",
                "params must be an object with at least \"code\"",
            ));
        };
        let code = match map.remove("code") {
            Some(Value::String(code)) => code,
            Some(_) => return Err(RpcError::invalid_params("code", "code must be a string")),
            None => return Err(RpcError::invalid_params("code", "code is required")),
        };
        let tools = match map.remove("tools") {
            None | Some(Value::Null) => Vec::new(),
            Some(tools) => parse_tools(&tools, "tools")?,
        };
        if let Some(session) = map.remove("session_id") {
            return Err(RpcError::new(
                error::UNKNOWN_SESSION,
                format!("unknown session {session} (sessions are not implemented by this version)"),
            ));
        }
        let policy = match map.remove("policy") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) => Some(p),
            Some(_) => {
                return Err(RpcError::invalid_params(
                    "policy",
                    "policy must be a string",
                ))
            }
        };
        let limits = match map.remove("limits") {
            None | Some(Value::Null) => LimitsRequest::default(),
            Some(limits) => parse_limits(limits)?,
        };
        let inputs = match map.remove("inputs") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(inputs)) => inputs,
            Some(_) => {
                return Err(RpcError::invalid_params(
                    "inputs",
                    "inputs must be an object",
                ))
            }
        };
        for name in inputs.keys() {
            if crate::tools::python_name(name) != *name || name.starts_with("__") {
                return Err(RpcError::invalid_params(
                    format!("inputs.{name}"),
                    format!("input name {name:?} is not a usable Python identifier"),
                ));
            }
            if tools.iter().any(|t| t.py_name == *name) {
                return Err(RpcError::invalid_params(
                    format!("inputs.{name}"),
                    format!("input name {name:?} is also the name of a tool"),
                ));
            }
        }
        let env = match map.remove("env") {
            None | Some(Value::Null) => Vec::new(),
            Some(env) => parse_env(env)?,
        };
        let stream = match map.remove("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(_) => {
                return Err(RpcError::invalid_params(
                    "stream",
                    "stream must be a boolean",
                ))
            }
        };
        if let Some(unknown) = map.keys().next() {
            return Err(RpcError::invalid_params(
                unknown.clone(),
                format!("unknown field {unknown:?} in run params"),
            ));
        }
        Ok(RunParams {
            code,
            tools,
            policy,
            limits,
            inputs,
            env,
            stream,
        })
    }
}

fn parse_limits(value: Value) -> Result<LimitsRequest, RpcError> {
    let Value::Object(map) = value else {
        return Err(RpcError::invalid_params(
            "limits",
            "limits must be an object",
        ));
    };
    let mut req = LimitsRequest::default();
    for (key, v) in map {
        let field = format!("limits.{key}");
        let slot = match key.as_str() {
            "timeout_ms" => &mut req.timeout_ms,
            "cpu_ms" => &mut req.cpu_ms,
            "memory_mb" => &mut req.memory_mb,
            "max_output_bytes" => &mut req.max_output_bytes,
            "max_tool_calls" => &mut req.max_tool_calls,
            "max_concurrent_tool_calls" => &mut req.max_concurrent_tool_calls,
            _ => {
                return Err(RpcError::invalid_params(
                    field.clone(),
                    format!("unknown limit {field}"),
                ))
            }
        };
        match v.as_u64() {
            Some(n) => *slot = Some(n),
            None => {
                return Err(RpcError::invalid_params(
                    field.clone(),
                    format!("{field} must be a non-negative integer"),
                ))
            }
        }
    }
    Ok(req)
}

fn parse_env(value: Value) -> Result<Vec<(String, String)>, RpcError> {
    let Value::Object(map) = value else {
        return Err(RpcError::invalid_params(
            "env",
            "env must be an object of strings",
        ));
    };
    let mut env = Vec::new();
    for (key, v) in map {
        let field = format!("env.{key}");
        let Value::String(v) = v else {
            return Err(RpcError::invalid_params(
                field.clone(),
                format!("{field} must be a string"),
            ));
        };
        if key.is_empty()
            || key.contains(['=', '\0'])
            || v.contains('\0')
            || key.starts_with("PTCD_")
        {
            return Err(RpcError::invalid_params(
                field.clone(),
                format!("{field}: names must be non-empty without '=' or NUL, not start with PTCD_, and values must not contain NUL"),
            ));
        }
        env.push((key, v));
    }
    Ok(env)
}

/// Executes one `run` request. `Err` only when nothing ran (bad params, policy, overload,
/// sandbox unavailable); a script that fails still gives `Ok` with its status.
pub async fn execute(
    ctx: &ConnectionCtx,
    request_id: &Id,
    params: Value,
    cancel: CancellationToken,
) -> Result<RunResult, RpcError> {
    let params = RunParams::parse(params)?;
    let daemon = &ctx.daemon;
    let policy = daemon
        .policies()
        .get(params.policy.as_deref())
        .map_err(|e| RpcError::new(error::UNKNOWN_POLICY, e.to_string()))?;
    let limits = policy
        .limits
        .tighten(&params.limits)
        .map_err(|e| RpcError {
            code: error::LIMITS_EXCEED_POLICY,
            message: e.to_string(),
            data: Some(json!({"field": e.field()})),
        })?;
    let Some(_slot) = admit(daemon, &cancel).await? else {
        let why = "the run was cancelled while it waited for a free slot; no code ran";
        return Ok(RunResult {
            run_id: daemon.new_run_id(),
            status: "cancelled",
            stdout: String::new(),
            stderr: String::new(),
            truncated: Truncated::default(),
            value: Value::Null,
            error: Some(plain_error("Cancelled", why.into())),
            tool_calls: 0,
            duration_ms: 0.0,
        });
    };
    let run_id = daemon.new_run_id();
    let span = tracing::info_span!("run", run = %run_id, request = %request_id);
    async {
        daemon.stats.runs_active.fetch_add(1, Ordering::Relaxed);
        let result =
            Execution::start(ctx, request_id, &run_id, &params, &policy, limits, cancel).await;
        daemon.stats.runs_active.fetch_sub(1, Ordering::Relaxed);
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

/// Takes a run slot, waiting in the queue if there is room. `Ok(None)`: cancelled while queued.
async fn admit(
    daemon: &crate::state::Daemon,
    cancel: &CancellationToken,
) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, RpcError> {
    if let Ok(permit) = daemon.run_slots.clone().try_acquire_owned() {
        return Ok(Some(permit));
    }
    let overloaded = || {
        RpcError::new(
            error::OVERLOADED,
            format!(
                "overloaded: {} runs are executing and {} are queued; try again",
                daemon.config.max_concurrent_runs, daemon.config.queue_depth
            ),
        )
    };
    // Reserve a queue place, or refuse at once.
    let reserved = daemon
        .queued
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
            (q < daemon.config.queue_depth).then_some(q + 1)
        });
    if reserved.is_err() {
        return Err(overloaded());
    }
    let permit = tokio::select! {
        permit = daemon.run_slots.clone().acquire_owned() => permit.ok(),
        _ = cancel.cancelled() => None,
    };
    daemon.queued.fetch_sub(1, Ordering::AcqRel);
    Ok(permit)
}

/// How the run loop ended.
enum Ending {
    Done {
        status: DoneStatus,
        value: Value,
        error: Option<ScriptError>,
    },
    Cancelled,
    Timeout,
    TooManyToolCalls,
    /// The control channel closed or spoke nonsense before `done`.
    ChildGone(Option<String>),
    /// Nothing ran: the launcher refused or failed.
    Refused(RpcError),
}

struct Execution;

impl Execution {
    async fn start(
        ctx: &ConnectionCtx,
        request_id: &Id,
        run_id: &str,
        params: &RunParams,
        policy: &Policy,
        limits: Limits,
        cancel: CancellationToken,
    ) -> Result<RunResult, RpcError> {
        let daemon = &ctx.daemon;
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(limits.timeout_ms);
        let scratch = Scratch::create(&daemon.config.scratch_root, run_id, None)
            .map_err(|e| RpcError::internal(format!("cannot create scratch dir: {e}")))?;
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| RpcError::internal(format!("socketpair: {e}")))?;
        let plan = sandbox::plan::build(
            &daemon.python,
            policy,
            &limits,
            scratch.path(),
            run_id,
            &params.env,
        );
        if let Some(id) = plan.identity {
            // The child runs as its own uid: its scratch dir must be its own.
            std::os::unix::fs::chown(scratch.path(), Some(id.uid), Some(id.gid))
                .map_err(|e| RpcError::internal(format!("cannot chown scratch dir: {e}")))?;
        }
        let mut child = sandbox::spawn(&plan, theirs.into()).map_err(|e| match e {
            SandboxError::Unavailable { .. } => {
                RpcError::new(error::SANDBOX_UNAVAILABLE, e.to_string())
            }
            other => RpcError::internal(other.to_string()),
        })?;
        let control = ours
            .set_nonblocking(true)
            .and_then(|()| tokio::net::UnixStream::from_std(ours))
            .map_err(|e| RpcError::internal(format!("control channel: {e}")));
        let control = match control {
            Ok(c) => c,
            Err(e) => {
                kill_tree(&mut child).await;
                return Err(e);
            }
        };
        let streamer = params.stream.then(|| Streamer {
            peer: ctx.peer.clone(),
            run_id: run_id.to_string(),
            request_id: request_id.clone(),
        });
        let cap = limits.max_output_bytes as usize;
        let stdout = child
            .stdout
            .take()
            .map(|p| tokio::spawn(capture(p, cap, streamer.clone().map(|s| s.on("stdout")))));
        let stderr = child
            .stderr
            .take()
            .map(|p| tokio::spawn(capture(p, cap, streamer.map(|s| s.on("stderr")))));

        let run = RunRef {
            run_id: run_id.to_string(),
            request_id: request_id.clone(),
        };
        let names: HashSet<String> = params.tools.iter().map(|t| t.name.clone()).collect();
        let mut relay = Relay::new(
            ctx.peer.clone(),
            run,
            names,
            limits.max_concurrent_tool_calls,
        );
        let exec = Exec {
            kind: "exec",
            code: &params.code,
            tools: &params.tools,
            inputs: &params.inputs,
            stream: params.stream,
            late_seccomp: plan.late_seccomp.clone(),
        };
        let mut exec_line = serde_json::to_vec(&exec)
            .map_err(|e| RpcError::internal(format!("cannot encode the job: {e}")))?;
        exec_line.push(b'\n');
        let ending = drive(control, exec_line, &limits, &mut relay, deadline, &cancel).await;

        let exit = match ending {
            Ending::Done { .. } => match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
                Ok(status) => status.ok(),
                Err(_) => kill_tree(&mut child).await,
            },
            _ => kill_tree(&mut child).await,
        };
        relay.cancel_all().await;
        let (out, out_dropped) = collect(stdout).await;
        let (err, err_dropped) = collect(stderr).await;
        drop(scratch);

        let (status, value, error) = match ending {
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
                Value::Null,
                Some(error.unwrap_or_else(|| {
                    plain_error("Error", "the script failed without details".into())
                })),
            ),
            Ending::Cancelled => {
                let why = if daemon.stop.is_cancelled() {
                    "the daemon shut down before the run finished"
                } else if ctx.closed.is_cancelled() {
                    "the client disconnected"
                } else {
                    "the run was cancelled by run/cancel"
                };
                (
                    "cancelled",
                    Value::Null,
                    Some(plain_error("Cancelled", why.into())),
                )
            }
            Ending::Timeout => (
                "timeout",
                Value::Null,
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
                Value::Null,
                Some(plain_error(
                    "LimitExceeded",
                    format!(
                        "the script made more than max_tool_calls = {} tool calls",
                        limits.max_tool_calls
                    ),
                )),
            ),
            Ending::ChildGone(detail) => child_gone(exit, detail, &limits),
        };
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

/// The run loop: reacts to the child, tool answers, the deadline and cancellation.
async fn drive(
    control: tokio::net::UnixStream,
    mut exec_line: Vec<u8>,
    limits: &Limits,
    relay: &mut Relay,
    deadline: tokio::time::Instant,
    cancel: &CancellationToken,
) -> Ending {
    let (read_half, mut write_half) = control.into_split();
    let mut reader = LineReader::new(BufReader::new(read_half), MAX_CONTROL_LINE);
    // Writes to the child go through a task so that a child that stops reading can never stall
    // this loop (and with it the deadline).
    let (to_child, mut queue) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(line) = queue.recv().await {
            if write_half.write_all(&line).await.is_err() {
                break;
            }
        }
    });
    let _writer_guard = AbortOnDrop(writer);
    let mut ready = false;
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ending::Cancelled,
            _ = tokio::time::sleep_until(deadline) => return Ending::Timeout,
            (call_id, outcome) = relay.next_answer(), if !relay.is_idle() => {
                let _ = to_child.send(runtime::tool_result_line(call_id, &outcome));
            }
            frame = reader.next_frame() => {
                let line = match frame {
                    Ok(Some(Frame::Line(line))) => line,
                    Ok(Some(Frame::TooLong)) => return Ending::ChildGone(Some("the child sent an oversize control message".into())),
                    Ok(None) | Err(_) => return Ending::ChildGone(None),
                };
                let message = match serde_json::from_slice::<FromShim>(&line) {
                    Ok(m) => m,
                    Err(e) => return Ending::ChildGone(Some(format!("the child sent an invalid control message: {e}"))),
                };
                match message {
                    FromShim::Ready if !ready => {
                        ready = true;
                        let _ = to_child.send(std::mem::take(&mut exec_line));
                    }
                    FromShim::ToolCall { id, name, arguments } if ready => {
                        if relay.count >= limits.max_tool_calls {
                            return Ending::TooManyToolCalls;
                        }
                        if let Admission::Refused(err) = relay.start(id, name, arguments) {
                            let _ = to_child.send(runtime::tool_result_line(id, &Err(err)));
                        }
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
                        return Ending::ChildGone(Some(format!("unexpected control message from the child: {other:?}")));
                    }
                }
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Kills the child's whole process group and reaps the child. Returns its exit status.
async fn kill_tree(child: &mut Child) -> Option<std::process::ExitStatus> {
    if let Some(pid) = child.id() {
        // The launcher called setsid(), so its pid is its process group id. The child is not
        // reaped yet, so neither id can have been reused.
        // SAFETY: kill with a negative pid signals the group; no memory is involved.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
    }
    let _ = child.start_kill();
    child.wait().await.ok()
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
) -> (&'static str, Value, Option<ScriptError>) {
    use std::os::unix::process::ExitStatusExt;
    let signal = exit.and_then(|s| s.signal());
    if signal == Some(libc::SIGXCPU) {
        let message = format!(
            "the script used more CPU time than cpu_ms = {}",
            limits.cpu_ms
        );
        return (
            "limit_exceeded",
            Value::Null,
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
    (
        "crashed",
        Value::Null,
        Some(plain_error("Crashed", message)),
    )
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

/// Where streamed output goes (`stream: true`).
#[derive(Clone)]
struct Streamer {
    peer: Arc<Peer>,
    run_id: String,
    request_id: Id,
}

struct StreamTo {
    streamer: Streamer,
    stream: &'static str,
}

impl Streamer {
    fn on(self, stream: &'static str) -> StreamTo {
        StreamTo {
            streamer: self,
            stream,
        }
    }
}

impl StreamTo {
    async fn send(&self, text: &str) {
        let s = &self.streamer;
        let params = json!({"run_id": s.run_id, "request_id": s.request_id, "stream": self.stream, "text": text});
        let _ = s.peer.notify("run/output", &params).await;
    }
}

/// Reads a pipe to its end, keeping at most `cap` bytes and counting the rest.
async fn capture<R: AsyncRead + Unpin>(
    mut pipe: R,
    cap: usize,
    stream_to: Option<StreamTo>,
) -> (Vec<u8>, u64) {
    let mut kept = Vec::new();
    let mut dropped = 0u64;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut streamed = 0usize;
    loop {
        let n = match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let room = cap.saturating_sub(kept.len());
        let keep = n.min(room);
        kept.extend_from_slice(&chunk[..keep]);
        dropped += (n - keep) as u64;
        if let Some(to) = &stream_to {
            // Stream whole characters only; an incomplete trailing sequence waits for more bytes.
            let pending = &kept[streamed..];
            let valid = match std::str::from_utf8(pending) {
                Ok(_) => pending.len(),
                Err(e) if e.error_len().is_none() && keep == n => e.valid_up_to(),
                Err(_) => pending.len(),
            };
            if valid > 0 {
                to.send(&String::from_utf8_lossy(&pending[..valid])).await;
                streamed += valid;
            }
        }
    }
    (kept, dropped)
}

/// Waits (briefly) for a capture task and renders its text with a truncation marker.
async fn collect(task: Option<tokio::task::JoinHandle<(Vec<u8>, u64)>>) -> (String, u64) {
    let Some(mut task) = task else {
        return (String::new(), 0);
    };
    let (mut bytes, mut dropped) = match tokio::time::timeout(DRAIN_GRACE, &mut task).await {
        Ok(Ok(captured)) => captured,
        _ => {
            task.abort();
            (Vec::new(), 0)
        }
    };
    if dropped > 0 {
        // Cut at a character boundary so the kept text stays valid UTF-8.
        if let Err(e) = std::str::from_utf8(&bytes) {
            if e.error_len().is_none() {
                dropped += (bytes.len() - e.valid_up_to()) as u64;
                bytes.truncate(e.valid_up_to());
            }
        }
    }
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if dropped > 0 {
        text.push_str(&format!(
            "\n[ptcd: output truncated here, {dropped} more bytes dropped]\n"
        ));
    }
    (text, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_params_name_the_bad_field() {
        let field = |p: Value| RunParams::parse(p).unwrap_err().data;
        assert_eq!(field(json!({})), Some(json!({"field": "code"})));
        assert_eq!(field(json!({"code": 1})), Some(json!({"field": "code"})));
        assert_eq!(
            field(json!({"code": "", "limits": {"timeout_ms": -1}})),
            Some(json!({"field": "limits.timeout_ms"}))
        );
        assert_eq!(
            field(json!({"code": "", "limits": {"nope": 1}})),
            Some(json!({"field": "limits.nope"}))
        );
        assert_eq!(
            field(json!({"code": "", "inputs": {"not valid": 1}})),
            Some(json!({"field": "inputs.not valid"}))
        );
        assert_eq!(
            field(json!({"code": "", "env": {"A": 1}})),
            Some(json!({"field": "env.A"}))
        );
        assert_eq!(
            field(json!({"code": "", "stream": "yes"})),
            Some(json!({"field": "stream"}))
        );
        assert_eq!(
            field(json!({"code": "", "colour": "red"})),
            Some(json!({"field": "colour"}))
        );
    }

    #[tokio::test]
    async fn capture_keeps_cap_and_counts_the_rest() {
        let data = vec![b'x'; 1000];
        let (kept, dropped) = capture(&data[..], 100, None).await;
        assert_eq!((kept.len(), dropped), (100, 900));
    }
}
