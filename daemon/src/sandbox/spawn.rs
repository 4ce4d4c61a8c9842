//! The parent side of a launch: the only place in the daemon that creates a child process.

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;

use tokio::process::{Child, Command};

use super::plan::SandboxPlan;
use crate::shim::CONTROL_FD;

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

/// The launcher's fd that holds the plan (a sealed memfd), read and closed before anything else.
/// Never on the command line: the plan carries the client's `env` values, and every local user
/// can read `/proc/<pid>/cmdline`.
pub const PLAN_FD: i32 = 4;

/// Fds are parked here (and above) while being moved to [`CONTROL_FD`] and [`PLAN_FD`].
const PARK_FD: i32 = 10;

/// Starts `ptcd __launch` with `control` as its fd 3, the plan on fd 4 and piped stdout/stderr.
pub fn spawn(plan: &SandboxPlan, control: OwnedFd) -> Result<Child, SandboxError> {
    // /proc/self/exe, not the path we were started from: it still works after the binary on
    // disk is replaced by an upgrade or a rebuild.
    let exe = std::path::Path::new("/proc/self/exe");
    let plan_fd = sealed_memfd(c"ptcd-plan", &serde_json::to_vec(plan)?)?;
    let control_raw = control.as_raw_fd();
    let plan_raw = plan_fd.as_raw_fd();
    #[allow(clippy::disallowed_methods)] // the one place allowed to create a child process
    let mut command = Command::new(exe);
    command
        .arg(LAUNCH_ARG)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: between fork and exec only async-signal-safe calls (fcntl, dup2, close) on fds the
    // parent keeps open until `spawn` returns. Both fds are first parked above PARK_FD so that
    // moving one into place can never close the other.
    unsafe {
        command.pre_exec(move || {
            let control = libc::fcntl(control_raw, libc::F_DUPFD_CLOEXEC, PARK_FD);
            let plan = libc::fcntl(plan_raw, libc::F_DUPFD_CLOEXEC, PARK_FD);
            if control < 0
                || plan < 0
                || libc::dup2(control, CONTROL_FD) < 0
                || libc::dup2(plan, PLAN_FD) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(control);
            libc::close(plan);
            Ok(())
        });
    }
    let child = command.spawn()?;
    drop(control);
    drop(plan_fd);
    Ok(child)
}

/// Starts `ptcd serve --socket <socket> [--config <config>]` for `ptcd mcp`, which runs a private
/// daemon when none answers (see `crate::mcp_host`). This is the daemon binary itself, run as
/// the caller's own user: no confinement applies to it (it confines its own children).
///
/// `ptcd mcp`'s stdout is its MCP channel, so the daemon's stdout and stderr both go to our
/// stderr (which MCP hosts log) and its stdin is `/dev/null`. It gets its own process group (a
/// Ctrl-C meant for the host does not kill it before `ptcd mcp` stops it in order) and
/// `PR_SET_PDEATHSIG(SIGTERM)`, so it shuts down even if `ptcd mcp` is killed without a chance
/// to stop it. Call this from a thread that lives as long as the process (the kernel sends the
/// death signal when the *thread* that forked exits).
pub fn spawn_private_daemon(
    socket: &std::path::Path,
    config: Option<&std::path::Path>,
) -> std::io::Result<Child> {
    use std::os::fd::AsFd;
    let exe = std::path::Path::new("/proc/self/exe");
    let stdout = std::io::stderr().as_fd().try_clone_to_owned()?;
    let stderr = std::io::stderr().as_fd().try_clone_to_owned()?;
    // SAFETY: getpid cannot fail.
    let parent = unsafe { libc::getpid() };
    #[allow(clippy::disallowed_methods)] // the one place allowed to create a child process
    let mut command = Command::new(exe);
    command.arg("serve").arg("--socket").arg(socket);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: between fork and exec only async-signal-safe calls (prctl, getppid).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before the death signal was armed: nobody would stop us.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    command.spawn()
}

/// A memfd holding `bytes`, sealed against any change and rewound for the launcher to read.
pub(super) fn sealed_memfd(name: &std::ffi::CStr, bytes: &[u8]) -> std::io::Result<OwnedFd> {
    use std::io::{Seek, Write};
    use std::os::fd::FromRawFd;
    // SAFETY: a NUL-terminated name and flags; the result is checked.
    let raw =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: memfd_create returned a fresh fd that nothing else owns.
    let mut file = unsafe { std::fs::File::from_raw_fd(raw) };
    file.write_all(bytes)?;
    file.rewind()?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our own fd with integer arguments.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file.into())
}

/// What starts one stdio MCP server (from its trusted `[mcp_servers.<name>]` table).
pub struct McpServerCommand<'a> {
    pub command: &'a str,
    pub args: &'a [String],
    /// The table's `env`, set over PATH/HOME/LANG.
    pub env: &'a [(String, String)],
    /// The table's `cwd`; `/` when absent.
    pub cwd: Option<&'a std::path::Path>,
}

/// PATH for an MCP server when the daemon has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Starts a stdio MCP server: trusted configuration, not script code, so it is NOT confined and
/// runs as the daemon's own uid/gid. What it gets is still chosen here, not inherited: an
/// environment of only PATH, HOME and LANG (the daemon's values or defaults) plus the table's
/// `env`; its cwd; stdin/stdout/stderr piped; its own process group (so stopping it kills
/// everything it started); `PR_SET_PDEATHSIG` SIGKILL (it dies with the daemon — the calling
/// thread must be a runtime worker that lives as long as the daemon); killed if the handle is
/// dropped.
pub fn spawn_mcp_server(server: &McpServerCommand<'_>) -> std::io::Result<Child> {
    #[allow(clippy::disallowed_methods)] // the one place allowed to create a child process
    let mut command = Command::new(server.command);
    command.args(server.args).env_clear();
    for (key, default) in [("PATH", DEFAULT_PATH), ("HOME", "/"), ("LANG", "C.UTF-8")] {
        match std::env::var_os(key).filter(|v| !v.is_empty()) {
            Some(value) => command.env(key, value),
            None => command.env(key, default),
        };
    }
    command
        .envs(server.env.iter().map(|(k, v)| (k, v)))
        .current_dir(server.cwd.unwrap_or(std::path::Path::new("/")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: getpid cannot fail.
    let parent = unsafe { libc::getpid() };
    // SAFETY: between fork and exec only async-signal-safe calls (prctl, getppid).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The daemon may have died before the signal was armed.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the daemon exited"));
            }
            Ok(())
        });
    }
    command.spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan and the shim's source reach the launcher and the interpreter in a memfd no
    /// process holding it can change: not its bytes, not its size, not its seals.
    #[test]
    fn sealed_memfd_refuses_writes_resizes_and_new_seals() {
        let fd = sealed_memfd(c"ptcd-test", b"print('shim')").expect("memfd");
        let raw = fd.as_raw_fd();
        let mut buf = [0u8; 64];
        // SAFETY: plain syscalls on an fd this test owns, with a local buffer.
        unsafe {
            let n = libc::pread(raw, buf.as_mut_ptr().cast(), buf.len(), 0);
            assert_eq!(&buf[..n as usize], b"print('shim')");
            let all =
                libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
            assert_eq!(libc::fcntl(raw, libc::F_GET_SEALS), all);
            assert_eq!(libc::pwrite(raw, b"x".as_ptr().cast(), 1, 0), -1);
            assert_eq!(libc::ftruncate(raw, 0), -1);
            assert_eq!(libc::ftruncate(raw, 1 << 20), -1);
            assert_eq!(
                libc::fcntl(raw, libc::F_ADD_SEALS, libc::F_SEAL_FUTURE_WRITE),
                -1
            );
            let n = libc::pread(raw, buf.as_mut_ptr().cast(), buf.len(), 0);
            assert_eq!(&buf[..n as usize], b"print('shim')");
        }
    }
}
