//! The warm pool: interpreters started ahead of time, each waiting to serve exactly one run.
//!
//! Why: a cold run pays for the launcher, confinement, CPython start-up and the shim's imports
//! (~40 ms) before the script's first instruction; a child that has already said `ready` answers
//! in a few milliseconds. Why it is safe: a warm child is started through the very same path as a
//! cold or forked one ([`ConfinedChild::start`] with the policy's plan, a fresh scratch dir of its own and its
//! own uid lease), so it is confined before it exists as Python; it runs no script code until it
//! is given the one `exec` of the one run that takes it, and that run kills and reaps it at its
//! end exactly as a cold child. It is never put back.
//!
//! What must match for a run to take one: everything fixed when the child started. That is the
//! policy (compared by value) and the rlimit-backed limits (`cpu_ms`, `memory_mb`, which the pool
//! starts at the policy's values), and no client `env` name that the C library or CPython read at
//! start-up ([`startup_sensitive`]); the rest of the environment (`env`, `PTCD_RUN_ID`,
//! `PTCD_SESSION_ID`) reaches the child in the `exec` message, which a cold child receives too,
//! so a warm child's script sees the same `os.environ`. Anything else starts cold, as before.
//!
//! Ownership: the filler task ([`fill`]) alone starts, prunes and drains idle children; a run
//! that takes one owns it (and its scratch dir) from then on. Idle children hold a uid lease
//! each, so the pool only warms a policy whose uid range leaves room for every run slot
//! ([`capacity`]). The filler is a task on the runtime's long-lived worker threads, so the
//! children's `PR_SET_PDEATHSIG` (tied to the thread that forked them) fires only when the daemon
//! dies. On SIGTERM it kills and reaps every idle child and removes its scratch dir; on SIGHUP
//! ([`WarmPool::invalidate`]) it drains and refills.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::confined::{ChildFault, ConfinedChild};
use crate::daemon::Daemon;
use crate::error::StartError;
use crate::limits::Limits;
use crate::policy::Policy;
use crate::sandbox::identity;
use crate::scratch::Scratch;

/// How long a warm child may take to say `ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a run with an empty pool waits for the child being started before it starts cold.
const CLAIM_WAIT: Duration = Duration::from_millis(500);
/// How often the filler looks for idle children that died.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// Back-off after a failed start (a policy that fails closed never yields warm children).
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why a warm child could not be started. Runs never see these: they start cold instead (and
/// get the same error, e.g. `-32006`, if it is about confinement).
#[derive(Debug, thiserror::Error)]
pub enum WarmError {
    #[error("cannot create its scratch dir: {0}")]
    Scratch(std::io::Error),
    #[error("{0}")]
    Start(#[from] StartError),
    #[error("the interpreter did not start: {0}")]
    NotReady(String),
}

/// An idle, confined child that said `ready`, with its own scratch dir.
pub struct Warm {
    interpreter: ConfinedChild,
    scratch: Scratch,
    policy: Arc<Policy>,
    generation: u64,
}

impl Warm {
    /// The child and its scratch dir, now owned by the run that took them.
    pub fn into_parts(self) -> (ConfinedChild, Scratch) {
        (self.interpreter, self.scratch)
    }

    /// Kills and reaps the child, then removes its scratch dir.
    async fn discard(self) {
        let Warm {
            mut interpreter,
            scratch,
            ..
        } = self;
        interpreter.kill().await;
        drop(interpreter);
        scratch.remove().await;
    }
}

#[derive(Default)]
struct Idle {
    children: Vec<Warm>,
    generation: u64,
    closed: bool,
    /// The policy of the child the filler is starting right now, if any.
    starting: Option<Arc<Policy>>,
    /// A run with an empty pool is waiting for that child (at most one run waits).
    claimed: bool,
}

/// The idle warm children of the default policy, and what `daemon/status` reports about them.
pub struct WarmPool {
    /// `warm_pool` from the config: how many idle children to keep (0: off).
    target: usize,
    idle: Mutex<Idle>,
    wake: Notify,
    /// Fired when a started child joins the pool or failed to start.
    arrived: Notify,
    runs_warm_total: AtomicU64,
    next_id: AtomicU64,
}

impl WarmPool {
    pub fn new(target: usize) -> WarmPool {
        WarmPool {
            target,
            idle: Mutex::default(),
            wake: Notify::new(),
            arrived: Notify::new(),
            runs_warm_total: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Idle children ready to be taken.
    pub fn idle(&self) -> usize {
        self.lock().children.len()
    }

    /// Runs served by a warm child since start-up.
    pub fn runs_warm_total(&self) -> u64 {
        self.runs_warm_total.load(Ordering::Relaxed)
    }

    /// The configured pool size.
    pub fn target(&self) -> usize {
        self.target
    }

    /// A warm child for a run of `policy` with `limits` and the client's `env`, if one fits and
    /// is still intact. The filler is woken to replace it.
    ///
    /// When the pool is empty but the filler is already starting a fitting child, one run waits
    /// for it (at most [`CLAIM_WAIT`], or until `cancel`): that child started before this run
    /// arrived, so it is ready sooner than a cold start would be, and two interpreters starting
    /// at once on a small machine would slow each other down. Back-to-back runs benefit.
    pub async fn take(
        &self,
        policy: &Policy,
        limits: &Limits,
        env: &[(String, String)],
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Option<Warm> {
        if self.target == 0 || !fits(policy, limits, env) {
            return None;
        }
        if let Some(warm) = self.take_idle(policy) {
            return Some(warm);
        }
        let arrived = {
            let mut idle = self.lock();
            let starting = idle.starting.as_deref().is_some_and(|p| *p == *policy);
            if !starting || idle.claimed {
                return None;
            }
            idle.claimed = true;
            // Created under the lock that `push` takes before notifying: no wake-up is missed.
            self.arrived.notified()
        };
        tokio::select! {
            _ = arrived => {}
            _ = tokio::time::sleep(CLAIM_WAIT) => {}
            _ = cancel.cancelled() => {}
        }
        self.lock().claimed = false;
        self.take_idle(policy)
    }

    /// An idle child of `policy`, if one is intact; discards the ones that are not.
    fn take_idle(&self, policy: &Policy) -> Option<Warm> {
        let mut unfit = Vec::new();
        let taken = {
            let mut idle = self.lock();
            let generation = idle.generation;
            let mut taken = None;
            let mut i = idle.children.len();
            while i > 0 {
                i -= 1;
                let warm = &mut idle.children[i];
                if warm.generation == generation && *warm.policy != *policy {
                    continue; // another policy's child: not ours to take or discard
                }
                let usable = warm.generation == generation && warm.interpreter.idle_intact();
                let warm = idle.children.remove(i);
                if usable {
                    taken = Some(warm);
                    break;
                }
                unfit.push(warm);
            }
            taken
        };
        let replace = taken.is_some() || !unfit.is_empty();
        if !unfit.is_empty() {
            tokio::spawn(async move {
                for warm in unfit {
                    warm.discard().await;
                }
            });
        }
        if replace {
            self.wake.notify_one();
        }
        if taken.is_some() {
            self.runs_warm_total.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }

    /// SIGHUP: the idle children were started under the old policies; replace them all.
    pub fn invalidate(&self) {
        self.lock().generation += 1;
        self.wake.notify_one();
    }

    /// Removes the idle children that must not serve a run any more: started before the last
    /// invalidation or under another policy, dead, or talking while idle.
    fn prune(&self, policy: &Policy) -> Vec<Warm> {
        let mut idle = self.lock();
        let generation = idle.generation;
        let mut stale = Vec::new();
        for mut warm in std::mem::take(&mut idle.children) {
            if warm.generation == generation
                && *warm.policy == *policy
                && warm.interpreter.idle_intact()
            {
                idle.children.push(warm);
            } else {
                stale.push(warm);
            }
        }
        stale
    }

    /// Adds a fresh child; hands it back when it must not be kept (shutdown, or a reload while
    /// it started).
    fn push(&self, warm: Warm) -> Option<Warm> {
        let mut idle = self.lock();
        idle.starting = None;
        self.arrived.notify_waiters();
        if idle.closed || warm.generation != idle.generation {
            return Some(warm);
        }
        idle.children.push(warm);
        None
    }

    /// The filler starts (`Some`) or gave up on (`None`) a child.
    fn set_starting(&self, policy: Option<Arc<Policy>>) {
        let mut idle = self.lock();
        idle.starting = policy;
        if idle.starting.is_none() {
            self.arrived.notify_waiters();
        }
    }

    /// Shutdown: no more children; hands back the idle ones.
    fn close(&self) -> Vec<Warm> {
        let mut idle = self.lock();
        idle.closed = true;
        std::mem::take(&mut idle.children)
    }
}

/// Whether a run with these settings may take a child started with the policy's own limits.
fn fits(policy: &Policy, limits: &Limits, env: &[(String, String)]) -> bool {
    limits.cpu_ms == policy.limits.cpu_ms
        && limits.memory_mb == policy.limits.memory_mb
        && !env.iter().any(|(name, _)| startup_sensitive(name))
}

/// Environment variables that take effect when the interpreter starts (the C library's locale,
/// time zone and allocator, CPython's own settings, the dynamic loader) or that the plan itself
/// sets. Setting them later, in `os.environ`, would not have the same effect, so a run whose
/// `env` names one starts cold.
pub fn startup_sensitive(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "LANG",
        "LANGUAGE",
        "LOCPATH",
        "TZ",
        "TZDIR",
        "HOME",
        "TMPDIR",
        "GCONV_PATH",
        "NLSPATH",
    ];
    const PREFIXES: &[&str] = &["LC_", "PYTHON", "MALLOC_", "GLIBC_", "LD_"];
    NAMES.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// How many idle children `policy` may have: `warm_pool`, or none when the daemon switches uids
/// and the policy's uid range could not also give every run slot a uid (idle children hold one
/// lease each).
pub fn capacity(target: usize, policy: &Policy, max_concurrent_runs: usize) -> usize {
    match policy.identity {
        Some((first, last)) if identity::daemon_is_root() => {
            let range = u64::from(last.saturating_sub(first)) + 1;
            if range >= (target + max_concurrent_runs) as u64 {
                target
            } else {
                0
            }
        }
        _ => target,
    }
}

/// Starts one warm child for `policy` and waits until it said `ready`.
async fn start_one(
    daemon: &Daemon,
    pool: &WarmPool,
    policy: &Arc<Policy>,
    generation: u64,
) -> Result<Warm, WarmError> {
    // Its own id space: the scratch dir's name never carries another run's id.
    let id = format!("w-{}", pool.next_id.fetch_add(1, Ordering::Relaxed));
    let leased = identity::for_policy(policy);
    let scratch = daemon
        .scratch
        .create_off_runtime(&id, leased.lease().cloned(), policy.rlimits.scratch_mb)
        .await
        .map_err(WarmError::Scratch)?;
    let mut interpreter = match ConfinedChild::start(
        daemon.launch(),
        policy,
        &policy.limits,
        scratch.path(),
        &id,
        &[],
        &leased,
    )
    .await
    {
        Ok(interpreter) => interpreter,
        Err(e) => {
            scratch.remove().await;
            return Err(WarmError::Start(e));
        }
    };
    // Shutdown cuts the wait short; the child is then killed and its scratch dir removed
    // below, awaited, like any failed start (never left to a drop guard the exiting runtime
    // might not run).
    // A forked child said `ready` before `start` returned.
    let first = tokio::select! {
        first = tokio::time::timeout(READY_TIMEOUT, interpreter.next_message()), if !interpreter.is_ready() => first.map_err(|_| "no `ready` within 10 s"),
        _ = std::future::ready(()), if interpreter.is_ready() => Ok(Ok(crate::confined::ChildMessage::Ready)),
        _ = daemon.draining.cancelled() => Err("the daemon is shutting down"),
    };
    let outcome = match first {
        Err(why) => Err(WarmError::NotReady(why.into())),
        Ok(Ok(_ready)) => Ok(()), // before `ready`, nothing else is Ok
        Ok(Err(ChildFault::NotStarted(e))) => Err(WarmError::Start(e)),
        Ok(Err(ChildFault::Gone(detail))) => Err(WarmError::NotReady(
            detail.unwrap_or_else(|| "it exited".into()),
        )),
    };
    match outcome {
        Ok(()) => Ok(Warm {
            interpreter,
            scratch,
            policy: policy.clone(),
            generation,
        }),
        Err(e) => {
            interpreter.kill().await;
            drop(interpreter);
            scratch.remove().await;
            Err(e)
        }
    }
}

/// The filler: keeps the default policy's pool full until the daemon drains, then kills and
/// reaps every idle child and removes its scratch dir. Spawn it once, as a task.
pub async fn fill(daemon: Arc<Daemon>) {
    let pool = &daemon.pool;
    let mut backoff = FIRST_BACKOFF;
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut seen = pool.lock().generation;
    while pool.target > 0 && !daemon.draining.is_cancelled() {
        let policy = match daemon.policies().get(None) {
            Ok(policy) => policy,
            Err(e) => {
                tracing::warn!(error = %e, "warm pool: no default policy");
                break;
            }
        };
        for warm in pool.prune(&policy) {
            warm.discard().await;
        }
        let wanted = capacity(pool.target, &policy, daemon.config.max_concurrent_runs);
        let may_try = retry_at.is_none_or(|t| tokio::time::Instant::now() >= t);
        if pool.idle() < wanted && may_try {
            let generation = pool.lock().generation;
            pool.set_starting(Some(policy.clone()));
            // Not abandoned when the daemon drains: `start_one` itself stops waiting then and
            // removes what it made, so no scratch dir outlives the daemon.
            let started = start_one(&daemon, pool, &policy, generation).await;
            if started.is_err() {
                pool.set_starting(None);
            }
            match started {
                Err(_) if daemon.draining.is_cancelled() => break,
                Ok(warm) => {
                    backoff = FIRST_BACKOFF;
                    retry_at = None;
                    if let Some(stale) = pool.push(warm) {
                        stale.discard().await;
                    }
                    continue;
                }
                Err(e) => {
                    let retry_in_ms = backoff.as_millis() as u64;
                    if backoff == FIRST_BACKOFF {
                        tracing::warn!(policy = %policy.name, error = %e, retry_in_ms,
                            "warm pool: could not start an interpreter; runs start cold");
                    } else {
                        tracing::debug!(policy = %policy.name, error = %e, retry_in_ms,
                            "warm pool: still cannot start an interpreter");
                    }
                    retry_at = Some(tokio::time::Instant::now() + backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        let wait = match retry_at {
            Some(t) => t.saturating_duration_since(tokio::time::Instant::now()),
            None => HEALTH_INTERVAL,
        }
        .min(HEALTH_INTERVAL);
        tokio::select! {
            _ = pool.wake.notified() => {}
            _ = daemon.draining.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        // After a reload, retry at once (the new policy may start where the old one failed).
        let generation = pool.lock().generation;
        if generation != seen {
            seen = generation;
            retry_at = None;
            backoff = FIRST_BACKOFF;
        }
    }
    for warm in pool.close() {
        warm.discard().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicySet;

    #[test]
    fn only_runs_with_the_policys_rlimits_and_no_startup_env_fit() {
        let policy = PolicySet::builtin().get(None).expect("default policy");
        let env = |k: &str| vec![(k.to_string(), "x".to_string())];
        assert!(fits(&policy, &policy.limits, &env("API_KEY")));
        assert!(fits(&policy, &policy.limits, &env("PTCD_SESSION_ID")));
        for name in [
            "LANG",
            "LC_ALL",
            "TZ",
            "HOME",
            "TMPDIR",
            "PYTHONPATH",
            "LD_PRELOAD",
        ] {
            assert!(!fits(&policy, &policy.limits, &env(name)), "{name}");
        }
        let tighter_memory = Limits {
            memory_mb: policy.limits.memory_mb / 2,
            ..policy.limits
        };
        assert!(!fits(&policy, &tighter_memory, &[]));
        let tighter_cpu = Limits {
            cpu_ms: policy.limits.cpu_ms / 2,
            ..policy.limits
        };
        assert!(!fits(&policy, &tighter_cpu, &[]));
        // Limits that are checked by the daemon, not fixed at start-up, do not matter.
        let shorter = Limits {
            timeout_ms: 100,
            ..policy.limits
        };
        assert!(fits(&policy, &shorter, &[]));
    }

    #[test]
    fn a_small_uid_range_turns_the_pool_off_when_uids_are_switched() {
        let mut policy = (*PolicySet::builtin().get(None).expect("default policy")).clone();
        policy.identity = Some((70000, 70000));
        let expected = if identity::daemon_is_root() { 0 } else { 2 };
        assert_eq!(capacity(2, &policy, 32), expected);
        policy.identity = Some((70000, 70999));
        assert_eq!(capacity(2, &policy, 32), 2);
        policy.identity = None;
        assert_eq!(capacity(2, &policy, 32), 2);
    }
}
