//! MCP servers as tool sources (contract v1.1, section MCP).
//!
//! SKELETON — the interface the rest of the daemon builds against; the implementation lands in
//! the `mcp` work branch. Every server declared in the config (`[mcp_servers.<name>]`) is one
//! [`McpServer`]: started lazily on first attach, kept alive and shared by every run, restarted
//! with back-off after a crash. A run attaches servers by name; each attached server serves the
//! run's tools named `"<server>.<tool>"` (the wire name the shim sends) as a [`ToolSource`].

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::McpServerConfig;
use crate::tool_source::{ToolCall, ToolError, ToolFuture, ToolSource};

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
    pub fn new(config: &BTreeMap<String, McpServerConfig>, stop: CancellationToken) -> McpServers {
        let servers = config
            .iter()
            .map(|(name, cfg)| {
                let server = McpServer {
                    name: name.clone(),
                    _config: cfg.clone(),
                    _stop: stop.clone(),
                };
                (name.clone(), Arc::new(server))
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

    /// `daemon/status`'s `mcp_servers`: `{name: {"state", "tools", "calls_total", "restarts"}}`.
    pub fn status(&self) -> Value {
        Value::Object(Default::default())
    }

    /// Stops every server (kills stdio children, closes HTTP sessions); called at shutdown.
    pub async fn shutdown(&self) {}
}

/// One configured MCP server.
pub struct McpServer {
    name: String,
    _config: McpServerConfig,
    _stop: CancellationToken,
}

impl McpServer {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's tools, starting it first if it is not running (waiting at most its
    /// `startup_timeout_ms`). An error here, at attach time, refuses the request with `-32008`.
    pub async fn tools(&self) -> Result<Arc<[McpTool]>, McpUnavailable> {
        Err(McpUnavailable {
            server: self.name.clone(),
            why: "not implemented yet".into(),
        })
    }
}

impl ToolSource for McpServer {
    /// Serves `"<server>.<tool>"`: calls `<tool>` on the server (`call_timeout_ms`, cancellation
    /// forwarded as `notifications/cancelled`), mapping the result (see `result.rs`).
    fn call(&self, call: ToolCall, _cancel: CancellationToken) -> ToolFuture {
        let why = format!(
            "MCP server {}: not implemented yet ({})",
            self.name, call.name
        );
        Box::pin(async move { Err(ToolError::Unreachable(why)) })
    }
}
