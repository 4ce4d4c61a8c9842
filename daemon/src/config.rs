//! The daemon's configuration: a TOML file, overridden by command-line flags.
//!
//! The file is optional at its default location (`/etc/ptcd/config.toml` for root,
//! `$XDG_CONFIG_HOME/ptcd/config.toml` otherwise) and required when named with `--config`.
//! Unknown keys and values of the wrong type are errors that name the key: a typo in a security
//! setting must never be silently ignored. See `docs/configuration.md`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Whether runs are forked from a pre-imported template interpreter (`forkserver.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ForkServerMode {
    /// Fork eligible runs; any problem with the fork server starts that run cold.
    On,
    /// Never fork: every interpreter is started cold by the launcher.
    Off,
    /// An eligible run is never started cold: it fails `-32006` when the fork server cannot
    /// serve it.
    Require,
}

impl ForkServerMode {
    pub fn name(self) -> &'static str {
        match self {
            ForkServerMode::On => "on",
            ForkServerMode::Off => "off",
            ForkServerMode::Require => "require",
        }
    }
}

/// A group given by name or number.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum GroupSpec {
    Id(u32),
    Name(String),
}

/// The config file, as written. Every key is optional.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub socket: Option<PathBuf>,
    pub socket_mode: Option<String>,
    pub socket_group: Option<GroupSpec>,
    pub policy_dir: Option<PathBuf>,
    pub python: Option<PathBuf>,
    pub scratch_dir: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub max_connections: Option<usize>,
    pub max_concurrent_runs: Option<usize>,
    pub queue_depth: Option<usize>,
    pub max_line_bytes: Option<usize>,
    pub shutdown_grace_ms: Option<u64>,
    pub warm_pool: Option<usize>,
    pub client_queue_bytes: Option<usize>,
    pub client_queue_total_bytes: Option<usize>,
    pub partial_lines_total_bytes: Option<usize>,
    pub line_timeout_ms: Option<u64>,
    pub allowed_uids: Option<Vec<u32>>,
    pub allowed_gids: Option<Vec<u32>>,
    pub max_tool_argument_bytes: Option<usize>,
    pub max_queued_tool_argument_bytes: Option<usize>,
    pub landlock_max_abi: Option<u32>,
    pub max_persistent_sessions: Option<usize>,
    pub max_scratch_total_mb: Option<u64>,
    /// `[mcp_servers.<name>]` tables, checked key by key in [`mcp_servers`] so that an error
    /// names `mcp_servers.<name>.<key>`.
    pub mcp_servers: Option<toml::Table>,
    pub discovery_threshold: Option<usize>,
    pub fork_server: Option<ForkServerMode>,
}

/// Command-line values that override the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub socket: Option<PathBuf>,
    pub socket_mode: Option<String>,
    pub socket_group: Option<String>,
    pub policy_dir: Option<PathBuf>,
    pub python: Option<PathBuf>,
    pub scratch_dir: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub max_concurrent_runs: Option<usize>,
    pub max_line_bytes: Option<usize>,
    pub landlock_max_abi: Option<u32>,
    pub fork_server: Option<ForkServerMode>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
    /// A bad `[mcp_servers.<name>]` table; `key` is its full dotted path.
    #[error("{key}: {message}")]
    McpServer { key: String, message: String },
}

/// Who may connect, checked against the peer's credentials (SO_PEERCRED).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// `None` (neither list configured): whoever can open the socket file may connect.
    pub allowed: Option<(Vec<u32>, Vec<u32>)>,
}

impl Access {
    /// `Err` with the reason when a peer with `uid`/`gid` may not connect.
    pub fn check(&self, uid: u32, gid: u32) -> Result<(), String> {
        match &self.allowed {
            None => Ok(()),
            Some((uids, gids)) if uids.contains(&uid) || gids.contains(&gid) => Ok(()),
            Some(_) => Err(format!(
                "connection refused: uid {uid} (gid {gid}) is not allowed by allowed_uids/allowed_gids"
            )),
        }
    }
}

/// Everything `ptcd serve` needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub socket: PathBuf,
    pub socket_mode: u32,
    pub socket_group: Option<u32>,
    pub policy_dir: Option<PathBuf>,
    pub python: Option<PathBuf>,
    pub log_format: LogFormat,
    pub max_connections: usize,
    pub access: Access,
    pub serve: ServeConfig,
    /// Use at most this Landlock ABI (older kernels' behaviour, with compensating layers);
    /// read at start-up only.
    pub landlock_max_abi: Option<u32>,
    /// The file the settings came from, for SIGHUP reloads (`None`: no file).
    pub source: Option<PathBuf>,
}

/// The default config file location for this user.
pub fn default_path() -> PathBuf {
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } == 0 {
        return PathBuf::from("/etc/ptcd/config.toml");
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("/nonexistent"));
    base.join("ptcd/config.toml")
}

/// Reads the file: `explicit` must exist; the default location may be absent.
pub fn read_file(explicit: Option<&Path>) -> Result<(FileConfig, Option<PathBuf>), ConfigError> {
    let (path, required) = match explicit {
        Some(p) => (p.to_path_buf(), true),
        None => (default_path(), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((FileConfig::default(), None))
        }
        Err(source) => return Err(ConfigError::Read { path, source }),
    };
    let file = parse(&text).map_err(|message| ConfigError::Parse {
        path: path.clone(),
        message,
    })?;
    Ok((file, Some(path)))
}

/// Parses config text. The error names the offending key.
pub fn parse(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
}

fn parse_mode(text: &str) -> Result<u32, ConfigError> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 && mode & 0o600 == 0o600 => Ok(mode),
        _ => Err(ConfigError::Invalid {
            key: "socket_mode",
            message: format!(
                "{text:?} is not an octal mode like \"0600\" or \"0660\" that lets the owner read and write"
            ),
        }),
    }
}

fn resolve_group(spec: &GroupSpec) -> Result<u32, ConfigError> {
    match spec {
        GroupSpec::Id(gid) => Ok(*gid),
        GroupSpec::Name(name) => match name.parse::<u32>() {
            Ok(gid) => Ok(gid),
            Err(_) => nix::unistd::Group::from_name(name)
                .ok()
                .flatten()
                .map(|g| g.gid.as_raw())
                .ok_or_else(|| ConfigError::Invalid {
                    key: "socket_group",
                    message: format!("no group named {name:?}"),
                }),
        },
    }
}

/// Idle interpreters are processes, memory and uid leases held ahead of time: keep it small.
const MAX_WARM_POOL: usize = 32;

fn positive(key: &'static str, value: Option<usize>) -> Result<Option<usize>, ConfigError> {
    match value {
        Some(0) => Err(ConfigError::Invalid {
            key,
            message: "must be at least 1".into(),
        }),
        other => Ok(other),
    }
}

/// `value` (or `default`), refused with a message naming `key` when below `min`.
fn at_least(
    key: &'static str,
    value: Option<usize>,
    min: usize,
    default: usize,
) -> Result<usize, ConfigError> {
    match value {
        Some(v) if v < min => Err(ConfigError::Invalid {
            key,
            message: format!("must be at least {min}"),
        }),
        v => Ok(v.unwrap_or(default)),
    }
}

impl Settings {
    /// Combines the file and the flags (flags win) into validated settings.
    pub fn resolve(
        file: FileConfig,
        flags: Overrides,
        source: Option<PathBuf>,
    ) -> Result<Settings, ConfigError> {
        let defaults = ServeConfig::default();
        let mode = flags.socket_mode.or(file.socket_mode);
        let group = match flags.socket_group {
            Some(name) => Some(GroupSpec::Name(name)),
            None => file.socket_group,
        };
        let max_line_bytes = positive(
            "max_line_bytes",
            flags.max_line_bytes.or(file.max_line_bytes),
        )?
        .unwrap_or(defaults.max_line_bytes);
        if max_line_bytes < 1024 {
            return Err(ConfigError::Invalid {
                key: "max_line_bytes",
                message: "must be at least 1024".into(),
            });
        }
        let serve = ServeConfig {
            max_line_bytes,
            max_concurrent_runs: positive(
                "max_concurrent_runs",
                flags.max_concurrent_runs.or(file.max_concurrent_runs),
            )?
            .unwrap_or(defaults.max_concurrent_runs),
            queue_depth: file.queue_depth.unwrap_or(defaults.queue_depth),
            scratch_root: flags
                .scratch_dir
                .or(file.scratch_dir)
                .unwrap_or(defaults.scratch_root),
            shutdown_grace_ms: file.shutdown_grace_ms.unwrap_or(defaults.shutdown_grace_ms),
            warm_pool: match file.warm_pool {
                Some(n) if n > MAX_WARM_POOL => {
                    return Err(ConfigError::Invalid {
                        key: "warm_pool",
                        message: format!("must be at most {MAX_WARM_POOL}"),
                    })
                }
                n => n.unwrap_or(defaults.warm_pool),
            },
            max_tool_argument_bytes: positive(
                "max_tool_argument_bytes",
                file.max_tool_argument_bytes,
            )?
            .unwrap_or(defaults.max_tool_argument_bytes),
            max_queued_tool_argument_bytes: positive(
                "max_queued_tool_argument_bytes",
                file.max_queued_tool_argument_bytes,
            )?
            .unwrap_or(defaults.max_queued_tool_argument_bytes),
            client_queue_bytes: at_least(
                "client_queue_bytes",
                file.client_queue_bytes,
                64 * 1024,
                defaults.client_queue_bytes,
            )?,
            client_queue_total_bytes: 0,
            partial_lines_total_bytes: 0,
            line_timeout_ms: match file.line_timeout_ms {
                Some(ms) if ms < 100 => {
                    return Err(ConfigError::Invalid {
                        key: "line_timeout_ms",
                        message: "must be at least 100".into(),
                    })
                }
                ms => ms.unwrap_or(defaults.line_timeout_ms),
            },
            max_persistent_sessions: positive(
                "max_persistent_sessions",
                file.max_persistent_sessions,
            )?
            .unwrap_or(defaults.max_persistent_sessions),
            max_scratch_total_mb: match file.max_scratch_total_mb {
                Some(0) => {
                    return Err(ConfigError::Invalid {
                        key: "max_scratch_total_mb",
                        message: "must be at least 1".into(),
                    })
                }
                mb => mb.unwrap_or(defaults.max_scratch_total_mb),
            },
            mcp_servers: match &file.mcp_servers {
                Some(table) => mcp_servers(table)?,
                None => defaults.mcp_servers.clone(),
            },
            discovery_threshold: file
                .discovery_threshold
                .unwrap_or(defaults.discovery_threshold),
            fork_server: flags
                .fork_server
                .or(file.fork_server)
                .unwrap_or(defaults.fork_server),
        };
        // The totals must let one connection use its whole own allowance.
        let serve = ServeConfig {
            client_queue_total_bytes: at_least(
                "client_queue_total_bytes",
                file.client_queue_total_bytes,
                serve.client_queue_bytes,
                defaults
                    .client_queue_total_bytes
                    .max(serve.client_queue_bytes),
            )?,
            partial_lines_total_bytes: at_least(
                "partial_lines_total_bytes",
                file.partial_lines_total_bytes,
                serve.max_line_bytes,
                defaults.partial_lines_total_bytes.max(serve.max_line_bytes),
            )?,
            ..serve
        };
        let access = match (file.allowed_uids, file.allowed_gids) {
            (None, None) => Access::default(),
            (uids, gids) => Access {
                allowed: Some((uids.unwrap_or_default(), gids.unwrap_or_default())),
            },
        };
        let landlock_max_abi = flags.landlock_max_abi.or(file.landlock_max_abi);
        if let Some(n) = landlock_max_abi {
            crate::sandbox::host::check_landlock_cap(n).map_err(|message| {
                ConfigError::Invalid {
                    key: "landlock_max_abi",
                    message,
                }
            })?;
        }
        Ok(Settings {
            landlock_max_abi,
            socket: flags
                .socket
                .or(file.socket)
                .unwrap_or_else(default_socket_path),
            socket_mode: mode
                .as_deref()
                .map(parse_mode)
                .transpose()?
                .unwrap_or(0o600),
            socket_group: group.as_ref().map(resolve_group).transpose()?,
            policy_dir: flags.policy_dir.or(file.policy_dir),
            python: flags.python.or(file.python),
            log_format: flags
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            max_connections: positive("max_connections", file.max_connections)?.unwrap_or(256),
            access,
            serve,
            source,
        })
    }
}

/// Settings of a serving daemon (from flags, later from the config file).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Longest accepted line on the client connection (the contract's default: 16 MiB).
    pub max_line_bytes: usize,
    /// Runs executing at once across all connections.
    pub max_concurrent_runs: usize,
    /// Runs that may wait for a free slot; one more gets `-32002`.
    pub queue_depth: usize,
    /// Parent of the per-run scratch directories.
    pub scratch_root: PathBuf,
    /// How long in-flight runs may go on after SIGTERM before they are cancelled.
    pub shutdown_grace_ms: u64,
    /// Idle pre-started interpreters kept for the default policy (0: none).
    pub warm_pool: usize,
    /// Largest `arguments` of one tool call, in bytes of JSON; a bigger call fails in the
    /// script with a `ToolError` naming this limit.
    pub max_tool_argument_bytes: usize,
    /// Tool-call arguments one run may have waiting in the daemon (calls not yet sent to the
    /// client); over it, the daemon stops reading the child until calls go out.
    pub max_queued_tool_argument_bytes: usize,
    /// Bytes of replies queued for one client that has not read them yet.
    pub client_queue_bytes: usize,
    /// Bytes of replies queued for all clients together.
    pub client_queue_total_bytes: usize,
    /// Bytes of unfinished request lines buffered for all clients together.
    pub partial_lines_total_bytes: usize,
    /// How long a started request line may take to finish before the connection is closed.
    pub line_timeout_ms: u64,
    /// Persistent sessions open at once, all connections together. Each holds a host-wide uid
    /// lease, a scratch tmpfs and (after its first run) an interpreter outside the run slots,
    /// so without a daemon-wide cap a few connections could lease every uid of the range.
    pub max_persistent_sessions: usize,
    /// MiB the size caps of all live scratch dirs may add up to. tmpfs pages count against no
    /// run's memory limit nor the daemon's RSS; default: half the host's memory.
    pub max_scratch_total_mb: u64,
    /// MCP servers by config name (`[mcp_servers.<name>]`).
    pub mcp_servers: std::collections::BTreeMap<String, McpServerConfig>,
    /// Above this many code-callable tools, definitions list only names and summaries and the
    /// script gets `search_tools` / `describe_tool`.
    pub discovery_threshold: usize,
    /// Fork runs from a template interpreter per policy (`on`), never (`off`), or never start
    /// an eligible run cold (`require`).
    pub fork_server: ForkServerMode,
}

/// How to reach one MCP server (contract v1.1: Codex CLI's `[mcp_servers.<name>]` shape).
#[derive(Debug, Clone, PartialEq)]
pub enum McpTransport {
    /// A child process speaking MCP on its stdin/stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
        cwd: Option<PathBuf>,
    },
    /// A streamable HTTP endpoint.
    Http {
        url: String,
        headers: Vec<(String, String)>,
    },
}

/// One configured MCP server.
#[derive(Debug, Clone, PartialEq)]
pub struct McpServerConfig {
    pub transport: McpTransport,
    /// How long starting the server (spawn + `initialize` + `tools/list`) may take.
    pub startup_timeout_ms: u64,
    /// How long one `tools/call` may take.
    pub call_timeout_ms: u64,
}

/// Default `startup_timeout_ms`: spawn + `initialize` + `tools/list`.
pub const DEFAULT_MCP_STARTUP_TIMEOUT_MS: u64 = 10_000;
/// Default `call_timeout_ms`: one `tools/call`.
pub const DEFAULT_MCP_CALL_TIMEOUT_MS: u64 = 30_000;
/// Longest accepted MCP timeout (one hour): a wait must end.
const MAX_MCP_TIMEOUT_MS: u64 = 3_600_000;
/// Longest MCP server config name.
pub const MAX_MCP_SERVER_NAME: usize = 64;

/// Whether `name` is a valid MCP server config name: `[A-Za-z0-9_-]{1,64}` (no dot, so
/// `"<server>.<tool>"` splits at the first dot).
pub fn valid_mcp_server_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_MCP_SERVER_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks every `[mcp_servers.<name>]` table. Each error names `mcp_servers.<name>.<key>`.
fn mcp_servers(
    tables: &toml::Table,
) -> Result<std::collections::BTreeMap<String, McpServerConfig>, ConfigError> {
    let mut servers = std::collections::BTreeMap::new();
    for (name, value) in tables {
        let at = |key: &str, message: String| ConfigError::McpServer {
            key: if key.is_empty() {
                format!("mcp_servers.{name}")
            } else {
                format!("mcp_servers.{name}.{key}")
            },
            message,
        };
        if !valid_mcp_server_name(name) {
            return Err(at(
                "",
                format!(
                    "{name:?} is not a valid server name: use 1 to {MAX_MCP_SERVER_NAME} of A-Z a-z 0-9 _ -"
                ),
            ));
        }
        let Some(table) = value.as_table() else {
            return Err(at("", "must be a table".into()));
        };
        servers.insert(name.clone(), mcp_server(table, &at)?);
    }
    Ok(servers)
}

/// One `[mcp_servers.<name>]` table; `at(key, message)` builds the error naming the key.
fn mcp_server(
    table: &toml::Table,
    at: &dyn Fn(&str, String) -> ConfigError,
) -> Result<McpServerConfig, ConfigError> {
    const STDIO: [&str; 4] = ["command", "args", "env", "cwd"];
    const HTTP: [&str; 2] = ["url", "headers"];
    const COMMON: [&str; 2] = ["startup_timeout_ms", "call_timeout_ms"];
    for key in table.keys() {
        if ![&STDIO[..], &HTTP[..], &COMMON[..]]
            .concat()
            .contains(&key.as_str())
        {
            return Err(at(
                key,
                "unknown key (expected command, args, env, cwd | url, headers, startup_timeout_ms, call_timeout_ms)"
                    .into(),
            ));
        }
    }
    let string = |key: &str| -> Result<Option<String>, ConfigError> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) if s.is_empty() => {
                Err(at(key, "must not be empty".into()))
            }
            Some(toml::Value::String(s)) if s.contains('\0') => {
                Err(at(key, "must not contain a NUL byte".into()))
            }
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(at(key, "must be a string".into())),
        }
    };
    let pairs = |key: &str| -> Result<Vec<(String, String)>, ConfigError> {
        let Some(value) = table.get(key) else {
            return Ok(Vec::new());
        };
        let Some(map) = value.as_table() else {
            return Err(at(key, "must be a table of strings".into()));
        };
        map.iter()
            .map(|(k, v)| match v.as_str() {
                Some(v) if !v.contains('\0') => Ok((k.clone(), v.to_string())),
                _ => Err(at(
                    &format!("{key}.{k}"),
                    "must be a string without NUL bytes".into(),
                )),
            })
            .collect()
    };
    let timeout = |key: &str, default: u64| -> Result<u64, ConfigError> {
        match table.get(key) {
            None => Ok(default),
            Some(toml::Value::Integer(ms)) if (1..=MAX_MCP_TIMEOUT_MS as i64).contains(ms) => {
                Ok(*ms as u64)
            }
            Some(_) => Err(at(
                key,
                format!("must be an integer from 1 to {MAX_MCP_TIMEOUT_MS} (milliseconds)"),
            )),
        }
    };
    let transport = match (string("command")?, string("url")?) {
        (Some(_), Some(_)) => {
            return Err(at(
                "url",
                "a server has either command (stdio) or url (HTTP), not both".into(),
            ))
        }
        (None, None) => {
            return Err(at(
                "command",
                "missing: a server needs command (stdio) or url (streamable HTTP)".into(),
            ))
        }
        (Some(command), None) => {
            if let Some(key) = HTTP.iter().find(|k| table.contains_key(**k)) {
                return Err(at(key, "only for HTTP servers (with url)".into()));
            }
            let args = match table.get("args") {
                None => Vec::new(),
                Some(toml::Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v.as_str() {
                        Some(s) if !s.contains('\0') => Ok(s.to_string()),
                        _ => Err(at(
                            &format!("args[{i}]"),
                            "must be a string without NUL bytes".into(),
                        )),
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(at("args", "must be an array of strings".into())),
            };
            let env = pairs("env")?;
            if let Some((k, _)) = env.iter().find(|(k, _)| k.is_empty() || k.contains('=')) {
                return Err(at(
                    &format!("env.{k}"),
                    "an environment variable name must be non-empty and without '='".into(),
                ));
            }
            let cwd = string("cwd")?.map(PathBuf::from);
            if let Some(cwd) = &cwd {
                if !cwd.is_absolute() {
                    return Err(at("cwd", "must be an absolute path".into()));
                }
            }
            McpTransport::Stdio {
                command,
                args,
                env,
                cwd,
            }
        }
        (None, Some(url)) => {
            if let Some(key) = STDIO.iter().find(|k| table.contains_key(**k)) {
                return Err(at(key, "only for stdio servers (with command)".into()));
            }
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(at(
                    "url",
                    format!("{url:?} is not an http:// or https:// URL"),
                ));
            }
            let headers = pairs("headers")?;
            for (k, v) in &headers {
                if http::HeaderName::from_bytes(k.as_bytes()).is_err()
                    || http::HeaderValue::from_str(v).is_err()
                {
                    return Err(at(
                        &format!("headers.{k}"),
                        "is not a valid HTTP header name and value".into(),
                    ));
                }
            }
            McpTransport::Http { url, headers }
        }
    };
    Ok(McpServerConfig {
        transport,
        startup_timeout_ms: timeout("startup_timeout_ms", DEFAULT_MCP_STARTUP_TIMEOUT_MS)?,
        call_timeout_ms: timeout("call_timeout_ms", DEFAULT_MCP_CALL_TIMEOUT_MS)?,
    })
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            max_line_bytes: 16 << 20,
            max_concurrent_runs: 32,
            queue_depth: 64,
            // SAFETY: getuid cannot fail.
            scratch_root: default_scratch_root(),
            shutdown_grace_ms: 5_000,
            warm_pool: 2,
            max_tool_argument_bytes: 8 << 20,
            max_queued_tool_argument_bytes: 32 << 20,
            client_queue_bytes: 8 << 20,
            client_queue_total_bytes: 256 << 20,
            partial_lines_total_bytes: 256 << 20,
            line_timeout_ms: 30_000,
            max_persistent_sessions: 64,
            max_scratch_total_mb: default_scratch_total_mb(),
            mcp_servers: Default::default(),
            discovery_threshold: 30,
            fork_server: ForkServerMode::On,
        }
    }
}

/// `/run/ptcd-scratch` for a root daemon (not under `/tmp`, where any local user could create
/// the name first); `$TMPDIR/ptcd-scratch-$UID` otherwise. Either way it is created and checked
/// safely (`ScratchRoot::open`).
fn default_scratch_root() -> PathBuf {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    if uid == 0 {
        PathBuf::from("/run/ptcd-scratch")
    } else {
        std::env::temp_dir().join(format!("ptcd-scratch-{uid}"))
    }
}

/// The contract's default socket path: `$XDG_RUNTIME_DIR/ptcd.sock`, else `/run/ptcd/ptcd.sock`
/// for root under systemd, else `/tmp/ptcd-$UID/ptcd.sock`.
pub fn default_socket_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("ptcd.sock");
    }
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    if uid == 0 && std::env::var_os("INVOCATION_ID").is_some() {
        return PathBuf::from("/run/ptcd/ptcd.sock");
    }
    PathBuf::from(format!("/tmp/ptcd-{uid}/ptcd.sock"))
}

/// Half of `MemTotal` (at least 1 GiB); 16 GiB when `/proc/meminfo` cannot be read.
fn default_scratch_total_mb() -> u64 {
    let total_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        });
    match total_kib {
        Some(kib) => (kib / 1024 / 2).max(1024),
        None => 16 * 1024,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Result<Settings, String> {
        let file = parse(text)?;
        Settings::resolve(file, Overrides::default(), None).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_file_gives_defaults() {
        let s = settings("").expect("valid");
        assert_eq!(s.socket_mode, 0o600);
        assert_eq!(s.access, Access::default());
        assert_eq!(
            s.serve.max_concurrent_runs,
            ServeConfig::default().max_concurrent_runs
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let err = settings("max_runz = 3").unwrap_err();
        assert!(err.contains("max_runz"), "{err}");
    }

    #[test]
    fn wrong_type_is_named() {
        let err = settings("max_connections = \"many\"").unwrap_err();
        assert!(err.contains("max_connections"), "{err}");
    }

    #[test]
    fn socket_mode_must_be_octal_and_owner_rw() {
        assert_eq!(
            settings("socket_mode = \"0660\"").map(|s| s.socket_mode),
            Ok(0o660)
        );
        assert!(settings("socket_mode = \"0999\"")
            .unwrap_err()
            .contains("socket_mode"));
        assert!(settings("socket_mode = \"0060\"")
            .unwrap_err()
            .contains("socket_mode"));
    }

    #[test]
    fn flags_override_the_file() {
        let file = parse("socket = \"/from/file.sock\"\nmax_concurrent_runs = 4").expect("valid");
        let flags = Overrides {
            socket: Some("/from/flag.sock".into()),
            ..Default::default()
        };
        let s = Settings::resolve(file, flags, None).expect("valid");
        assert_eq!(s.socket, PathBuf::from("/from/flag.sock"));
        assert_eq!(s.serve.max_concurrent_runs, 4);
    }

    #[test]
    fn access_lists_allow_listed_uids_or_gids_only() {
        let open = Access::default();
        assert!(open.check(1234, 1234).is_ok());
        let s = settings("allowed_uids = [0]\nallowed_gids = [100]").expect("valid");
        assert!(s.access.check(0, 5).is_ok());
        assert!(s.access.check(7, 100).is_ok());
        assert!(s
            .access
            .check(65534, 65534)
            .unwrap_err()
            .contains("uid 65534"));
    }

    #[test]
    fn fork_server_defaults_to_on_and_a_bad_mode_is_named() {
        assert_eq!(
            settings("").map(|s| s.serve.fork_server),
            Ok(ForkServerMode::On)
        );
        assert_eq!(
            settings("fork_server = \"require\"").map(|s| s.serve.fork_server),
            Ok(ForkServerMode::Require)
        );
        assert!(settings("fork_server = \"sometimes\"")
            .unwrap_err()
            .contains("fork_server"));
    }

    #[test]
    fn warm_pool_defaults_to_two_allows_zero_and_is_bounded() {
        assert_eq!(settings("").map(|s| s.serve.warm_pool), Ok(2));
        assert_eq!(settings("warm_pool = 0").map(|s| s.serve.warm_pool), Ok(0));
        assert!(settings("warm_pool = 1000")
            .unwrap_err()
            .contains("warm_pool"));
    }

    #[test]
    fn client_memory_limits_have_defaults_and_minimums() {
        let s = settings("").expect("valid");
        assert_eq!(s.serve.client_queue_bytes, 8 << 20);
        assert_eq!(s.serve.client_queue_total_bytes, 256 << 20);
        assert_eq!(s.serve.partial_lines_total_bytes, 256 << 20);
        assert_eq!(s.serve.line_timeout_ms, 30_000);
        let err =
            settings("max_line_bytes = 4194304\npartial_lines_total_bytes = 1048576").unwrap_err();
        assert!(err.contains("partial_lines_total_bytes"), "{err}");
        let err =
            settings("client_queue_bytes = 1048576\nclient_queue_total_bytes = 65536").unwrap_err();
        assert!(err.contains("client_queue_total_bytes"), "{err}");
        assert!(settings("line_timeout_ms = 5")
            .unwrap_err()
            .contains("line_timeout_ms"));
        // A larger max_line_bytes raises the default total so one line always fits.
        let s = settings("max_line_bytes = 536870912").expect("valid");
        assert_eq!(s.serve.partial_lines_total_bytes, 512 << 20);
    }

    #[test]
    fn zero_limits_are_refused() {
        assert!(settings("max_connections = 0")
            .unwrap_err()
            .contains("max_connections"));
    }

    #[test]
    fn landlock_max_abi_is_checked_and_named() {
        assert_eq!(
            settings("landlock_max_abi = 2").unwrap().landlock_max_abi,
            Some(2)
        );
        let err = settings("landlock_max_abi = 9").unwrap_err();
        assert!(
            err.contains("landlock_max_abi: 9: must be a Landlock ABI from 1 to 7"),
            "{err}"
        );
        let err = settings("landlock_max_abi = 0").unwrap_err();
        assert!(err.contains("landlock_max_abi"), "{err}");
    }

    #[test]
    fn mcp_servers_parse_stdio_and_http_tables() {
        let s = settings(
            r#"
discovery_threshold = 12
[mcp_servers.sqlite]
command = "mcp-server-sqlite"
args = ["--db-path", "/srv/shop.db"]
env = { LOG_LEVEL = "warn" }
cwd = "/srv"
call_timeout_ms = 500
[mcp_servers.my-search]
url = "http://127.0.0.1:8931/mcp"
headers = { Authorization = "Bearer x" }
startup_timeout_ms = 2000
"#,
        )
        .expect("valid");
        assert_eq!(s.serve.discovery_threshold, 12);
        let sqlite = &s.serve.mcp_servers["sqlite"];
        assert_eq!(
            sqlite.transport,
            McpTransport::Stdio {
                command: "mcp-server-sqlite".into(),
                args: vec!["--db-path".into(), "/srv/shop.db".into()],
                env: vec![("LOG_LEVEL".into(), "warn".into())],
                cwd: Some("/srv".into()),
            }
        );
        assert_eq!(sqlite.call_timeout_ms, 500);
        assert_eq!(sqlite.startup_timeout_ms, DEFAULT_MCP_STARTUP_TIMEOUT_MS);
        let search = &s.serve.mcp_servers["my-search"];
        assert_eq!(
            search.transport,
            McpTransport::Http {
                url: "http://127.0.0.1:8931/mcp".into(),
                headers: vec![("Authorization".into(), "Bearer x".into())],
            }
        );
        assert_eq!(search.startup_timeout_ms, 2000);
        assert_eq!(search.call_timeout_ms, DEFAULT_MCP_CALL_TIMEOUT_MS);
    }

    #[test]
    fn mcp_defaults_without_tables() {
        let s = settings("").expect("valid");
        assert!(s.serve.mcp_servers.is_empty());
        assert_eq!(s.serve.discovery_threshold, 30);
    }

    #[test]
    fn mcp_server_errors_name_the_table_and_key() {
        let cases = [
            (
                "[mcp_servers.a]\ncommand = \"x\"\ncomand = 1",
                "mcp_servers.a.comand",
            ),
            ("[mcp_servers.a]\nargs = []", "mcp_servers.a.command"),
            (
                "[mcp_servers.a]\ncommand = \"x\"\nurl = \"http://h/\"",
                "mcp_servers.a.url",
            ),
            ("[mcp_servers.\"a.b\"]\ncommand = \"x\"", "mcp_servers.a.b"),
            ("[mcp_servers.\"\"]\ncommand = \"x\"", "mcp_servers.:"),
            ("[mcp_servers.a]\ncommand = 3", "mcp_servers.a.command"),
            ("[mcp_servers.a]\ncommand = \"\"", "mcp_servers.a.command"),
            (
                "[mcp_servers.a]\ncommand = \"x\"\nargs = [1]",
                "mcp_servers.a.args[0]",
            ),
            (
                "[mcp_servers.a]\ncommand = \"x\"\nenv = { A = 1 }",
                "mcp_servers.a.env.A",
            ),
            (
                "[mcp_servers.a]\ncommand = \"x\"\ncwd = \"rel\"",
                "mcp_servers.a.cwd",
            ),
            (
                "[mcp_servers.a]\ncommand = \"x\"\nheaders = {}",
                "mcp_servers.a.headers",
            ),
            (
                "[mcp_servers.a]\nurl = \"http://h/\"\nargs = []",
                "mcp_servers.a.args",
            ),
            ("[mcp_servers.a]\nurl = \"ftp://h/\"", "mcp_servers.a.url"),
            (
                "[mcp_servers.a]\nurl = \"http://h/\"\nheaders = { \"bad name\" = \"v\" }",
                "mcp_servers.a.headers.bad name",
            ),
            (
                "[mcp_servers.a]\ncommand = \"x\"\ncall_timeout_ms = 0",
                "mcp_servers.a.call_timeout_ms",
            ),
            (
                "[mcp_servers.a]\ncommand = \"x\"\nstartup_timeout_ms = \"10s\"",
                "mcp_servers.a.startup_timeout_ms",
            ),
            ("mcp_servers = 3", "mcp_servers"),
            ("[mcp_servers]\na = 3", "mcp_servers.a"),
        ];
        for (text, key) in cases {
            let err = settings(text).unwrap_err();
            assert!(err.contains(key), "{text:?}: {err}");
        }
        let long = "n".repeat(65);
        let err = settings(&format!("[mcp_servers.{long}]\ncommand = \"x\"")).unwrap_err();
        assert!(err.contains("not a valid server name"), "{err}");
        assert!(settings("discovery_threshold = -1")
            .unwrap_err()
            .contains("discovery_threshold"));
    }

    #[test]
    fn mcp_server_names_allow_letters_digits_dash_underscore() {
        assert!(valid_mcp_server_name("my-server_2"));
        assert!(valid_mcp_server_name(&"a".repeat(64)));
        for bad in ["", "a.b", "a b", "é", &"a".repeat(65)] {
            assert!(!valid_mcp_server_name(bad), "{bad:?}");
        }
    }
}
