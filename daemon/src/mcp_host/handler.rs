//! The MCP server side of `ptcd mcp`: an rmcp [`ServerHandler`] written by hand.
//!
//! Tools offered to the MCP host:
//! - `run_code` (`{"code": string}`): the description is the daemon's own (`tools/definition`
//!   with `format: "mcp"` and the attached servers), so the model sees the typed stubs of every
//!   downstream MCP tool. A call becomes a daemon `run` with `stream: true`; streamed output
//!   becomes MCP logging messages (`notifications/message`, logger `stdout`/`stderr`) and, when
//!   the host sent a `progressToken`, progress notifications; the result is one text block (the
//!   rendered run, see [`super::render`]) plus `structuredContent` = the RunResult, with
//!   `isError` when the status is not `ok`. The host cancelling the request sends `run/cancel`.
//! - `search_tools` (`{query, limit?}`), only when the catalog is above the daemon's discovery
//!   threshold (then `run_code`'s description lists names and summaries only): answered by
//!   running `await search_tools(query, limit)` through the daemon, so there is one search.
//!
//! Daemon errors (`-32008` MCP server unavailable, overload, a lost connection) are tool results
//! with `isError` and the message, not protocol errors: hosts show those to the model.

#![allow(deprecated)] // MCP logging is deprecated by SEP-2577 but is what hosts show today.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, LoggingLevel, LoggingMessageNotificationParam,
    PaginatedRequestParams, ProgressNotificationParam, ProgressToken, ServerCapabilities,
    ServerConfig, SetLevelRequestParams, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, Peer, RoleServer, ServerHandler};
use serde_json::{json, Map, Value};

use super::daemon_client::{DaemonClient, DaemonError, Output};
use super::render::render;

/// The code-execution tool.
pub const RUN_CODE: &str = "run_code";
/// The discovery tool offered above the threshold.
pub const SEARCH_TOOLS: &str = "search_tools";
/// The most results `search_tools` returns.
pub const MAX_SEARCH_LIMIT: u64 = 100;
/// At most this much of one output chunk goes into a progress message.
const PROGRESS_MESSAGE_BYTES: usize = 1024;

/// What `ptcd mcp` serves, decided at start-up.
pub struct Host {
    /// The daemon connection; re-opened (once per call) after the daemon went away, so a
    /// restarted daemon (an upgrade, a SIGHUP-less restart) is picked up without the host
    /// restarting `ptcd mcp`.
    client: tokio::sync::Mutex<DaemonClient>,
    socket: PathBuf,
    /// The attached MCP servers (config names), sent with every run.
    servers: Vec<String>,
    policy: Option<String>,
    tools: Arc<Vec<Tool>>,
    /// The lowest logging level the host wants (index into [`LEVELS`]).
    min_level: AtomicU8,
}

const LEVELS: [LoggingLevel; 8] = [
    LoggingLevel::Debug,
    LoggingLevel::Info,
    LoggingLevel::Notice,
    LoggingLevel::Warning,
    LoggingLevel::Error,
    LoggingLevel::Critical,
    LoggingLevel::Alert,
    LoggingLevel::Emergency,
];

fn level_index(level: LoggingLevel) -> u8 {
    LEVELS.iter().position(|l| *l == level).unwrap_or(0) as u8
}

impl Host {
    /// `run_code_description`: the daemon's description of `run_code`; `input_schema` its
    /// input schema; `discovery`: offer `search_tools`.
    pub fn new(
        client: DaemonClient,
        socket: PathBuf,
        servers: Vec<String>,
        policy: Option<String>,
        run_code_description: String,
        input_schema: JsonObject,
        discovery: bool,
    ) -> Host {
        let mut tools = vec![Tool::new(RUN_CODE, run_code_description, input_schema)];
        if discovery {
            tools.push(search_tools_tool());
        }
        Host {
            client: tokio::sync::Mutex::new(client),
            socket,
            servers,
            policy,
            tools: Arc::new(tools),
            min_level: AtomicU8::new(0),
        }
    }

    /// The tools offered, in order.
    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    fn run_params(&self, code: &str) -> Map<String, Value> {
        let mut params = Map::new();
        params.insert("code".into(), Value::String(code.to_string()));
        params.insert("stream".into(), Value::Bool(true));
        if !self.servers.is_empty() {
            params.insert("mcp_servers".into(), json!(self.servers));
        }
        if let Some(policy) = &self.policy {
            params.insert("policy".into(), Value::String(policy.clone()));
        }
        params
    }

    async fn run_code(
        &self,
        arguments: &JsonObject,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let Some(code) = arguments.get("code").and_then(Value::as_str) else {
            return tool_error("run_code needs `code`: the Python script to run, as a string");
        };
        match self.run(self.run_params(code), context).await {
            Ok(result) => run_result(result),
            Err(e) => tool_error(&e.to_string()),
        }
    }

    async fn search_tools(
        &self,
        arguments: &JsonObject,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let Some(query) = arguments.get("query").and_then(Value::as_str) else {
            return tool_error("search_tools needs `query`: what the tool should do, as a string");
        };
        let limit = match arguments.get("limit") {
            None | Some(Value::Null) => 10,
            Some(v) => match v.as_u64().filter(|n| (1..=MAX_SEARCH_LIMIT).contains(n)) {
                Some(n) => n,
                None => {
                    return tool_error(&format!(
                        "search_tools: `limit` must be an integer from 1 to {MAX_SEARCH_LIMIT}"
                    ))
                }
            },
        };
        let mut params = self.run_params("found = await search_tools(query, limit)\nfound");
        params.insert("inputs".into(), json!({"query": query, "limit": limit}));
        match self.run(params, context).await {
            Ok(result) if result.get("status").and_then(Value::as_str) == Some("ok") => {
                let value = result.get("value").cloned().unwrap_or(Value::Null);
                let text = serde_json::to_string(&value).unwrap_or_default();
                let mut out = CallToolResult::success(vec![ContentBlock::text(text)]);
                out.structured_content = Some(json!({"results": value}));
                out
            }
            Ok(result) => tool_error(&render(&result)),
            Err(e) => tool_error(&e.to_string()),
        }
    }

    /// The daemon connection, reconnected if the daemon closed it.
    async fn client(&self) -> Result<DaemonClient, DaemonError> {
        let mut client = self.client.lock().await;
        if client.is_closed() {
            match DaemonClient::connect(&self.socket).await {
                Ok(fresh) => *client = fresh,
                Err(e) => {
                    return Err(DaemonError::Gone(format!(
                        "the daemon went away and {} does not answer: {e}",
                        self.socket.display()
                    )))
                }
            }
        }
        Ok(client.clone())
    }

    /// One daemon `run`, its output forwarded to the host, cancelled when the host cancels.
    async fn run(
        &self,
        params: Map<String, Value>,
        context: &RequestContext<RoleServer>,
    ) -> Result<Value, DaemonError> {
        let client = self.client().await?;
        let call = client.start("run", Value::Object(params), true).await?;
        let mut guard = CancelOnDrop {
            client: client.clone(),
            id: Some(call.id),
        };
        let mut answer = call.answer;
        let mut output = call.output;
        let progress = context.meta.get_progress_token();
        let mut chunks = 0u64;
        let mut cancel_sent = false;
        let outcome = loop {
            tokio::select! {
                answer = &mut answer => {
                    // The daemon sent the run's output before its answer: forward what is queued.
                    if let Some(rx) = output.as_mut() {
                        while let Ok(chunk) = rx.try_recv() {
                            chunks += 1;
                            self.forward(&context.peer, progress.as_ref(), chunks, chunk).await;
                        }
                    }
                    break answer.unwrap_or_else(|_| Err(DaemonError::Gone("the reader stopped".into())));
                }
                chunk = recv(&mut output) => match chunk {
                    Some(chunk) => {
                        chunks += 1;
                        self.forward(&context.peer, progress.as_ref(), chunks, chunk).await;
                    }
                    None => output = None,
                },
                _ = context.ct.cancelled(), if !cancel_sent => {
                    cancel_sent = true;
                    send_cancel(&client, call.id).await;
                }
            }
        };
        guard.id = None;
        outcome
    }

    /// One output chunk as a logging message and, with a progress token, a progress step.
    async fn forward(
        &self,
        peer: &Peer<RoleServer>,
        progress: Option<&ProgressToken>,
        step: u64,
        chunk: Output,
    ) {
        let level = if chunk.stream == "stderr" {
            LoggingLevel::Warning
        } else {
            LoggingLevel::Info
        };
        if level_index(level) >= self.min_level.load(Ordering::Relaxed) {
            let message =
                LoggingMessageNotificationParam::new(level, Value::String(chunk.text.clone()))
                    .with_logger(chunk.stream.clone());
            if let Err(e) = peer.notify_logging_message(message).await {
                tracing::debug!(%e, "sending a logging message");
            }
        }
        if let Some(token) = progress {
            let text = truncate(&chunk.text, PROGRESS_MESSAGE_BYTES);
            let note =
                ProgressNotificationParam::new(token.clone(), step as f64).with_message(text);
            if let Err(e) = peer.notify_progress(note).await {
                tracing::debug!(%e, "sending a progress notification");
            }
        }
    }
}

async fn recv(output: &mut Option<tokio::sync::mpsc::Receiver<Output>>) -> Option<Output> {
    match output {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn send_cancel(client: &DaemonClient, id: u64) {
    // The run's own answer (status "cancelled") ends the wait; this answer is not needed.
    if let Err(e) = client
        .start("run/cancel", json!({"request_id": id}), false)
        .await
    {
        tracing::debug!(%e, "sending run/cancel");
    }
}

/// Cancels the run if the call is dropped before its answer came (the host went away).
struct CancelOnDrop {
    client: DaemonClient,
    id: Option<u64>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let client = self.client.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { send_cancel(&client, id).await });
            }
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A run's result as the MCP tool result.
fn run_result(result: Value) -> CallToolResult {
    let ok = result.get("status").and_then(Value::as_str) == Some("ok");
    let mut out = if ok {
        CallToolResult::success(vec![ContentBlock::text(render(&result))])
    } else {
        CallToolResult::error(vec![ContentBlock::text(render(&result))])
    };
    out.structured_content = Some(result);
    out
}

fn tool_error(message: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.to_string())])
}

fn search_tools_tool() -> Tool {
    let schema = json!({
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What the tool should do, in a few words."},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_SEARCH_LIMIT,
                      "description": "How many results (default 10)."},
        },
        "required": ["query"],
    });
    let schema = match schema {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    };
    Tool::new(
        SEARCH_TOOLS,
        "Search the tools that `run_code` scripts can call (there are too many to list in full). \
Returns [{\"name\", \"summary\"}], best match first. In a script, `await describe_tool(name)` \
gives a tool's full typed stub; the script can also call `await search_tools(query)` itself.",
        schema,
    )
}

impl ServerHandler for Host {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_logging()
                .build(),
        )
        .with_server_info(Implementation::new("ptcd", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Call run_code with a Python script: it runs in a sandbox and calls the tools shown \
in run_code's description (await them; asyncio.gather runs them in parallel). Only what the \
script prints and its last expression's value come back.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools.to_vec()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let arguments = request.arguments.unwrap_or_default();
        let result = match request.name.as_ref() {
            RUN_CODE => self.run_code(&arguments, &context).await,
            SEARCH_TOOLS if self.tools.len() > 1 => self.search_tools(&arguments, &context).await,
            other => {
                return Err(McpError::invalid_params(
                    format!(
                        "unknown tool {other:?}; this server offers: {}",
                        self.tool_names()
                    ),
                    None,
                ))
            }
        };
        Ok(result.into())
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.min_level
            .store(level_index(request.level), Ordering::Relaxed);
        Ok(())
    }
}

impl Host {
    fn tool_names(&self) -> String {
        self.tools
            .iter()
            .map(|t| t.name.as_ref())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_is_an_error_result_with_the_run_as_structured_content() {
        let r = json!({"status": "error", "error": {"type": "ValueError", "message": "bad"}});
        let out = run_result(r.clone());
        assert_eq!(out.is_error, Some(true));
        assert_eq!(out.structured_content, Some(r));
        let ok = run_result(json!({"status": "ok", "stdout": "1\n"}));
        assert_eq!(ok.is_error, Some(false));
    }

    #[test]
    fn progress_messages_are_cut_on_a_char_boundary() {
        assert_eq!(truncate("ééé", 3), "é…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
