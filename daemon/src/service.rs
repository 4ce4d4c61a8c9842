//! The life of a serving daemon: start-up, readiness, reloads and the shutdown sequence.
//!
//! Start-up: install the signal handlers, resolve the interpreter, load the policies, reclaim scratch dirs of dead daemons,
//! take the listener (socket activation or bind), then tell systemd `READY=1`.
//!
//! Shutdown (SIGTERM or SIGINT), in this order:
//! 1. stop accepting; `STOPPING=1` to systemd; new requests on open connections get `-32007`;
//! 2. in-flight runs get `shutdown_grace_ms` to finish;
//! 3. then every remaining run is cancelled: children killed and reaped, scratch dirs removed,
//!    results (`status: "cancelled"`) written;
//! 4. connections close; the MCP servers are stopped (stdio children's process groups killed
//!    and reaped); the socket file is removed (unless systemd owns it), exit 0.
//!
//! Every wait after step 3 has a deadline: a client that does not read its replies is dropped
//! once a write to it has been blocked [`crate::connection::WRITE_DEADLINE_AFTER_STOP`] after
//! `stop` (a client that reads gets every cancelled run's answer), and the daemon exits at most
//! [`STOP_DEADLINE`] after the grace period whatever is left. Signal handlers are installed before
//! anything else, so a SIGTERM that arrives as soon as the socket exists is a clean shutdown.
//!
//! Idle warm interpreters (`pool.rs`) are killed and reaped, and their scratch dirs removed, as
//! soon as step 1 begins; the daemon waits for that before it exits.
//!
//! SIGHUP re-reads the config file and the policy directory; the new policies and access rules
//! apply to new runs and connections, and nothing is dropped; the warm pool is drained and
//! refilled under the new policies. Other settings need a restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use crate::config::{self, Settings};
use crate::daemon::Daemon;
use crate::policy::PolicySet;
use crate::python::{Interpreter, InterpreterError};
use crate::server::BindError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Interpreter(#[from] InterpreterError),
    #[error("policies: {0}")]
    Policies(String),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("{0}")]
    Scratch(String),
    #[error("{0}")]
    Leases(String),
    #[error("socket activation: {0}")]
    Activation(std::io::Error),
    #[error("signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Loads the built-in policies plus those in `dir`.
pub fn load_policies(dir: Option<&std::path::Path>) -> Result<PolicySet, ServiceError> {
    match dir {
        None => Ok(PolicySet::builtin()),
        Some(dir) => PolicySet::with_dir(dir).map_err(|errors| {
            ServiceError::Policies(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        }),
    }
}

/// Serves until SIGTERM/SIGINT, then runs the shutdown sequence.
pub async fn serve(settings: Settings, flags: config::Overrides) -> Result<(), ServiceError> {
    // First, before the socket exists: a SIGTERM sent as soon as a client can see the socket
    // must find the handler installed (the default action would kill the daemon mid-start).
    let mut term = signal(SignalKind::terminate()).map_err(ServiceError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServiceError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(ServiceError::Signals)?;
    let python = Interpreter::resolve(settings.python.as_deref())?;
    let policies = load_policies(settings.policy_dir.as_deref())?;
    let root = settings.serve.scratch_root.clone();
    let scratch = tokio::task::spawn_blocking(move || crate::scratch::ScratchRoot::open(&root))
        .await
        .map_err(|e| ServiceError::Scratch(e.to_string()))?
        .map_err(|e| ServiceError::Scratch(e.to_string()))?;
    scratch.set_total_mb(settings.serve.max_scratch_total_mb);
    if crate::sandbox::identity::daemon_is_root() {
        // Fail at start-up, not at the first run, when the host-wide lease dir is unusable.
        crate::sandbox::identity::host_leases().map_err(ServiceError::Leases)?;
    }
    let reclaimer = scratch.clone();
    let reclaimed = tokio::task::spawn_blocking(move || reclaimer.reclaim())
        .await
        .unwrap_or_default();
    tracing::info!(root = %scratch.path().display(), mode = scratch.mode().name(), "scratch dirs");
    if reclaimed > 0 {
        tracing::info!(
            count = reclaimed,
            "removed scratch dirs left by a previous daemon"
        );
    }
    let (listener, owned_path) =
        match crate::server::activated_listener().map_err(ServiceError::Activation)? {
            Some(listener) => (listener, None),
            None => {
                let listener = crate::server::bind(&settings.socket, settings.socket_mode)?;
                if let Some(gid) = settings.socket_group {
                    crate::server::set_group(&settings.socket, gid)?;
                }
                (listener, Some(settings.socket.clone()))
            }
        };

    let daemon = Daemon::new(
        settings.serve.clone(),
        python,
        policies,
        settings.access.clone(),
        settings.max_connections,
        scratch,
    );
    tracing::info!(
        socket = %settings.socket.display(),
        activated = owned_path.is_none(),
        python = %daemon.python.executable.display(),
        policies = ?daemon.policies().names(),
        "ptcd ready"
    );
    // SIGTERM/SIGINT end the serving; SIGHUP reloads meanwhile.
    let signalled = async {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
                _ = int.recv() => { tracing::info!("SIGINT: shutting down"); break; }
                _ = hup.recv() => reload(&daemon, &settings, &flags),
            }
        }
    };
    run(daemon.clone(), listener, signalled).await;
    if let Some(path) = owned_path {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("stopped");
    Ok(())
}

/// Serves `listener` until `shutdown` completes, then runs the shutdown sequence (see the module
/// docs) and returns once every run has ended and every warm child is reaped. The seam between
/// the process (signals, socket file, systemd) and the daemon: [`serve`] passes its signals,
/// the in-process tests (`daemon/tests/server.rs`) a future they complete themselves.
pub async fn run(
    daemon: Arc<Daemon>,
    listener: tokio::net::UnixListener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let accept = tokio::spawn(crate::server::accept_loop(daemon.clone(), listener));
    // A task on the runtime's worker threads, which live as long as the daemon: the children it
    // forks get their parent-death signal only when the daemon dies.
    let warm = tokio::spawn(crate::pool::fill(daemon.clone()));
    let trimmer = tokio::spawn(crate::memory::trim_when_idle(
        daemon.activity.clone(),
        daemon.draining.clone(),
    ));
    notify(&[sd_notify::NotifyState::Ready]);
    shutdown.await;
    // Draining starts before systemd hears STOPPING=1, so anyone who saw it is refused.
    daemon.draining.cancel();
    notify(&[sd_notify::NotifyState::Stopping]);
    drain(&daemon, accept).await;
    // The filler drains as soon as `draining` fires: idle children killed and reaped, their
    // scratch dirs removed.
    if tokio::time::timeout(STOP_DEADLINE, warm).await.is_err() {
        tracing::error!("the warm pool did not drain in time; its children die with the daemon");
    }
    // No run is left to call them: stop the MCP servers (stdio children killed and reaped).
    if tokio::time::timeout(STOP_DEADLINE, daemon.mcp.shutdown())
        .await
        .is_err()
    {
        tracing::error!("MCP servers did not stop in time; their children die with the daemon");
    }
    // No run is left: the fork server's templates are killed and reaped.
    daemon.forks.shutdown().await;
    // Every scratch dir is gone: drop this daemon's lock in the root.
    daemon.scratch.release();
    let _ = trimmer.await;
}

fn notify(state: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

/// SIGHUP: re-read the config file and policies; keep everything else.
fn reload(daemon: &Daemon, settings: &Settings, flags: &config::Overrides) {
    let source: Option<PathBuf> = settings.source.clone();
    let result = config::read_file(source.as_deref())
        .map_err(|e| e.to_string())
        .and_then(|(file, src)| {
            Settings::resolve(file, flags.clone(), src).map_err(|e| e.to_string())
        })
        .and_then(|new| {
            load_policies(new.policy_dir.as_deref())
                .map(|p| (new, p))
                .map_err(|e| e.to_string())
        });
    match result {
        Ok((new, policies)) => {
            let names = policies.names();
            daemon.reload(policies, new.access);
            tracing::info!(policies = ?names, "SIGHUP: reloaded config and policies");
        }
        Err(e) => tracing::error!(error = %e, "SIGHUP: reload failed; keeping the current config"),
    }
}

/// How long the daemon waits, after the grace period, for cancelled runs to be reaped and
/// connections to end (a client that does not read is dropped after
/// [`crate::connection::WRITE_DEADLINE_AFTER_STOP`]). Past it the daemon exits anyway; children
/// still alive then die with it (parent-death signal).
pub const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// Steps 1–4 of the shutdown sequence (see the module docs).
async fn drain(daemon: &Arc<Daemon>, accept: tokio::task::JoinHandle<()>) {
    daemon.draining.cancel();
    let _ = accept.await;
    daemon.connections.close();
    let grace = Duration::from_millis(daemon.config.shutdown_grace_ms);
    if tokio::time::timeout(grace, daemon.connections.wait())
        .await
        .is_err()
    {
        tracing::info!("grace period over: cancelling the remaining runs");
        daemon.stop.cancel();
        if tokio::time::timeout(STOP_DEADLINE, daemon.connections.wait())
            .await
            .is_err()
        {
            tracing::error!(
                left = daemon.connections.len(),
                "connections did not end within the stop deadline; exiting anyway"
            );
        }
    }
}
