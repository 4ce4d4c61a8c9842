//! The child side of a launch: a fresh, single-threaded process that confines itself according
//! to the plan and then becomes the interpreter.
//!
//! Any failure is reported on the control fd as one JSON line (`sandbox_error` when a
//! confinement layer failed, `launch_error` otherwise) and the launcher exits without running
//! any script code: fail closed.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use serde_json::json;

use super::plan::SandboxPlan;
use crate::runtime::CONTROL_FD;

/// Exit status of a launcher that refused to start the interpreter.
pub const EXIT_REFUSED: i32 = 126;

/// Runs the launcher with the plan given on the command line. Never returns.
pub fn main(plan_json: &str) -> ! {
    let plan: SandboxPlan = match serde_json::from_str(plan_json) {
        Ok(plan) => plan,
        Err(e) => fail("launch_error", None, &format!("bad sandbox plan: {e}")),
    };
    if let Err(message) = die_with_parent(plan.parent_pid) {
        fail("launch_error", None, &message);
    }
    // SAFETY: plain syscall, no memory involved.
    if unsafe { libc::setsid() } < 0 {
        fail(
            "launch_error",
            None,
            &format!("setsid: {}", std::io::Error::last_os_error()),
        );
    }
    close_other_fds();
    exec(&plan)
}

/// `PR_SET_PDEATHSIG(SIGKILL)`, then make sure the parent did not die before it took effect.
fn die_with_parent(parent_pid: i32) -> Result<(), String> {
    // SAFETY: prctl with integer arguments only.
    if unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    } != 0
    {
        return Err(format!(
            "PR_SET_PDEATHSIG: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: getppid cannot fail.
    if unsafe { libc::getppid() } != parent_pid {
        return Err("the daemon exited before the child started".into());
    }
    Ok(())
}

/// Closes every fd except stdin/stdout/stderr and the control fd.
fn close_other_fds() {
    // SAFETY: close_range only closes descriptors; failing leaves them open, which the sandbox
    // layers (when configured) still confine. It is checked by the escape tests.
    unsafe {
        libc::syscall(libc::SYS_close_range, CONTROL_FD as u32 + 1, u32::MAX, 0u32);
    }
}

fn exec(plan: &SandboxPlan) -> ! {
    let cstr = |s: &[u8]| {
        CString::new(s).unwrap_or_else(|_| fail("launch_error", None, "NUL byte in plan"))
    };
    let path = cstr(plan.executable.as_os_str().as_bytes());
    let argv: Vec<CString> = plan.argv.iter().map(|a| cstr(a.as_bytes())).collect();
    let env: Vec<CString> = plan
        .env
        .iter()
        .map(|(k, v)| cstr(format!("{k}={v}").as_bytes()))
        .collect();
    let cwd = cstr(plan.cwd.as_os_str().as_bytes());
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    // SAFETY: all pointers come from CStrings alive until exec; the arrays are NULL-terminated.
    unsafe {
        if libc::chdir(cwd.as_ptr()) != 0 {
            fail(
                "launch_error",
                None,
                &format!(
                    "chdir {}: {}",
                    plan.cwd.display(),
                    std::io::Error::last_os_error()
                ),
            );
        }
        libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr());
    }
    fail(
        "launch_error",
        None,
        &format!(
            "exec {}: {}",
            plan.executable.display(),
            std::io::Error::last_os_error()
        ),
    )
}

/// Reports why nothing will run on the control fd, then exits.
pub(crate) fn fail(kind: &str, mechanism: Option<&str>, message: &str) -> ! {
    let mut line = match mechanism {
        Some(m) => json!({"type": kind, "mechanism": m, "message": message}),
        None => json!({"type": kind, "message": message}),
    }
    .to_string()
    .into_bytes();
    line.push(b'\n');
    // SAFETY: writing a local buffer to an fd we own; a failed write changes nothing.
    unsafe {
        libc::write(CONTROL_FD, line.as_ptr().cast(), line.len());
        libc::_exit(EXIT_REFUSED)
    }
}
