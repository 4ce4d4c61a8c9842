//! The parent side of a launch: the only place in the daemon that creates a child process.

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;

use tokio::process::{Child, Command};

use super::plan::SandboxPlan;
use crate::runtime::CONTROL_FD;

/// Why a child could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A confinement the policy requires is not available here (fail closed, `-32006`).
    #[error("sandbox unavailable: {mechanism}: {message}")]
    Unavailable { mechanism: String, message: String },
    #[error("cannot start the launcher: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("cannot encode the sandbox plan: {0}")]
    Plan(#[from] serde_json::Error),
}

/// The hidden argument that turns the daemon binary into the launcher.
pub const LAUNCH_ARG: &str = "__launch";

/// Starts `ptcd __launch <plan>` with `control` as its fd 3 and piped stdout/stderr.
pub fn spawn(plan: &SandboxPlan, control: OwnedFd) -> Result<Child, SandboxError> {
    // /proc/self/exe, not the path we were started from: it still works after the binary on
    // disk is replaced by an upgrade or a rebuild.
    let exe = std::path::Path::new("/proc/self/exe");
    let plan_json = serde_json::to_string(plan)?;
    let control_raw = control.as_raw_fd();
    #[allow(clippy::disallowed_methods)] // the one place allowed to create a child process
    let mut command = Command::new(exe);
    command
        .arg(LAUNCH_ARG)
        .arg(plan_json)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: between fork and exec only async-signal-safe calls: dup2 and fcntl on an fd that
    // the parent keeps open until `spawn` returns.
    unsafe {
        command.pre_exec(move || {
            if control_raw == CONTROL_FD {
                let flags = libc::fcntl(CONTROL_FD, libc::F_GETFD);
                if flags < 0
                    || libc::fcntl(CONTROL_FD, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(control_raw, CONTROL_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    drop(control);
    Ok(child)
}
