//! Attaching MCP servers to a run, a session or a `tools/definition` request.
//!
//! The request names servers by their config name (`mcp_servers: ["sqlite"]`). Attaching
//! checks every name (unknown → `-32602` naming `mcp_servers[i]` and listing the configured
//! names), refuses two servers that would share one Python namespace (`my-db` and `my_db`),
//! then asks every server for its tools, all at once (`McpServer::tools` starts a server that
//! is not running, within its `startup_timeout_ms`; it is cheap for a running one). A server
//! that cannot start or list is `-32008` (`RequestError::McpUnavailable`). The attached tools
//! become [`ToolDef`]s in the server's namespace (wire names `"<server>.<tool>"`), routed to
//! the server by the run's `ToolRouter`, and [`Namespace`]s for the stubs.

use std::sync::Arc;

use crate::error::RequestError;
use crate::mcp::{McpServer, McpServers, McpTool};
use crate::stubs::Namespace;
use crate::tools::{mcp_spec, python_name, ToolDef};

/// One attached server and the tools it listed.
#[derive(Clone)]
pub struct Attached {
    pub server: Arc<McpServer>,
    /// `python_name(server)`: the global the script uses.
    pub namespace: String,
    pub tools: Arc<[McpTool]>,
}

/// The servers `names` refer to, once each, in first-mention order: unknown names and
/// namespace clashes are refused naming `mcp_servers[i]` (`i`: the index in `names`).
fn resolve(
    servers: &McpServers,
    names: &[String],
) -> Result<Vec<(String, Arc<McpServer>)>, RequestError> {
    let mut out: Vec<(String, Arc<McpServer>)> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let field = format!("mcp_servers[{i}]");
        let Some(server) = servers.get(name) else {
            let configured: Vec<&str> = servers.names().collect();
            let configured = if configured.is_empty() {
                "none are configured (add [mcp_servers.<name>] tables to the daemon's config)"
                    .to_string()
            } else {
                format!("configured: {}", configured.join(", "))
            };
            return Err(RequestError::invalid_params(
                field,
                format!("unknown MCP server {name:?}; {configured}"),
            ));
        };
        if out.iter().any(|(n, _)| n == name) {
            continue;
        }
        let namespace = python_name(name);
        if let Some((other, _)) = out.iter().find(|(n, _)| python_name(n) == namespace) {
            return Err(RequestError::invalid_params(
                field,
                format!(
                    "MCP servers {other:?} and {name:?} would both be the namespace {namespace:?} \
                     in the script; attach only one of them"
                ),
            ));
        }
        out.push((name.clone(), server.clone()));
    }
    Ok(out)
}

/// Resolves `names` and lists every server's tools (concurrently). `-32602` for a bad name,
/// `-32008` for a server that cannot start or list its tools.
async fn attach(servers: &McpServers, names: &[String]) -> Result<Vec<Attached>, RequestError> {
    let resolved = resolve(servers, names)?;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (_, server)) in resolved.iter().enumerate() {
        let server = server.clone();
        tasks.spawn(async move { (i, server.tools().await) });
    }
    let mut listed: Vec<Option<Result<Arc<[McpTool]>, crate::mcp::McpUnavailable>>> =
        vec![None; resolved.len()];
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, tools)) => listed[i] = Some(tools),
            Err(e) => return Err(RequestError::internal(format!("listing MCP tools: {e}"))),
        }
    }
    let mut out = Vec::with_capacity(resolved.len());
    for ((name, server), tools) in resolved.into_iter().zip(listed) {
        let tools = match tools {
            Some(Ok(tools)) => tools,
            Some(Err(unavailable)) => return Err(RequestError::McpUnavailable(unavailable)),
            None => {
                return Err(RequestError::internal(format!(
                    "MCP server {name}: tools not listed"
                )))
            }
        };
        out.push(Attached {
            namespace: python_name(&name),
            tools: distinct_python_names(&name, tools),
            server,
        });
    }
    Ok(out)
}

/// A server's tools, less any whose Python name an earlier one already has (`read-query` and
/// `read_query` would be one attribute of the namespace): the first keeps the name, the others
/// are left out with a warning in the daemon's log.
fn distinct_python_names(server: &str, tools: Arc<[McpTool]>) -> Arc<[McpTool]> {
    let mut seen = std::collections::HashSet::new();
    if tools.iter().all(|t| seen.insert(python_name(&t.name))) {
        return tools;
    }
    seen.clear();
    let mut kept = Vec::with_capacity(tools.len());
    for tool in tools.iter() {
        if seen.insert(python_name(&tool.name)) {
            kept.push(tool.clone());
        } else {
            tracing::warn!(
                server,
                tool = %tool.name,
                "MCP tool left out: another tool of the server has the same Python name"
            );
        }
    }
    Arc::from(kept)
}

/// A client tool whose Python name is an attached server's namespace would hide it, and one
/// whose name is an MCP tool's wire name (`"sqlite.read_query"`) would take its calls: both are
/// refused naming `tools[i].name` (`i`: the index in `tools`).
fn check_conflicts(attached: &[Attached], tools: &[ToolDef]) -> Result<(), RequestError> {
    for (i, tool) in tools.iter().enumerate() {
        if tool.namespace.is_some() {
            continue;
        }
        if let Some(a) = attached.iter().find(|a| a.namespace == tool.py_name) {
            return Err(RequestError::invalid_params(
                format!("tools[{i}].name"),
                format!(
                    "tool {:?} has the Python name {:?}, the namespace of the attached MCP \
                     server {:?}; rename the tool",
                    tool.name,
                    tool.py_name,
                    a.server.name()
                ),
            ));
        }
        let wire = attached.iter().find(|a| {
            tool.name
                .strip_prefix(a.server.name())
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|t| a.tools.iter().any(|m| m.name == t))
        });
        if let Some(a) = wire {
            return Err(RequestError::invalid_params(
                format!("tools[{i}].name"),
                format!(
                    "tool {:?} has the name of a tool of the attached MCP server {:?}; rename \
                     the tool",
                    tool.name,
                    a.server.name()
                ),
            ));
        }
    }
    Ok(())
}

/// The attached servers' tools as the shim defines them.
pub fn tool_defs(attached: &[Attached]) -> Vec<ToolDef> {
    attached
        .iter()
        .flat_map(|a| {
            a.tools
                .iter()
                .map(|t| ToolDef::from_mcp(a.server.name(), t))
        })
        .collect()
}

/// The attached servers as the stubs show them.
pub fn namespaces(attached: &[Attached]) -> Vec<Namespace> {
    attached
        .iter()
        .map(|a| Namespace {
            server: a.server.name().to_string(),
            py_name: a.namespace.clone(),
            tools: a.tools.iter().map(mcp_spec).collect(),
        })
        .collect()
}

/// Attaches the servers of one request: its own `mcp_servers` are checked first, so an error
/// names the request's `mcp_servers[i]`; then the session's (if any) and its own together are
/// attached, the session's first; a clash with the request's code-callable `tools` is refused.
pub async fn for_request(
    servers: &McpServers,
    session: &[String],
    own: &[String],
    tools: &[ToolDef],
) -> Result<Vec<Attached>, RequestError> {
    resolve(servers, own)?;
    let attached = attach(servers, &union(session, own)).await?;
    check_conflicts(&attached, tools)?;
    Ok(attached)
}

/// `names` ∪ `more`, keeping first mentions first (a session run: the session's servers, then
/// the run's).
fn union(names: &[String], more: &[String]) -> Vec<String> {
    let mut out = names.to_vec();
    for name in more {
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{McpServerConfig, McpTransport};
    use std::collections::BTreeMap;
    use tokio_util::sync::CancellationToken;

    fn servers(names: &[&str]) -> McpServers {
        let config: BTreeMap<String, McpServerConfig> = names
            .iter()
            .map(|n| {
                let cfg = McpServerConfig {
                    transport: McpTransport::Http {
                        url: "http://127.0.0.1:9/mcp".into(),
                        headers: Vec::new(),
                    },
                    startup_timeout_ms: 1000,
                    call_timeout_ms: 1000,
                };
                (n.to_string(), cfg)
            })
            .collect();
        McpServers::new(&config, CancellationToken::new())
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn unknown_server_names_its_index_and_lists_the_configured_ones() {
        let all = servers(&["fs", "sqlite"]);
        let err = resolve(&all, &names(&["sqlite", "nope"]))
            .err()
            .expect("refused");
        assert_eq!(err.field(), Some("mcp_servers[1]"));
        assert!(err.to_string().contains("\"nope\""), "{err}");
        assert!(err.to_string().contains("configured: fs, sqlite"), "{err}");
        let none = servers(&[]);
        let err = resolve(&none, &names(&["x"])).err().expect("refused");
        assert!(err.to_string().contains("none are configured"), "{err}");
    }

    #[test]
    fn duplicate_names_attach_once() {
        let all = servers(&["fs", "sqlite"]);
        let got = resolve(&all, &names(&["fs", "sqlite", "fs"])).expect("valid");
        let got: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(got, vec!["fs", "sqlite"]);
    }

    #[test]
    fn two_servers_with_one_namespace_are_refused() {
        let all = servers(&["my-db", "my_db"]);
        let err = resolve(&all, &names(&["my-db", "my_db"]))
            .err()
            .expect("refused");
        assert_eq!(err.field(), Some("mcp_servers[1]"));
        assert!(err.to_string().contains("\"my_db\""), "{err}");
    }

    #[test]
    fn a_client_tool_named_like_a_namespace_is_refused() {
        let all = servers(&["sqlite"]);
        let attached = vec![Attached {
            server: all.get("sqlite").cloned().expect("configured"),
            namespace: "sqlite".into(),
            tools: Arc::from(Vec::new()),
        }];
        let tools = crate::tools::parse_tools(
            &serde_json::json!([{"name": "other"}, {"name": "sqlite"}]),
            "tools",
        )
        .expect("valid");
        let err = check_conflicts(&attached, &tools).expect_err("refused");
        assert_eq!(err.field(), Some("tools[1].name"));
        assert!(check_conflicts(&attached, &tools[..1]).is_ok());
    }

    #[tokio::test]
    async fn a_server_that_cannot_start_is_mcp_unavailable_naming_it() {
        // Nothing listens on port 9 (discard): the server can never start.
        let all = servers(&["down"]);
        let err = attach(&all, &names(&["down"]))
            .await
            .err()
            .expect("refused");
        match &err {
            RequestError::McpUnavailable(u) => assert_eq!(u.server, "down"),
            other => panic!("expected McpUnavailable, got {other:?}"),
        }
        assert!(
            err.to_string()
                .starts_with("MCP server unavailable: down: "),
            "{err}"
        );
    }

    #[test]
    fn tools_of_one_server_with_one_python_name_keep_the_first() {
        let tool = |name: &str| McpTool {
            name: name.into(),
            description: None,
            input_schema: serde_json::json!({"type": "object"}),
            output_schema: None,
        };
        let tools: Arc<[McpTool]> =
            Arc::from(vec![tool("read-query"), tool("x"), tool("read_query")]);
        let kept = distinct_python_names("s", tools);
        let names: Vec<&str> = kept.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["read-query", "x"]);
    }

    #[test]
    fn union_keeps_first_mentions() {
        assert_eq!(
            union(&names(&["a", "b"]), &names(&["b", "c"])),
            names(&["a", "b", "c"])
        );
    }
}
