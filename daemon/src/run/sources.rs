//! A run's tools beyond the requester's: its attached MCP servers and, for a large catalog, the
//! discovery built-ins.
//!
//! [`extend`] attaches the run's servers (a session run: the session's ∪ its own), adds their
//! tools to the run's [`ToolDef`]s (in their namespaces) and, when the catalog has more than
//! `discovery_threshold` tools, `search_tools`/`describe_tool` (each unless a client tool of
//! that name wins). It returns the routes the run's `ToolRouter` needs for them: every MCP wire
//! name to its server, the built-ins to `discovery::Discovery`. The requester's own tools are
//! routed by `ToolRouter::for_run` as before.

use std::sync::Arc;

use serde_json::Value;

use crate::attach;
use crate::daemon::Daemon;
use crate::discovery::{builtin_defs, Discovery, Index};
use crate::error::RequestError;
use crate::params::RunSettings;
use crate::session::Session;
use crate::stubs::{client_entry, namespace_entries, Entry, DESCRIBE_TOOL, SEARCH_TOOLS};
use crate::tool_source::ToolSource;
use crate::tools::ToolDef;

/// Routes for the tools a run's requester does not serve.
pub type Routes = Vec<(String, Arc<dyn ToolSource>)>;

/// Attaches `settings.mcp_servers`, adds their tools and (over the threshold) the discovery
/// built-ins to `settings.tools`, and returns their routes. `Err`: `-32602` (bad server name,
/// conflict) or `-32008` (a server that cannot start or list its tools).
pub async fn extend(
    daemon: &Daemon,
    settings: &mut RunSettings,
    session: Option<&Session>,
) -> Result<Routes, RequestError> {
    let mut routes: Routes = Vec::new();
    let session_servers = session
        .map(|s| s.mcp_servers.as_slice())
        .unwrap_or_default();
    let attached = attach::for_request(
        &daemon.mcp,
        session_servers,
        &settings.mcp_servers,
        &settings.tools,
    )
    .await?;
    for a in &attached {
        for tool in a.tools.iter() {
            let source: Arc<dyn ToolSource> = a.server.clone();
            routes.push((format!("{}.{}", a.server.name(), tool.name), source));
        }
    }
    let client_count = settings.tools.len();
    let mcp_defs = attach::tool_defs(&attached);
    let total = client_count + mcp_defs.len();
    settings.tools.extend(mcp_defs);
    if total <= daemon.config.discovery_threshold {
        return Ok(routes);
    }
    let builtins: Vec<&str> = [SEARCH_TOOLS, DESCRIBE_TOOL]
        .into_iter()
        .filter(|b| !settings.tools.iter().any(|t| t.global() == *b))
        .collect();
    if builtins.is_empty() {
        return Ok(routes);
    }
    let mut entries = client_entries(settings, session)?;
    for ns in attach::namespaces(&attached) {
        entries.extend(namespace_entries(&ns));
    }
    let discovery: Arc<dyn ToolSource> = Arc::new(Discovery::new(Index::new(entries)));
    for def in builtin_defs(&builtins) {
        routes.push((def.name.clone(), discovery.clone()));
        settings.tools.push(def);
    }
    Ok(routes)
}

/// The search entries of a run's client tools (a session run: the session's, less those the
/// run's own tools replace, then the run's). Each spec is built into a value only while its
/// entry is made: a session's specs are kept as text because a `Value` tree costs ~25× it.
fn client_entries(
    settings: &RunSettings,
    session: Option<&Session>,
) -> Result<Vec<Entry>, RequestError> {
    let parse = |raw: &serde_json::value::RawValue| {
        serde_json::from_str::<Value>(raw.get())
            .map_err(|e| RequestError::internal(format!("tool specs: {e}")))
    };
    let py = |spec: &Value| {
        crate::tools::python_name(spec.get("name").and_then(Value::as_str).unwrap_or_default())
    };
    let mut run_entries = Vec::new();
    let mut run_names = Vec::new();
    for raw in &settings.specs {
        let spec = parse(raw)?;
        run_names.push(py(&spec));
        run_entries.extend(client_entry(&spec));
    }
    let mut out = Vec::new();
    if let Some(session) = session {
        for raw in &session.specs {
            let spec = parse(raw)?;
            if !run_names.contains(&py(&spec)) {
                out.extend(client_entry(&spec));
            }
        }
    }
    out.extend(run_entries);
    Ok(out)
}

/// The requester's tools: every code-callable tool that is neither an MCP tool nor a built-in.
pub fn requester_tools<'a>(
    tools: &'a [ToolDef],
    routes: &'a Routes,
) -> impl Iterator<Item = String> + 'a {
    tools
        .iter()
        .filter(|t| t.namespace.is_none() && !routes.iter().any(|(name, _)| *name == t.name))
        .map(|t| t.name.clone())
}
