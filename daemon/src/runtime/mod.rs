//! The Python side of a run: the embedded shim and the messages it exchanges with the daemon.
//!
//! The shim (`shim.py`, a real file with its own tests) is passed to the interpreter with `-c`.
//! It talks to the daemon over the control socket inherited as fd 3, one JSON object per line:
//!
//! ```text
//! shim → daemon   {"type":"ready"}                        imports done, waiting for the job
//! daemon → shim   {"type":"exec","code",…,"tools",…}      the job
//! shim → daemon   {"type":"tool_call","id","name","arguments"}
//! daemon → shim   {"type":"tool_result","id","result"|"error"}
//! shim → daemon   {"type":"output","stream","text"}          persistent mode: print() output
//! shim → daemon   {"type":"done","status","value"|"error"}
//! ```
//! In a persistent session (`exec.persistent`), the shim waits for the next `exec` after `done`
//! instead of exiting, keeping the script's globals; it then forwards `sys.stdout`/`sys.stderr`
//! as `output` messages (flushed before each tool call and before `done`), so the daemon can
//! give each run exactly its own output.
//! The launcher (before the interpreter exists) may instead write `sandbox_error` or
//! `launch_error`. Everything the child writes is hostile input: it is read with the bounded
//! line reader and parsed into [`FromShim`]; anything else ends the run as `crashed`.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::rpc::RpcError;
use crate::tools::ToolDef;

/// The shim's source, embedded in the binary.
pub const SHIM_SOURCE: &str = include_str!("shim.py");

/// The control channel's fd number in the child.
pub const CONTROL_FD: i32 = 3;

/// A message from the child.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromShim {
    Ready,
    ToolCall {
        id: u64,
        name: String,
        #[serde(default)]
        arguments: Map<String, Value>,
    },
    /// Text the script wrote to `sys.stdout`/`sys.stderr` (persistent mode).
    Output {
        stream: crate::interpreter::Stream,
        text: String,
    },
    Done {
        status: DoneStatus,
        #[serde(default)]
        value: Value,
        #[serde(default)]
        error: Option<ScriptError>,
    },
    /// Written by the launcher: a confinement layer could not be applied; nothing ran.
    SandboxError {
        mechanism: String,
        message: String,
    },
    /// Written by the launcher: the interpreter could not be started.
    LaunchError {
        message: String,
    },
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum DoneStatus {
    Ok,
    Error,
}

/// An exception raised by the script, as reported by the shim and sent to the client.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScriptError {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    #[serde(default)]
    pub traceback: String,
    #[serde(default)]
    pub line: Option<i64>,
}

/// The job sent once the shim is ready.
#[derive(Debug, Serialize)]
pub struct Exec<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub code: &'a str,
    pub tools: &'a [ToolDef],
    pub inputs: &'a Map<String, Value>,
    /// The client streams output (`run/output`): the shim line-buffers stdout and stderr.
    pub stream: bool,
    /// Hex of the late seccomp BPF program the shim installs before user code (denies exec).
    pub late_seccomp: Option<String>,
    /// Keep the interpreter after `done` and wait for the next `exec` (persistent session).
    pub persistent: bool,
    /// Set in `os.environ` before the script runs (a persistent interpreter's environment was
    /// fixed when it started: this carries the run's `PTCD_RUN_ID` and `env`).
    pub environ: Map<String, Value>,
}

/// The answer to one tool call, as a control line.
pub fn tool_result_line(id: u64, outcome: &Result<Value, RpcError>) -> Vec<u8> {
    let message = match outcome {
        Ok(result) => json!({"type": "tool_result", "id": id, "result": result}),
        Err(error) => json!({"type": "tool_result", "id": id, "error": error}),
    };
    let mut line = message.to_string().into_bytes();
    line.push(b'\n');
    line
}
