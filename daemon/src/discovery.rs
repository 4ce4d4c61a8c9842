//! Tool discovery for large catalogs: the search index and the `search_tools` / `describe_tool`
//! built-ins.
//!
//! When a run's catalog (its code-callable client tools plus its MCP servers' tools) has more
//! than `discovery_threshold` tools, the model sees only `name — summary` lines, and the script
//! gets two built-in tools answered here, inside the daemon (no client round trip; they count as
//! tool calls like any other):
//! - `search_tools(query, limit=10)` → `[{"name", "summary"}]`, best match first;
//! - `describe_tool(name)` → the tool's full stub (signature, types, docs) as a string.
//!
//! The search is pure and deterministic: BM25 over each tool's name (split on `_ . -` and
//! camelCase, weighted ×3), parameter names (×1.5) and description (×1), with light stemming
//! (plural, `-ing`, `-ed`) so "listing files" finds `list_file`, and a short synonym table
//! ("bug" → issue, "email" → mail/send…) weighted below the query's own words. Ties keep
//! catalog order.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::rpc::RpcError;
use crate::stubs::{Entry, DESCRIBE_TOOL, SEARCH_TOOLS};
use crate::tool_source::{ToolCall, ToolError, ToolFuture, ToolSource};
use crate::tools::ToolDef;

/// Most results one `search_tools` call returns.
pub const MAX_LIMIT: usize = 50;
/// Longest `search_tools` query: scoring costs (query terms × catalog), and a script could
/// otherwise send megabytes of terms for the daemon to score on a runtime thread.
pub const MAX_QUERY_BYTES: usize = 1024;

const NAME_WEIGHT: f64 = 3.0;
const PARAM_WEIGHT: f64 = 1.5;
const TEXT_WEIGHT: f64 = 1.0;
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// Words too common to tell tools apart.
const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "of", "for", "to", "in", "on", "by", "with", "and", "or", "from", "at", "is",
    "are", "be", "it", "its", "this", "that", "as", "into", "my", "me", "i", "we", "our", "you",
    "your", "all", "any", "some", "which", "what", "how", "do", "does", "can", "tool", "tools",
    "given", "using", "use", "based",
];

/// Words people say for what tools name otherwise; a query term also looks for these (at
/// [`SYNONYM_WEIGHT`]).
const SYNONYMS: &[(&str, &str)] = &[
    ("bug", "issue"),
    ("ticket", "issue"),
    ("pr", "pull request"),
    ("email", "mail send"),
    ("e-mail", "mail send"),
    ("rename", "move"),
    ("remove", "delete"),
    ("erase", "delete"),
    ("fetch", "get read"),
    ("show", "get list"),
    ("find", "search"),
    ("lookup", "get search"),
    ("add", "create"),
    ("new", "create"),
    ("make", "create"),
    ("open", "create read"),
    ("edit", "update"),
    ("change", "update"),
    ("modify", "update"),
    ("dm", "message"),
    ("chat", "message"),
    ("meeting", "event"),
    ("appointment", "event"),
    ("folder", "directory"),
    ("dir", "directory"),
    ("sql", "query"),
    ("db", "database"),
];

/// How much a synonym's match counts, relative to the query's own words.
const SYNONYM_WEIGHT: f64 = 0.6;

/// The weighted terms of a query: its own (1.0) and its words' synonyms'.
fn query_terms(query: &str) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    let mut add = |term: String, weight: f64| match out.iter_mut().find(|(t, _)| *t == term) {
        Some((_, w)) => *w = w.max(weight),
        None => out.push((term, weight)),
    };
    for term in terms(query) {
        add(term, 1.0);
    }
    for word in query
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .map(str::to_lowercase)
    {
        if let Some((_, more)) = SYNONYMS.iter().find(|(w, _)| *w == word) {
            for term in terms(more) {
                add(term, SYNONYM_WEIGHT);
            }
        }
    }
    out
}

/// Lower-case stemmed terms of `text`: split on anything not alphanumeric and on camelCase
/// boundaries (`readQuery` → read, query), stop words dropped.
pub fn terms(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && prev_lower && !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
            word.extend(c.to_lowercase());
        } else {
            prev_lower = false;
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
        .into_iter()
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

/// Light stemming: `queries` → `query`, `files` → `file`, `listing` → `list`, `created` →
/// `creat`… applied alike to tools and queries, so both sides meet.
fn stem(word: &str) -> String {
    let n = word.chars().count();
    if !word.is_ascii() || n <= 3 {
        return word.to_string();
    }
    if let Some(base) = word.strip_suffix("ies") {
        return format!("{base}y");
    }
    for suffix in ["ing", "ed"] {
        if let Some(base) = word.strip_suffix(suffix) {
            if base.len() >= 3 {
                return base.trim_end_matches('e').to_string();
            }
        }
    }
    if let Some(base) = word.strip_suffix("es") {
        if base.ends_with("sh")
            || base.ends_with("ch")
            || base.ends_with('x')
            || base.ends_with("ss")
        {
            return base.to_string();
        }
    }
    if word.ends_with('s') && !word.ends_with("ss") && !word.ends_with("us") {
        return word[..word.len() - 1].trim_end_matches('e').to_string();
    }
    word.trim_end_matches('e').to_string()
}

/// One tool in the index: its weighted term frequencies.
struct Doc {
    tf: HashMap<String, f64>,
    len: f64,
}

/// A catalog's search index; also answers `describe_tool`.
pub struct Index {
    entries: Vec<Entry>,
    docs: Vec<Doc>,
    /// Document frequency of each term.
    df: HashMap<String, usize>,
    avg_len: f64,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    pub name: String,
    pub summary: String,
}

impl Index {
    pub fn new(entries: Vec<Entry>) -> Index {
        let mut df: HashMap<String, usize> = HashMap::new();
        let docs: Vec<Doc> = entries
            .iter()
            .map(|e| {
                let mut tf: HashMap<String, f64> = HashMap::new();
                let mut len = 0.0;
                let fields = [
                    (e.name.as_str(), NAME_WEIGHT),
                    (e.description.as_str(), TEXT_WEIGHT),
                ];
                let params = e.params.join(" ");
                for (text, weight) in fields.into_iter().chain([(params.as_str(), PARAM_WEIGHT)]) {
                    for term in terms(text) {
                        *tf.entry(term).or_default() += weight;
                        len += weight;
                    }
                }
                for term in tf.keys() {
                    *df.entry(term.clone()).or_default() += 1;
                }
                Doc { tf, len }
            })
            .collect();
        let avg_len = if docs.is_empty() {
            1.0
        } else {
            (docs.iter().map(|d| d.len).sum::<f64>() / docs.len() as f64).max(1.0)
        };
        Index {
            entries,
            docs,
            df,
            avg_len,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The best `limit` tools for `query`, best first; tools matching no term are left out.
    pub fn search(&self, query: &str, limit: usize) -> Vec<Hit> {
        let query_terms = query_terms(query);
        let n = self.docs.len() as f64;
        let mut scored: Vec<(f64, usize)> = self
            .docs
            .iter()
            .enumerate()
            .filter_map(|(i, doc)| {
                let mut score = 0.0;
                for (term, weight) in &query_terms {
                    let Some(&tf) = doc.tf.get(term) else {
                        continue;
                    };
                    let df = self.df.get(term).copied().unwrap_or(0) as f64;
                    let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                    let norm = K1 * (1.0 - B + B * doc.len / self.avg_len);
                    score += weight * idf * tf * (K1 + 1.0) / (tf + norm);
                }
                (score > 0.0).then_some((score, i))
            })
            .collect();
        // Stable: equal scores keep catalog order.
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored
            .into_iter()
            .take(limit)
            .map(|(_, i)| Hit {
                name: self.entries[i].name.clone(),
                summary: self.entries[i].summary.clone(),
            })
            .collect()
    }

    /// The full stub of the tool the script calls `name` (`sqlite.read_query`; the wire name
    /// `my-server.read_query` works too).
    pub fn describe(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .or_else(|| self.entries.iter().find(|e| e.wire == name))
            .map(|e| e.stub.as_str())
    }
}

/// The two built-ins' definitions for the shim (`search_tools(query, limit=10)`,
/// `describe_tool(name)`), limited to `names`.
pub fn builtin_defs(names: &[&str]) -> Vec<ToolDef> {
    names
        .iter()
        .map(|name| match *name {
            SEARCH_TOOLS => ToolDef::builtin(
                SEARCH_TOOLS,
                &["query", "limit"],
                &["query"],
                "Finds tools for a task: [{\"name\", \"summary\"}], best match first.",
            ),
            _ => ToolDef::builtin(
                DESCRIBE_TOOL,
                &["name"],
                &["name"],
                "The full stub (signature, types, docs) of one tool, as a string.",
            ),
        })
        .collect()
}

/// The built-ins as a [`ToolSource`]: answered at once from the index.
pub struct Discovery {
    index: Arc<Index>,
}

impl Discovery {
    pub fn new(index: Index) -> Discovery {
        Discovery {
            index: Arc::new(index),
        }
    }
}

impl ToolSource for Discovery {
    fn call(&self, call: ToolCall, _cancel: CancellationToken) -> ToolFuture {
        let answer = answer(&self.index, &call.name, call.arguments.raw().get());
        Box::pin(async move { answer })
    }
}

fn bad_argument(field: &str, message: String) -> ToolError {
    ToolError::Failed(RpcError::invalid_params(field, message))
}

/// One built-in call: `arguments` is the JSON object the shim sent.
fn answer(index: &Index, tool: &str, arguments: &str) -> Result<crate::rpc::Raw, ToolError> {
    let args: serde_json::Map<String, Value> = serde_json::from_str(arguments)
        .map_err(|e| bad_argument("arguments", format!("{tool}: arguments: {e}")))?;
    let value = match tool {
        SEARCH_TOOLS => {
            let Some(query) = args.get("query").and_then(Value::as_str) else {
                return Err(bad_argument(
                    "query",
                    "search_tools: query must be a string".into(),
                ));
            };
            if query.len() > MAX_QUERY_BYTES {
                return Err(bad_argument(
                    "query",
                    format!(
                        "search_tools: query is {} bytes, over {MAX_QUERY_BYTES}: search with a \
                         few words",
                        query.len()
                    ),
                ));
            }
            let limit = match args.get("limit") {
                None | Some(Value::Null) => 10,
                Some(v) => match v.as_u64() {
                    Some(n) if (1..=MAX_LIMIT as u64).contains(&n) => n as usize,
                    _ => {
                        return Err(bad_argument(
                            "limit",
                            format!("search_tools: limit must be an integer from 1 to {MAX_LIMIT}"),
                        ))
                    }
                },
            };
            serde_json::to_value(index.search(query, limit))
                .map_err(|e| ToolError::Internal(e.to_string()))?
        }
        DESCRIBE_TOOL => {
            let Some(name) = args.get("name").and_then(Value::as_str) else {
                return Err(bad_argument(
                    "name",
                    "describe_tool: name must be a string".into(),
                ));
            };
            match index.describe(name) {
                Some(stub) => Value::String(stub.to_string()),
                None => {
                    return Err(ToolError::Failed(RpcError::new(
                        -32000,
                        format!(
                            "describe_tool: no tool named {name:?} (search_tools finds tool names)"
                        ),
                    )))
                }
            }
        }
        other => return Err(ToolError::Unknown(other.to_string())),
    };
    serde_json::value::to_raw_value(&value).map_err(|e| ToolError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stubs::{Catalog, Namespace};
    use serde_json::json;

    #[test]
    fn terms_split_names_camel_case_and_stem() {
        assert_eq!(terms("read_query"), vec!["read", "query"]);
        assert_eq!(terms("sqlite.listTables"), terms("sqlite list table"));
        assert_eq!(terms("Listing the files"), terms("list file"));
        assert_eq!(terms("queries"), vec!["query"]);
        assert_eq!(terms("create-issue"), terms("created issues"));
    }

    fn tool(name: &str, description: &str, params: &[&str]) -> Value {
        let props: serde_json::Map<String, Value> = params
            .iter()
            .map(|p| (p.to_string(), json!({"type": "string"})))
            .collect();
        json!({"name": name, "description": description,
            "input_schema": {"type": "object", "properties": props}})
    }

    /// A server: its name and its tools (name, description, parameters).
    type Area = (
        &'static str,
        &'static [(&'static str, &'static str, &'static [&'static str])],
    );

    /// 200 tools: 8 servers of plausible, overlapping tools, plus client tools.
    fn big_catalog() -> Catalog {
        let mut namespaces = Vec::new();
        let areas: &[Area] = &[
            (
                "sqlite",
                &[
                    (
                        "read_query",
                        "Execute a SELECT query on the SQLite database and return the rows.",
                        &["query"],
                    ),
                    (
                        "write_query",
                        "Execute an INSERT, UPDATE or DELETE query on the SQLite database.",
                        &["query"],
                    ),
                    (
                        "create_table",
                        "Create a new table in the SQLite database.",
                        &["query"],
                    ),
                    (
                        "list_tables",
                        "List all tables in the SQLite database.",
                        &[],
                    ),
                    (
                        "describe_table",
                        "Get the schema (columns and types) of a table.",
                        &["table_name"],
                    ),
                    (
                        "append_insight",
                        "Add a business insight to the memo.",
                        &["insight"],
                    ),
                ],
            ),
            (
                "fs",
                &[
                    (
                        "read_file",
                        "Read the complete contents of a file from the file system.",
                        &["path"],
                    ),
                    (
                        "write_file",
                        "Create a new file or overwrite a file with new content.",
                        &["path", "content"],
                    ),
                    (
                        "edit_file",
                        "Make line-based edits to a text file.",
                        &["path", "edits"],
                    ),
                    (
                        "create_directory",
                        "Create a new directory or ensure it exists.",
                        &["path"],
                    ),
                    (
                        "list_directory",
                        "Get a listing of all files and directories in a path.",
                        &["path"],
                    ),
                    (
                        "move_file",
                        "Move or rename files and directories.",
                        &["source", "destination"],
                    ),
                    (
                        "search_files",
                        "Recursively search for files and directories matching a pattern.",
                        &["path", "pattern"],
                    ),
                    (
                        "get_file_info",
                        "Retrieve metadata about a file: size, creation time, permissions.",
                        &["path"],
                    ),
                ],
            ),
            (
                "github",
                &[
                    (
                        "create_issue",
                        "Create a new issue in a GitHub repository.",
                        &["owner", "repo", "title", "body"],
                    ),
                    (
                        "list_issues",
                        "List issues in a GitHub repository with filters.",
                        &["owner", "repo", "state"],
                    ),
                    (
                        "create_pull_request",
                        "Open a new pull request.",
                        &["owner", "repo", "head", "base"],
                    ),
                    (
                        "merge_pull_request",
                        "Merge a pull request.",
                        &["owner", "repo", "pull_number"],
                    ),
                    (
                        "get_file_contents",
                        "Get the contents of a file or directory from a repository.",
                        &["owner", "repo", "path"],
                    ),
                    (
                        "search_code",
                        "Search for code across GitHub repositories.",
                        &["q"],
                    ),
                    (
                        "fork_repository",
                        "Fork a repository to your account.",
                        &["owner", "repo"],
                    ),
                    (
                        "add_issue_comment",
                        "Add a comment to an existing issue.",
                        &["owner", "repo", "issue_number", "body"],
                    ),
                ],
            ),
            (
                "slack",
                &[
                    (
                        "post_message",
                        "Post a new message to a Slack channel.",
                        &["channel_id", "text"],
                    ),
                    (
                        "reply_to_thread",
                        "Reply to a specific message thread in Slack.",
                        &["channel_id", "thread_ts", "text"],
                    ),
                    (
                        "add_reaction",
                        "Add an emoji reaction to a message.",
                        &["channel_id", "timestamp", "reaction"],
                    ),
                    (
                        "list_channels",
                        "List public channels in the workspace.",
                        &["limit"],
                    ),
                    (
                        "get_user_profile",
                        "Get detailed profile information for a Slack user.",
                        &["user_id"],
                    ),
                ],
            ),
            (
                "weather",
                &[
                    (
                        "get_forecast",
                        "Get the weather forecast for a location for the next days.",
                        &["latitude", "longitude"],
                    ),
                    (
                        "get_alerts",
                        "Get active weather alerts for a US state.",
                        &["state"],
                    ),
                    (
                        "current_conditions",
                        "Current temperature, wind and humidity at a city.",
                        &["city"],
                    ),
                ],
            ),
            (
                "calendar",
                &[
                    (
                        "create_event",
                        "Schedule a new meeting or event in the calendar.",
                        &["title", "start", "end", "attendees"],
                    ),
                    (
                        "list_events",
                        "List upcoming calendar events in a time range.",
                        &["start", "end"],
                    ),
                    (
                        "delete_event",
                        "Cancel and remove a calendar event.",
                        &["event_id"],
                    ),
                    (
                        "find_free_slots",
                        "Find times when all attendees are free.",
                        &["attendees", "duration_minutes"],
                    ),
                ],
            ),
            (
                "mail",
                &[
                    (
                        "send_email",
                        "Send an email message to recipients.",
                        &["to", "subject", "body"],
                    ),
                    (
                        "search_emails",
                        "Search the mailbox for emails matching a query.",
                        &["query"],
                    ),
                    ("read_email", "Read one email by its id.", &["message_id"]),
                ],
            ),
            (
                "shop",
                &[
                    (
                        "get_order",
                        "Look up an order by its order id: items, total, status.",
                        &["order_id"],
                    ),
                    (
                        "refund_order",
                        "Refund an order fully or partially.",
                        &["order_id", "amount"],
                    ),
                    (
                        "get_customer",
                        "Fetch a customer record by customer id.",
                        &["customer_id"],
                    ),
                    (
                        "list_products",
                        "List products in the catalog with prices and stock.",
                        &["category"],
                    ),
                    (
                        "update_inventory",
                        "Change the stock level of a product.",
                        &["sku", "quantity"],
                    ),
                    (
                        "exchange_rate",
                        "Convert an amount between two currencies at today's exchange rate.",
                        &["from_currency", "to_currency", "amount"],
                    ),
                ],
            ),
        ];
        let mut count = 0;
        for (server, tools) in areas {
            namespaces.push(Namespace {
                server: server.to_string(),
                py_name: server.to_string(),
                tools: tools.iter().map(|(n, d, p)| tool(n, d, p)).collect(),
            });
            count += tools.len();
        }
        // Filler: plausible tools of other systems whose words overlap the ones above.
        let objects = [
            "ticket",
            "invoice",
            "project",
            "task",
            "document",
            "note",
            "contact",
            "lead",
            "deal",
            "report",
            "dashboard",
            "metric",
            "alert",
            "log",
            "user",
            "group",
            "role",
            "webhook",
            "secret",
            "backup",
            "snapshot",
            "bucket",
            "queue",
            "job",
            "pipeline",
            "build",
            "release",
            "deployment",
            "cluster",
            "node",
            "payment",
            "comment",
        ];
        let verbs = [
            ("get", "Get a {o} by id."),
            ("list", "List {o}s, newest first."),
            ("create", "Create a {o}."),
            ("update", "Update fields of a {o}."),
            ("delete", "Delete a {o}."),
        ];
        let mut client = Vec::new();
        'fill: for o in objects {
            for (v, d) in verbs {
                if count >= 200 {
                    break 'fill;
                }
                client.push(tool(
                    &format!("{v}_{o}"),
                    &d.replace("{o}", o),
                    &[&format!("{o}_id")],
                ));
                count += 1;
            }
        }
        Catalog { client, namespaces }
    }

    #[test]
    fn search_finds_the_intended_tool_in_the_top_3_of_a_200_tool_catalog() {
        let catalog = big_catalog();
        assert_eq!(catalog.len(), 200);
        let index = Index::new(catalog.entries());
        let queries = [
            ("run a SQL select against the database", "sqlite.read_query"),
            ("which tables exist in the database", "sqlite.list_tables"),
            ("columns of a table", "sqlite.describe_table"),
            ("read the contents of a file", "fs.read_file"),
            ("rename a file", "fs.move_file"),
            ("find files matching a glob pattern", "fs.search_files"),
            ("open a bug report on GitHub", "github.create_issue"),
            ("merge a PR", "github.merge_pull_request"),
            ("comment on an issue", "github.add_issue_comment"),
            ("send a message to a slack channel", "slack.post_message"),
            ("react with an emoji", "slack.add_reaction"),
            ("weather forecast for tomorrow", "weather.get_forecast"),
            (
                "temperature in Paris right now",
                "weather.current_conditions",
            ),
            ("schedule a meeting with Bob", "calendar.create_event"),
            ("when is everyone free", "calendar.find_free_slots"),
            ("email the report to the team", "mail.send_email"),
            ("refund a customer's order", "shop.refund_order"),
            ("convert dollars to euros", "shop.exchange_rate"),
            ("how many items are in stock", "shop.list_products"),
            ("look up order 1234", "shop.get_order"),
            ("delete an invoice", "delete_invoice"),
        ];
        let mut misses = Vec::new();
        for (query, want) in queries {
            let hits = index.search(query, 3);
            if !hits.iter().any(|h| h.name == want) {
                misses.push(format!(
                    "{query:?} → {:?}, wanted {want}",
                    hits.iter().map(|h| &h.name).collect::<Vec<_>>()
                ));
            }
        }
        assert!(misses.is_empty(), "misses:\n{}", misses.join("\n"));
    }

    #[test]
    fn search_is_deterministic_and_bounded_by_limit() {
        let index = Index::new(big_catalog().entries());
        let a = index.search("list", 5);
        assert_eq!(a.len(), 5);
        assert_eq!(a, index.search("list", 5));
        assert!(index.search("zzzz qqqq", 10).is_empty());
    }

    #[test]
    fn describe_returns_the_namespaced_stub_by_script_or_wire_name() {
        let catalog = Catalog {
            client: vec![],
            namespaces: vec![Namespace {
                server: "my-db".into(),
                py_name: "my_db".into(),
                tools: vec![json!({"name": "read_query", "description": "Run a SELECT.",
                    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}},
                        "required": ["query"]},
                    "output_schema": {"type": "object", "title": "Rows",
                        "properties": {"rows": {"type": "array"}}}})],
            }],
        };
        let index = Index::new(catalog.entries());
        let stub = index.describe("my_db.read_query").expect("by script name");
        assert!(stub.contains("class Rows(TypedDict):"), "{stub}");
        assert!(stub.contains("class my_db:\n"), "{stub}");
        assert!(
            stub.contains("    @staticmethod\n    async def read_query(query: str) -> Rows:\n"),
            "{stub}"
        );
        assert_eq!(index.describe("my-db.read_query"), Some(stub));
        assert_eq!(index.describe("nope"), None);
    }

    #[test]
    fn builtin_answers_check_their_arguments() {
        let index = Index::new(big_catalog().entries());
        let ok = answer(
            &index,
            SEARCH_TOOLS,
            r#"{"query":"weather forecast","limit":2}"#,
        )
        .expect("answer");
        let hits: Vec<Hit> = serde_json::from_str::<Vec<serde_json::Map<String, Value>>>(ok.get())
            .expect("list")
            .into_iter()
            .map(|m| Hit {
                name: m["name"].as_str().unwrap_or_default().into(),
                summary: m["summary"].as_str().unwrap_or_default().into(),
            })
            .collect();
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].name, "weather.get_forecast");
        assert!(matches!(
            answer(&index, SEARCH_TOOLS, r#"{"query":3}"#),
            Err(ToolError::Failed(e)) if e.message.contains("query must be a string")
        ));
        let huge = format!(r#"{{"query":"{}"}}"#, "weather ".repeat(1 << 20));
        assert!(matches!(
            answer(&index, SEARCH_TOOLS, &huge),
            Err(ToolError::Failed(e)) if e.message.contains("over 1024")
        ));
        assert!(matches!(
            answer(&index, SEARCH_TOOLS, r#"{"query":"x","limit":0}"#),
            Err(ToolError::Failed(e)) if e.message.contains("limit must be")
        ));
        let stub = answer(&index, DESCRIBE_TOOL, r#"{"name":"fs.read_file"}"#).expect("stub");
        assert!(
            stub.get().contains("async def read_file(path"),
            "{}",
            stub.get()
        );
        assert!(matches!(
            answer(&index, DESCRIBE_TOOL, r#"{"name":"fs.nope"}"#),
            Err(ToolError::Failed(e)) if e.message.contains("no tool named")
        ));
    }
}
