//! The client side against real servers: the fault server in `testdata/` (system `python3`)
//! and, when installed, the third-party `mcp-server-time` (`$PTCD_MCP_BIN_DIR`, else
//! `target/test-venv/bin`; skipped with a message when absent).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::budget::{ByteGauge, Held};
use crate::config::{McpServerConfig, McpTransport};
use crate::rpc::Id;
use crate::tool_source::{Arguments, RunIdentity, ToolCall, ToolError, ToolSource};

const FAULT_SERVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/src/mcp/testdata/fault_server.py"
);

fn stdio(command: &str, args: &[&str], env: &[(&str, &str)]) -> McpServerConfig {
    McpServerConfig {
        transport: McpTransport::Stdio {
            command: command.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd: None,
        },
        startup_timeout_ms: 20_000,
        call_timeout_ms: 20_000,
    }
}

/// The system interpreter, not a version manager's shim (which adds its own environment).
fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn fault(call_timeout_ms: u64) -> McpServerConfig {
    McpServerConfig {
        call_timeout_ms,
        ..stdio(python(), &[FAULT_SERVER], &[])
    }
}

fn servers(name: &str, config: McpServerConfig, max_line_bytes: usize) -> McpServers {
    let mut map = BTreeMap::new();
    map.insert(name.to_string(), config);
    McpServers::with_max_line_bytes(&map, CancellationToken::new(), max_line_bytes)
}

fn call_of(name: &str, arguments: Value) -> ToolCall {
    let gauge = ByteGauge::new(1 << 20);
    let raw = serde_json::value::to_raw_value(&arguments).expect("JSON");
    ToolCall {
        run: Arc::new(RunIdentity {
            run_id: "r-1".into(),
            request_id: Id::from_value(&json!(1)).expect("an id"),
            session_id: None,
        }),
        call_id: 0,
        name: name.into(),
        arguments: Arguments::new(raw, Held::new(&gauge, 0)),
    }
}

async fn call(server: &McpServer, tool: &str, arguments: Value) -> Result<Value, ToolError> {
    call_cancellable(server, tool, arguments, CancellationToken::new()).await
}

async fn call_cancellable(
    server: &McpServer,
    tool: &str,
    arguments: Value,
    cancel: CancellationToken,
) -> Result<Value, ToolError> {
    let name = format!("{}.{tool}", server.name());
    server
        .call(call_of(&name, arguments), cancel)
        .await
        .map(|raw| serde_json::from_str(raw.get()).expect("JSON"))
}

fn status(servers: &McpServers, name: &str) -> Value {
    servers.status()[name].clone()
}

/// This process's resident memory.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Whether `pid` is gone (reaped: no /proc entry).
fn reaped(pid: u64) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn third_party(bin: &str) -> Option<PathBuf> {
    let dirs = std::env::var_os("PTCD_MCP_BIN_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/test-venv/bin"
        ))]);
    for dir in dirs {
        let path = dir.join(bin);
        if path.exists() {
            return Some(path);
        }
    }
    eprintln!("SKIPPED: {bin} not installed (set PTCD_MCP_BIN_DIR to its venv's bin)");
    None
}

#[tokio::test]
async fn lists_and_calls_the_real_time_server() {
    let Some(bin) = third_party("mcp-server-time") else {
        return;
    };
    let all = servers(
        "time",
        stdio(
            bin.to_str().expect("utf-8"),
            &["--local-timezone", "UTC"],
            &[],
        ),
        16 << 20,
    );
    assert_eq!(status(&all, "time")["state"], "idle");
    let server = all.get("time").expect("configured");
    let tools = server.tools().await.expect("starts and lists");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"get_current_time"), "{names:?}");
    assert!(tools[0].input_schema.is_object());
    let now = call(server, "get_current_time", json!({"timezone": "UTC"}))
        .await
        .expect("answers");
    assert_eq!(now["timezone"], "UTC", "{now}");
    // isError from the real server becomes a ToolError with its text.
    let bad = call(
        server,
        "get_current_time",
        json!({"timezone": "Nowhere/Atlantis"}),
    )
    .await;
    match bad {
        Err(ToolError::Failed(e)) => {
            assert_eq!(e.code, TOOL_FAILED);
            assert_eq!(
                e.data,
                Some(json!({"server": "time", "tool": "get_current_time"}))
            );
        }
        other => panic!("{other:?}"),
    }
    let s = status(&all, "time");
    assert_eq!(s["state"], "running");
    assert_eq!(s["calls_total"], 2);
    assert_eq!(s["restarts"], 0);
    assert_eq!(s["tools"], tools.len());
    let pid = s["pid"].as_u64().expect("a pid");
    all.shutdown().await;
    assert_eq!(status(&all, "time")["state"], "stopped");
    assert!(reaped(pid), "the server was not reaped");
}

#[tokio::test]
async fn fifty_concurrent_calls_share_one_start() {
    let all = servers("f", fault(20_000), 16 << 20);
    let server = all.get("f").expect("configured").clone();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..50 {
        let server = server.clone();
        calls.spawn(async move { call(&server, "echo", json!({"i": i})).await });
    }
    let mut seen = Vec::new();
    while let Some(done) = calls.join_next().await {
        seen.push(
            done.expect("no panic").expect("answered")["i"]
                .as_i64()
                .expect("i"),
        );
    }
    seen.sort();
    assert_eq!(seen, (0..50).collect::<Vec<_>>());
    let s = status(&all, "f");
    assert_eq!(
        (s["calls_total"].clone(), s["restarts"].clone()),
        (json!(50), json!(0))
    );
    all.shutdown().await;
}

#[tokio::test]
async fn crashed_server_is_named_then_restarted_on_next_use() {
    let all = servers("f", fault(20_000), 16 << 20);
    let server = all.get("f").expect("configured");
    call(server, "echo", json!({})).await.expect("answers");
    let pid = status(&all, "f")["pid"].as_u64().expect("pid");
    match call(server, "crash", json!({})).await {
        Err(ToolError::Unreachable(why)) => {
            assert!(why.contains("MCP server f"), "{why}");
            assert!(
                why.contains("crashing on purpose"),
                "stderr tail quoted: {why}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(status(&all, "f")["state"], "failed");
    // First retry is immediate: the next call restarts it.
    assert_eq!(
        call(server, "echo", json!({"again": true}))
            .await
            .expect("restarted"),
        json!({"again": true})
    );
    let s = status(&all, "f");
    assert_eq!(
        (s["state"].clone(), s["restarts"].clone()),
        (json!("running"), json!(1))
    );
    assert_ne!(s["pid"].as_u64(), Some(pid));
    // The crashed child is reaped (closed in the background).
    wait_until(|| reaped(pid)).await;
    all.shutdown().await;
}

#[tokio::test]
async fn hung_call_times_out_naming_the_limit_and_the_server_hears_cancelled() {
    let all = servers("f", fault(300), 16 << 20);
    let server = all.get("f").expect("configured");
    match call(server, "hang", json!({})).await {
        Err(ToolError::Unreachable(why)) => assert!(
            why.contains("MCP server f: hang did not answer within call_timeout_ms = 300"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    // notifications/cancelled reached the server (it lists the ids it was told about); the
    // server stays usable.
    let cancelled = call(server, "cancelled", json!({})).await.expect("answers");
    assert_eq!(cancelled.as_array().map(Vec::len), Some(1), "{cancelled}");
    all.shutdown().await;
}

#[tokio::test]
async fn run_cancellation_is_forwarded_as_notifications_cancelled() {
    let all = servers("f", fault(20_000), 16 << 20);
    let server = all.get("f").expect("configured");
    server.tools().await.expect("starts");
    let cancel = CancellationToken::new();
    let hung = call_cancellable(server, "hang", json!({}), cancel.clone());
    let (result, ()) = tokio::join!(hung, async {
        // Cancel once the call is in flight (counted), not after a sleep.
        wait_until(|| status(&all, "f")["calls_total"] == 1).await;
        cancel.cancel();
    });
    assert_eq!(result, Err(ToolError::Cancelled));
    let cancelled = call(server, "cancelled", json!({})).await.expect("answers");
    assert_eq!(cancelled.as_array().map(Vec::len), Some(1), "{cancelled}");
    all.shutdown().await;
}

#[tokio::test]
async fn stderr_flood_is_drained_into_a_bounded_tail() {
    let all = servers("f", fault(60_000), 16 << 20);
    let server = all.get("f").expect("configured");
    server.tools().await.expect("starts");
    let before = rss_kib();
    // 64 MiB of stderr: the server would block on a full pipe if it were not drained, and the
    // daemon would grow by 64 MiB if it kept it.
    assert_eq!(
        call(server, "flood", json!({"mib": 64}))
            .await
            .expect("answers"),
        json!("flooded")
    );
    let grown = rss_kib().saturating_sub(before);
    eprintln!("RSS growth across a 64 MiB stderr flood: {grown} KiB");
    assert!(grown < 48 * 1024, "grew {grown} KiB");
    match call(server, "crash", json!({})).await {
        Err(ToolError::Unreachable(why)) => {
            assert!(why.len() < STDERR_TAIL_BYTES + 200, "{} bytes", why.len());
            assert!(
                why.ends_with("crashing on purpose"),
                "{}",
                &why[why.len() - 60..]
            );
        }
        other => panic!("{other:?}"),
    }
    all.shutdown().await;
}

#[tokio::test]
async fn line_over_max_line_bytes_fails_the_pending_call_at_once_naming_the_limit() {
    // A call timeout no test waits for: the call must fail when the line is dropped.
    let all = servers("f", fault(600_000), 64 << 10);
    let server = all.get("f").expect("configured");
    match call(server, "big", json!({"bytes": 1 << 20})).await {
        Err(ToolError::Unreachable(why)) => {
            assert!(!why.contains("call_timeout_ms"), "{why}");
            assert!(why.contains("over max_line_bytes = 65536"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // The session survives the dropped line.
    assert_eq!(
        call(server, "echo", json!({"ok": 1})).await,
        Ok(json!({"ok": 1}))
    );
    all.shutdown().await;
}

#[tokio::test]
async fn missing_command_is_unavailable_naming_the_server_then_backs_off() {
    let all = servers(
        "ghost",
        stdio("/nonexistent/mcp-server", &[], &[]),
        16 << 20,
    );
    let server = all.get("ghost").expect("configured");
    let first = server.tools().await.unwrap_err();
    assert_eq!(first.server, "ghost");
    assert!(first.why.contains("cannot start"), "{first}");
    assert!(first
        .to_string()
        .starts_with("MCP server unavailable: ghost: "));
    // The first retry is immediate; after the second failure calls fail fast in back-off.
    let second = server.tools().await.unwrap_err();
    assert!(second.why.contains("cannot start"), "{second}");
    let third = server.tools().await.unwrap_err();
    assert!(third.why.contains("restarting it in"), "{third}");
    match call(server, "x", json!({})).await {
        Err(ToolError::Unreachable(why)) => {
            assert!(why.starts_with("MCP server ghost: "), "{why}");
            assert!(why.contains("restarting it in"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    let s = status(&all, "ghost");
    assert_eq!(s["state"], "failed");
    assert!(
        s["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot start")),
        "{s}"
    );
}

#[tokio::test]
async fn server_that_never_initializes_hits_startup_timeout_and_is_killed() {
    let pidfile = std::env::temp_dir().join(format!("ptcd-mcp-test-{}.pid", std::process::id()));
    let pidfile_text = pidfile.to_str().expect("utf-8").to_string();
    let mut config = stdio(
        python(),
        &[FAULT_SERVER],
        &[("MODE", "no_init"), ("PIDFILE", &pidfile_text)],
    );
    config.startup_timeout_ms = 300;
    let all = servers("slow", config, 16 << 20);
    let server = all.get("slow").expect("configured");
    let err = server.tools().await.unwrap_err();
    assert!(
        err.why
            .contains("did not start within startup_timeout_ms = 300"),
        "{err}"
    );
    assert_eq!(status(&all, "slow")["state"], "failed");
    let pid: u64 = std::fs::read_to_string(&pidfile)
        .expect("the server wrote its pid")
        .parse()
        .expect("a pid");
    let _ = std::fs::remove_file(&pidfile);
    assert!(
        reaped(pid),
        "the server that missed its deadline was not killed and reaped"
    );
}

#[tokio::test]
async fn a_start_abandoned_by_its_caller_still_completes() {
    // A start that takes a second, so the caller surely gives up in the middle of it.
    let config = stdio(python(), &[FAULT_SERVER], &[("MODE", "slow_init")]);
    let all = servers("f", config, 16 << 20);
    let server = all.get("f").expect("configured").clone();
    let caller = tokio::spawn(async move { server.tools().await.map(|t| t.len()) });
    wait_until(|| status(&all, "f")["state"] == "starting").await;
    caller.abort();
    // The start goes on in its own task: no half-made start stays behind.
    wait_until(|| status(&all, "f")["state"] == "running").await;
    assert_eq!(status(&all, "f")["tools"], 7);
    all.shutdown().await;
}

#[tokio::test]
async fn tool_list_is_fetched_again_after_list_changed() {
    let all = servers("f", fault(20_000), 16 << 20);
    let server = all.get("f").expect("configured");
    assert_eq!(server.tools().await.expect("starts").len(), 7);
    assert_eq!(call(server, "grow", json!({})).await, Ok(json!("grown")));
    // The notification is handled by rmcp's loop: poll the list (bounded) until it shows.
    let mut grown = false;
    for _ in 0..500 {
        let tools = server.tools().await.expect("lists");
        if tools.iter().any(|t| t.name == "grown0") {
            grown = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(grown, "the new tool never appeared");
    let s = status(&all, "f");
    assert_eq!(
        (s["tools"].clone(), s["restarts"].clone()),
        (json!(8), json!(0))
    );
    all.shutdown().await;
}

#[tokio::test]
async fn endless_tool_list_is_refused_at_max_line_bytes() {
    let config = stdio(python(), &[FAULT_SERVER], &[("MODE", "endless_list")]);
    let all = servers("pages", config, 256 << 10);
    let err = all
        .get("pages")
        .expect("configured")
        .tools()
        .await
        .unwrap_err();
    assert!(
        err.why
            .contains("tool list is over max_line_bytes = 262144"),
        "{err}"
    );
    assert_eq!(status(&all, "pages")["state"], "failed");
}

#[tokio::test]
async fn env_is_only_path_home_lang_and_the_table() {
    let config = stdio(
        python(),
        &["-c", "import os,sys; sys.stderr.write(' '.join(sorted(os.environ)) + ' cwd=' + os.getcwd()); sys.exit(1)"],
        &[("EXTRA", "1")],
    );
    let all = servers("env", config, 16 << 20);
    let err = all
        .get("env")
        .expect("configured")
        .tools()
        .await
        .unwrap_err();
    assert!(
        err.why.ends_with("stderr: EXTRA HOME LANG PATH cwd=/"),
        "{err}"
    );
}

#[tokio::test]
async fn after_shutdown_nothing_starts() {
    let all = servers("f", fault(20_000), 16 << 20);
    let server = all.get("f").expect("configured").clone();
    call(&server, "echo", json!({})).await.expect("answers");
    let pid = status(&all, "f")["pid"].as_u64().expect("pid");
    all.shutdown().await;
    assert!(reaped(pid));
    match call(&server, "echo", json!({})).await {
        Err(ToolError::Unreachable(why)) => assert!(why.contains("stopped"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(server.tools().await.unwrap_err().why.contains("stopped"));
}

#[tokio::test]
async fn a_name_of_another_server_is_unknown() {
    let all = servers("f", fault(20_000), 16 << 20);
    let server = all.get("f").expect("configured");
    let result = server
        .call(call_of("g.echo", json!({})), CancellationToken::new())
        .await;
    assert_eq!(result.map(|_| ()), Err(ToolError::Unknown("g.echo".into())));
}

/// Polls `ready` (bounded: 10 s) — a state, not a sleep-as-synchronization.
pub(super) async fn wait_until(mut ready: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if ready() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 10 s");
}

#[tokio::test]
async fn lists_and_calls_a_streamable_http_server_with_the_table_headers() {
    // The venv that has the MCP servers also has the SDK (`mcp`) this server needs.
    let Some(python) = third_party("mcp-server-time").map(|bin| bin.with_file_name("python"))
    else {
        return;
    };
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("addr").port()
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/mcp/testdata/http_server.py"
    );
    let port_text = port.to_string();
    let args = [script.to_string(), port_text];
    // The HTTP server is a process like any other: started through the one spawn path.
    let mut http = crate::sandbox::spawn_mcp_server(&crate::sandbox::McpServerCommand {
        command: python.to_str().expect("utf-8"),
        args: &args,
        env: &[],
        cwd: None,
    })
    .expect("starts");
    wait_until(|| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()).await;
    let config = |headers: Vec<(String, String)>| McpServerConfig {
        transport: McpTransport::Http {
            url: format!("http://127.0.0.1:{port}/mcp"),
            headers,
        },
        startup_timeout_ms: 10_000,
        call_timeout_ms: 10_000,
    };
    let all = servers(
        "web",
        config(vec![("X-Test-Token".into(), "t".into())]),
        16 << 20,
    );
    let server = all.get("web").expect("configured");
    let tools = server.tools().await.expect("reaches and lists");
    assert_eq!(
        tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["add"]
    );
    // The SDK wraps a primitive return in structuredContent {"result": ...}; that is preferred.
    assert_eq!(
        call(server, "add", json!({"a": 2, "b": 40})).await,
        Ok(json!({"result": 42}))
    );
    all.shutdown().await;
    // Without the header the server refuses: unavailable, naming the server.
    let refused = servers("web", config(Vec::new()), 16 << 20);
    let err = refused
        .get("web")
        .expect("configured")
        .tools()
        .await
        .unwrap_err();
    assert_eq!(err.server, "web");
    let _ = http.start_kill();
    let _ = http.wait().await;
}
