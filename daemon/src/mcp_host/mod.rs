//! `ptcd mcp`: ptcd as an MCP server on stdio, so any MCP host gets Code Mode.
//!
//! An MCP host (Claude Desktop, Cursor, goose, an agent framework's MCP client) starts `ptcd
//! mcp` as a stdio server. It offers `run_code` (and, for large catalogs, `search_tools`), and
//! runs each call as a script in the daemon, whose tools are the downstream MCP servers of the
//! daemon's config. `ptcd mcp` itself is only a bridge: an MCP **server** on stdin/stdout
//! (rmcp, [`handler`]) and a JSON-RPC **client** of the daemon's socket ([`daemon_client`]);
//! scripts never run in this process.
//!
//! Start-up ([`run`]):
//! 1. Socket: `--socket`, else `PTCD_SOCKET`, else the contract's default path. If nobody
//!    listens there (no socket, or a stale one) and `--no-start` is not given, a private daemon
//!    is started on a socket of its own and stopped again at exit ([`autostart`]). Any other
//!    connect error (permission denied) is reported, not worked around.
//! 2. `initialize`: the daemon's configured MCP servers (`mcp_servers`, absent on a daemon
//!    without MCP support = none). The attached servers are
//!    `--servers` (an unknown name is a start-up error naming the configured ones) or all.
//! 3. `tools/definition` with `format: "mcp"` and those servers gives `run_code`'s description
//!    (the typed stubs). A server that cannot start (`-32008`) is left out with a warning on
//!    stderr when all servers were attached by default, and is an error when `--servers` named
//!    it. When the catalog is above the daemon's `discovery_threshold`, that description lists
//!    summaries only and the result's `discovery` names the script's built-ins: `search_tools`
//!    is then offered to the host too.
//! 4. Serve MCP on stdio until stdin ends (or SIGTERM/SIGINT/SIGHUP), then stop the private
//!    daemon if there is one.
//!
//! stdout is the MCP channel and nothing else: logs go to stderr (`PTCD_LOG`, default `warn`),
//! and so does a private daemon's output.

pub mod autostart;
pub mod daemon_client;
pub mod handler;
pub mod render;

use std::path::PathBuf;

use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::ServiceExt;
use serde_json::{json, Map, Value};

use autostart::{PrivateDaemon, START_TIMEOUT};
use daemon_client::{DaemonClient, DaemonError};
use handler::Host;

/// The longest MCP message accepted from the host (a script is one string in it).
pub const MAX_MCP_LINE_BYTES: usize = 16 << 20;

/// `ptcd mcp`'s command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub socket: Option<PathBuf>,
    /// `--servers a,b`: attach only these (config names); `None`: all configured.
    pub servers: Option<Vec<String>>,
    /// Passed on to a private daemon (`ptcd serve --config`).
    pub config: Option<PathBuf>,
    /// The policy of every run (the daemon's default when `None`).
    pub policy: Option<String>,
    /// Never start a private daemon.
    pub no_start: bool,
}

/// Why `ptcd mcp` could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(
        "cannot reach the ptcd daemon at {path}: {source} (start `ptcd serve`, or run without \
--no-start to let `ptcd mcp` start a private one)"
    )]
    Unreachable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("starting a private daemon: {0}")]
    Start(String),
    #[error("the daemon did not answer `initialize` within {} s", START_TIMEOUT.as_secs())]
    NoAnswer,
    #[error("the daemon refused `{method}`: {source}")]
    Daemon {
        method: &'static str,
        source: DaemonError,
    },
    #[error(
        "unknown MCP server {name:?} in --servers; the daemon's config declares: {configured}"
    )]
    UnknownServer { name: String, configured: String },
    #[error("unknown policy {name:?} in --policy; the daemon has: {known}")]
    UnknownPolicy { name: String, known: String },
    #[error("the daemon's tools/definition has no run_code tool")]
    NoRunCode,
    #[error("serving MCP on stdio: {0}")]
    Mcp(String),
}

/// The connect error means no daemon is there (no socket file, or a stale one).
fn nobody_listens(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
    )
}

/// `--socket`, else `PTCD_SOCKET`, else the contract's default path (as the clients resolve it).
pub fn socket_path(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| {
        std::env::var_os("PTCD_SOCKET")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    })
    .unwrap_or_else(crate::config::default_socket_path)
}

/// Runs `ptcd mcp` until the host closes stdin.
pub async fn run(options: Options) -> Result<(), HostError> {
    let mut signals = Termination::watch();
    let socket = socket_path(options.socket.clone());
    let (client, private) = match DaemonClient::connect(&socket).await {
        Ok(client) => (client, None),
        // Someone listens but refuses us (a root daemon's 0600 socket): say so, do not start a
        // second daemon behind the user's back.
        Err(source) if options.no_start || !nobody_listens(&source) => {
            return Err(HostError::Unreachable {
                path: socket,
                source,
            })
        }
        Err(e) => {
            tracing::info!(socket = %socket.display(), %e, "no daemon answers; starting a private one");
            let (daemon, client) = PrivateDaemon::start(options.config.as_deref()).await?;
            (client, Some(daemon))
        }
    };
    let socket = private.as_ref().map_or(socket, |d| d.socket.clone());
    // A host that stops us with a signal instead of closing stdin gets the same clean exit.
    let served = tokio::select! {
        served = serve(client, socket, &options) => served,
        signal = signals.recv() => {
            tracing::info!(signal, "stopping on a signal");
            Ok(())
        }
    };
    if let Some(daemon) = private {
        daemon.stop().await;
    }
    served
}

async fn serve(client: DaemonClient, socket: PathBuf, options: &Options) -> Result<(), HostError> {
    let host = prepare(client, socket, options).await?;
    let (read, write) = rmcp::transport::stdio_pipes();
    let transport =
        AsyncRwTransport::new_server(read, write).with_max_line_length(MAX_MCP_LINE_BYTES);
    let running = host
        .serve(transport)
        .await
        .map_err(|e| HostError::Mcp(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| HostError::Mcp(e.to_string()))?;
    Ok(())
}

/// SIGTERM, SIGINT and SIGHUP, watched from the start (so none arriving while the private
/// daemon starts kills us before we can stop it).
struct Termination(Option<[tokio::signal::unix::Signal; 3]>);

impl Termination {
    fn watch() -> Termination {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(term), Ok(int), Ok(hup)) => Termination(Some([term, int, hup])),
            _ => Termination(None),
        }
    }

    /// The first of them to arrive (its name); never, if they could not be watched.
    async fn recv(&mut self) -> &'static str {
        let Some([term, int, hup]) = &mut self.0 else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = hup.recv() => "SIGHUP",
        }
    }
}

/// Steps 2 and 3 of the module docs: what to offer, asked from the daemon.
pub async fn prepare(
    client: DaemonClient,
    socket: PathBuf,
    options: &Options,
) -> Result<Host, HostError> {
    let init = tokio::time::timeout(
        START_TIMEOUT,
        client.call(
            "initialize",
            json!({"client_info": {"name": "ptcd-mcp", "version": env!("CARGO_PKG_VERSION")}}),
        ),
    )
    .await
    .map_err(|_| HostError::NoAnswer)?
    .map_err(|source| HostError::Daemon {
        method: "initialize",
        source,
    })?;
    let configured = strings(init.get("mcp_servers"));
    let mut servers = select_servers(options.servers.as_deref(), &configured)?;
    if let Some(name) = &options.policy {
        let known = strings(init.get("policies"));
        if !known.is_empty() && !known.contains(name) {
            return Err(HostError::UnknownPolicy {
                name: name.clone(),
                known: known.join(", "),
            });
        }
    }
    let definitions = loop {
        let mut params = Map::new();
        params.insert("format".into(), json!("mcp"));
        if !servers.is_empty() {
            params.insert("mcp_servers".into(), json!(servers));
        }
        match client.call("tools/definition", Value::Object(params)).await {
            Ok(definitions) => break definitions,
            // Attaching every configured server by default: one that cannot start must not
            // take Code Mode over the others down with it. Named with --servers, it must.
            Err(e) if options.servers.is_none() => match unavailable_server(&e, &servers) {
                Some(name) => {
                    tracing::warn!("{e}; serving without MCP server {name}");
                    eprintln!("ptcd mcp: {e}; serving without MCP server {name}");
                    servers.retain(|s| *s != name);
                }
                None => {
                    return Err(HostError::Daemon {
                        method: "tools/definition",
                        source: e,
                    })
                }
            },
            Err(source) => {
                return Err(HostError::Daemon {
                    method: "tools/definition",
                    source,
                })
            }
        }
    };
    let run_code = definitions
        .get("tools")
        .and_then(Value::as_array)
        .and_then(|tools| {
            tools
                .iter()
                .find(|t| t.get("name").and_then(Value::as_str) == Some(handler::RUN_CODE))
        })
        .ok_or(HostError::NoRunCode)?;
    let description = run_code
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let schema = match run_code.get("inputSchema") {
        Some(Value::Object(schema)) => schema.clone(),
        _ => match json!({"type": "object", "properties": {"code": {"type": "string"}},
            "required": ["code"]})
        {
            Value::Object(schema) => schema,
            _ => Map::new(),
        },
    };
    // Above the daemon's discovery threshold the description lists summaries only, and the
    // script gets `search_tools`: offer it to the host too.
    let discovery = definitions
        .get("discovery")
        .and_then(Value::as_array)
        .is_some_and(|names| names.iter().any(|n| n == handler::SEARCH_TOOLS));
    Ok(Host::new(
        client,
        socket,
        servers,
        options.policy.clone(),
        description,
        schema,
        discovery,
    ))
}

/// The attached server a `-32008` error names ("MCP server unavailable: <name>: <why>").
fn unavailable_server(error: &DaemonError, servers: &[String]) -> Option<String> {
    let DaemonError::Rpc { code, message, .. } = error else {
        return None;
    };
    let rest = message.strip_prefix("MCP server unavailable: ")?;
    let name = rest.split(':').next()?;
    (*code == crate::rpc::error::MCP_UNAVAILABLE && servers.iter().any(|s| s == name))
        .then(|| name.to_string())
}

/// `--servers` checked against the configured names (duplicates dropped), or all configured.
pub fn select_servers(
    wanted: Option<&[String]>,
    configured: &[String],
) -> Result<Vec<String>, HostError> {
    let Some(wanted) = wanted else {
        return Ok(configured.to_vec());
    };
    let mut servers: Vec<String> = Vec::new();
    for name in wanted.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        if !configured.iter().any(|c| c == name) {
            return Err(HostError::UnknownServer {
                name: name.to_string(),
                configured: if configured.is_empty() {
                    "none".into()
                } else {
                    configured.join(", ")
                },
            });
        }
        if !servers.iter().any(|s| s == name) {
            servers.push(name.to_string());
        }
    }
    Ok(servers)
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn servers_default_to_all_configured_and_unknown_ones_are_named() {
        let configured = names(&["git", "sqlite"]);
        assert_eq!(select_servers(None, &configured).unwrap(), configured);
        let picked = select_servers(Some(&names(&["sqlite", " sqlite", ""])), &configured).unwrap();
        assert_eq!(picked, names(&["sqlite"]));
        let err = select_servers(Some(&names(&["nope"])), &configured).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown MCP server \"nope\" in --servers; the daemon's config declares: git, sqlite"
        );
        let err = select_servers(Some(&names(&["x"])), &[]).unwrap_err();
        assert!(err.to_string().ends_with("declares: none"), "{err}");
    }

    /// A fake daemon answering each method with `answer(method, params)`; returns the socket
    /// and the requests it got.
    async fn fake_daemon(
        answer: fn(&str, &Value) -> Value,
    ) -> (
        PathBuf,
        std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
    ) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let dir = std::env::temp_dir().join(format!(
            "ptcd-mcp-prepare-{}-{:?}",
            std::process::id(),
            std::time::Instant::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("d.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut lines = tokio::io::BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let m: Value = serde_json::from_str(&line).unwrap();
                let method = m["method"].as_str().unwrap().to_string();
                let result = answer(&method, &m["params"]);
                log.lock().unwrap().push((method, m["params"].clone()));
                let reply = match result.get("__error") {
                    Some(error) => json!({"jsonrpc": "2.0", "id": m["id"], "error": error}),
                    None => json!({"jsonrpc": "2.0", "id": m["id"], "result": result}),
                };
                write
                    .write_all(format!("{reply}\n").as_bytes())
                    .await
                    .unwrap();
            }
        });
        (path, seen)
    }

    /// A `tools/definition` answer, in summary mode (with the discovery built-ins) or not.
    fn definition(summary: bool) -> Value {
        let discovery = if summary {
            json!(["search_tools", "describe_tool"])
        } else {
            json!([])
        };
        json!({"tools": [{"name": "run_code", "description": "D",
            "inputSchema": {"type": "object", "required": ["code"]}}], "stubs": "",
            "discovery": discovery})
    }

    fn catalog_of_three(method: &str, _params: &Value) -> Value {
        match method {
            "initialize" => json!({"mcp_servers": ["a", "b"], "discovery_threshold": 2,
                "policies": ["default"]}),
            "tools/definition" => definition(true),
            _ => json!({}),
        }
    }

    fn without_mcp(method: &str, _params: &Value) -> Value {
        match method {
            "initialize" => json!({"policies": ["default"]}),
            "tools/definition" => definition(false),
            _ => json!({}),
        }
    }

    fn b_is_down(method: &str, params: &Value) -> Value {
        match method {
            "initialize" => json!({"mcp_servers": ["a", "b"], "discovery_threshold": 30}),
            "tools/definition" if params["mcp_servers"].to_string().contains("\"b\"") => {
                json!({"__error": {"code": -32008,
                    "message": "MCP server unavailable: b: exited with status 1"}})
            }
            "tools/definition" => definition(false),
            _ => catalog_of_three(method, params),
        }
    }

    #[tokio::test]
    async fn a_default_server_that_cannot_start_is_left_out_and_a_named_one_is_an_error() {
        let (socket, seen) = fake_daemon(b_is_down).await;
        let client = DaemonClient::connect(&socket).await.unwrap();
        let host = prepare(client.clone(), socket.clone(), &Options::default())
            .await
            .unwrap();
        assert_eq!(tool_names(&host), ["run_code"]);
        let definitions: Vec<Value> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _)| m == "tools/definition")
            .map(|(_, p)| p["mcp_servers"].clone())
            .collect();
        assert_eq!(definitions, [json!(["a", "b"]), json!(["a"])]);
        let named = Options {
            servers: Some(names(&["a", "b"])),
            ..Options::default()
        };
        let Err(err) = prepare(client, socket.clone(), &named).await else {
            panic!("a named server that cannot start must stop ptcd mcp");
        };
        assert_eq!(
            err.to_string(),
            "the daemon refused `tools/definition`: MCP server unavailable: b: exited with status 1 (error -32008)"
        );
        std::fs::remove_dir_all(socket.parent().unwrap()).unwrap();
    }

    fn tool_names(host: &Host) -> Vec<String> {
        host.tools().iter().map(|t| t.name.to_string()).collect()
    }

    #[tokio::test]
    async fn a_catalog_above_the_threshold_offers_search_tools_and_attaches_the_chosen_servers() {
        let (socket, seen) = fake_daemon(catalog_of_three).await;
        let client = DaemonClient::connect(&socket).await.unwrap();
        let options = Options {
            servers: Some(names(&["a"])),
            ..Options::default()
        };
        let host = prepare(client, socket.clone(), &options).await.unwrap();
        assert_eq!(tool_names(&host), ["run_code", "search_tools"]);
        assert_eq!(host.tools()[0].description.as_deref(), Some("D"));
        let seen = seen.lock().unwrap().clone();
        let methods: Vec<&str> = seen.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(methods, ["initialize", "tools/definition"]);
        assert_eq!(seen[1].1, json!({"format": "mcp", "mcp_servers": ["a"]}));
        std::fs::remove_dir_all(socket.parent().unwrap()).unwrap();
    }

    #[tokio::test]
    async fn a_daemon_without_mcp_servers_gets_plain_requests_and_only_run_code() {
        let (socket, seen) = fake_daemon(without_mcp).await;
        let client = DaemonClient::connect(&socket).await.unwrap();
        let host = prepare(client, socket.clone(), &Options::default())
            .await
            .unwrap();
        assert_eq!(tool_names(&host), ["run_code"]);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen[1],
            ("tools/definition".into(), json!({"format": "mcp"}))
        );
        std::fs::remove_dir_all(socket.parent().unwrap()).unwrap();
    }

    #[test]
    fn socket_flag_wins_over_the_environment() {
        assert_eq!(
            socket_path(Some(PathBuf::from("/x.sock"))),
            PathBuf::from("/x.sock")
        );
    }
}
