//! The child a run uses: choosing it ([`choose`]) and letting it go ([`release`]).
//!
//! A run takes the interpreter a persistent session kept, or restarts one in the session's
//! scratch dir as the session's uid, or takes a warm one from the pool (`pool.rs`) when
//! everything fixed at its start matches, or starts one cold with its own uid lease and scratch
//! dir. Whatever ended the run, [`release`] does the same: kill the process group and reap it
//! (unless a persistent session keeps it after a clean `done`), withdraw pending tool calls,
//! drain the pipes, collect the captured output, remove the run's own scratch dir.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::drive::Ending;
use super::output::{finish_output, Output};
use super::result::ChildExit;
use crate::confined::ConfinedChild;
use crate::daemon::Daemon;
use crate::error::RequestError;
use crate::limits::Limits;
use crate::policy::Policy;
use crate::relay::Relay;
use crate::sandbox::identity;
use crate::scratch::Scratch;
use crate::session::{unknown_session, Session};

/// How long a child that reported `done` may take to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_millis(500);
/// How long to wait for the output pipes to close once the child is gone.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// The interpreter of one run, and the scratch dir the run owns (`None` for a persistent
/// session's, which outlives the run).
pub struct RunChild {
    pub interpreter: ConfinedChild,
    scratch: Option<Scratch>,
}

/// The interpreter for a run of `policy` at `limits` (see the module docs for the order).
pub async fn choose(
    daemon: &Daemon,
    policy: &Policy,
    limits: &Limits,
    run_id: &str,
    env: &[(String, String)],
    persistent: Option<&Session>,
    cancel: &CancellationToken,
) -> Result<RunChild, RequestError> {
    if let Some(s) = persistent {
        let interpreter = match s.take_interpreter() {
            Some(kept) => kept,
            None => {
                // A restarted interpreter runs as the session's uid, in its scratch dir.
                let dir = s.scratch_path().ok_or_else(|| unknown_session(&s.id))?;
                ConfinedChild::start(
                    daemon.launch(),
                    policy,
                    limits,
                    &dir,
                    run_id,
                    env,
                    &s.leased,
                )
                .await?
            }
        };
        return Ok(RunChild {
            interpreter,
            scratch: None,
        });
    }
    // Started ahead of time with this policy and these limits; it gets the run's environment
    // with the exec, like a cold child.
    if let Some(warm) = daemon.pool.take(policy, limits, env, cancel).await {
        tracing::debug!("served by a warm interpreter");
        let (interpreter, scratch) = warm.into_parts();
        return Ok(RunChild {
            interpreter,
            scratch: Some(scratch),
        });
    }
    let leased = identity::for_policy(policy);
    let scratch = daemon
        .scratch
        .create_off_runtime(run_id, leased.lease().cloned(), policy.rlimits.scratch_mb)
        .await
        .map_err(RequestError::scratch)?;
    match ConfinedChild::start(
        daemon.launch(),
        policy,
        limits,
        scratch.path(),
        run_id,
        env,
        &leased,
    )
    .await
    {
        Ok(interpreter) => Ok(RunChild {
            interpreter,
            scratch: Some(scratch),
        }),
        Err(e) => {
            scratch.remove().await;
            Err(e.into())
        }
    }
}

/// What [`release`] leaves: how the child ended, whether the session kept it, the output.
pub struct Released {
    pub child: ChildExit,
    pub kept: bool,
    pub output: Output,
}

/// The tail every run goes through once the loop has ended with `ending`.
pub async fn release(
    run_child: RunChild,
    ending: &Ending,
    persistent: Option<&Session>,
    relay: &mut Relay,
    output: JoinHandle<Output>,
) -> Released {
    let RunChild {
        mut interpreter,
        mut scratch,
    } = run_child;
    let keep = persistent.is_some() && matches!(ending, Ending::Done { .. });
    // Read before reaping: afterwards the child's CPU time is gone with it.
    let cpu_used_ms = match ending {
        Ending::ChildGone(_) => interpreter.cpu_time_ms(),
        _ => None,
    };
    let exit = match ending {
        _ if keep => None,
        Ending::Done { .. } => {
            // The script is over: its tmpfs goes while the process exits (the uid stays leased
            // until both are done).
            if let Some(scratch) = scratch.as_mut() {
                scratch.detach_early();
            }
            interpreter.exit_within(EXIT_GRACE).await
        }
        _ => interpreter.kill().await,
    };
    // A forked child's CPU time comes with the template's exit report.
    let cpu_used_ms = match ending {
        Ending::ChildGone(_) => cpu_used_ms.or_else(|| interpreter.cpu_time_ms()),
        _ => None,
    };
    relay.cancel_all().await;
    if !keep {
        interpreter.drain_pipes(DRAIN_GRACE).await;
    }
    interpreter.attach(None);
    let output = finish_output(output, DRAIN_GRACE).await;
    match persistent {
        Some(s) if keep => {
            if let Some(mut closed) = s.keep_interpreter(interpreter) {
                closed.kill().await;
            }
        }
        _ => drop(interpreter),
    }
    // Unmounted or removed off the runtime; its uid lease (if any) goes with it.
    if let Some(scratch) = scratch {
        scratch.remove().await;
    }
    Released {
        child: ChildExit { exit, cpu_used_ms },
        kept: keep,
        output,
    }
}
