//! The [`Daemon`]: what every connection and run of one serving daemon shares — its settings,
//! the resolved CPython, the policies and access rules (replaced on SIGHUP), counters, the warm
//! pool, the scratch root, run slots, global byte budgets, and the two shutdown signals.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::budget::ByteBudget;
use crate::config::{Access, ServeConfig};
use crate::policy::PolicySet;
use crate::pool::WarmPool;
use crate::python::Interpreter;
use crate::scratch::ScratchRoot;

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
    pub fn count_status(&self, status: crate::run::RunStatus) {
        let mut map = self
            .runs_by_status
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *map.entry(status.as_str()).or_default() += 1;
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
    /// The configured MCP servers (`mcp/`), started lazily and shared by every run.
    pub mcp: crate::mcp::McpServers,
    /// Pre-started interpreters waiting for a run (`pool.rs`).
    pub pool: WarmPool,
    /// Template interpreters runs are forked from (`forkserver.rs`).
    pub forks: Arc<crate::forkserver::ForkServer>,
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
    /// This process's pid (the parent every child checks it still has).
    pid: i32,
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
        let stop = CancellationToken::new();
        Arc::new(Daemon {
            mcp: crate::mcp::McpServers::with_max_line_bytes(
                &config.mcp_servers,
                stop.clone(),
                config.max_line_bytes,
            ),
            scratch,
            run_slots: Arc::new(Semaphore::new(config.max_concurrent_runs)),
            session_slots: Arc::new(Semaphore::new(
                config.max_persistent_sessions.min(Semaphore::MAX_PERMITS),
            )),
            queued: AtomicUsize::new(0),
            pool: WarmPool::new(config.warm_pool),
            forks: Arc::new(crate::forkserver::ForkServer::new(
                config.fork_server,
                config.max_concurrent_runs,
                config.warm_pool,
            )),
            config,
            python,
            policies: RwLock::new(Arc::new(policies)),
            access: RwLock::new(access),
            max_connections,
            stats: Stats::default(),
            draining: CancellationToken::new(),
            stop,
            connections: TaskTracker::new(),
            client_out,
            client_in,
            activity: Arc::default(),
            pid: std::process::id() as i32,
            next_run: AtomicU64::new(1),
            next_connection: AtomicU64::new(1),
            started: Instant::now(),
        })
    }

    /// What every child of this daemon is started with.
    pub fn launch(&self) -> crate::confined::Launch<'_> {
        crate::confined::Launch {
            host: crate::sandbox::plan::Host {
                python: &self.python,
                parent_pid: self.pid,
                landlock_abi: crate::sandbox::host::landlock_level(),
                missing_identity_caps: crate::sandbox::host::missing_identity_caps(),
            },
            max_argument_bytes: self.config.max_tool_argument_bytes,
            forks: &self.forks,
            scratch_root: self.scratch.path(),
        }
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
        self.forks.invalidate();
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
            "mcp_servers": self.mcp.status(),
            "fork_server": self.forks.status(),
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
