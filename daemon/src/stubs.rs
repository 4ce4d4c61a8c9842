//! Tool stubs: the typed Python source that shows the model (and, through `describe_tool`, the
//! script) what it can call.
//!
//! A [`Catalog`] is every tool a script can call: the client's specs and the attached MCP
//! servers' tools ([`Namespace`]s). It renders as full stubs (a `TypedDict` per result shape,
//! an `async def` per client tool, a `class <server>:` of `@staticmethod async def`s per MCP
//! server), as summary lines for a catalog too large to show in full (discovery mode), or as
//! one [`Entry`] per tool (name, summary, own stub) for `discovery.rs`'s search index.
//!
//! Pure: specs in, text out. Client specs were validated by [`crate::tools::parse_tools`];
//! MCP servers' schemas are read defensively (anything unexpected becomes `Any`).

use serde_json::{Map, Value};

use crate::tools::python_name;

/// Whether a spec's `allowed_callers` includes `caller` (default: `code_execution` only).
pub fn has_caller(spec: &Value, caller: &str) -> bool {
    match spec.get("allowed_callers") {
        Some(Value::Array(callers)) => callers.iter().any(|c| c == caller),
        _ => caller == "code_execution",
    }
}

/// A spec's input schema under any of its accepted keys.
pub fn input_schema(spec: &Value) -> Option<&Value> {
    ["input_schema", "inputSchema", "parameters"]
        .iter()
        .find_map(|k| spec.get(*k).filter(|v| !v.is_null()))
}

/// Python source of client tool specs alone (no MCP namespaces): see [`Catalog::stubs`].
pub fn stubs(specs: &[Value]) -> String {
    Catalog {
        client: specs.to_vec(),
        namespaces: Vec::new(),
    }
    .stubs()
}

/// One attached MCP server's tools, as the stubs show them: a class-like namespace.
#[derive(Debug, Clone)]
pub struct Namespace {
    /// The server's config name (its tools' wire names are `"<server>.<tool>"`).
    pub server: String,
    /// The Python name the script uses (`tools::python_name(server)`).
    pub py_name: String,
    /// One spec per tool: `{"name": <MCP tool name>, "description", "input_schema",
    /// "output_schema"}`.
    pub tools: Vec<Value>,
}

/// Every tool a script can call: the client's specs (as sent, direct-only ones included) and
/// the attached MCP servers' tools.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub client: Vec<Value>,
    pub namespaces: Vec<Namespace>,
}

/// One code-callable tool of a catalog, for search and `describe_tool`.
#[derive(Debug, Clone)]
pub struct Entry {
    /// What the script calls: `get_weather`, `sqlite.read_query`.
    pub name: String,
    /// The wire name (`tool/call`'s `name`): `get-weather`, `sqlite.read_query`.
    pub wire: String,
    pub summary: String,
    pub description: String,
    pub params: Vec<String>,
    /// The tool's full stub, with the classes its result type needs.
    pub stub: String,
}

impl Catalog {
    /// The code-callable client specs.
    fn client_code(&self) -> impl Iterator<Item = &Value> {
        self.client
            .iter()
            .filter(|s| has_caller(s, "code_execution"))
    }

    /// How many tools the script can call.
    pub fn len(&self) -> usize {
        self.client_code().count() + self.namespaces.iter().map(|n| n.tools.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Python source: a `TypedDict` class per object shape the tools return, then one typed
    /// `async def` stub per code-callable client tool, then one `class <namespace>:` per MCP
    /// server with its tools as `@staticmethod async def`s. The classes let the model write its
    /// filter code from the stubs alone, without spending a turn printing a result to learn
    /// its shape.
    pub fn stubs(&self) -> String {
        let mut classes = Classes::default();
        let mut bodies: Vec<String> = self
            .client_code()
            .map(|spec| stub(spec, &mut classes))
            .collect();
        for ns in &self.namespaces {
            bodies.push(namespace_class(ns, ns.tools.iter(), &mut classes));
        }
        let mut out = imports(&classes);
        for body in bodies {
            out.push('\n');
            out.push_str(&body);
        }
        out
    }

    /// Summary mode (a catalog over `discovery_threshold`): one `name — summary` line per tool,
    /// grouped per namespace, as comments, plus the stubs of the discovery built-ins the
    /// script gets (`builtins`: those no client tool shadows).
    pub fn summary(&self, builtins: &[&str]) -> String {
        let mut out = String::from("from typing import Any\n\n");
        out.push_str(&format!(
            "# {} tools: too many to show in full, so each is listed as `name — summary`.\n\
             # Before calling a tool, get its full stub (signature, types, docs) with\n\
             # `print(await describe_tool(\"name\"))`; find tools with\n\
             # `await search_tools(\"what you need\")` -> [{{\"name\", \"summary\"}}].\n",
            self.len()
        ));
        let client: Vec<&Value> = self.client_code().collect();
        if !client.is_empty() {
            out.push_str("\n# Tools:\n");
            for spec in client {
                let name = spec.get("name").and_then(Value::as_str).unwrap_or_default();
                out.push_str(&summary_line(&python_name(name), spec));
            }
        }
        for ns in &self.namespaces {
            out.push_str(&format!(
                "\n# {} (MCP server {}):\n",
                ns.py_name,
                py_literal_str(&ns.server)
            ));
            for spec in &ns.tools {
                let name = spec.get("name").and_then(Value::as_str).unwrap_or_default();
                out.push_str(&summary_line(
                    &format!("{}.{}", ns.py_name, python_name(name)),
                    spec,
                ));
            }
        }
        for builtin in builtins {
            out.push('\n');
            out.push_str(match *builtin {
                SEARCH_TOOLS => SEARCH_TOOLS_STUB,
                _ => DESCRIBE_TOOL_STUB,
            });
        }
        out
    }

    /// Every code-callable tool with its summary and its own full stub.
    pub fn entries(&self) -> Vec<Entry> {
        let mut out: Vec<Entry> = self.client.iter().filter_map(client_entry).collect();
        for ns in &self.namespaces {
            out.extend(namespace_entries(ns));
        }
        out
    }
}

/// The [`Entry`] of one client spec; `None` when it is not code-callable. (One spec at a time,
/// so a caller can build the entries of many specs without holding all of them as values.)
pub fn client_entry(spec: &Value) -> Option<Entry> {
    if !has_caller(spec, "code_execution") {
        return None;
    }
    let wire = spec.get("name").and_then(Value::as_str).unwrap_or_default();
    let mut classes = Classes::default();
    let body = stub(spec, &mut classes);
    Some(entry(
        python_name(wire),
        wire.to_string(),
        spec,
        &classes,
        body,
    ))
}

/// The [`Entry`]s of one MCP server's tools.
pub fn namespace_entries(ns: &Namespace) -> Vec<Entry> {
    ns.tools
        .iter()
        .map(|spec| {
            let tool = spec.get("name").and_then(Value::as_str).unwrap_or_default();
            let mut classes = Classes::default();
            let body = namespace_class(ns, std::iter::once(spec), &mut classes);
            entry(
                format!("{}.{}", ns.py_name, python_name(tool)),
                format!("{}.{tool}", ns.server),
                spec,
                &classes,
                body,
            )
        })
        .collect()
}

/// The discovery built-ins' names.
pub const SEARCH_TOOLS: &str = "search_tools";
pub const DESCRIBE_TOOL: &str = "describe_tool";

const SEARCH_TOOLS_STUB: &str =
    "async def search_tools(query: str, limit: int = 10) -> list[dict[str, str]]:
    \"\"\"Finds tools for a task: [{\"name\": ..., \"summary\": ...}], best match first.
    \"\"\"
";

const DESCRIBE_TOOL_STUB: &str = "async def describe_tool(name: str) -> str:
    \"\"\"The full stub (signature, types, docs) of the tool `name` (e.g. \"sqlite.read_query\").
    \"\"\"
";

fn imports(classes: &Classes) -> String {
    if classes.source.is_empty() {
        String::from("from typing import Any, Literal, Optional, Union\n")
    } else {
        format!(
            "from typing import Any, Literal, NotRequired, Optional, TypedDict, Union\n{}",
            classes.source
        )
    }
}

fn entry(name: String, wire: String, spec: &Value, classes: &Classes, body: String) -> Entry {
    let description = spec
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let params = input_schema(spec)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    Entry {
        name,
        wire,
        summary: summary(&description),
        description,
        params,
        stub: format!("{}\n{body}", imports(classes)),
    }
}

/// A tool's one-line summary: the first sentence (or line) of its description, at most 120
/// characters.
pub fn summary(description: &str) -> String {
    let first = description.trim().lines().next().unwrap_or_default();
    let sentence = match first.find(". ") {
        Some(end) => &first[..=end],
        None => first,
    };
    let line = one_line(sentence);
    if line.chars().count() > 120 {
        let cut: String = line.chars().take(117).collect();
        format!("{}...", cut.trim_end())
    } else {
        line
    }
}

fn summary_line(name: &str, spec: &Value) -> String {
    let description = spec
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let summary = summary(description);
    if summary.is_empty() {
        format!("#   {name}\n")
    } else {
        format!("#   {name} — {summary}\n")
    }
}

/// `class <ns>:` holding `tools` as `@staticmethod async def`s (the script calls
/// `await <ns>.<tool>(...)`).
fn namespace_class<'a>(
    ns: &Namespace,
    tools: impl Iterator<Item = &'a Value>,
    classes: &mut Classes,
) -> String {
    let mut out = format!("class {}:\n", ns.py_name);
    out.push_str(&docstring(
        &format!("Tools of the MCP server {}.", py_literal_str(&ns.server)),
        "    ",
    ));
    for spec in tools {
        out.push_str("\n    @staticmethod\n");
        for line in stub_named(spec, classes, "MCP tool name").lines() {
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    out
}

/// One tool's stub. Parameters keep the schema order (the order positional arguments bind in);
/// a required parameter that follows an optional one cannot be positional in a Python signature,
/// so from there on parameters are keyword-only (after `*`).
fn stub(spec: &Value, classes: &mut Classes) -> String {
    stub_named(spec, classes, "tool/call name")
}

/// [`stub`], saying what a Python name that differs from the tool's name maps to under
/// `label` (`tool/call name` for a client tool, `MCP tool name` in a namespace).
fn stub_named(spec: &Value, classes: &mut Classes, label: &str) -> String {
    let name = spec.get("name").and_then(Value::as_str).unwrap_or_default();
    let py = python_name(name);
    let mut out = String::new();
    if py != name {
        out.push_str(&format!("# {label}: {}\n", py_literal_str(name)));
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
    let output = spec
        .get("output_schema")
        .or_else(|| spec.get("outputSchema"))
        .filter(|v| !v.is_null());
    let returns = match output {
        Some(schema) => classes.type_of(schema, schema, &format!("{}Result", camel(&py))),
        None => "Any".into(),
    };
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
    let returns_doc = match output {
        None => Some("Returns: a value of undocumented shape (no output schema).".to_string()),
        Some(schema) => schema
            .get("description")
            .and_then(Value::as_str)
            .map(|d| format!("Returns: {}", one_line(d))),
    };
    if let Some(text) = returns_doc {
        if !doc.is_empty() {
            doc = format!("{}\n\n", doc.trim_end());
        }
        doc.push_str(&text);
    }
    if doc.is_empty() {
        out.push_str("    ...\n");
    } else {
        out.push_str(&docstring(&doc, "    "));
    }
    out
}

/// A triple-quoted docstring, indented, with quotes and backslashes escaped.
fn docstring(text: &str, indent: &str) -> String {
    let body = text
        .trim_end()
        .replace('\\', "\\\\")
        .replace("\"\"\"", "\\\"\\\"\\\"");
    let indented: Vec<String> = body
        .lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{indent}{l}")
            }
        })
        .collect();
    format!(
        "{indent}\"\"\"{}\n{indent}\"\"\"\n",
        indented.join("\n").trim_start()
    )
}

/// `Name` from `snake_case` / `kebab-case` / `spaced words`.
fn camel(name: &str) -> String {
    let mut out = String::new();
    for part in name.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A JSON value as Python source (JSON's literals except `true`, `false`, `null`).
fn py_value(value: &Value) -> String {
    match value {
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(py_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", py_literal_str(k), py_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Names a class may not take: they would shadow what the stubs themselves use.
const TAKEN: &[&str] = &[
    "Any",
    "Literal",
    "NotRequired",
    "Optional",
    "TypedDict",
    "Union",
    "ToolError",
    "asyncio",
];

/// The `TypedDict` classes of the output schemas, emitted dependencies first.
#[derive(Default)]
struct Classes {
    source: String,
    /// Every class made so far and the schema it was made for (same shape → same class).
    made: Vec<(String, Value)>,
    /// `$ref` targets being expanded (`(root pointer, ref)` → class name), for recursive shapes.
    expanding: Vec<(String, String)>,
}

impl Classes {
    /// The Python type for an output schema; `root` is the schema `$ref`s resolve against,
    /// `hint` the class name to use for an untitled object.
    fn type_of(&mut self, schema: &Value, root: &Value, hint: &str) -> String {
        self.type_at(schema, root, hint, 0)
    }

    fn type_at(&mut self, schema: &Value, root: &Value, hint: &str, depth: usize) -> String {
        let Value::Object(s) = schema else {
            return "Any".into();
        };
        if depth > 32 {
            return "Any".into();
        }
        if let Some(reference) = s.get("$ref").and_then(Value::as_str) {
            return self.reference(reference, root, depth);
        }
        if let Some(Value::Array(values)) = s.get("enum") {
            return literal(values);
        }
        if let Some(value) = s.get("const") {
            return literal(std::slice::from_ref(value));
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(options)) = s.get(key) {
                let types = options
                    .iter()
                    .map(|o| self.type_at(o, root, hint, depth + 1))
                    .collect();
                return union(types);
            }
        }
        if let Some(Value::Array(parts)) = s.get("allOf") {
            if parts.len() == 1 {
                return self.type_at(&parts[0], root, hint, depth + 1);
            }
        }
        match s.get("type") {
            Some(Value::String(t)) => self.single(t, s, root, hint, depth),
            Some(Value::Array(types)) => {
                let types = types
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|t| self.single(t, s, root, hint, depth))
                    .collect();
                union(types)
            }
            None if s.contains_key("properties") => self.single("object", s, root, hint, depth),
            _ => "Any".into(),
        }
    }

    fn single(
        &mut self,
        t: &str,
        s: &Map<String, Value>,
        root: &Value,
        hint: &str,
        depth: usize,
    ) -> String {
        match t {
            "array" => match s.get("items") {
                Some(items) => {
                    let item_hint = format!("{}Item", hint.trim_end_matches("Result"));
                    format!("list[{}]", self.type_at(items, root, &item_hint, depth + 1))
                }
                None => "list[Any]".into(),
            },
            "object" => match s.get("properties").and_then(Value::as_object) {
                Some(props) if !props.is_empty() => self.class(s, props, root, hint, depth),
                _ => match s.get("additionalProperties") {
                    Some(values @ Value::Object(_)) => {
                        let hint = format!("{hint}Value");
                        format!(
                            "dict[str, {}]",
                            self.type_at(values, root, &hint, depth + 1)
                        )
                    }
                    _ => "dict[str, Any]".into(),
                },
            },
            other => single_type(other, s),
        }
    }

    /// `#/$defs/Name` (or `#/definitions/Name`, or any JSON pointer into the root).
    fn reference(&mut self, reference: &str, root: &Value, depth: usize) -> String {
        let key = (root.to_string(), reference.to_string());
        let Some(target) = reference
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
        else {
            return "Any".into();
        };
        let name = camel(reference.rsplit('/').next().unwrap_or("Ref"));
        if self.expanding.contains(&key) {
            // A recursive shape: refer to the class being built by name.
            let title = target.get("title").and_then(Value::as_str).map(camel);
            return format!("\"{}\"", title.unwrap_or(name));
        }
        self.expanding.push(key);
        let ty = self.type_at(target, root, &name, depth + 1);
        self.expanding.pop();
        ty
    }

    fn class(
        &mut self,
        s: &Map<String, Value>,
        props: &Map<String, Value>,
        root: &Value,
        hint: &str,
        depth: usize,
    ) -> String {
        let schema = Value::Object(s.clone());
        if let Some((name, _)) = self.made.iter().find(|(_, made)| *made == schema) {
            return name.clone();
        }
        let base = s
            .get("title")
            .and_then(Value::as_str)
            .map(camel)
            .unwrap_or_else(|| camel(hint));
        let mut name = base.clone();
        let mut n = 1;
        while TAKEN.contains(&name.as_str()) || self.made.iter().any(|(made, _)| *made == name) {
            n += 1;
            name = format!("{base}{n}");
        }
        self.made.push((name.clone(), schema));
        let required: Vec<&str> = s
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut fields = Vec::new();
        for (key, prop) in props {
            let field_hint = format!("{name}{}", camel(key));
            let mut ty = self.type_at(prop, root, &field_hint, depth + 1);
            if !required.contains(&key.as_str()) {
                ty = format!("NotRequired[{ty}]");
            }
            let mut notes = Vec::new();
            if let Some(d) = prop.get("description").and_then(Value::as_str) {
                notes.push(one_line(d));
            }
            if let Some(default) = prop.get("default") {
                notes.push(format!("(default: {})", py_value(default)));
            }
            fields.push((key.clone(), ty, notes.join(" ")));
        }
        let identifiers = fields
            .iter()
            .all(|(key, _, _)| python_name(key) == *key && key != "_");
        let mut out = String::from("\n");
        if identifiers {
            out.push_str(&format!("class {name}(TypedDict):\n"));
            if let Some(d) = s.get("description").and_then(Value::as_str) {
                out.push_str(&docstring(d.trim(), "    "));
            }
            for (key, ty, note) in &fields {
                out.push_str(&format!("    {key}: {ty}"));
                if !note.is_empty() {
                    out.push_str(&format!("  # {note}"));
                }
                out.push('\n');
            }
        } else {
            // Keys that are not identifiers need TypedDict's functional form.
            if let Some(d) = s.get("description").and_then(Value::as_str) {
                out.push_str(&format!("# {}\n", one_line(d)));
            }
            out.push_str(&format!(
                "{name} = TypedDict({}, {{\n",
                py_literal_str(&name)
            ));
            for (key, ty, note) in &fields {
                out.push_str(&format!("    {}: {ty},", py_literal_str(key)));
                if !note.is_empty() {
                    out.push_str(&format!("  # {note}"));
                }
                out.push('\n');
            }
            out.push_str("})\n");
        }
        self.source.push_str(&out);
        name
    }
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
    use serde_json::json;

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
        let s = stub(&spec, &mut Classes::default());
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
        assert!(stub(&spec, &mut Classes::default())
            .contains("async def f(a: Optional[int] = None, *, b: str) -> Any:"));
    }

    #[test]
    fn no_schema_takes_keywords_and_docstring_quotes_are_escaped() {
        let spec = json!({"name": "g", "description": "say \"\"\" and \\ here"});
        let s = stub(&spec, &mut Classes::default());
        assert!(s.contains("async def g(**kwargs: Any) -> Any:"), "{s}");
        assert!(s.contains("\\\"\\\"\\\""), "{s}");
    }

    #[test]
    fn object_outputs_become_typed_dicts_with_refs_enums_optional_keys_and_notes() {
        let spec = json!({"name": "get_user", "output_schema": {
            "type": "object", "title": "User", "description": "A user.",
            "properties": {
                "id": {"type": "integer"},
                "role": {"$ref": "#/$defs/Role"},
                "address": {"type": "object", "properties": {"city": {"type": "string"}},
                    "required": ["city"]},
                "tags": {"type": "array", "items": {"type": "string"},
                    "description": "Labels.", "default": []},
            },
            "required": ["id", "role"],
            "$defs": {"Role": {"enum": ["admin", "member"]}}}});
        let out = stubs(&[spec]);
        assert!(
            out.starts_with(
                "from typing import Any, Literal, NotRequired, Optional, TypedDict, Union\n"
            ),
            "{out}"
        );
        let address = out
            .find("class UserAddress(TypedDict):\n    city: str\n")
            .expect(&out);
        let user = out
            .find("class User(TypedDict):\n    \"\"\"A user.\n")
            .expect(&out);
        assert!(address < user, "nested classes come first: {out}");
        assert!(
            out.contains("    role: Literal[\"admin\", \"member\"]\n"),
            "{out}"
        );
        assert!(
            out.contains("    address: NotRequired[UserAddress]\n"),
            "{out}"
        );
        assert!(
            out.contains("    tags: NotRequired[list[str]]  # Labels. (default: [])\n"),
            "{out}"
        );
        assert!(
            out.contains("async def get_user(**kwargs: Any) -> User:"),
            "{out}"
        );
        assert!(!out.contains("undocumented shape"), "{out}");
    }

    #[test]
    fn shared_shapes_are_one_class_and_clashing_names_get_a_suffix() {
        let point = json!({"type": "object", "title": "Point",
            "properties": {"x": {"type": "number"}}, "required": ["x"]});
        let other = json!({"type": "object", "title": "Point",
            "properties": {"lat": {"type": "number"}}, "required": ["lat"]});
        let specs = [
            json!({"name": "a", "output_schema": point}),
            json!({"name": "b", "output_schema": {"type": "array", "items": point}}),
            json!({"name": "c", "output_schema": other}),
        ];
        let out = stubs(&specs);
        assert_eq!(out.matches("class Point(TypedDict):").count(), 1, "{out}");
        assert!(
            out.contains("async def b(**kwargs: Any) -> list[Point]:"),
            "{out}"
        );
        assert!(
            out.contains("class Point2(TypedDict):\n    lat: float\n"),
            "{out}"
        );
    }

    #[test]
    fn recursive_refs_are_forward_references_and_unresolvable_refs_are_any() {
        let spec = json!({"name": "tree", "output_schema": {"$ref": "#/$defs/Node", "$defs": {
            "Node": {"type": "object", "properties": {
                "kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                "ext": {"$ref": "other.json#/Thing"}}}}}});
        let out = stubs(&[spec]);
        assert!(
            out.contains("    kids: NotRequired[list[\"Node\"]]\n"),
            "{out}"
        );
        assert!(out.contains("    ext: NotRequired[Any]\n"), "{out}");
        assert!(out.contains("-> Node:"), "{out}");
    }

    #[test]
    fn tool_without_output_schema_says_its_result_shape_is_undocumented() {
        let out = stubs(&[json!({"name": "t", "description": "Does t."})]);
        assert!(
            out.contains("Does t.\n\n    Returns: a value of undocumented shape"),
            "{out}"
        );
    }

    fn db_catalog() -> Catalog {
        Catalog {
            client: vec![json!({"name": "echo", "description": "Echo it."})],
            namespaces: vec![Namespace {
                server: "my-db".into(),
                py_name: "my_db".into(),
                tools: vec![
                    json!({"name": "read-query", "description": "Run a SELECT. Returns rows.",
                        "input_schema": {"type": "object", "properties": {
                            "query": {"type": "string"}}, "required": ["query"]},
                        "output_schema": {"type": "object", "title": "Rows", "properties": {
                            "rows": {"type": "array", "items": {"type": "object"}}}}}),
                    json!({"name": "list_tables", "input_schema": {"type": "object"}}),
                ],
            }],
        }
    }

    #[test]
    fn mcp_servers_are_classes_of_static_async_methods_typed_from_their_schemas() {
        let out = db_catalog().stubs();
        assert!(out.contains("class Rows(TypedDict):\n"), "{out}");
        assert!(
            out.contains("async def echo(**kwargs: Any) -> Any:"),
            "{out}"
        );
        assert!(
            out.contains("class my_db:\n    \"\"\"Tools of the MCP server \"my-db\".\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "    @staticmethod\n    # MCP tool name: \"read-query\"\n    async def read_query(query: str) -> Rows:\n        \"\"\"Run a SELECT."
            ),
            "{out}"
        );
        assert!(
            out.contains("    @staticmethod\n    async def list_tables() -> Any:\n"),
            "{out}"
        );
        assert_eq!(db_catalog().len(), 3);
    }

    #[test]
    fn summary_mode_lists_one_line_per_tool_grouped_per_namespace() {
        let out = db_catalog().summary(&[SEARCH_TOOLS, DESCRIBE_TOOL]);
        assert!(out.contains("# 3 tools: too many"), "{out}");
        assert!(out.contains("# Tools:\n#   echo — Echo it.\n"), "{out}");
        assert!(
            out.contains(
                "# my_db (MCP server \"my-db\"):\n#   my_db.read_query — Run a SELECT.\n#   my_db.list_tables\n"
            ),
            "{out}"
        );
        assert!(out.contains("async def search_tools(query: str, limit: int = 10)"));
        assert!(out.contains("async def describe_tool(name: str) -> str:"));
        let only = db_catalog().summary(&[DESCRIBE_TOOL]);
        assert!(!only.contains("async def search_tools"), "{only}");
    }

    #[test]
    fn entries_carry_script_and_wire_names_and_summaries() {
        let entries = db_catalog().entries();
        let names: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e.name.as_str(), e.wire.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("echo", "echo"),
                ("my_db.read_query", "my-db.read-query"),
                ("my_db.list_tables", "my-db.list_tables")
            ]
        );
        assert_eq!(entries[1].summary, "Run a SELECT.");
        assert_eq!(entries[1].params, vec!["query"]);
        assert!(entries[1].stub.contains("class Rows(TypedDict):"));
        assert!(!entries[0].stub.contains("class Rows"));
    }

    #[test]
    fn summaries_are_the_first_sentence_cut_at_120_characters() {
        assert_eq!(summary("Does a. Then b."), "Does a.");
        assert_eq!(summary("  line one\nline two"), "line one");
        let long = "word ".repeat(60);
        let s = summary(&long);
        assert!(s.ends_with("...") && s.chars().count() <= 120, "{s}");
    }
}
