//! Tool specifications: validating the client's `ToolSpec`s, and turning them and MCP servers'
//! tools into what the shim needs to define one `async def` per code-callable tool.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::RequestError;
use crate::mcp::McpTool;

/// A tool as the shim sees it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ToolDef {
    /// The name on the wire (`tool/call`'s `name`).
    pub name: String,
    /// The Python identifier the script calls.
    pub py_name: String,
    /// Parameter names in schema order (positional order).
    pub params: Vec<String>,
    pub required: Vec<String>,
    /// No input schema: keyword arguments of any name, no positionals.
    pub any_kwargs: bool,
    pub description: Option<String>,
    /// The Python namespace the tool lives in (an MCP server's `python_name(server)`: the script
    /// calls `await <namespace>.<py_name>(...)`); `None` for client tools and built-ins.
    pub namespace: Option<String>,
}

impl ToolDef {
    /// What the script calls: `py_name`, or `namespace.py_name` for an MCP tool.
    pub fn script_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}.{}", self.py_name),
            None => self.py_name.clone(),
        }
    }

    /// The global the tool binds in the script: its namespace, or its own name.
    pub fn global(&self) -> &str {
        self.namespace.as_deref().unwrap_or(&self.py_name)
    }

    /// The definition of tool `tool` of the MCP server `server` (config name): wire name
    /// `"<server>.<tool>"`, in the namespace `python_name(server)`, parameters from its
    /// `inputSchema`. A schema the server got wrong is read as "any keyword arguments" rather
    /// than refused: the server, not the request, is at fault, and the server still judges the
    /// arguments it gets.
    pub fn from_mcp(server: &str, tool: &McpTool) -> ToolDef {
        let (params, required, any_kwargs) = parse_schema(&tool.input_schema, "inputSchema")
            .unwrap_or((Vec::new(), Vec::new(), true));
        ToolDef {
            name: format!("{server}.{}", tool.name),
            py_name: python_name(&tool.name),
            params,
            required,
            any_kwargs,
            description: tool.description.clone(),
            namespace: Some(python_name(server)),
        }
    }

    /// A built-in tool answered inside the daemon (`search_tools`, `describe_tool`).
    pub fn builtin(name: &str, params: &[&str], required: &[&str], description: &str) -> ToolDef {
        ToolDef {
            name: name.to_string(),
            py_name: name.to_string(),
            params: params.iter().map(|p| p.to_string()).collect(),
            required: required.iter().map(|p| p.to_string()).collect(),
            any_kwargs: false,
            description: Some(description.to_string()),
            namespace: None,
        }
    }
}

/// The stub spec of an MCP tool (for `stubs.rs`): `{"name", "description", "input_schema",
/// "output_schema"}` with the tool's MCP name.
pub fn mcp_spec(tool: &McpTool) -> Value {
    let mut spec = Map::new();
    spec.insert("name".into(), Value::String(tool.name.clone()));
    if let Some(d) = &tool.description {
        spec.insert("description".into(), Value::String(d.clone()));
    }
    spec.insert("input_schema".into(), tool.input_schema.clone());
    if let Some(out) = &tool.output_schema {
        spec.insert("output_schema".into(), out.clone());
    }
    Value::Object(spec)
}

const PY_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Maps a tool name to a Python identifier: invalid characters become `_`, a leading digit gets a
/// `_` prefix, keywords get a trailing `_`.
pub fn python_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if PY_KEYWORDS.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

/// Parses the `tools` param into the code-callable tools. `field` is the param's name.
pub fn parse_tools(value: &Value, field: &str) -> Result<Vec<ToolDef>, RequestError> {
    let Value::Array(items) = value else {
        return Err(RequestError::invalid_params(
            field,
            format!("{field} must be an array of tool specs"),
        ));
    };
    let mut defs = Vec::new();
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let Value::Object(spec) = item else {
            return Err(RequestError::invalid_params(
                &at,
                format!("{at} must be an object"),
            ));
        };
        let Some(def) = parse_one(spec, &at)? else {
            continue;
        };
        if !seen.insert(def.py_name.clone()) {
            return Err(RequestError::invalid_params(
                format!("{at}.name"),
                format!(
                    "tool {:?} maps to the Python name {:?} that another tool already uses",
                    def.name, def.py_name
                ),
            ));
        }
        defs.push(def);
    }
    Ok(defs)
}

/// One spec; `None` when the tool is not callable from code (`allowed_callers` without it).
fn parse_one(spec: &Map<String, Value>, at: &str) -> Result<Option<ToolDef>, RequestError> {
    let name = match spec.get("name") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => s.clone(),
        _ => {
            return Err(RequestError::invalid_params(
                format!("{at}.name"),
                format!("{at}.name must be a non-empty string of at most 256 bytes"),
            ))
        }
    };
    if let Some(callers) = spec.get("allowed_callers") {
        let field = format!("{at}.allowed_callers");
        let Value::Array(callers) = callers else {
            return Err(RequestError::invalid_params(
                field.clone(),
                format!("{field} must be an array"),
            ));
        };
        let mut code = false;
        for c in callers {
            match c.as_str() {
                Some("code_execution") => code = true,
                Some("direct") => {}
                _ => {
                    return Err(RequestError::invalid_params(
                        field.clone(),
                        format!("{field} may hold only \"code_execution\" and \"direct\""),
                    ))
                }
            }
        }
        if !code {
            return Ok(None);
        }
    }
    let description = match spec.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(RequestError::invalid_params(
                format!("{at}.description"),
                format!("{at}.description must be a string"),
            ))
        }
    };
    let schema = ["input_schema", "inputSchema", "parameters"]
        .iter()
        .find_map(|k| spec.get(*k).map(|v| (*k, v)));
    let (params, required, any_kwargs) = match schema {
        None | Some((_, Value::Null)) => (Vec::new(), Vec::new(), true),
        Some((key, schema)) => parse_schema(schema, &format!("{at}.{key}"))?,
    };
    Ok(Some(ToolDef {
        py_name: python_name(&name),
        name,
        params,
        required,
        any_kwargs,
        description,
        namespace: None,
    }))
}

type Signature = (Vec<String>, Vec<String>, bool);

fn parse_schema(schema: &Value, field: &str) -> Result<Signature, RequestError> {
    let Value::Object(schema) = schema else {
        return Err(RequestError::invalid_params(
            field,
            format!("{field} must be a JSON Schema object"),
        ));
    };
    let params: Vec<String> = match schema.get("properties") {
        None => Vec::new(),
        // serde_json is built with `preserve_order`, so keys keep the order the client sent.
        Some(Value::Object(props)) => props.keys().cloned().collect(),
        Some(_) => {
            return Err(RequestError::invalid_params(
                format!("{field}.properties"),
                format!("{field}.properties must be an object"),
            ))
        }
    };
    let required = match schema.get("required") {
        None => Vec::new(),
        Some(Value::Array(names)) => names
            .iter()
            .map(|n| n.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                RequestError::invalid_params(
                    format!("{field}.required"),
                    format!("{field}.required must be an array of strings"),
                )
            })?,
        Some(_) => {
            return Err(RequestError::invalid_params(
                format!("{field}.required"),
                format!("{field}.required must be an array of strings"),
            ))
        }
    };
    Ok((params, required, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_names_are_identifiers() {
        assert_eq!(python_name("get-weather"), "get_weather");
        assert_eq!(python_name("3d.render"), "_3d_render");
        assert_eq!(python_name("class"), "class_");
        assert_eq!(python_name("ok_name"), "ok_name");
    }

    #[test]
    fn schema_order_gives_positional_order() {
        let tools = parse_tools(
            &json!([{"name": "f", "input_schema": {"type": "object",
                "properties": {"zeta": {}, "alpha": {}}, "required": ["zeta"]}}]),
            "tools",
        )
        .expect("valid spec");
        assert_eq!(tools[0].params, vec!["zeta", "alpha"]);
        assert_eq!(tools[0].required, vec!["zeta"]);
        assert!(!tools[0].any_kwargs);
    }

    #[test]
    fn aliases_and_missing_schema() {
        let tools = parse_tools(
            &json!([{"name": "a", "inputSchema": {"properties": {"x": {}}}},
                    {"name": "b", "parameters": {"properties": {"y": {}}}},
                    {"name": "c"}]),
            "tools",
        )
        .expect("valid spec");
        assert_eq!(tools[0].params, vec!["x"]);
        assert_eq!(tools[1].params, vec!["y"]);
        assert!(tools[2].any_kwargs);
    }

    #[test]
    fn direct_only_tools_are_not_code_callable() {
        let tools = parse_tools(
            &json!([{"name": "a", "allowed_callers": ["direct"]}]),
            "tools",
        )
        .expect("valid spec");
        assert!(tools.is_empty());
    }

    #[test]
    fn mcp_tools_get_wire_name_namespace_and_params_from_input_schema() {
        let tool = McpTool {
            name: "read-query".into(),
            description: Some("Run a SELECT.".into()),
            input_schema: json!({"type": "object", "properties": {"query": {"type": "string"},
                "limit": {"type": "integer"}}, "required": ["query"]}),
            output_schema: None,
        };
        let def = ToolDef::from_mcp("my-db", &tool);
        assert_eq!(def.name, "my-db.read-query");
        assert_eq!(def.py_name, "read_query");
        assert_eq!(def.namespace.as_deref(), Some("my_db"));
        assert_eq!(def.script_name(), "my_db.read_query");
        assert_eq!(def.params, vec!["query", "limit"]);
        assert_eq!(def.required, vec!["query"]);
        assert!(!def.any_kwargs);
        assert_eq!(def.description.as_deref(), Some("Run a SELECT."));
        let broken = McpTool {
            input_schema: json!({"properties": [1]}),
            ..tool
        };
        assert!(ToolDef::from_mcp("s", &broken).any_kwargs);
    }

    #[test]
    fn bad_specs_name_the_field() {
        let err = parse_tools(&json!([{"name": 3}]), "tools").unwrap_err();
        assert_eq!(err.field(), Some("tools[0].name"));
        let err = parse_tools(&json!([{"name": "a-b"}, {"name": "a_b"}]), "tools").unwrap_err();
        assert_eq!(err.field(), Some("tools[1].name"));
        let err = parse_tools(&json!({}), "tools").unwrap_err();
        assert_eq!(err.field(), Some("tools"));
    }
}
