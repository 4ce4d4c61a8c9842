//! The Python side of a run: the embedded shim and the messages it exchanges with the daemon.
//!
//! The shim (`shim.py`, a real file with its own tests) reaches the interpreter on fd 4, a sealed
//! memfd the launcher makes; `-c` carries only [`BOOTSTRAP`], which compiles it from there.
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
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::rpc::Raw;
use crate::rpc::RpcError;

/// The shim's source, embedded in the binary.
pub const SHIM_SOURCE: &str = include_str!("shim.py");

/// The fd on which the launcher hands the interpreter [`SHIM_SOURCE`] (a sealed memfd).
pub const SHIM_FD: i32 = 4;

/// What `python -c` runs (`bootstrap.py`): the shim, read from [`SHIM_FD`] and run as
/// `__main__` (the shim closes that fd first). Not the source itself on the command line:
/// CPython 3.11 keeps ~3 MB of heap for a 49 KB `-c` argument for the life of the process (a
/// template's heap after its imports: 5.4 MB that way, 2.8 MB this way), in every cold child
/// and in the fork server template whose page tables every forked child copies.
pub const BOOTSTRAP: &str = include_str!("bootstrap.py");

/// The control channel's fd number in the child.
pub const CONTROL_FD: i32 = 3;

/// A message from the child.
///
/// What the daemon only forwards — a call's `arguments`, the script's `value` — stays raw JSON
/// text: no `Value` tree is built (which cost ~70× the bytes and stopped at 128 levels of
/// nesting), so it costs about its size and any depth is forwarded as sent.
#[derive(Debug)]
pub enum FromShim {
    Ready,
    ToolCall {
        id: u64,
        name: String,
        /// Raw JSON, checked to be an object.
        arguments: Raw,
    },
    /// Text the script wrote to `sys.stdout`/`sys.stderr` (persistent mode).
    Output {
        stream: crate::confined::Stream,
        text: String,
    },
    Done {
        status: DoneStatus,
        /// Raw JSON (`null` when absent).
        value: Raw,
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

/// Every member any control message has. Internally tagged enums buffer the whole message in
/// serde's `Content` (a copy of every value, and no raw values), so the line is read flat and
/// then checked per type.
#[derive(Deserialize)]
struct Members<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, borrow)]
    arguments: Option<&'a RawValue>,
    #[serde(default)]
    stream: Option<crate::confined::Stream>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    status: Option<DoneStatus>,
    #[serde(default, borrow)]
    value: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<ScriptError>,
    #[serde(default)]
    mechanism: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl FromShim {
    /// The message's type, for errors (never its payload, which may be huge).
    pub fn describe(&self) -> &'static str {
        match self {
            FromShim::Ready => "ready",
            FromShim::ToolCall { .. } => "tool_call",
            FromShim::Output { .. } => "output",
            FromShim::Done { .. } => "done",
            FromShim::SandboxError { .. } => "sandbox_error",
            FromShim::LaunchError { .. } => "launch_error",
        }
    }

    /// Parses one control line from the child (hostile input: any error is a protocol error).
    pub fn parse(line: &[u8]) -> Result<FromShim, String> {
        let text = std::str::from_utf8(line).map_err(|e| e.to_string())?;
        let m: Members<'_> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let need = |what: &str| format!("a {:?} message needs {what}", m.kind);
        Ok(match &*m.kind {
            "ready" => FromShim::Ready,
            "tool_call" => {
                let arguments = match m.arguments {
                    None => crate::rpc::message::raw_empty_object(),
                    Some(raw) if raw.get().trim_start().starts_with('{') => raw.to_owned(),
                    Some(_) => return Err("a tool call's \"arguments\" must be an object".into()),
                };
                FromShim::ToolCall {
                    id: m.id.ok_or_else(|| need("\"id\""))?,
                    name: m.name.ok_or_else(|| need("\"name\""))?,
                    arguments,
                }
            }
            "output" => FromShim::Output {
                stream: m.stream.ok_or_else(|| need("\"stream\""))?,
                text: m.text.ok_or_else(|| need("\"text\""))?,
            },
            "done" => FromShim::Done {
                status: m.status.ok_or_else(|| need("\"status\""))?,
                value: m
                    .value
                    .map(RawValue::to_owned)
                    .unwrap_or_else(crate::rpc::message::raw_null),
                error: m.error,
            },
            "sandbox_error" => FromShim::SandboxError {
                mechanism: m.mechanism.ok_or_else(|| need("\"mechanism\""))?,
                message: m.message.ok_or_else(|| need("\"message\""))?,
            },
            "launch_error" => FromShim::LaunchError {
                message: m.message.ok_or_else(|| need("\"message\""))?,
            },
            other => return Err(format!("unknown message type {other:?}")),
        })
    }
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

/// The job sent once the shim is ready. `T` is the run's tool definition (`tools::ToolDef`:
/// name, Python name, parameters, and the namespace of an MCP server's tool, which the shim
/// binds as one object per namespace), serialized as the shim expects it.
#[derive(Debug, Serialize)]
pub struct Exec<'a, T: Serialize> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub code: &'a str,
    pub tools: &'a [T],
    /// The run's inputs, by name, as the raw JSON the client sent.
    pub inputs: &'a std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>,
    /// The client streams output (`run/output`): the shim line-buffers stdout and stderr.
    pub stream: bool,
    /// Hex of the late seccomp BPF program the shim installs before user code (denies exec).
    pub late_seccomp: Option<&'a str>,
    /// Keep the interpreter after `done` and wait for the next `exec` (persistent session).
    pub persistent: bool,
    /// Set in `os.environ` before the script runs (a persistent interpreter's environment was
    /// fixed when it started: this carries the run's `PTCD_RUN_ID` and `env`).
    pub environ: Map<String, Value>,
    /// `max_tool_argument_bytes`: the shim refuses a bigger call before sending it.
    pub max_argument_bytes: usize,
}

/// The answer to one tool call, as a control line. It always starts with
/// `{"type":"tool_result","id":<id>,` (the shim relies on this to fail the right call when the
/// rest is nested too deeply for Python's `json`). A result is copied in as the raw text the
/// source sent; an error is the `{code, message, data}` object the script's `ToolError` carries
/// (`relay::tool_error_object` makes it).
pub fn tool_result_line(id: u64, outcome: Result<&RawValue, &RpcError>) -> Vec<u8> {
    let mut line = format!(r#"{{"type":"tool_result","id":{id},"#).into_bytes();
    match outcome {
        Ok(result) => {
            line.extend_from_slice(br#""result":"#);
            line.extend_from_slice(result.get().as_bytes());
        }
        Err(error) => {
            line.extend_from_slice(br#""error":"#);
            // An RpcError is plain data: serializing it cannot fail.
            let encoded = serde_json::to_vec(error).unwrap_or_else(|_| b"{}".to_vec());
            line.extend_from_slice(&encoded);
        }
    }
    line.extend_from_slice(b"}\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bootstrap_reads_the_fd_the_launcher_fills() {
        assert!(
            BOOTSTRAP.contains(&format!("\n_SHIM_FD = {SHIM_FD}\n")),
            "{BOOTSTRAP}"
        );
        assert!(
            !BOOTSTRAP.contains("\"\"\""),
            "no docstring: it is on every command line"
        );
    }

    #[test]
    fn tool_call_arguments_stay_raw_at_any_depth() {
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(50_000), "]".repeat(50_000));
        let line = format!(r#"{{"type":"tool_call","id":1,"name":"t","arguments":{deep}}}"#);
        match FromShim::parse(line.as_bytes()) {
            Ok(FromShim::ToolCall { id, arguments, .. }) => {
                assert_eq!((id, arguments.get()), (1, deep.as_str()));
            }
            other => panic!("expected a tool call, got {other:?}"),
        }
    }

    #[test]
    fn tool_call_arguments_must_be_an_object() {
        let line = br#"{"type":"tool_call","id":1,"name":"t","arguments":[1]}"#;
        assert!(FromShim::parse(line).is_err());
    }

    #[test]
    fn deep_done_value_is_kept_raw() {
        let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
        let line = format!(r#"{{"type":"done","status":"ok","value":{deep}}}"#);
        match FromShim::parse(line.as_bytes()) {
            Ok(FromShim::Done { value, .. }) => assert_eq!(value.get(), deep),
            other => panic!("expected done, got {other:?}"),
        }
    }

    #[test]
    fn tool_result_line_is_json_with_the_id_first() {
        let raw = RawValue::from_string("[1,{\"a\":2}]".into()).expect("JSON");
        let line = tool_result_line(7, Ok(&raw));
        assert!(line.starts_with(br#"{"type":"tool_result","id":7,"#));
        let parsed: Value = serde_json::from_slice(&line).expect("valid JSON");
        assert_eq!(parsed["result"][1]["a"], 2);
        let err = tool_result_line(8, Err(&RpcError::new(-32000, "no")));
        let parsed: Value = serde_json::from_slice(&err).expect("valid JSON");
        assert_eq!(parsed["error"]["message"], "no");
    }
}
