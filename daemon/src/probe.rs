//! `ptcd doctor`'s proof: one real confined run per policy instead of static checks.
//!
//! The probe starts the daemon's own serving code in-process (the same [`Daemon`], scratch root,
//! uid leases, launcher and shim a client reaches) on a private socket in a fresh temporary
//! directory, sends one `run` per policy over it, and checks that CPython started under the
//! policy's confinement, imported what the standard library needs (hashlib, sqlite3, asyncio)
//! and reports the interpreter that was configured. Everything has a deadline; the temporary
//! directory, its scratch root and socket are removed afterwards.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::config::Access;
use crate::config::ServeConfig;
use crate::daemon::Daemon;
use crate::policy::PolicySet;
use crate::python::Interpreter;

/// How long one probe run may take (a cold CPython start under every layer takes ~50 ms).
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest response line read from the in-process daemon.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The script every probe runs.
const PROBE_CODE: &str = r#"
import sys, json, hashlib, sqlite3, asyncio
hashlib.sha256(b"ptcd").hexdigest()
sqlite3.connect(":memory:").execute("select 1").fetchall()
asyncio.run(asyncio.sleep(0))
print(json.dumps({
    "implementation": sys.implementation.name,
    "version": "%d.%d" % sys.version_info[:2],
    "site": [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))],
}))
"#;

/// The outcome of one policy's probe: what ran, or why nothing did.
pub type Outcome = Result<String, String>;

/// Runs one probe per policy of `set` with `python`, in `set`'s name order.
pub fn run(python: &Interpreter, set: &PolicySet) -> Result<Vec<(String, Outcome)>, String> {
    let dir = std::env::temp_dir().join(format!("ptcd-doctor-{}", std::process::id()));
    std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // The scratch root below must be reachable by the runs' uid.
    let result = set_mode(&dir, 0o711).and_then(|()| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        runtime.block_on(probe_all(python, set, &dir))
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn set_mode(dir: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", dir.display()))
}

async fn probe_all(
    python: &Interpreter,
    set: &PolicySet,
    dir: &Path,
) -> Result<Vec<(String, Outcome)>, String> {
    let scratch_root: PathBuf = dir.join("scratch");
    let scratch =
        crate::scratch::ScratchRoot::open(&scratch_root).map_err(|e| format!("scratch: {e}"))?;
    if crate::sandbox::identity::daemon_is_root() {
        crate::sandbox::identity::host_leases().map_err(|e| format!("uid leases: {e}"))?;
    }
    let config = ServeConfig {
        scratch_root,
        warm_pool: 0,
        max_concurrent_runs: 1,
        ..ServeConfig::default()
    };
    let daemon = Daemon::new(
        config,
        python.clone(),
        set.clone(),
        Access::default(),
        4,
        scratch,
    );
    let socket = dir.join("doctor.sock");
    let listener = crate::server::bind(&socket, 0o600).map_err(|e| format!("probe socket: {e}"))?;
    let accept = tokio::spawn(crate::server::accept_loop(daemon.clone(), listener));
    let mut outcomes = Vec::new();
    match tokio::net::UnixStream::connect(&socket).await {
        Ok(stream) => {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read);
            for (i, name) in set.names().into_iter().enumerate() {
                let outcome = tokio::time::timeout(
                    PROBE_TIMEOUT,
                    probe_one(&mut lines, &mut write, i as u64 + 1, &name, python),
                )
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {PROBE_TIMEOUT:?}")));
                outcomes.push((name, outcome));
            }
        }
        Err(e) => return Err(format!("probe socket: {e}")),
    }
    daemon.draining.cancel();
    let _ = accept.await;
    daemon.connections.close();
    if tokio::time::timeout(Duration::from_secs(10), daemon.connections.wait())
        .await
        .is_err()
    {
        daemon.stop.cancel();
        daemon.connections.wait().await;
    }
    daemon.scratch.release();
    Ok(outcomes)
}

async fn probe_one(
    lines: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    write: &mut tokio::net::unix::OwnedWriteHalf,
    id: u64,
    policy: &str,
    python: &Interpreter,
) -> Outcome {
    let request = json!({
        "jsonrpc": "2.0", "id": id, "method": "run",
        "params": {"code": PROBE_CODE, "policy": policy},
    });
    let mut line = request.to_string().into_bytes();
    line.push(b'\n');
    write
        .write_all(&line)
        .await
        .map_err(|e| format!("send: {e}"))?;
    loop {
        let mut buf = Vec::new();
        let n = (&mut *lines)
            .take(MAX_RESPONSE_BYTES as u64)
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 || !buf.ends_with(b"\n") {
            return Err("the probe connection closed or sent an over-long line".into());
        }
        let msg: Value = serde_json::from_slice(&buf).map_err(|e| format!("bad answer: {e}"))?;
        if msg.get("id") != Some(&json!(id)) {
            continue; // a notification
        }
        return judge(&msg, python);
    }
}

/// What one response says about the policy.
fn judge(msg: &Value, python: &Interpreter) -> Outcome {
    if let Some(err) = msg.get("error") {
        return Err(format!(
            "refused ({}): {}",
            err["code"],
            err["message"].as_str().unwrap_or("")
        ));
    }
    let result = &msg["result"];
    if result["status"] != "ok" {
        return Err(format!(
            "the probe script ended {}: {}{}",
            result["status"],
            result["error"]["message"].as_str().unwrap_or(""),
            result["stderr"]
                .as_str()
                .map(|s| format!(" (stderr: {})", s.trim()))
                .unwrap_or_default()
        ));
    }
    let out: Value = result["stdout"]
        .as_str()
        .and_then(|s| s.lines().last())
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or("the probe script printed no report")?;
    if out["implementation"] != "cpython" || out["version"] != python.version.as_str() {
        return Err(format!(
            "expected CPython {}, the run reported {} {}",
            python.version, out["implementation"], out["version"]
        ));
    }
    let site = out["site"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    Ok(format!(
        "CPython {} ran confined (hashlib, sqlite3, asyncio){}",
        python.version,
        if site.is_empty() {
            String::new()
        } else {
            format!("; site-packages on sys.path: {site}")
        }
    ))
}
