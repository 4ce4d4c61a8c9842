//! In-process tests of the daemon's async core: the run lifecycle, the tool-call relay, cancel,
//! sessions, disconnects and shutdown, served by [`ptcd::service::run`] on a socket in this
//! process (like mini-redis's `tests/server.rs`), so no `ptcd` binary is started for the RPC
//! part. The children are real: confined CPython started through `sandbox::spawn`, which
//! re-executes this test binary as the launcher (hence `harness = false` and the `main` below,
//! which handles `__launch` first, as `ptcd`'s own `main` does).
//!
//! `PTCD_FORK_SERVER` (off|on|require) sets the harness daemons' fork-server mode.
//!
//! Every wait has a deadline ([`DEADLINE`]); ordering comes from the protocol (a tool call held
//! unanswered proves the script is running), never from sleeping.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use ptcd::config::Access;
use ptcd::config::ForkServerMode;
use ptcd::config::ServeConfig;
use ptcd::daemon::Daemon;
use ptcd::policy::PolicySet;
use ptcd::rpc::{Id, Raw};
use ptcd::tool_source::{
    OutputFuture, Requester, RunIdentity, ToolCall, ToolError, ToolFuture, ToolSource,
};

/// The longest any single wait in these tests may take.
const DEADLINE: Duration = Duration::from_secs(30);

type TestFn = fn() -> Pin<Box<dyn Future<Output = ()>>>;

macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), || Box::pin($name()))),*]
    };
}

const TESTS: &[(&str, TestFn)] = tests![
    run_answers_with_output_value_and_counts,
    tool_calls_are_relayed_to_the_client_and_answered,
    unanswered_tool_calls_are_withdrawn_when_the_run_times_out,
    run_cancel_ends_a_running_run_and_withdraws_its_call,
    disconnect_cancels_the_connections_runs,
    persistent_session_keeps_globals_between_runs,
    shutdown_cancels_running_runs_after_the_grace_period,
    a_run_needs_no_connection_only_a_requester,
    shutdown_stops_mcp_servers_and_reaps_them,
];

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(ptcd::sandbox::spawn::LAUNCH_ARG) {
        ptcd::sandbox::launcher::main();
    }
    // While single-threaded, as `ptcd serve` does: scratch tmpfs mounts stay in this process.
    let _ = ptcd::scratch::enter_private_mount_namespace();
    let filter: Vec<&String> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, test) in TESTS {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(async { tokio::time::timeout(DEADLINE * 4, test()).await })
        }));
        runtime.shutdown_timeout(Duration::from_secs(1));
        match outcome {
            Ok(Ok(())) => println!("test {name} ... ok"),
            Ok(Err(_)) => {
                println!("test {name} ... FAILED (did not finish in time)");
                failed.push(*name);
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

/// A daemon served in this process on its own socket and scratch root.
struct Harness {
    daemon: Arc<Daemon>,
    socket: PathBuf,
    dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<()>,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Harness {
    async fn start(tune: impl FnOnce(&mut ServeConfig)) -> Harness {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ptcd-h-{}-{n}", std::process::id()));
        let socket = dir.join("s.sock");
        let mut config = ServeConfig {
            scratch_root: dir.join("scratch"),
            warm_pool: 0,
            ..ServeConfig::default()
        };
        // `PTCD_FORK_SERVER=off|on|require` selects the fork-server mode, as for the Python
        // suites' daemons (tests/daemon.py).
        if let Ok(mode) = std::env::var("PTCD_FORK_SERVER") {
            config.fork_server = <ForkServerMode as clap::ValueEnum>::from_str(&mode, true)
                .expect("PTCD_FORK_SERVER is off, on or require");
        }
        tune(&mut config);
        let python = ptcd::python::Interpreter::resolve(None).expect("CPython");
        let root = config.scratch_root.clone();
        let scratch = tokio::task::spawn_blocking(move || ptcd::scratch::ScratchRoot::open(&root))
            .await
            .expect("joined")
            .expect("scratch root");
        let listener = ptcd::server::bind(&socket, 0o600).expect("bound");
        let daemon = Daemon::new(
            config,
            python,
            PolicySet::builtin(),
            Access::default(),
            64,
            scratch,
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(ptcd::service::run(daemon.clone(), listener, async {
            let _ = stopped.await;
        }));
        Harness {
            daemon,
            socket,
            dir,
            stop: Some(stop),
            served,
        }
    }

    async fn connect(&self) -> Client {
        let stream = UnixStream::connect(&self.socket).await.expect("connected");
        let (read, write) = stream.into_split();
        Client {
            lines: BufReader::new(read),
            write,
            next: 1,
        }
    }

    /// Starts the shutdown sequence (what SIGTERM does) and waits until the daemon is done.
    async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        within(&mut self.served).await.expect("served to the end");
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Polls `check` on the daemon until it holds (bounded).
    async fn wait_until(&self, what: &str, check: impl Fn(&Daemon) -> bool) {
        let polled = async {
            while !check(&self.daemon) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        if tokio::time::timeout(DEADLINE, polled).await.is_err() {
            panic!("timed out waiting until {what}");
        }
    }

    fn stat(&self, key: &str) -> Value {
        self.daemon.status()[key].clone()
    }
}

async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(DEADLINE, f)
        .await
        .expect("no answer in time")
}

/// A client speaking newline-delimited JSON-RPC on the harness socket.
struct Client {
    lines: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
    next: u64,
}

impl Client {
    async fn send(&mut self, message: Value) {
        let mut line = serde_json::to_vec(&message).expect("JSON");
        line.push(b'\n');
        self.write.write_all(&line).await.expect("written");
    }

    /// Sends a request and returns its id.
    async fn request(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next;
        self.next += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        id
    }

    /// The next message from the daemon.
    async fn recv(&mut self) -> Value {
        let mut line = String::new();
        let n = within(self.lines.read_line(&mut line)).await.expect("read");
        assert!(n > 0, "the daemon closed the connection");
        serde_json::from_str(&line).expect("a JSON line")
    }

    /// Reads until the message `pick` accepts, handing every other message to `other`.
    async fn until(&mut self, pick: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
        let mut skipped = Vec::new();
        loop {
            let m = self.recv().await;
            if pick(&m) {
                return (m, skipped);
            }
            skipped.push(m);
        }
    }

    async fn response(&mut self, id: u64) -> (Value, Vec<Value>) {
        self.until(|m| m["id"] == json!(id) && m.get("method").is_none())
            .await
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.request(method, params).await;
        self.response(id).await.0
    }

    /// The next `tool/call` request from the daemon.
    async fn tool_call(&mut self) -> Value {
        self.until(|m| m["method"] == "tool/call").await.0
    }

    async fn answer(&mut self, call: &Value, result: Value) {
        self.send(json!({"jsonrpc": "2.0", "id": call["id"], "result": result}))
            .await;
    }
}

// --- the tests --------------------------------------------------------------------------------

async fn run_answers_with_output_value_and_counts() {
    let h = Harness::start(|_| {}).await;
    let mut c = h.connect().await;
    let m = c
        .call("run", json!({"code": "print('hello')\nx = 20\nx * 2 + 2"}))
        .await;
    let r = &m["result"];
    assert_eq!(r["status"], "ok", "{m}");
    assert_eq!(r["stdout"], "hello\n");
    assert_eq!(r["value"], 42);
    assert_eq!(h.stat("runs_total"), 1);
    assert_eq!(h.stat("runs_by_status")["ok"], 1);
    assert_eq!(h.stat("runs_active"), 0);
    let bad = c.call("run", json!({"code": 7})).await;
    assert_eq!(bad["error"]["code"], -32602);
    assert_eq!(bad["error"]["data"]["field"], "code");
    h.shut_down().await;
}

async fn tool_calls_are_relayed_to_the_client_and_answered() {
    let h = Harness::start(|_| {}).await;
    let mut c = h.connect().await;
    let code = "a = await add(x=1, y=2)\nb = await add(x=a, y=4)\nb";
    let id = c
        .request("run", json!({"code": code, "tools": [{"name": "add"}]}))
        .await;
    for expected in [json!({"x": 1, "y": 2}), json!({"x": 3, "y": 4})] {
        let call = c.tool_call().await;
        let params = &call["params"];
        assert_eq!(params["name"], "add");
        assert_eq!(params["request_id"], id);
        assert_eq!(params["arguments"], expected);
        assert!(call["id"].as_str().is_some_and(|t| t.starts_with("t-")));
        let sum = expected["x"].as_i64().unwrap_or(0) + expected["y"].as_i64().unwrap_or(0);
        c.answer(&call, json!(sum)).await;
    }
    let (m, _) = c.response(id).await;
    assert_eq!(m["result"]["status"], "ok", "{m}");
    assert_eq!(m["result"]["value"], 7);
    assert_eq!(m["result"]["tool_calls"], 2);
    // The next run on the same connection works.
    let again = c.call("run", json!({"code": "1"})).await;
    assert_eq!(again["result"]["value"], 1);
    h.shut_down().await;
}

async fn unanswered_tool_calls_are_withdrawn_when_the_run_times_out() {
    let h = Harness::start(|_| {}).await;
    let mut c = h.connect().await;
    let id = c
        .request(
            "run",
            // Far beyond an interpreter start on a loaded machine: the deadline must fire
            // while the call is out.
            json!({"code": "await hang()", "tools": [{"name": "hang"}],
                   "limits": {"timeout_ms": 3000}}),
        )
        .await;
    let call = c.tool_call().await;
    let (m, between) = c.response(id).await;
    assert_eq!(m["result"]["status"], "timeout", "{m}");
    // `$/cancelRequest` for the call comes before the run's result.
    let withdrawn = between
        .iter()
        .any(|n| n["method"] == "$/cancelRequest" && n["params"]["id"] == call["id"]);
    assert!(withdrawn, "no $/cancelRequest for {call} in {between:?}");
    // A late answer is ignored, and the connection still serves runs.
    c.answer(&call, json!(1)).await;
    assert_eq!(
        c.call("run", json!({"code": "2"})).await["result"]["value"],
        2
    );
    h.shut_down().await;
}

async fn run_cancel_ends_a_running_run_and_withdraws_its_call() {
    let h = Harness::start(|_| {}).await;
    let mut c = h.connect().await;
    let id = c
        .request(
            "run",
            json!({"code": "await hang()", "tools": [{"name": "hang"}]}),
        )
        .await;
    let call = c.tool_call().await;
    let cancel = c.request("run/cancel", json!({"request_id": id})).await;
    let (ack, _) = c.response(cancel).await;
    assert_eq!(ack["result"]["cancelled"], true);
    let (m, between) = c.response(id).await;
    assert_eq!(m["result"]["status"], "cancelled", "{m}");
    assert!(m["result"]["error"]["message"]
        .as_str()
        .is_some_and(|s| s.contains("run/cancel")));
    assert!(between
        .iter()
        .any(|n| n["method"] == "$/cancelRequest" && n["params"]["id"] == call["id"]));
    let unknown = c.call("run/cancel", json!({"request_id": id})).await;
    assert_eq!(unknown["error"]["code"], -32005);
    h.wait_until("no run is active", |d| d.status()["runs_active"] == 0)
        .await;
    h.shut_down().await;
}

async fn disconnect_cancels_the_connections_runs() {
    let h = Harness::start(|_| {}).await;
    let mut c = h.connect().await;
    // The script outlives the failure of its pending call (the client's input closes first), so
    // only the hang-up can end it: as `cancelled`.
    let code =
        "import asyncio\ntry:\n    await hang()\nexcept ToolError:\n    await asyncio.sleep(3600)";
    c.request("run", json!({"code": code, "tools": [{"name": "hang"}]}))
        .await;
    c.tool_call().await;
    assert_eq!(h.stat("runs_active"), 1);
    drop(c);
    h.wait_until("the run ended", |d| d.status()["runs_active"] == 0)
        .await;
    h.wait_until("the connection closed", |d| d.status()["connections"] == 0)
        .await;
    assert_eq!(h.stat("runs_by_status")["cancelled"], 1);
    let mut next = h.connect().await;
    assert_eq!(
        next.call("run", json!({"code": "3"})).await["result"]["value"],
        3
    );
    h.shut_down().await;
}

async fn persistent_session_keeps_globals_between_runs() {
    let h = Harness::start(|_| {}).await;
    let mut c = h.connect().await;
    let created = c.call("session/create", json!({"persistent": true})).await;
    let sid = created["result"]["session_id"].clone();
    assert!(
        sid.as_str().is_some_and(|s| s.starts_with("s-")),
        "{created}"
    );
    let first = c
        .call("run", json!({"session_id": sid, "code": "x = 41"}))
        .await;
    assert_eq!(first["result"]["status"], "ok", "{first}");
    let second = c
        .call("run", json!({"session_id": sid, "code": "x + 1"}))
        .await;
    assert_eq!(second["result"]["value"], 42, "{second}");
    let closed = c.call("session/close", json!({"session_id": sid})).await;
    assert!(closed.get("result").is_some(), "{closed}");
    let gone = c.call("run", json!({"session_id": sid, "code": "x"})).await;
    assert_eq!(gone["error"]["code"], -32001);
    h.shut_down().await;
}

async fn shutdown_cancels_running_runs_after_the_grace_period() {
    let h = Harness::start(|config| config.shutdown_grace_ms = 0).await;
    let mut c = h.connect().await;
    let id = c
        .request(
            "run",
            json!({"code": "await hang()", "tools": [{"name": "hang"}]}),
        )
        .await;
    c.tool_call().await;
    let socket = h.socket.clone();
    let daemon = h.daemon.clone();
    let shutting = tokio::spawn(h.shut_down());
    let (m, _) = c.response(id).await;
    assert_eq!(m["result"]["status"], "cancelled", "{m}");
    assert!(m["result"]["error"]["message"]
        .as_str()
        .is_some_and(|s| s.contains("shut down")));
    within(shutting).await.expect("shutdown finished");
    assert_eq!(daemon.status()["runs_active"], 0);
    assert!(daemon.draining.is_cancelled());
    assert!(
        UnixStream::connect(&socket).await.is_err(),
        "still accepting"
    );
}

/// A requester that answers every tool call itself: what a non-socket front end (an MCP
/// server mode, a test) gives a run instead of a connection.
struct Echo {
    output: std::sync::Mutex<String>,
}

impl ToolSource for Echo {
    fn call(&self, call: ToolCall, _cancel: CancellationToken) -> ToolFuture {
        Box::pin(async move {
            if call.name == "fail" {
                return Err(ToolError::Unreachable("nobody home".into()));
            }
            let text = format!("{{\"echo\":{}}}", call.arguments.raw().get());
            let result: Raw = serde_json::value::RawValue::from_string(text).expect("JSON");
            Ok(result)
        })
    }
}

impl Requester for Echo {
    fn output<'a>(&'a self, _: &'a RunIdentity, _: &'a str, text: &'a str) -> OutputFuture<'a> {
        self.output.lock().expect("lock").push_str(text);
        Box::pin(async {})
    }
}

async fn a_run_needs_no_connection_only_a_requester() {
    let h = Harness::start(|_| {}).await;
    let echo = Arc::new(Echo {
        output: Default::default(),
    });
    let ctx = ptcd::run::RunContext {
        daemon: h.daemon.clone(),
        requester: echo.clone(),
        gone: CancellationToken::new(),
    };
    let code = "print('streamed')\nr = await t(a=[1])\ntry:\n    await fail()\nexcept ToolError as e:\n    r['err'] = str(e)\nr";
    let params = ptcd::params::RunParams::parse(
        json!({"code": code, "stream": true, "tools": [{"name": "t"}, {"name": "fail"}]}),
    )
    .expect("valid params");
    let result = within(ptcd::run::execute(
        &ctx,
        &Id::from("direct-1"),
        params,
        CancellationToken::new(),
        None,
    ))
    .await
    .expect("the run ran");
    let value: Value = serde_json::from_str(result.value.get()).expect("JSON");
    assert_eq!(value["echo"], json!({"a": [1]}));
    assert!(
        value["err"]
            .as_str()
            .is_some_and(|s| s.contains("nobody home")),
        "{value}"
    );
    assert_eq!(result.status, ptcd::run::RunStatus::Ok);
    assert_eq!(result.tool_calls, 2);
    assert_eq!(echo.output.lock().expect("lock").as_str(), "streamed\n");
    h.shut_down().await;
}

/// The shutdown sequence's MCP step (`service.rs`): a started stdio server is killed and reaped,
/// and `daemon/status` shows it `running`, then `stopped`.
async fn shutdown_stops_mcp_servers_and_reaps_them() {
    let server = ptcd::config::McpServerConfig {
        transport: ptcd::config::McpTransport::Stdio {
            command: "/usr/bin/python3".into(),
            args: vec![concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/src/mcp/testdata/fault_server.py"
            )
            .into()],
            env: Vec::new(),
            cwd: None,
        },
        startup_timeout_ms: 20_000,
        call_timeout_ms: 20_000,
    };
    let h = Harness::start(|config| {
        config.mcp_servers.insert("fault".into(), server);
    })
    .await;
    let mut c = h.connect().await;
    let idle = c.call("daemon/status", json!({})).await;
    assert_eq!(
        idle["result"]["mcp_servers"]["fault"]["state"], "idle",
        "{idle}"
    );
    let mcp = h.daemon.mcp.get("fault").expect("configured").clone();
    let tools = within(mcp.tools()).await.expect("started");
    assert!(tools.iter().any(|t| t.name == "echo"));
    let running = c.call("daemon/status", json!({})).await;
    let entry = &running["result"]["mcp_servers"]["fault"];
    assert_eq!(entry["state"], "running", "{running}");
    let pid = entry["pid"].as_u64().expect("a pid");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(c);
    let daemon = h.daemon.clone();
    h.shut_down().await;
    assert_eq!(daemon.status()["mcp_servers"]["fault"]["state"], "stopped");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the MCP server outlived the shutdown"
    );
    assert!(within(mcp.tools())
        .await
        .unwrap_err()
        .why
        .contains("stopped"));
}
