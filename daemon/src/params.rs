//! Validating `run` and `session/create` params.
//!
//! Every field is checked by hand rather than by serde so that each error names the offending
//! field (`data.field`, e.g. `limits.timeout_ms`, `inputs.x`) as the contract requires, and any
//! unknown field is refused: a typo must never be silently ignored.
//!
//! A run's `inputs` are never built into a `serde_json::Value`: a tree of small values costs
//! ~30× the JSON text (8 runs with 4 MiB of `inputs` each held +1.1 GiB while they waited). Each
//! input stays the raw JSON text the client sent ([`Inputs`]), checked only for its name and
//! nesting depth, and is copied as it is into the job sent to the child.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::RequestError;
use crate::limits::LimitsRequest;
use crate::session::Session;
use crate::tools::{parse_tools, ToolDef};

/// What a run and a session are both configured with: `tools`, `policy`, `limits`, `env`,
/// `mcp_servers`.
#[derive(Debug, Default)]
pub struct RunSettings {
    pub tools: Vec<ToolDef>,
    /// The tool specs as sent, direct-only ones included (for `tools/definition`), kept as
    /// JSON text: a session holds them for its whole life, and a `Value` tree costs ~25× the
    /// text (8 sessions with 6 MiB of specs each held +1.2 GiB).
    pub specs: Vec<Box<RawValue>>,
    pub policy: Option<String>,
    pub limits: LimitsRequest,
    pub env: Vec<(String, String)>,
    /// MCP servers to attach, by config name, as sent (checked against the config when they are
    /// attached, so an error can name `mcp_servers[i]`).
    pub mcp_servers: Vec<String>,
}

impl RunSettings {
    /// Takes and validates these fields out of a params object.
    pub fn take(map: &mut Map<String, Value>) -> Result<RunSettings, RequestError> {
        let (tools, specs) = match map.remove("tools") {
            None | Some(Value::Null) => (Vec::new(), Vec::new()),
            Some(tools) => {
                let defs = parse_tools(&tools, "tools")?;
                let specs = match tools {
                    Value::Array(specs) => specs
                        .into_iter()
                        .map(|spec| serde_json::value::to_raw_value(&spec))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| RequestError::invalid_params("tools", e.to_string()))?,
                    _ => Vec::new(),
                };
                (defs, specs)
            }
        };
        let policy = match map.remove("policy") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) => Some(p),
            Some(_) => {
                return Err(RequestError::invalid_params(
                    "policy",
                    "policy must be a string",
                ))
            }
        };
        let limits = match map.remove("limits") {
            None | Some(Value::Null) => LimitsRequest::default(),
            Some(limits) => parse_limits(limits)?,
        };
        let env = match map.remove("env") {
            None | Some(Value::Null) => Vec::new(),
            Some(env) => parse_env(env)?,
        };
        let mcp_servers = parse_mcp_servers(map.remove("mcp_servers"))?;
        Ok(RunSettings {
            tools,
            specs,
            policy,
            limits,
            env,
            mcp_servers,
        })
    }

    /// A session run's settings: the session's, with the run's on top. A run tool replaces the
    /// session's tool of the same Python name; run env wins; the policy must be the session's;
    /// the run's limits may only tighten the session's (checked when they are applied).
    pub fn within(self, session: &Session) -> Result<RunSettings, RequestError> {
        if let Some(policy) = &self.policy {
            if *policy != session.policy {
                return Err(RequestError::invalid_params(
                    "policy",
                    format!(
                        "a run in session {} uses the session's policy {:?}, not {policy:?}",
                        session.id, session.policy
                    ),
                ));
            }
        }
        if session.persistent {
            // RLIMIT_CPU and RLIMIT_AS are set when the interpreter starts and stay with it.
            for (field, set) in [
                ("limits.cpu_ms", self.limits.cpu_ms.is_some()),
                ("limits.memory_mb", self.limits.memory_mb.is_some()),
            ] {
                if set {
                    return Err(RequestError::invalid_params(
                        field,
                        format!("{field} of a persistent session is set by session/create; a run cannot change it"),
                    ));
                }
            }
        }
        let mut tools: Vec<ToolDef> = session
            .tools
            .iter()
            .filter(|t| !self.tools.iter().any(|r| r.py_name == t.py_name))
            .cloned()
            .collect();
        tools.extend(self.tools);
        let mut env = session.env.clone();
        for (k, v) in self.env {
            env.retain(|(existing, _)| *existing != k);
            env.push((k, v));
        }
        Ok(RunSettings {
            tools,
            // The run's own specs only; the session keeps its own (see `Session::specs`).
            specs: self.specs,
            policy: Some(session.policy.clone()),
            limits: self.limits,
            env,
            // The run's own; `run/sources.rs` adds the session's after checking these (so an
            // error names the run's `mcp_servers[i]`).
            mcp_servers: self.mcp_servers,
        })
    }
}

/// The `mcp_servers` param: an array of server names (`null` or absent: none). Whether the
/// names are configured is checked when the servers are attached (`attach::for_request`).
pub fn parse_mcp_servers(value: Option<Value>) -> Result<Vec<String>, RequestError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(RequestError::invalid_params(
                "mcp_servers",
                "mcp_servers must be an array of MCP server names (strings)",
            ))
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(name) => Ok(name),
            _ => Err(RequestError::invalid_params(
                format!("mcp_servers[{i}]"),
                format!("mcp_servers[{i}] must be a string (an MCP server's name)"),
            )),
        })
        .collect()
}

/// Refuses any field left in `map`, so a typo never goes unnoticed.
pub fn reject_unknown(map: &Map<String, Value>, method: &str) -> Result<(), RequestError> {
    match map.keys().next() {
        Some(unknown) => Err(RequestError::invalid_params(
            unknown.clone(),
            format!("unknown field {unknown:?} in {method} params"),
        )),
        None => Ok(()),
    }
}

/// A run's inputs: name → the value's raw JSON text, as the client sent it.
pub type Inputs = BTreeMap<String, Box<RawValue>>;

/// How deeply an input may nest (serde_json's own limit for the other fields, and what the
/// shim's `json` decodes comfortably).
const MAX_INPUT_DEPTH: usize = 128;

/// The validated params of a `run` request.
#[derive(Debug)]
pub struct RunParams {
    pub code: String,
    pub settings: RunSettings,
    pub session_id: Option<String>,
    pub inputs: Inputs,
    pub stream: bool,
}

fn not_an_object() -> RequestError {
    RequestError::invalid_params("params", "params must be an object with at least \"code\"")
}

impl RunParams {
    /// Parses `run` params from the request's raw JSON, naming the offending field on error.
    /// Only the top level is split; `inputs` stays raw, every other field becomes a `Value`.
    pub fn from_raw(params: Option<&RawValue>) -> Result<RunParams, RequestError> {
        let Some(params) = params else {
            return Err(not_an_object());
        };
        let mut top: BTreeMap<String, Box<RawValue>> =
            serde_json::from_str(params.get()).map_err(|_| not_an_object())?;
        let inputs = top.remove("inputs");
        let mut map = Map::new();
        for (key, raw) in top {
            let value = serde_json::from_str(raw.get()).map_err(|e| {
                RequestError::invalid_params(key.clone(), format!("{key} could not be read: {e}"))
            })?;
            map.insert(key, value);
        }
        Self::parse_with(map, inputs)
    }

    /// Parses `run` params already built into a `Value` (tests, and callers that have one).
    pub fn parse(params: Value) -> Result<RunParams, RequestError> {
        let Value::Object(mut map) = params else {
            return Err(not_an_object());
        };
        let inputs = match map.remove("inputs") {
            None => None,
            Some(v) => Some(
                serde_json::value::to_raw_value(&v)
                    .map_err(|e| RequestError::invalid_params("inputs", e.to_string()))?,
            ),
        };
        Self::parse_with(map, inputs)
    }

    fn parse_with(
        mut map: Map<String, Value>,
        inputs: Option<Box<RawValue>>,
    ) -> Result<RunParams, RequestError> {
        let code = match map.remove("code") {
            Some(Value::String(code)) => code,
            Some(_) => {
                return Err(RequestError::invalid_params(
                    "code",
                    "code must be a string",
                ))
            }
            None => return Err(RequestError::invalid_params("code", "code is required")),
        };
        let settings = RunSettings::take(&mut map)?;
        let session_id = match map.remove("session_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                return Err(RequestError::invalid_params(
                    "session_id",
                    "session_id must be a string",
                ))
            }
        };
        let inputs: Inputs = match inputs {
            None => Inputs::new(),
            Some(raw) if raw.get().trim() == "null" => Inputs::new(),
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|_| RequestError::invalid_params("inputs", "inputs must be an object"))?,
        };
        for (name, value) in &inputs {
            if crate::tools::python_name(name) != *name || name.starts_with("__") {
                return Err(RequestError::invalid_params(
                    format!("inputs.{name}"),
                    format!("input name {name:?} is not a usable Python identifier"),
                ));
            }
            if nesting_depth(value.get().as_bytes()) > MAX_INPUT_DEPTH {
                return Err(RequestError::invalid_params(
                    format!("inputs.{name}"),
                    format!("input {name:?} is nested deeper than {MAX_INPUT_DEPTH} levels (the recursion limit)"),
                ));
            }
        }
        let stream = match map.remove("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(_) => {
                return Err(RequestError::invalid_params(
                    "stream",
                    "stream must be a boolean",
                ))
            }
        };
        reject_unknown(&map, "run")?;
        Ok(RunParams {
            code,
            settings,
            session_id,
            inputs,
            stream,
        })
    }
}

/// The deepest nesting of arrays and objects in valid JSON text (strings skipped), in one pass
/// without recursion.
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// An input may not shadow a tool (the run's own or, in a session, the session's) nor an MCP
/// server's namespace.
pub fn check_inputs(inputs: &Inputs, tools: &[ToolDef]) -> Result<(), RequestError> {
    for name in inputs.keys() {
        if tools.iter().any(|t| t.global() == name) {
            return Err(RequestError::invalid_params(
                format!("inputs.{name}"),
                format!("input name {name:?} is also the name of a tool or of an MCP server's namespace"),
            ));
        }
    }
    Ok(())
}

fn parse_limits(value: Value) -> Result<LimitsRequest, RequestError> {
    let Value::Object(map) = value else {
        return Err(RequestError::invalid_params(
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
                return Err(RequestError::invalid_params(
                    field.clone(),
                    format!("unknown limit {field}"),
                ))
            }
        };
        match v.as_u64() {
            Some(n) => *slot = Some(n),
            None => {
                return Err(RequestError::invalid_params(
                    field.clone(),
                    format!("{field} must be a non-negative integer"),
                ))
            }
        }
    }
    Ok(req)
}

fn parse_env(value: Value) -> Result<Vec<(String, String)>, RequestError> {
    let Value::Object(map) = value else {
        return Err(RequestError::invalid_params(
            "env",
            "env must be an object of strings",
        ));
    };
    let mut env = Vec::new();
    for (key, v) in map {
        let field = format!("env.{key}");
        let Value::String(v) = v else {
            return Err(RequestError::invalid_params(
                field.clone(),
                format!("{field} must be a string"),
            ));
        };
        if key.is_empty()
            || key.contains(['=', '\0'])
            || v.contains('\0')
            || key.starts_with("PTCD_")
        {
            return Err(RequestError::invalid_params(
                field.clone(),
                format!("{field}: names must be non-empty without '=' or NUL, not start with PTCD_, and values must not contain NUL"),
            ));
        }
        env.push((key, v));
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn run_params_name_the_bad_field() {
        let field = |p: Value| {
            RunParams::parse(p)
                .unwrap_err()
                .field()
                .map(|f| json!({ "field": f }))
        };
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
        assert_eq!(
            field(json!({"code": "", "mcp_servers": "sqlite"})),
            Some(json!({"field": "mcp_servers"}))
        );
        assert_eq!(
            field(json!({"code": "", "mcp_servers": ["a", 7]})),
            Some(json!({"field": "mcp_servers[1]"}))
        );
    }

    #[test]
    fn mcp_servers_are_kept_as_sent_and_null_means_none() {
        let run =
            RunParams::parse(json!({"code": "", "mcp_servers": ["b", "a", "b"]})).expect("valid");
        assert_eq!(run.settings.mcp_servers, vec!["b", "a", "b"]);
        let run = RunParams::parse(json!({"code": "", "mcp_servers": null})).expect("valid");
        assert!(run.settings.mcp_servers.is_empty());
    }

    #[test]
    fn inputs_stay_raw_and_deep_ones_are_refused_by_name() {
        let raw = |text: &str| RawValue::from_string(text.to_string()).expect("json");
        let ok = RunParams::from_raw(Some(&raw(
            r#"{"code":"x","inputs":{"x":[1, {"a":"]]]\"["}],"y":null}}"#,
        )))
        .expect("valid");
        assert_eq!(ok.inputs["x"].get(), r#"[1, {"a":"]]]\"["}]"#);
        assert_eq!(ok.inputs["y"].get(), "null");
        let deep = format!(
            r#"{{"code":"x","inputs":{{"d":{}1{}}}}}"#,
            "[".repeat(129),
            "]".repeat(129)
        );
        let err = RunParams::from_raw(Some(&raw(&deep))).expect_err("too deep");
        assert_eq!(err.field(), Some("inputs.d"));
        let err =
            RunParams::from_raw(Some(&raw(r#"{"code":"x","inputs":[1]}"#))).expect_err("array");
        assert_eq!(err.field(), Some("inputs"));
        let err = RunParams::from_raw(Some(&raw("[1]"))).expect_err("not an object");
        assert_eq!(err.field(), Some("params"));
        assert_eq!(nesting_depth(br#"{"a":"{[{[","b":[[]]}"#), 3);
    }
}
