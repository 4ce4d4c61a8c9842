//! `tools/definition`: what to hand the model.
//!
//! The model gets one code-execution tool (`run_code`) whose description teaches it how to write
//! the script and shows every code-callable tool as a typed `async def` stub, plus every tool the
//! client marked `direct` as an ordinary tool. Each provider wants the same three things (name,
//! description, JSON Schema) under different keys; [`Format`] is that difference and nothing else.
//!
//! Pure: specs in, JSON out. The specs were validated by [`crate::tools::parse_tools`] first, so
//! this module only reads them.

use serde_json::{json, Map, Value};

use crate::rpc::RpcError;
use crate::tools::python_name;

/// The code-execution tool's name.
pub const RUN_CODE: &str = "run_code";

/// A provider's tool format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenAi,
    OpenAiResponses,
    Anthropic,
    Gemini,
    Mcp,
}

impl Format {
    pub const NAMES: &'static str = "openai, openai_responses, anthropic, gemini, mcp";

    pub fn parse(value: Option<&Value>) -> Result<Format, RpcError> {
        match value.and_then(Value::as_str) {
            Some("openai") => Ok(Format::OpenAi),
            Some("openai_responses") => Ok(Format::OpenAiResponses),
            Some("anthropic") => Ok(Format::Anthropic),
            Some("gemini") => Ok(Format::Gemini),
            Some("mcp") => Ok(Format::Mcp),
            _ => Err(RpcError::invalid_params(
                "format",
                format!("format must be one of: {}", Format::NAMES),
            )),
        }
    }

    /// One tool in this format.
    pub fn tool(self, name: &str, description: &str, schema: Value) -> Value {
        match self {
            Format::OpenAi => json!({"type": "function", "function":
                {"name": name, "description": description, "parameters": schema}}),
            Format::OpenAiResponses => json!({"type": "function", "name": name,
                "description": description, "parameters": schema}),
            Format::Anthropic => {
                json!({"name": name, "description": description, "input_schema": schema})
            }
            Format::Gemini => {
                json!({"name": name, "description": description, "parameters": schema})
            }
            Format::Mcp => json!({"name": name, "description": description, "inputSchema": schema}),
        }
    }
}

/// The `tools/definition` result for validated tool specs.
pub fn definitions(specs: &[Value], format: Format) -> Value {
    let stubs = stubs(specs);
    let mut tools = vec![format.tool(RUN_CODE, &run_code_description(&stubs), code_schema())];
    for spec in specs.iter().filter(|s| has_caller(s, "direct")) {
        let name = spec.get("name").and_then(Value::as_str).unwrap_or_default();
        let description = spec
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let schema = input_schema(spec)
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        tools.push(format.tool(name, description, schema));
    }
    json!({"tools": tools, "stubs": stubs})
}

fn code_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"code": {"type": "string", "description": "The Python script to run."}},
        "required": ["code"],
    })
}

fn run_code_description(stubs: &str) -> String {
    format!(
        "Run a Python script in a sandbox. Use it to call the tools below from code: loop, filter, \
and combine their results there, so that only what you need comes back to you.\n\n\
How to write the script:\n\
- The tools are `async` functions: call them with `await`, at the top level of the script \
(no `asyncio.run` needed).\n\
- Independent calls run in parallel with `asyncio.gather(...)` (`asyncio` is already \
imported).\n\
- A failing tool raises `ToolError` (with `.message` and `.code`); catch it with try/except if \
you can go on without that result.\n\
- Only what the script prints and the value of its last expression come back to you, not the \
tool results themselves: print (or end with) exactly what you need.\n\
- Standard library only, no network, no subprocesses; the working directory is a private \
scratch directory.\n\n\
Available tools:\n```python\n{stubs}```"
    )
}

fn has_caller(spec: &Value, caller: &str) -> bool {
    match spec.get("allowed_callers") {
        Some(Value::Array(callers)) => callers.iter().any(|c| c == caller),
        _ => caller == "code_execution",
    }
}

fn input_schema(spec: &Value) -> Option<&Value> {
    ["input_schema", "inputSchema", "parameters"]
        .iter()
        .find_map(|k| spec.get(*k).filter(|v| !v.is_null()))
}

/// Python source: one typed `async def` stub per code-callable tool.
pub fn stubs(specs: &[Value]) -> String {
    let mut out = String::from("from typing import Any, Literal, Optional, Union\n");
    for spec in specs.iter().filter(|s| has_caller(s, "code_execution")) {
        out.push('\n');
        out.push_str(&stub(spec));
    }
    out
}

/// One tool's stub. Parameters keep the schema order (the order positional arguments bind in);
/// a required parameter that follows an optional one cannot be positional in a Python signature,
/// so from there on parameters are keyword-only (after `*`).
fn stub(spec: &Value) -> String {
    let name = spec.get("name").and_then(Value::as_str).unwrap_or_default();
    let py = python_name(name);
    let mut out = String::new();
    if py != name {
        out.push_str(&format!("# tool/call name: {}\n", py_literal_str(name)));
    }
    let schema = input_schema(spec);
    let props = schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object);
    let required: Vec<&str> = schema
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut params = Vec::new();
    let mut arg_docs = Vec::new();
    match (schema, props) {
        (None, _) => params.push("**kwargs: Any".to_string()),
        (Some(_), None) => {}
        (Some(_), Some(props)) => {
            let mut seen_optional = false;
            let mut keyword_only = false;
            for (prop, prop_schema) in props {
                let is_required = required.contains(&prop.as_str());
                if is_required && seen_optional && !keyword_only {
                    params.push("*".into());
                    keyword_only = true;
                }
                let py_prop = python_name(prop);
                let ty = py_type(prop_schema);
                params.push(if is_required {
                    format!("{py_prop}: {ty}")
                } else {
                    seen_optional = true;
                    format!("{py_prop}: {} = None", optional(&ty))
                });
                let mut doc = prop_schema
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if py_prop != *prop {
                    doc.push_str(&format!(" (wire name {prop:?}; pass it positionally)"));
                }
                if !doc.trim().is_empty() {
                    arg_docs.push(format!("{py_prop}: {}", doc.trim()));
                }
            }
        }
    }
    let returns = spec
        .get("output_schema")
        .or_else(|| spec.get("outputSchema"))
        .map(py_type)
        .unwrap_or_else(|| "Any".into());
    out.push_str(&format!(
        "async def {py}({}) -> {returns}:\n",
        params.join(", ")
    ));
    let mut doc = spec
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_string();
    if !arg_docs.is_empty() {
        if !doc.is_empty() {
            doc.push_str("\n\n");
        }
        doc.push_str("Args:\n");
        for a in &arg_docs {
            doc.push_str(&format!("    {a}\n"));
        }
    }
    if doc.is_empty() {
        out.push_str("    ...\n");
    } else {
        let body = doc
            .trim_end()
            .replace('\\', "\\\\")
            .replace("\"\"\"", "\\\"\\\"\\\"");
        let indented: Vec<String> = body
            .lines()
            .map(|l| {
                if l.is_empty() {
                    String::new()
                } else {
                    format!("    {l}")
                }
            })
            .collect();
        out.push_str(&format!(
            "    \"\"\"{}\n    \"\"\"\n",
            indented.join("\n").trim_start()
        ));
    }
    out
}

fn optional(ty: &str) -> String {
    if ty == "Any" || ty == "None" || ty.starts_with("Optional[") {
        ty.to_string()
    } else {
        format!("Optional[{ty}]")
    }
}

/// The Python type hint for a JSON Schema.
pub fn py_type(schema: &Value) -> String {
    let Value::Object(s) = schema else {
        return "Any".into();
    };
    if let Some(Value::Array(values)) = s.get("enum") {
        return literal(values);
    }
    if let Some(value) = s.get("const") {
        return literal(std::slice::from_ref(value));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(options)) = s.get(key) {
            return union(options.iter().map(py_type).collect());
        }
    }
    match s.get("type") {
        Some(Value::String(t)) => single_type(t, s),
        Some(Value::Array(types)) => union(
            types
                .iter()
                .filter_map(Value::as_str)
                .map(|t| single_type(t, s))
                .collect(),
        ),
        _ => "Any".into(),
    }
}

fn single_type(t: &str, s: &Map<String, Value>) -> String {
    match t {
        "string" => "str".into(),
        "integer" => "int".into(),
        "number" => "float".into(),
        "boolean" => "bool".into(),
        "null" => "None".into(),
        "array" => match s.get("items") {
            Some(items) => format!("list[{}]", py_type(items)),
            None => "list[Any]".into(),
        },
        "object" => "dict[str, Any]".into(),
        _ => "Any".into(),
    }
}

/// `Union[...]` of distinct types; with `None` among them, `Optional[...]`.
fn union(types: Vec<String>) -> String {
    let mut distinct: Vec<String> = Vec::new();
    for t in types {
        if !distinct.contains(&t) {
            distinct.push(t);
        }
    }
    if distinct.iter().any(|t| t == "Any") {
        return "Any".into();
    }
    let nullable = distinct.iter().any(|t| t == "None");
    distinct.retain(|t| t != "None");
    let inner = match distinct.len() {
        0 => return "None".into(),
        1 => distinct.remove(0),
        _ => format!("Union[{}]", distinct.join(", ")),
    };
    if nullable {
        format!("Optional[{inner}]")
    } else {
        inner
    }
}

fn literal(values: &[Value]) -> String {
    let mut parts = Vec::new();
    let mut nullable = false;
    for v in values {
        match v {
            Value::Null => nullable = true,
            Value::Bool(b) => parts.push(if *b { "True" } else { "False" }.to_string()),
            Value::Number(n) => parts.push(n.to_string()),
            Value::String(s) => parts.push(py_literal_str(s)),
            // Literal cannot hold lists or dicts.
            _ => return "Any".into(),
        }
    }
    let inner = if parts.is_empty() {
        return "None".into();
    } else {
        format!("Literal[{}]", parts.join(", "))
    };
    if nullable {
        format!("Optional[{inner}]")
    } else {
        inner
    }
}

/// A Python string literal (JSON's escapes are valid Python escapes).
fn py_literal_str(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(schema: Value) -> String {
        py_type(&schema)
    }

    #[test]
    fn scalar_types_map_to_python() {
        assert_eq!(ty(json!({"type": "string"})), "str");
        assert_eq!(ty(json!({"type": "integer"})), "int");
        assert_eq!(ty(json!({"type": "number"})), "float");
        assert_eq!(ty(json!({"type": "boolean"})), "bool");
        assert_eq!(ty(json!({})), "Any");
    }

    #[test]
    fn containers_enums_and_nullables() {
        assert_eq!(
            ty(json!({"type": "array", "items": {"type": "string"}})),
            "list[str]"
        );
        assert_eq!(ty(json!({"type": "array"})), "list[Any]");
        assert_eq!(ty(json!({"type": "object"})), "dict[str, Any]");
        assert_eq!(
            ty(json!({"type": "string", "enum": ["c", "f"]})),
            "Literal[\"c\", \"f\"]"
        );
        assert_eq!(ty(json!({"enum": [1, 2, null]})), "Optional[Literal[1, 2]]");
        assert_eq!(ty(json!({"type": ["string", "null"]})), "Optional[str]");
        assert_eq!(
            ty(json!({"anyOf": [{"type": "integer"}, {"type": "null"}]})),
            "Optional[int]"
        );
        assert_eq!(
            ty(json!({"oneOf": [{"type": "integer"}, {"type": "string"}]})),
            "Union[int, str]"
        );
    }

    #[test]
    fn stub_has_typed_signature_docstring_and_wire_name() {
        let spec = json!({"name": "get-weather", "description": "Current weather.",
            "input_schema": {"type": "object", "properties": {
                "city": {"type": "string", "description": "City name"},
                "units": {"type": "string", "enum": ["c", "f"]}},
                "required": ["city"]},
            "output_schema": {"type": "object"}});
        let s = stub(&spec);
        assert!(s.starts_with("# tool/call name: \"get-weather\"\n"), "{s}");
        assert!(
            s.contains("async def get_weather(city: str, units: Optional[Literal[\"c\", \"f\"]] = None) -> dict[str, Any]:"),
            "{s}"
        );
        assert!(s.contains("Current weather."), "{s}");
        assert!(s.contains("city: City name"), "{s}");
    }

    #[test]
    fn required_after_optional_becomes_keyword_only() {
        let spec = json!({"name": "f", "input_schema": {"properties": {
            "a": {"type": "integer"}, "b": {"type": "string"}}, "required": ["b"]}});
        assert!(stub(&spec).contains("async def f(a: Optional[int] = None, *, b: str) -> Any:"));
    }

    #[test]
    fn no_schema_takes_keywords_and_docstring_quotes_are_escaped() {
        let spec = json!({"name": "g", "description": "say \"\"\" and \\ here"});
        let s = stub(&spec);
        assert!(s.contains("async def g(**kwargs: Any) -> Any:"), "{s}");
        assert!(s.contains("\\\"\\\"\\\""), "{s}");
    }

    #[test]
    fn every_format_wraps_name_description_schema() {
        let specs = [
            json!({"name": "lookup", "description": "d", "allowed_callers": ["direct"],
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}),
        ];
        let shape = |f: Format| definitions(&specs, f)["tools"].clone();
        let openai = shape(Format::OpenAi);
        assert_eq!(openai[0]["function"]["name"], "run_code");
        assert_eq!(
            openai[1]["function"]["parameters"]["properties"]["q"]["type"],
            "string"
        );
        assert_eq!(shape(Format::OpenAiResponses)[1]["name"], "lookup");
        assert_eq!(shape(Format::OpenAiResponses)[1]["type"], "function");
        assert!(shape(Format::Anthropic)[0]["input_schema"].is_object());
        assert!(shape(Format::Gemini)[1]["parameters"].is_object());
        assert!(shape(Format::Mcp)[1]["inputSchema"].is_object());
    }

    #[test]
    fn direct_only_tools_have_no_stub_and_code_only_tools_are_not_offered() {
        let specs = [
            json!({"name": "direct_one", "allowed_callers": ["direct"]}),
            json!({"name": "code_one"}),
        ];
        let d = definitions(&specs, Format::Anthropic);
        let stubs = d["stubs"].as_str().unwrap_or_default();
        assert!(stubs.contains("async def code_one("));
        assert!(!stubs.contains("direct_one"));
        let names: Vec<&str> = d["tools"]
            .as_array()
            .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(names, vec!["run_code", "direct_one"]);
        assert!(d["tools"][0]["description"]
            .as_str()
            .is_some_and(|s| s.contains("async def code_one(")));
    }

    #[test]
    fn unknown_format_names_the_field() {
        let err = Format::parse(Some(&json!("cohere"))).unwrap_err();
        assert_eq!(err.data, Some(json!({"field": "format"})));
    }
}
