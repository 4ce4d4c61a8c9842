//! MCP servers as tool sources (contract v1.1, section MCP): the daemon's MCP *client* side.
//!
//! Every server declared in the config (`[mcp_servers.<name>]`) is one [`McpServer`]: started
//! lazily on first use, kept alive and shared by every run, restarted with back-off after a
//! crash, stopped at shutdown. A run attaches servers by name; each attached server serves the
//! run's tools named `"<server>.<tool>"` (the wire name the shim sends) as a [`ToolSource`].
//!
//! - `server.rs`: the lifecycle (lazy shared start, back-off, crash detection, status counters);
//! - `transport.rs`: reaching a server (stdio child through `sandbox::spawn_mcp_server`, or
//!   streamable HTTP) up to an initialized rmcp session, and closing it (kill + reap);
//! - `result.rs`: a `CallToolResult` mapped to the script's value or `ToolError` (pure);
//! - `stderr.rs`: the bounded tail of a stdio server's stderr.
//!
//! A call (`McpServer::call`): the server's connection (starting it if needed, within
//! `startup_timeout_ms`), then `tools/call` sent as a cancellable request; whichever comes
//! first wins: the answer (mapped by `result.rs`), `call_timeout_ms` (→ `notifications/
//! cancelled` and a `ToolError` naming the limit), the relay's cancel token (→ `notifications/
//! cancelled`, `ToolError::Cancelled`) or the session closing (→ a `ToolError` naming the server;
//! the next use restarts it).

mod result;
mod server;
mod stderr;
mod transport;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest, ServerResult};
use rmcp::service::PeerRequestOptions;
use rmcp::ServiceError;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::config::McpServerConfig;
use crate::rpc::RpcError;
use crate::tool_source::{ToolCall, ToolError, ToolFuture, ToolSource};

pub use result::TOOL_FAILED;
pub use server::{backoff, MAX_BACKOFF};
pub use stderr::STDERR_TAIL_BYTES;

/// How long sending `notifications/cancelled` may take before the call gives up on it.
const CANCEL_DEADLINE: Duration = Duration::from_secs(1);

/// One tool of an MCP server, as its `tools/list` gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct McpTool {
    pub name: String,
    pub description: Option<String>,
    /// The tool's `inputSchema` (a JSON Schema object).
    pub input_schema: Value,
    /// The tool's `outputSchema`, if it declares one.
    pub output_schema: Option<Value>,
}

impl From<rmcp::model::Tool> for McpTool {
    fn from(tool: rmcp::model::Tool) -> Self {
        McpTool {
            name: tool.name.into_owned(),
            description: tool.description.map(|d| d.into_owned()),
            input_schema: Value::Object((*tool.input_schema).clone()),
            output_schema: tool.output_schema.map(|s| Value::Object((*s).clone())),
        }
    }
}

/// Why a server cannot serve (at attach time this is `-32008`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("MCP server unavailable: {server}: {why}")]
pub struct McpUnavailable {
    pub server: String,
    pub why: String,
}

/// Every configured MCP server of the daemon, by config name.
pub struct McpServers {
    servers: BTreeMap<String, Arc<McpServer>>,
}

impl McpServers {
    /// The servers of `config`, none started. `stop` (the daemon's) also stops them; lines and
    /// results from a server are capped at the default `max_line_bytes` (see
    /// [`McpServers::with_max_line_bytes`]).
    pub fn new(config: &BTreeMap<String, McpServerConfig>, stop: CancellationToken) -> McpServers {
        McpServers::with_max_line_bytes(
            config,
            stop,
            crate::config::ServeConfig::default().max_line_bytes,
        )
    }

    /// Like [`McpServers::new`], capping every line and result from a server at
    /// `max_line_bytes`.
    pub fn with_max_line_bytes(
        config: &BTreeMap<String, McpServerConfig>,
        stop: CancellationToken,
        max_line_bytes: usize,
    ) -> McpServers {
        let servers = config
            .iter()
            .map(|(name, cfg)| {
                let core = server::Core::new(
                    name.clone(),
                    cfg.clone(),
                    max_line_bytes,
                    stop.child_token(),
                );
                (
                    name.clone(),
                    Arc::new(McpServer {
                        name: name.clone(),
                        core: Arc::new(core),
                    }),
                )
            })
            .collect();
        McpServers { servers }
    }

    /// The configured names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.servers.keys().map(String::as_str)
    }

    pub fn get(&self, name: &str) -> Option<&Arc<McpServer>> {
        self.servers.get(name)
    }

    /// `daemon/status`'s `mcp_servers`: `{name: {"state", "tools", "calls_total", "restarts"}}`
    /// (plus `"error"` when failed and `"pid"` of a running stdio server).
    pub fn status(&self) -> Value {
        Value::Object(
            self.servers
                .iter()
                .map(|(name, s)| (name.clone(), s.core.status()))
                .collect(),
        )
    }

    /// Stops every server (kills and reaps stdio children, closes HTTP sessions), all at once;
    /// each within a few seconds. Called at shutdown; nothing starts afterwards.
    pub async fn shutdown(&self) {
        let mut stopping = tokio::task::JoinSet::new();
        for server in self.servers.values() {
            let core = server.core.clone();
            stopping.spawn(async move { core.shutdown().await });
        }
        while stopping.join_next().await.is_some() {}
    }
}

/// One configured MCP server.
pub struct McpServer {
    name: String,
    core: Arc<server::Core>,
}

impl McpServer {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's tools, starting it first if it is not running (waiting at most its
    /// `startup_timeout_ms`). An error here, at attach time, refuses the request with `-32008`.
    pub async fn tools(&self) -> Result<Arc<[McpTool]>, McpUnavailable> {
        self.core
            .connection()
            .await
            .map(|(_, tools)| tools)
            .map_err(|why| McpUnavailable {
                server: self.name.clone(),
                why,
            })
    }
}

impl ToolSource for McpServer {
    /// Serves `"<server>.<tool>"`: calls `<tool>` on the server (`call_timeout_ms`, cancellation
    /// forwarded as `notifications/cancelled`), mapping the result (see `result.rs`).
    fn call(&self, call: ToolCall, cancel: CancellationToken) -> ToolFuture {
        let core = self.core.clone();
        Box::pin(async move { call_tool(&core, call, cancel).await })
    }
}

async fn call_tool(
    core: &Arc<server::Core>,
    call: ToolCall,
    cancel: CancellationToken,
) -> Result<crate::rpc::Raw, ToolError> {
    let server = core.name.as_str();
    let Some(tool) = call
        .name
        .strip_prefix(server)
        .and_then(|rest| rest.strip_prefix('.'))
        .map(str::to_string)
    else {
        return Err(ToolError::Unknown(call.name));
    };
    let arguments: serde_json::Map<String, Value> =
        serde_json::from_str(call.arguments.raw().get()).map_err(|e| {
            ToolError::Failed(RpcError::invalid_params(
                "arguments",
                format!("tool call arguments must be a JSON object: {e}"),
            ))
        })?;
    let unavailable = |why: String| ToolError::Unreachable(format!("MCP server {server}: {why}"));
    let (connection, _) = tokio::select! {
        ready = core.connection() => ready.map_err(unavailable)?,
        _ = cancel.cancelled() => return Err(ToolError::Cancelled),
    };
    core.count_call();
    let oversized = connection.oversized();
    let mut params = CallToolRequestParams::new(tool.clone());
    params.arguments = Some(arguments);
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
    let mut handle = match connection
        .peer()
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
    {
        Ok(handle) => handle,
        Err(_) => return Err(unavailable(core.gone(&connection).await)),
    };
    // The request is out: the arguments no longer count against the run's queued bytes.
    drop(call.arguments);
    let limit = Duration::from_millis(core.config.call_timeout_ms);
    let answer = tokio::select! {
        answer = &mut handle.rx => answer,
        _ = tokio::time::sleep(limit) => {
            let _ = tokio::time::timeout(
                CANCEL_DEADLINE,
                handle.cancel(Some("call_timeout_ms elapsed".into())),
            )
            .await;
            return Err(ToolError::Unreachable(format!(
                "MCP server {server}: {tool} did not answer within call_timeout_ms = {}",
                core.config.call_timeout_ms
            )));
        }
        // The dropped line may have been this call's answer: say so now rather than at the
        // timeout (every call pending on the server at that moment fails the same way).
        _ = oversized => {
            let _ = tokio::time::timeout(
                CANCEL_DEADLINE,
                handle.cancel(Some("a message over max_line_bytes was dropped".into())),
            )
            .await;
            return Err(ToolError::Unreachable(format!(
                "MCP server {server}: sent a message over max_line_bytes = {} while {tool} was \
                 pending; it was dropped unread (it may have been this call's answer)",
                core.max_line_bytes
            )));
        }
        _ = cancel.cancelled() => {
            let _ = tokio::time::timeout(
                CANCEL_DEADLINE,
                handle.cancel(Some("the run ended".into())),
            )
            .await;
            return Err(ToolError::Cancelled);
        }
    };
    match answer {
        Ok(Ok(ServerResult::CallToolResult(result))) => {
            core.answered();
            let value = serde_json::to_value(result).map_err(|e| {
                result::failed(server, &tool, format!("cannot read the result: {e}"))
            })?;
            result::tool_result(server, &tool, value, core.max_line_bytes)
        }
        Ok(Ok(_)) => {
            core.answered();
            Err(result::failed(
                server,
                &tool,
                format!("MCP server {server}: {tool} answered with an unsupported result type"),
            ))
        }
        Ok(Err(ServiceError::McpError(e))) => {
            core.answered();
            Err(ToolError::Failed(RpcError {
                code: i64::from(e.code.0),
                message: format!("MCP server {server}: {tool}: {}", e.message),
                data: Some(json!({ "server": server, "tool": tool })),
            }))
        }
        Ok(Err(ServiceError::TransportClosed)) | Err(_) => {
            Err(unavailable(core.gone(&connection).await))
        }
        Ok(Err(e)) => Err(unavailable(format!("{tool}: {e}"))),
    }
}
