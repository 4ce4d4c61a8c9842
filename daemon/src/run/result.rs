//! What a run answers: its [`RunStatus`] and [`RunResult`], and how an [`Ending`] of the run
//! loop becomes them ([`conclude`]).

use serde::Serialize;

use super::drive::Ending;
use crate::error::StartError;
use crate::limits::Limits;
use crate::rpc::message::raw_null;
use crate::rpc::Raw;
use crate::shim::{DoneStatus, ScriptError};

/// The `run` result, as sent to the client.
#[derive(Debug, Serialize)]
pub struct RunResult {
    pub run_id: String,
    pub status: RunStatus,
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

/// How a run ended, as the contract spells it in the result's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The script finished; `value` is its result.
    Ok,
    /// The script raised; `error` says what.
    Error,
    /// The wall clock (`timeout_ms`) ran out.
    Timeout,
    /// `run/cancel`, a disconnect, a closed session or shutdown ended it.
    Cancelled,
    /// A limit other than the wall clock (`max_tool_calls`, `cpu_ms`, `scratch_mb`) was exceeded.
    LimitExceeded,
    /// The interpreter ended without reporting a result.
    Crashed,
}

impl RunStatus {
    /// The status as it appears on the wire and in `daemon/status`'s `runs_by_status`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Error => "error",
            RunStatus::Timeout => "timeout",
            RunStatus::Cancelled => "cancelled",
            RunStatus::LimitExceeded => "limit_exceeded",
            RunStatus::Crashed => "crashed",
        }
    }
}

#[derive(Debug, Serialize, Default)]
pub struct Truncated {
    pub stdout: u64,
    pub stderr: u64,
}

impl RunResult {
    pub(super) fn not_started(run_id: String, why: &str) -> RunResult {
        RunResult {
            run_id,
            status: RunStatus::Cancelled,
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

/// Why a cancelled run was cancelled, in the order the causes are checked.
#[derive(Debug, Clone, Copy)]
pub enum CancelCause {
    Shutdown,
    RequesterGone,
    SessionClosed,
    RunCancel,
}

/// What happened to the child after the loop, for the status of a run whose child went away.
pub struct ChildExit {
    pub exit: Option<std::process::ExitStatus>,
    /// Read before reaping, for a child that went away (was it out of CPU time?).
    pub cpu_used_ms: Option<u64>,
}

/// The status, value and error of a run that ended with `ending`; `Err` when nothing ran.
pub fn conclude(
    ending: Ending,
    limits: &Limits,
    cause: CancelCause,
    child: ChildExit,
) -> Result<(RunStatus, Raw, Option<ScriptError>), StartError> {
    Ok(match ending {
        Ending::NotStarted(e) => return Err(e),
        Ending::Done {
            status: DoneStatus::Ok,
            value,
            ..
        } => (RunStatus::Ok, value, None),
        Ending::Done {
            status: DoneStatus::Error,
            error,
            ..
        } => (
            RunStatus::Error,
            raw_null(),
            Some(error.unwrap_or_else(|| {
                plain_error("Error", "the script failed without details".into())
            })),
        ),
        Ending::Cancelled => {
            let why = match cause {
                CancelCause::Shutdown => "the daemon shut down before the run finished",
                CancelCause::RequesterGone => "the client disconnected",
                CancelCause::SessionClosed => "its session was closed",
                CancelCause::RunCancel => "the run was cancelled by run/cancel",
            };
            (
                RunStatus::Cancelled,
                raw_null(),
                Some(plain_error("Cancelled", why.into())),
            )
        }
        Ending::Timeout => (
            RunStatus::Timeout,
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
            RunStatus::LimitExceeded,
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
            RunStatus::LimitExceeded,
            raw_null(),
            Some(plain_error("LimitExceeded", why)),
        ),
        Ending::ChildGone(detail) => child_gone(child.exit, detail, limits, child.cpu_used_ms),
    })
}

pub(super) fn plain_error(kind: &str, message: String) -> ScriptError {
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
) -> (RunStatus, Raw, Option<ScriptError>) {
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
            RunStatus::LimitExceeded,
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
    (
        RunStatus::Crashed,
        raw_null(),
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

#[cfg(test)]
mod tests {
    use super::RunStatus;

    #[test]
    fn run_status_serializes_as_the_contract_spells_it() {
        for status in [
            RunStatus::Ok,
            RunStatus::Error,
            RunStatus::Timeout,
            RunStatus::Cancelled,
            RunStatus::LimitExceeded,
            RunStatus::Crashed,
        ] {
            let wire = serde_json::to_value(status).unwrap_or_default();
            assert_eq!(wire, serde_json::Value::from(status.as_str()));
        }
        assert_eq!(RunStatus::LimitExceeded.as_str(), "limit_exceeded");
    }
}
