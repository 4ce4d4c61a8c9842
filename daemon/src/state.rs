//! State shared by every connection of one daemon: configuration, the interpreter, the policies,
//! counters, and the two shutdown signals.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::budget::ByteBudget;
use crate::config::Access;
use crate::policy::PolicySet;
use crate::pool::WarmPool;
use crate::python::Interpreter;
use crate::scratch::ScratchRoot;

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

/// Counters reported by `daemon/status`.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub connections_total: AtomicU64,
    pub runs_active: AtomicU64,
    pub runs_total: AtomicU64,
    pub tool_calls_total: AtomicU64,
    pub runs_by_status: Mutex<BTreeMap<&'static str, u64>>,
}

impl Stats {
    pub fn count_status(&self, status: &'static str) {
        let mut map = self
            .runs_by_status
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *map.entry(status).or_default() += 1;
    }
}

/// One admitted connection's place in the `max_connections` count; freed on drop, however the
/// connection ends (even if its task panics).
pub struct ConnectionSlot {
    daemon: Arc<Daemon>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.daemon.stats.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The daemon: everything a connection needs, behind one `Arc`.
pub struct Daemon {
    pub config: ServeConfig,
    pub python: Interpreter,
    /// Replaced as a whole on SIGHUP; a run keeps the policy it started with.
    policies: RwLock<Arc<PolicySet>>,
    /// Who may connect; replaced on SIGHUP.
    access: RwLock<Access>,
    pub max_connections: usize,
    pub stats: Stats,
    /// Pre-started interpreters waiting for a run (`pool.rs`).
    pub pool: WarmPool,
    /// The verified scratch root, this daemon's lock in it, and the scratch mode.
    pub scratch: Arc<ScratchRoot>,
    pub run_slots: Arc<Semaphore>,
    /// One permit per open persistent session (`max_persistent_sessions`).
    pub session_slots: Arc<Semaphore>,
    /// Runs waiting for a slot.
    pub queued: AtomicUsize,
    /// Fired by SIGTERM/SIGINT: stop accepting, answer new requests with `-32007`.
    pub draining: CancellationToken,
    /// Fired after the grace period: cancel every run that is still going.
    pub stop: CancellationToken,
    /// Every connection task, so shutdown can wait for all of them.
    pub connections: TaskTracker,
    /// Replies queued for clients, all connections together (`client_queue_total_bytes`).
    pub client_out: Arc<ByteBudget>,
    /// Unfinished request lines, all connections together (`partial_lines_total_bytes`).
    pub client_in: Arc<ByteBudget>,
    /// Bytes moved for clients, so memory is given back to the OS after bursts.
    pub activity: Arc<crate::memory::Activity>,
    next_run: AtomicU64,
    next_connection: AtomicU64,
    started: Instant,
}

impl Daemon {
    pub fn new(
        config: ServeConfig,
        python: Interpreter,
        policies: PolicySet,
        access: Access,
        max_connections: usize,
        scratch: Arc<ScratchRoot>,
    ) -> Arc<Daemon> {
        let client_out = ByteBudget::new(config.client_queue_total_bytes);
        let client_in = ByteBudget::new(config.partial_lines_total_bytes);
        Arc::new(Daemon {
            scratch,
            run_slots: Arc::new(Semaphore::new(config.max_concurrent_runs)),
            session_slots: Arc::new(Semaphore::new(
                config.max_persistent_sessions.min(Semaphore::MAX_PERMITS),
            )),
            queued: AtomicUsize::new(0),
            pool: WarmPool::new(config.warm_pool),
            config,
            python,
            policies: RwLock::new(Arc::new(policies)),
            access: RwLock::new(access),
            max_connections,
            stats: Stats::default(),
            draining: CancellationToken::new(),
            stop: CancellationToken::new(),
            connections: TaskTracker::new(),
            client_out,
            client_in,
            activity: Arc::default(),
            next_run: AtomicU64::new(1),
            next_connection: AtomicU64::new(1),
            started: Instant::now(),
        })
    }

    /// The current policies.
    pub fn policies(&self) -> Arc<PolicySet> {
        self.policies
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The current access rules.
    pub fn access(&self) -> Access {
        self.access
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Installs reloaded policies and access rules (SIGHUP); the warm pool drains and refills.
    pub fn reload(&self, policies: PolicySet, access: Access) {
        *self.policies.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(policies);
        *self.access.write().unwrap_or_else(|p| p.into_inner()) = access;
        self.pool.invalidate();
    }

    pub fn new_run_id(&self) -> String {
        format!("r-{}", self.next_run.fetch_add(1, Ordering::Relaxed))
    }

    /// Takes a connection slot if fewer than `max_connections` are open. Counted at accept, so
    /// a burst of connects cannot overshoot the limit before the connection tasks start.
    pub fn admit_connection(self: &Arc<Self>) -> Option<ConnectionSlot> {
        let open = &self.stats.connections;
        let taken = open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < self.max_connections as u64).then_some(n + 1)
        });
        taken.ok().map(|_| {
            self.stats.connections_total.fetch_add(1, Ordering::Relaxed);
            ConnectionSlot {
                daemon: self.clone(),
            }
        })
    }

    pub fn new_connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// The `daemon/status` result.
    pub fn status(&self) -> Value {
        let s = &self.stats;
        let by_status = s
            .runs_by_status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        json!({
            "connections": s.connections.load(Ordering::Relaxed),
            "connections_total": s.connections_total.load(Ordering::Relaxed),
            "runs_active": s.runs_active.load(Ordering::Relaxed),
            "runs_queued": self.queued.load(Ordering::Relaxed),
            "runs_total": s.runs_total.load(Ordering::Relaxed),
            "tool_calls_total": s.tool_calls_total.load(Ordering::Relaxed),
            "runs_by_status": by_status,
            "runs_warm_total": self.pool.runs_warm_total(),
            "warm_idle": self.pool.idle(),
            "warm_pool": self.pool.target(),
            "max_concurrent_runs": self.config.max_concurrent_runs,
            "persistent_sessions": self.config.max_persistent_sessions
                .saturating_sub(self.session_slots.available_permits()),
            "max_persistent_sessions": self.config.max_persistent_sessions,
            "scratch_committed_mb": self.scratch.committed_mb(),
            "max_scratch_total_mb": self.config.max_scratch_total_mb,
            "scratch": self.scratch.mode().name(),
            "client_queued_bytes": self.client_out.in_use(),
            "client_partial_line_bytes": self.client_in.in_use(),
            "draining": self.draining.is_cancelled(),
            "uptime_ms": self.started.elapsed().as_millis() as u64,
        })
    }

    /// The `initialize` result.
    pub fn describe(&self) -> Value {
        let policies = self.policies();
        let mut sandbox = crate::sandbox::enforced_summary();
        // How `scratch_mb` is enforced: "tmpfs" (by the kernel) or "measured" (polled).
        sandbox["scratch"] = json!(self.scratch.mode().name());
        json!({
            "protocol_version": "1",
            "server_info": {"name": "ptcd", "version": env!("CARGO_PKG_VERSION")},
            "sandbox": sandbox,
            "python": {
                "executable": self.python.executable,
                "version": self.python.version,
            },
            "policies": policies.names(),
            "default_policy": policies.default_name(),
        })
    }
}
