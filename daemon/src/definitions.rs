//! `tools/definition`: what to hand the model.
//!
//! The model gets one code-execution tool (`run_code`) whose description teaches it how to write
//! the script and shows every code-callable tool as a typed `async def` stub, plus every tool the
//! client marked `direct` as an ordinary tool. Each provider wants the same three things (name,
//! description, JSON Schema) under different keys; [`Format`] is that difference and nothing else.
//!
//! The stubs themselves come from `stubs.rs` ([`Catalog`]: the client's specs and the attached
//! MCP servers' namespaces). A catalog of more than `discovery_threshold` tools is shown in
//! summary mode (`name — summary` lines and the `search_tools`/`describe_tool` built-ins the
//! script then gets), so the prompt stays small however many servers are attached.
//!
//! Pure: catalog in, JSON out. The specs were validated by [`crate::tools::parse_tools`] first,
//! so this module only reads them.

use serde_json::{json, Value};

use crate::rpc::RpcError;
use crate::stubs::{has_caller, input_schema, Catalog, DESCRIBE_TOOL, SEARCH_TOOLS};

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

/// The `tools/definition` result for a catalog. `persistent`: the runs share one interpreter (a
/// persistent session), which the description tells the model. Over `threshold` tools the stubs
/// are in summary mode (see [`discovery_builtins`]).
pub fn definitions(catalog: &Catalog, format: Format, persistent: bool, threshold: usize) -> Value {
    let builtins = discovery_builtins(catalog, threshold);
    let stubs = match &builtins {
        Some(builtins) => catalog.summary(builtins),
        None => catalog.stubs(),
    };
    let description = run_code_description(&stubs, persistent);
    let mut tools = vec![format.tool(RUN_CODE, &description, code_schema())];
    for spec in catalog.client.iter().filter(|s| has_caller(s, "direct")) {
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
    // The built-ins the script gets, so a client (e.g. `ptcd mcp`) knows it is in summary mode.
    let discovery = builtins.unwrap_or_default();
    json!({"tools": tools, "stubs": stubs, "discovery": discovery})
}

/// The discovery built-ins a script with this catalog gets: `None` at or under `threshold`
/// tools; above it, `search_tools` and `describe_tool`, each unless a client tool of that
/// Python name shadows it (the client's tool wins).
pub fn discovery_builtins(catalog: &Catalog, threshold: usize) -> Option<Vec<&'static str>> {
    if catalog.len() <= threshold {
        return None;
    }
    let taken = |builtin: &str| {
        catalog.client.iter().any(|s| {
            has_caller(s, "code_execution")
                && crate::tools::python_name(s.get("name").and_then(Value::as_str).unwrap_or(""))
                    == builtin
        })
    };
    Some(
        [SEARCH_TOOLS, DESCRIBE_TOOL]
            .into_iter()
            .filter(|b| !taken(b))
            .collect(),
    )
}

fn code_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"code": {"type": "string", "description": "The Python script to run."}},
        "required": ["code"],
    })
}

fn run_code_description(stubs: &str, persistent: bool) -> String {
    let session = if persistent {
        "- Variables, functions and imports persist from one run to the next (one interpreter).\n"
    } else {
        ""
    };
    format!(
        "Run a Python script in a sandbox that calls the tools below: loop, filter and combine \
their results in code so only what you need comes back.\n\
- Tools are async: `await` them at top level (no `asyncio.run`); run independent calls with \
`asyncio.gather(...)` (asyncio is imported).\n\
- A failing tool raises `ToolError` (`.message`, `.code`); catch it to go on without that result.\n\
- Only what you print and the last expression's value come back: print exactly what you need.\n\
- Standard library only, no network or subprocesses; cwd is a private scratch dir.\n\
{session}\nTools:\n```python\n{stubs}```"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(specs: &[Value]) -> Catalog {
        Catalog {
            client: specs.to_vec(),
            namespaces: Vec::new(),
        }
    }

    #[test]
    fn every_format_wraps_name_description_schema() {
        let specs = [
            json!({"name": "lookup", "description": "d", "allowed_callers": ["direct"],
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}),
        ];
        let shape = |f: Format| definitions(&catalog(&specs), f, false, 30)["tools"].clone();
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
        let d = definitions(&catalog(&specs), Format::Anthropic, false, 30);
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
    fn persistent_sessions_are_told_that_variables_persist() {
        let persistent = definitions(&catalog(&[]), Format::Anthropic, true, 30);
        let plain = definitions(&catalog(&[]), Format::Anthropic, false, 30);
        let text = |d: &Value| {
            d["tools"][0]["description"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        assert!(text(&persistent).contains("persist from one run to the next"));
        assert!(!text(&plain).contains("persist"));
    }

    #[test]
    fn unknown_format_names_the_field() {
        let err = Format::parse(Some(&json!("cohere"))).unwrap_err();
        assert_eq!(err.data, Some(json!({"field": "format"})));
    }

    #[test]
    fn over_the_threshold_definitions_are_summaries_with_the_discovery_builtins() {
        let specs: Vec<Value> = (0..5)
            .map(|i| json!({"name": format!("tool_{i}"), "description": format!("Tool {i}.")}))
            .collect();
        let full = definitions(&catalog(&specs), Format::Mcp, false, 5);
        assert!(full["stubs"]
            .as_str()
            .is_some_and(|s| s.contains("async def tool_4(")));
        let summary = definitions(&catalog(&specs), Format::Mcp, false, 4);
        let stubs = summary["stubs"].as_str().unwrap_or_default();
        assert!(stubs.contains("#   tool_4 — Tool 4."), "{stubs}");
        assert!(!stubs.contains("async def tool_4("), "{stubs}");
        assert!(stubs.contains("async def search_tools("), "{stubs}");
        assert_eq!(
            discovery_builtins(&catalog(&specs), 4),
            Some(vec![SEARCH_TOOLS, DESCRIBE_TOOL])
        );
    }

    #[test]
    fn a_client_tool_shadows_the_builtin_of_its_name() {
        let specs = vec![json!({"name": "search-tools"}), json!({"name": "b"})];
        assert_eq!(
            discovery_builtins(&catalog(&specs), 1),
            Some(vec![DESCRIBE_TOOL])
        );
        assert_eq!(discovery_builtins(&catalog(&specs), 2), None);
    }
}
