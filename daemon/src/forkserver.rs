//! The fork server: per policy, a template CPython ("T") that has imported the shim and its
//! modules once, and from which every eligible run's interpreter is forked (~ms instead of a
//! ~50 ms interpreter start).
//!
//! T is started through the ordinary launcher with a *template plan*
//! ([`crate::sandbox::template::build_template`]): its own leased uid with only
//! CAP_SETUID/CAP_SETGID, its own Landlock layer and seccomp filters. It never runs script code
//! and never sees a run's code, inputs, environment or results: those travel on the run's own
//! control socket, which T holds only between receiving it and forking. The wire between the
//! daemon and T (a `SOCK_SEQPACKET` pair: one message per record, fds attached to the record it
//! belongs to) is described in `shim.py` ("fork server"). A forked child confines *itself* from
//! the run's [`SandboxPlan`] (the `confine` job, [`confine_job`]) before it says `ready`; from
//! then on it is an ordinary child.
//!
//! Lifetimes: the daemon spawns T (parent-death signal on the daemon); T forks C (parent-death
//! signal on T) and reaps it, reporting the wait status and CPU time (`exited`). The daemon
//! signals C only through the pidfd T sends back with `forked`, never by pid. A template is
//! started lazily, the first time a run of its policy is eligible (the default policy's at
//! start-up); one that dies is restarted on demand after a back-off; SIGHUP retires every
//! template (it refuses new forks and exits once its last child is reaped); shutdown kills them
//! after every run has ended. C's parent-death signal on T is checked by the kernel like a kill
//! by T, which is why T keeps `CAP_KILL` (C runs as another uid); in case, when T dies the daemon
//! also kills its live children through their pidfds. A T found stopped (SIGSTOP, a tracer;
//! checked every second) is killed and replaced. A slow one is not (killing it would end every
//! run it serves): a fork request it leaves unanswered for 10 s starts that run cold (`on`).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::unix::AsyncFd;
use tokio::io::AsyncReadExt;
use tokio::sync::{oneshot, watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::config::ForkServerMode;
use crate::control::{recv_with_fds, send_with_fds};
use crate::policy::Policy;
use crate::sandbox::identity::{self, Leased};
use crate::sandbox::plan::{Host, SandboxPlan};
use crate::sandbox::{self, seccomp, SandboxError};

/// How long a template may take to import and say `ready`.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long T may take to answer a fork request.
const FORK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a message to T may wait for room in its socket.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a `require` run waits for its template to come up.
pub const REQUIRE_WAIT: Duration = Duration::from_secs(10);
/// Back-off between template starts of one policy after a failure: doubles up to the maximum.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Largest message T may send (a few hundred bytes in practice).
const MAX_MESSAGE: usize = 64 << 10;
/// What is kept of T's stdout/stderr, for the log when it dies.
const TAIL_BYTES: usize = 4 << 10;
/// How often the daemon checks that T is not stopped (SIGSTOP, a tracer): a stopped T neither
/// forks nor reports its children's exits, so every run would wait out a deadline, forever.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);

/// Why a run could not be forked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ForkError {
    /// No template is up for this policy (yet): it is being started, or backs off after a failure.
    #[error("no template is up for policy {policy}{}", last.as_ref().map(|l| format!(" (last failure: {l})")).unwrap_or_default())]
    NotReady {
        policy: String,
        last: Option<String>,
    },
    #[error("{0}")]
    Failed(String),
}

/// How a forked child ended, as T reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The raw wait status.
    pub status: i32,
    pub cpu_ms: u64,
}

/// A child forked by a template: its pid, a pidfd to signal it, and its exit as T reports it.
pub struct ForkedProc {
    pub pid: u32,
    /// Shared with the template's `live` table, which kills the child if T dies first.
    pidfd: Arc<OwnedFd>,
    exit: watch::Receiver<Option<Exit>>,
}

impl ForkedProc {
    /// SIGKILL through the pidfd (never by pid: T may have reaped it and the pid be reused).
    pub fn kill(&self) {
        // SAFETY: a plain syscall on an fd we own; a child already gone gives ESRCH.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0u32,
            );
        }
    }

    /// How it ended, once T reported it: `Some(Some)`; `Some(None)` when T is gone without
    /// saying (C died with it); `None` while it runs.
    pub fn try_exit(&self) -> Option<Option<Exit>> {
        match *self.exit.borrow() {
            Some(exit) => Some(Some(exit)),
            None if self.exit.has_changed().is_err() => Some(None),
            None => None,
        }
    }

    /// Waits until it ended (see [`ForkedProc::try_exit`]). Cancel-safe.
    pub async fn exited(&mut self) -> Option<Exit> {
        match self.exit.wait_for(Option::is_some).await {
            Ok(exit) => *exit,
            Err(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Starting,
    Up,
    Retired,
    Dead,
}

type Pending = (
    oneshot::Sender<Result<(u32, Arc<OwnedFd>), String>>,
    watch::Sender<Option<Exit>>,
);

/// A forked child T has not reported `exited` for: where its exit goes, and its pidfd.
type Live = (watch::Sender<Option<Exit>>, Arc<OwnedFd>);

/// One template process and what the daemon knows of its children.
struct Template {
    policy: Arc<Policy>,
    uid: Option<u32>,
    /// T's uid, held host-wide until T is reaped and the last reference is gone.
    _lease: Option<Arc<crate::sandbox::identity::UidLease>>,
    socket: AsyncFd<OwnedFd>,
    state: Mutex<TemplateState>,
}

struct TemplateState {
    phase: Phase,
    /// T's pid, from its `ready`.
    pid: Option<u32>,
    /// Fork requests waiting for `forked` / `fork_failed`.
    pending: HashMap<u64, Pending>,
    /// Forked children not yet reported `exited`.
    live: HashMap<u64, Live>,
    forks: u64,
    /// Why it failed to start or died (for the log and for `require` runs).
    failure: Option<String>,
}

impl Template {
    fn lock(&self) -> std::sync::MutexGuard<'_, TemplateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn phase(&self) -> Phase {
        self.lock().phase
    }

    /// Sends one message (one record) with `fds` attached.
    async fn send(&self, message: &Value, fds: &[RawFd]) -> io::Result<()> {
        let bytes = message.to_string().into_bytes();
        tokio::time::timeout(SEND_TIMEOUT, async {
            loop {
                let mut guard = self.socket.writable().await?;
                match guard.try_io(|fd| send_with_fds(fd.as_raw_fd(), &bytes, fds)) {
                    Ok(result) => return result.map(|_| ()),
                    Err(_would_block) => continue,
                }
            }
        })
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the template does not read"))?
    }

    /// The next message and the fds attached to it; `None` when T closed its end.
    async fn receive(&self, buf: &mut [u8]) -> io::Result<Option<(Value, Vec<OwnedFd>)>> {
        loop {
            let mut guard = self.socket.readable().await?;
            match guard.try_io(|fd| recv_with_fds(fd.as_raw_fd(), buf)) {
                Ok(Ok((_, _, true))) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated message from the template",
                    ))
                }
                Ok(Ok((0, _, false))) => return Ok(None),
                Ok(Ok((n, fds, false))) => {
                    let value = serde_json::from_slice(&buf[..n]).map_err(|e| {
                        io::Error::new(io::ErrorKind::InvalidData, format!("bad message: {e}"))
                    })?;
                    return Ok(Some((value, fds)));
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

#[derive(Default)]
struct Templates {
    /// Serving templates (Starting or Up), at most one per policy value.
    list: Vec<Arc<Template>>,
    /// Retired templates still reaping their children (for `daemon/status` and shutdown).
    retired: Vec<Arc<Template>>,
    /// Per policy name: when a start may be tried again, and the next back-off.
    backoff: HashMap<String, (tokio::time::Instant, Duration)>,
    /// The last start failure per policy name.
    last_failure: HashMap<String, String>,
}

/// The daemon's fork server: its templates and counters.
pub struct ForkServer {
    mode: ForkServerMode,
    /// Uids a policy's range must hold besides the template's own: one per run slot and warm
    /// child (a template never takes the uid a run would need).
    uids_for_runs: u64,
    templates: Mutex<Templates>,
    /// Fired when a template comes up or dies (wakes `require` runs).
    changed: Notify,
    next_request: AtomicU64,
    stop: CancellationToken,
    pub forked_total: AtomicU64,
    pub cold_total: AtomicU64,
    pub fallbacks_total: AtomicU64,
}

/// What starting a template needs from the daemon.
#[derive(Clone, Copy)]
pub struct TemplateHost<'a> {
    pub host: Host<'a>,
    pub scratch_root: &'a Path,
}

impl ForkServer {
    pub fn new(mode: ForkServerMode, max_concurrent_runs: usize, warm_pool: usize) -> ForkServer {
        ForkServer {
            mode,
            uids_for_runs: (max_concurrent_runs + warm_pool) as u64,
            templates: Mutex::default(),
            changed: Notify::new(),
            next_request: AtomicU64::new(1),
            stop: CancellationToken::new(),
            forked_total: AtomicU64::new(0),
            cold_total: AtomicU64::new(0),
            fallbacks_total: AtomicU64::new(0),
        }
    }

    pub fn mode(&self) -> ForkServerMode {
        self.mode
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Templates> {
        self.templates.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the template of `policy` unless one serves it, is starting, or backs off. Must be
    /// called on a runtime worker thread (the template's parent-death signal is tied to the
    /// thread that forks it).
    pub fn ensure(self: &Arc<Self>, host: TemplateHost<'_>, policy: &Policy) {
        if self.mode == ForkServerMode::Off || self.stop.is_cancelled() {
            return;
        }
        let mut templates = self.lock();
        if templates.list.iter().any(|t| *t.policy == *policy) {
            return;
        }
        if let Some((at, _)) = templates.backoff.get(&policy.name) {
            if tokio::time::Instant::now() < *at {
                return;
            }
        }
        match start(host, policy) {
            Ok((template, child)) => {
                templates.list.push(template.clone());
                drop(templates);
                tokio::spawn(serve(self.clone(), template, child));
            }
            Err(message) => {
                tracing::warn!(policy = %policy.name, error = %message, "fork server: cannot start a template; runs start cold");
                self.failed(&mut templates, &policy.name, message);
            }
        }
    }

    fn failed(&self, templates: &mut Templates, policy: &str, message: String) {
        let next = match templates.backoff.get(policy) {
            Some((_, d)) => (*d * 2).min(MAX_BACKOFF),
            None => FIRST_BACKOFF,
        };
        templates.backoff.insert(
            policy.to_string(),
            (tokio::time::Instant::now() + next, next),
        );
        templates.last_failure.insert(policy.to_string(), message);
        self.changed.notify_waiters();
    }

    /// The template serving `policy`, once it is up; waits up to [`REQUIRE_WAIT`] in `require`
    /// mode, not at all otherwise.
    async fn up_template(
        self: &Arc<Self>,
        host: TemplateHost<'_>,
        policy: &Policy,
    ) -> Result<Arc<Template>, ForkError> {
        let deadline = tokio::time::Instant::now() + REQUIRE_WAIT;
        loop {
            let changed = self.changed.notified();
            self.ensure(host, policy);
            let (found, last) = {
                let templates = self.lock();
                let found = templates
                    .list
                    .iter()
                    .find(|t| *t.policy == *policy)
                    .cloned();
                (found, templates.last_failure.get(&policy.name).cloned())
            };
            if let Some(t) = &found {
                if t.phase() == Phase::Up {
                    return Ok(t.clone());
                }
            }
            let not_ready = ForkError::NotReady {
                policy: policy.name.clone(),
                last,
            };
            if self.mode != ForkServerMode::Require || self.stop.is_cancelled() {
                return Err(not_ready);
            }
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(deadline) => return Err(not_ready),
                // Back-off ends: try to start again.
                _ = tokio::time::sleep(FIRST_BACKOFF) => {}
            }
        }
    }

    /// Forks a child of `policy` with `fds` (its control socket, stdout and stderr write ends,
    /// and the Landlock ruleset if any) as its 3/1/2/4. The confine job must already be written
    /// to the control socket.
    pub async fn fork(
        self: &Arc<Self>,
        host: TemplateHost<'_>,
        policy: &Policy,
        fds: Vec<OwnedFd>,
    ) -> Result<ForkedProc, ForkError> {
        let template = self.up_template(host, policy).await?;
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (answer_tx, answer) = oneshot::channel();
        let (exit_tx, exit) = watch::channel(None);
        template.lock().pending.insert(id, (answer_tx, exit_tx));
        let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        let sent = template
            .send(&json!({"type": "fork", "id": id}), &raw)
            .await;
        // T has its own copies now (or never will): ours go.
        drop(fds);
        if let Err(e) = sent {
            template.lock().pending.remove(&id);
            return Err(ForkError::Failed(format!("fork request: {e}")));
        }
        match tokio::time::timeout(FORK_TIMEOUT, answer).await {
            Ok(Ok(Ok((pid, pidfd)))) => {
                self.forked_total.fetch_add(1, Ordering::Relaxed);
                Ok(ForkedProc { pid, pidfd, exit })
            }
            Ok(Ok(Err(message))) => Err(ForkError::Failed(message)),
            Ok(Err(_)) => Err(ForkError::Failed("the template exited".into())),
            Err(_) => {
                // A slow T (a loaded host) is not killed for it: that would end every run it
                // serves. A late `forked` finds no requester and kills the child (see `serve`);
                // a stopped T is found by the health check.
                template.lock().pending.remove(&id);
                Err(ForkError::Failed(format!(
                    "the template did not fork within {} ms",
                    FORK_TIMEOUT.as_millis()
                )))
            }
        }
    }

    /// SIGHUP: every template is retired (no new forks; it exits once its last child is
    /// reaped); new ones start for the reloaded policies on demand.
    pub fn invalidate(&self) {
        let retiring: Vec<Arc<Template>> = {
            let mut templates = self.lock();
            templates.backoff.clear();
            templates.last_failure.clear();
            let list = std::mem::take(&mut templates.list);
            templates.retired.extend(list.iter().cloned());
            list
        };
        for template in retiring {
            template.lock().phase = Phase::Retired;
            tokio::spawn(async move {
                let _ = template.send(&json!({"type": "retire"}), &[]).await;
            });
        }
    }

    /// At shutdown, once no run is left: kills every template and waits (bounded) until each
    /// is reaped.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let all: Vec<Arc<Template>> = {
            let templates = self.lock();
            templates
                .list
                .iter()
                .chain(templates.retired.iter())
                .cloned()
                .collect()
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let changed = self.changed.notified();
            if all.iter().all(|t| t.phase() == Phase::Dead) {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                tracing::error!("fork server: a template did not stop in time");
                return;
            }
        }
    }

    /// `daemon/status`'s `fork_server` object.
    pub fn status(&self) -> Value {
        let templates = self.lock();
        let list: Vec<Value> = templates
            .list
            .iter()
            .chain(templates.retired.iter())
            .map(|t| {
                let state = t.lock();
                let name = match state.phase {
                    Phase::Starting => "starting",
                    Phase::Up => "up",
                    Phase::Retired => "retired",
                    Phase::Dead => "dead",
                };
                json!({
                    "policy": t.policy.name,
                    "pid": state.pid,
                    "uid": t.uid,
                    "state": name,
                    "live": state.live.len(),
                    "forks": state.forks,
                })
            })
            .collect();
        json!({
            "mode": self.mode.name(),
            "templates": list,
            "runs_forked_total": self.forked_total.load(Ordering::Relaxed),
            "runs_cold_total": self.cold_total.load(Ordering::Relaxed),
            "fallbacks_total": self.fallbacks_total.load(Ordering::Relaxed),
        })
    }

    /// Why a run of `policy` with `plan` cannot be forked (it starts cold), or `None`.
    pub fn ineligible(
        &self,
        policy: &Policy,
        plan: &SandboxPlan,
        env: &[(String, String)],
    ) -> Option<&'static str> {
        if self.mode == ForkServerMode::Off {
            Some("off")
        } else if plan.refuse.is_some() {
            Some("refused")
        } else if plan.cgroup.is_some() {
            Some("cgroup")
        } else if plan.network_namespace {
            Some("network_namespace")
        } else if plan.compensation.any() {
            Some("seccomp_compensation")
        } else if plan.seccomp.is_empty() {
            // A template always runs under its filters (`sandbox::template`).
            Some("no_seccomp")
        } else if seccomp::forked_child_filters(&plan.seccomp).is_none() {
            // T's filters are derived from the cold ones: other run filters start cold.
            Some("seccomp_filters")
        } else if plan.identity.is_some() && plan.landlock.as_ref().is_none_or(|l| l.abi < 6) {
            // With per-run uids a template holds CAP_KILL, which only Landlock's signal scope
            // (ABI 6) confines to its own children (`sandbox::template`).
            Some("landlock_abi_below_6")
        } else if env
            .iter()
            .any(|(name, _)| crate::python::startup_sensitive(name))
        {
            Some("startup_environment")
        } else if plan.identity.is_some() && !self.range_fits_a_template(policy) {
            Some("uid_range")
        } else {
            None
        }
    }

    /// The template's uid comes from the policy's range: only when that leaves one for every
    /// run slot and warm child.
    fn range_fits_a_template(&self, policy: &Policy) -> bool {
        match policy.identity {
            Some((first, last)) => u64::from(last - first) + 1 > self.uids_for_runs,
            None => true,
        }
    }
}

/// The `confine` job a forked child applies to itself: the steps of the cold launcher that
/// happen after the fork, from the run's own plan (the single source of truth). The seccomp
/// filters that stand for the plan's on top of T's ([`seccomp::forked_child_filters`]) travel
/// as their digest ([`filters_digest`]): the child installs the filters its template preloaded
/// (the template message, [`start`]) only when their digest is this one, and refuses to start
/// otherwise, so it never runs with another policy's filters or none.
pub fn confine_job(plan: &SandboxPlan) -> Vec<u8> {
    let mut line = json!({
        "type": "confine",
        "identity": plan.identity,
        "cwd": plan.cwd,
        "rlimits": plan.rlimits,
        "landlock": plan.landlock.is_some(),
        "seccomp_sha256": child_filters_digest(plan),
        "env": plan.env,
    })
    .to_string()
    .into_bytes();
    line.push(b'\n');
    line
}

/// The digest a confine job names: of the filters a child forked for `plan` installs, computed
/// once (there is one such list); of no filter at all for a plan no template serves, which no
/// template preloads (its child refuses).
fn child_filters_digest(plan: &SandboxPlan) -> String {
    static DIGEST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    match seccomp::forked_child_filters(&plan.seccomp) {
        Some(filters) => DIGEST.get_or_init(|| filters_digest(filters)).clone(),
        None => filters_digest(&[]),
    }
}

/// SHA-256 (lowercase hex) of a list of seccomp programs (hex): the programs joined by `\n`. The
/// shim computes the same of the filters its template preloaded (`filters_digest` in `shim.py`).
pub fn filters_digest(programs: &[String]) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write;
    let digest = Sha256::digest(programs.join("\n").as_bytes());
    digest
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// Spawns T through the launcher. Returns the template (Starting) and its process.
fn start(
    host: TemplateHost<'_>,
    policy: &Policy,
) -> Result<(Arc<Template>, tokio::process::Child), String> {
    let leased = identity::for_policy(policy);
    if let Leased::Refused(message) = &leased {
        return Err(format!("identity: {message}"));
    }
    let plan =
        crate::sandbox::template::build_template(host.host, policy, host.scratch_root, &leased);
    if let Some(refusal) = &plan.refuse {
        return Err(format!("{}: {}", refusal.mechanism, refusal.message));
    }
    let (ours, theirs) = seqpacket_pair().map_err(|e| format!("socketpair: {e}"))?;
    let child = sandbox::spawn(&plan, theirs).map_err(|e| match e {
        SandboxError::Unavailable { mechanism, message } => format!("{mechanism}: {message}"),
        other => other.to_string(),
    })?;
    // SAFETY: `ours` is a valid socket that the AsyncFd owns; nothing else closes it or
    // replaces the descriptor while it is registered.
    let socket = unsafe { AsyncFd::register(ours) }.map_err(|e| format!("template socket: {e}"))?;
    let template = Arc::new(Template {
        policy: Arc::new(policy.clone()),
        uid: leased.lease().map(|l| l.uid),
        _lease: leased.lease().cloned(),
        socket,
        state: Mutex::new(TemplateState {
            phase: Phase::Starting,
            pid: None,
            pending: HashMap::new(),
            live: HashMap::new(),
            forks: 0,
            failure: None,
        }),
    });
    let late = plan.late_seccomp.clone();
    // The filters every child of this policy's runs installs on T's, parsed once by T for all
    // its children (each child's confine job names them by digest).
    let child_filters =
        crate::sandbox::template::child_filters(host.host, policy, host.scratch_root, &leased);
    let template_for_start = template.clone();
    tokio::spawn(async move {
        let first = json!({"type": "template", "late_seccomp": late, "seccomp": child_filters});
        if let Err(e) = template_for_start.send(&first, &[]).await {
            // T never says `ready` without it: runs start cold until the template is replaced.
            tracing::warn!(error = %e, "could not send the template its first message");
        }
    });
    Ok((template, child))
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FromTemplate {
    Ready {
        pid: u32,
    },
    Forked {
        id: u64,
        pid: u32,
    },
    ForkFailed {
        id: u64,
        message: String,
    },
    Exited {
        id: u64,
        status: i32,
        cpu_ms: u64,
    },
    /// The launcher refused to start T.
    SandboxError {
        mechanism: String,
        message: String,
    },
    LaunchError {
        message: String,
    },
}

/// Reads T until it is gone; then fails what waits on it and reaps it.
async fn serve(server: Arc<ForkServer>, template: Arc<Template>, mut child: tokio::process::Child) {
    let tail = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut drains = Vec::new();
    if let Some(out) = child.stdout.take() {
        drains.push(tokio::spawn(keep_tail(out, tail.clone())));
    }
    if let Some(err) = child.stderr.take() {
        drains.push(tokio::spawn(keep_tail(err, tail.clone())));
    }
    let started = tokio::time::Instant::now();
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut health = tokio::time::interval(HEALTH_INTERVAL);
    health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let why: String = loop {
        let starting = template.phase() == Phase::Starting;
        let received = tokio::select! {
            r = template.receive(&mut buf) => r,
            _ = server.stop.cancelled() => break "the daemon is stopping".into(),
            _ = tokio::time::sleep_until(started + START_TIMEOUT), if starting => {
                break format!("no `ready` within {} s", START_TIMEOUT.as_secs());
            }
            _ = health.tick() => match child.id().and_then(stopped) {
                Some(state) => break format!("it was stopped ({state}); it is replaced"),
                None => continue,
            },
        };
        let (value, mut fds) = match received {
            Ok(Some(message)) => message,
            Ok(None) => break "it exited".into(),
            Err(e) => break format!("its channel failed: {e}"),
        };
        let message = match serde_json::from_value::<FromTemplate>(value) {
            Ok(m) => m,
            Err(e) => break format!("it sent an invalid message: {e}"),
        };
        let mut state = template.lock();
        match message {
            FromTemplate::Ready { pid } if state.phase == Phase::Starting => {
                state.phase = Phase::Up;
                state.pid = Some(pid);
                drop(state);
                server.lock().backoff.remove(&template.policy.name);
                server.lock().last_failure.remove(&template.policy.name);
                server.changed.notify_waiters();
                tracing::info!(policy = %template.policy.name, pid, "fork server: template up");
            }
            FromTemplate::Forked { id, pid } if fds.len() == 1 => {
                let pidfd = Arc::new(fds.remove(0));
                state.forks += 1;
                match state.pending.remove(&id) {
                    Some((answer, exit)) => {
                        state.live.insert(id, (exit, pidfd.clone()));
                        if answer.send(Ok((pid, pidfd.clone()))).is_err() {
                            kill_pidfd(&pidfd); // the requester gave up
                        }
                    }
                    None => {
                        // Timed out: nobody will use this child.
                        kill_pidfd(&pidfd);
                        let (exit, _) = watch::channel(None);
                        state.live.insert(id, (exit, pidfd));
                    }
                }
            }
            FromTemplate::ForkFailed { id, message } => {
                if let Some((answer, _)) = state.pending.remove(&id) {
                    let _ = answer.send(Err(format!("fork: {message}")));
                }
            }
            FromTemplate::Exited { id, status, cpu_ms } => {
                if let Some((exit, _)) = state.live.remove(&id) {
                    let _ = exit.send(Some(Exit { status, cpu_ms }));
                }
            }
            FromTemplate::SandboxError { mechanism, message } => {
                break format!("{mechanism}: {message}");
            }
            FromTemplate::LaunchError { message } => break message,
            _ => break "it sent an unexpected message".into(),
        }
    };
    // T is gone or given up on: its children die with it (parent-death signal).
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    for task in drains {
        let _ = tokio::time::timeout(Duration::from_millis(200), task).await;
    }
    let was_starting = {
        let mut state = template.lock();
        let was_starting = state.phase == Phase::Starting;
        state.phase = Phase::Dead;
        state.failure = Some(why.clone());
        state.pending.clear(); // requesters see "the template exited"
                               // T's children die with it (parent-death signal, which the kernel delivers
                               // only because T holds CAP_KILL: they run as other uids); in case one did
                               // not, the daemon (root) ends it through its pidfd.
        for (_, (_, pidfd)) in state.live.drain() {
            kill_pidfd(&pidfd); // their runs see the control socket close: `crashed`
        }
        was_starting
    };
    let tail =
        String::from_utf8_lossy(&tail.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    let mut templates = server.lock();
    templates.list.retain(|t| !Arc::ptr_eq(t, &template));
    templates.retired.retain(|t| !Arc::ptr_eq(t, &template));
    if !server.stop.is_cancelled() {
        if was_starting {
            tracing::warn!(policy = %template.policy.name, error = %why, output = %tail, "fork server: the template did not start; runs start cold");
        } else {
            tracing::warn!(policy = %template.policy.name, reason = %why, output = %tail, "fork server: the template ended");
        }
        server.failed(&mut templates, &template.policy.name, why);
    }
    drop(templates);
    server.changed.notify_waiters();
}

/// `Some(state)` when process `pid` is stopped by a signal (`T`) or by a tracer (`t`), from
/// `/proc/<pid>/stat`. Only called for T while it is the daemon's unreaped child: the pid is
/// still T's.
fn stopped(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state is the first field after the parenthesised command name.
    let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
    matches!(state, 'T' | 't').then_some(state)
}

fn kill_pidfd(pidfd: &OwnedFd) {
    // SAFETY: a plain syscall on an fd we own.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        );
    }
}

async fn keep_tail<R: tokio::io::AsyncRead + Unpin>(mut from: R, tail: Arc<Mutex<Vec<u8>>>) {
    let mut chunk = vec![0u8; 4096];
    while let Ok(n) = from.read(&mut chunk).await {
        if n == 0 {
            return;
        }
        let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
        tail.extend_from_slice(&chunk[..n]);
        let excess = tail.len().saturating_sub(TAIL_BYTES);
        tail.drain(..excess);
    }
}

fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds are fresh and owned by nobody else. T's end is made blocking by the shim.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fds_travel_with_their_record_and_none_leak() {
        let (a, b) = seqpacket_pair().unwrap();
        let (r, w) = std::os::unix::net::UnixStream::pair().unwrap();
        send_with_fds(
            a.as_raw_fd(),
            b"{\"type\":\"x\"}",
            &[r.as_raw_fd(), w.as_raw_fd()],
        )
        .unwrap();
        send_with_fds(a.as_raw_fd(), b"{}", &[]).unwrap();
        let mut buf = vec![0u8; 1024];
        let (n, fds, truncated) = recv_with_fds(b.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"{\"type\":\"x\"}");
        assert_eq!((fds.len(), truncated), (2, false));
        let (n, fds, _) = recv_with_fds(b.as_raw_fd(), &mut buf).unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b"{}"[..], 0));
    }

    #[test]
    fn filters_digest_is_the_sha256_the_shim_computes() {
        // The same values as the shim's `filters_digest` (test_shim.py computes it with hashlib).
        let programs = vec!["ab".to_string(), "cd".to_string()];
        assert_eq!(
            filters_digest(&programs),
            "41b72d4bfcbee9afefc1319dc198260e7dfd43b16d45f56b3bdded5e8427fea7"
        );
        assert_eq!(
            filters_digest(&[]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // Order and boundaries count: another list is another digest.
        let others = [
            vec!["cd".to_string(), "ab".to_string()],
            vec!["abcd".to_string()],
            vec!["ab".to_string()],
        ];
        for other in others {
            assert_ne!(filters_digest(&other), filters_digest(&programs));
        }
    }

    #[test]
    fn confine_job_names_the_forked_child_filters_by_digest_and_carries_no_program() {
        use crate::sandbox::plan::tests::{host, python};
        let policy = (*crate::policy::PolicySet::builtin()
            .get(None)
            .expect("default"))
        .clone();
        let plan = crate::sandbox::plan::build(
            host(&python(), 7),
            &policy,
            &policy.limits,
            Path::new("/run/ptcd-scratch/r-1"),
            "r-1",
            &[],
            &Leased::Unswitched,
        );
        assert!(!plan.seccomp.is_empty());
        let line = confine_job(&plan);
        assert_eq!(line.last(), Some(&b'\n'));
        let job: Value = serde_json::from_slice(&line).expect("JSON");
        assert_eq!(job["type"], "confine");
        let child = seccomp::forked_child_filters(&plan.seccomp).expect("the cold filters");
        assert_eq!(job["seccomp_sha256"], filters_digest(child));
        assert!(
            job.get("seccomp").is_none(),
            "no program travels in the job"
        );
        let text = String::from_utf8(line).expect("UTF-8");
        for program in plan.seccomp.iter().chain(child) {
            assert!(!text.contains(program.as_str()));
        }
        // A plan no template serves names the digest of no filter, which no template preloads.
        let mut other = plan.clone();
        other.seccomp.to_mut().pop();
        let job: Value = serde_json::from_slice(&confine_job(&other)).expect("JSON");
        assert_eq!(job["seccomp_sha256"], filters_digest(&[]));
    }

    #[test]
    fn a_record_larger_than_the_buffer_is_reported_truncated() {
        let (a, b) = seqpacket_pair().unwrap();
        send_with_fds(a.as_raw_fd(), &[b'x'; 100], &[]).unwrap();
        let mut buf = vec![0u8; 10];
        assert!(recv_with_fds(b.as_raw_fd(), &mut buf).unwrap().2);
    }
}
