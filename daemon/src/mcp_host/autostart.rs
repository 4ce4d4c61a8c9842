//! A private daemon for `ptcd mcp` when none answers on the socket.
//!
//! An MCP host starts `ptcd mcp` on demand and may run on a machine where nobody started
//! `ptcd serve`. Then `ptcd mcp` starts one itself, through the single spawn path
//! ([`crate::sandbox::spawn::spawn_private_daemon`]): `ptcd serve --socket <dir>/ptcd.sock
//! [--config <file>]`, where `<dir>` is a fresh `mkdtemp` directory (mode 0700, so no other user
//! can connect), waits a bounded time for it to answer `initialize`, and stops it (SIGTERM, then
//! SIGKILL after a grace period, always reaped) when `ptcd mcp` exits. The daemon's own output
//! goes to our stderr, never to stdout (the MCP channel).
//!
//! The private daemon runs as the caller's user with the caller's config; its scratch root and
//! uid leases are the usual ones, which daemons share safely (see `scratch` and
//! `sandbox::identity`).

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Child;

use super::daemon_client::DaemonClient;
use super::HostError;

/// How long the private daemon may take to answer (it probes the sandbox and fills its warm
/// pool first).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the daemon gets to shut down after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A `ptcd serve` started by this process, on its own socket.
pub struct PrivateDaemon {
    child: Child,
    dir: PathBuf,
    pub socket: PathBuf,
}

impl PrivateDaemon {
    /// Starts the daemon and connects to it once it answers, within [`START_TIMEOUT`].
    pub async fn start(config: Option<&Path>) -> Result<(PrivateDaemon, DaemonClient), HostError> {
        let dir =
            private_dir().map_err(|e| HostError::Start(format!("temporary directory: {e}")))?;
        let socket = dir.join("ptcd.sock");
        let child = match crate::sandbox::spawn::spawn_private_daemon(&socket, config) {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(HostError::Start(format!("cannot start `ptcd serve`: {e}")));
            }
        };
        let mut daemon = PrivateDaemon { child, dir, socket };
        match daemon.wait_ready().await {
            Ok(client) => Ok((daemon, client)),
            Err(e) => {
                daemon.stop().await;
                Err(e)
            }
        }
    }

    /// Polls (bounded) until the socket accepts a connection, or the daemon exits.
    async fn wait_ready(&mut self) -> Result<DaemonClient, HostError> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(HostError::Start(format!(
                    "`ptcd serve` exited during start-up ({status}); its messages are above"
                )));
            }
            if let Ok(client) = DaemonClient::connect(&self.socket).await {
                return Ok(client);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(HostError::Start(format!(
                    "`ptcd serve` did not listen on {} within {} s",
                    self.socket.display(),
                    START_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, wait up to [`STOP_GRACE`], then SIGKILL; always reaps, then removes the socket
    /// directory (the daemon removes its socket; a leftover one is removed here).
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill on our own, not yet reaped child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
        match tokio::time::timeout(STOP_GRACE, self.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                tracing::warn!("the private daemon did not stop within {STOP_GRACE:?}; killing it");
                let _ = self.child.kill().await;
            }
        }
        let _ = std::fs::remove_file(&self.socket);
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), %e, "removing the private socket directory");
        }
    }
}

/// A fresh directory only we can enter (`mkdtemp` creates it 0700).
fn private_dir() -> std::io::Result<PathBuf> {
    let mut template = std::env::temp_dir()
        .join("ptcd-mcp-XXXXXX")
        .into_os_string()
        .into_vec();
    template.push(0);
    let template = CString::from_vec_with_nul(template)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let raw = template.into_raw();
    // SAFETY: a NUL-terminated, writable buffer that mkdtemp fills in place; ownership comes
    // back with from_raw below.
    let made = unsafe { libc::mkdtemp(raw) };
    // SAFETY: `raw` came from into_raw above and its length did not change.
    let path = unsafe { CString::from_raw(raw) };
    if made.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    Ok(PathBuf::from(OsString::from_vec(path.into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_dir_is_fresh_and_0700() {
        let a = private_dir().unwrap();
        let b = private_dir().unwrap();
        assert_ne!(a, b);
        let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(a
            .as_os_str()
            .as_bytes()
            .starts_with(std::env::temp_dir().as_os_str().as_bytes()));
        std::fs::remove_dir(a).unwrap();
        std::fs::remove_dir(b).unwrap();
    }
}
