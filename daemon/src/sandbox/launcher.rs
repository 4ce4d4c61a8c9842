//! The child side of a launch: a fresh, single-threaded process that confines itself according
//! to the plan and then becomes the interpreter.
//!
//! Order (see `SECURITY.md`): read the plan from fd 4 (never the command line: it holds the
//! client's `env` values) → refuse early if the plan says so → close fds → the shim's source on
//! fd 4 (`shim::SHIM_FD`, a sealed memfd; the interpreter's `-c` is only `shim::BOOTSTRAP`) →
//! `oom_score_adj` 1000 (the child, not the daemon, is the OOM killer's pick) → cgroup → network
//! namespace → open the Landlock ruleset and its path fds (still root) → drop groups/gid/uid
//! (a fork server template keeps `CAP_KILL`/`CAP_SETUID`/`CAP_SETGID` instead: `retain_setid_identity`) →
//! `PR_SET_PDEATHSIG` + `getppid` re-check → `setsid` → rlimits → `no_new_privs` → Landlock
//! `restrict_self` → seccomp → `chdir` + `execve` with the plan's environment only.
//!
//! Any failure is reported on the control fd as one JSON line (`sandbox_error` naming the layer
//! when a confinement layer failed, `launch_error` otherwise) and the launcher exits without
//! running any script code: fail closed.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use serde_json::json;

use super::caps;
use super::landlock;
use super::plan::{CgroupPlan, Identity, Resource, SandboxPlan, SetidRange};
use super::seccomp;
use super::spawn::{sealed_memfd, PLAN_FD};
use crate::shim::{CONTROL_FD, SHIM_FD, SHIM_SOURCE};

/// Exit status of a launcher that refused to start the interpreter.
pub const EXIT_REFUSED: i32 = 126;

/// Largest plan the launcher reads (a plan is a few kB plus the run's `env`).
const MAX_PLAN_BYTES: u64 = 64 << 20;

/// Runs the launcher with the plan on [`PLAN_FD`]. Never returns.
pub fn main() -> ! {
    let plan: SandboxPlan = match read_plan() {
        Ok(plan) => plan,
        Err(e) => fail("launch_error", None, &format!("bad sandbox plan: {e}")),
    };
    if let Some(r) = &plan.refuse {
        fail("sandbox_error", Some(&r.mechanism), &r.message);
    }
    close_other_fds();
    hand_over_shim().unwrap_or_else(|e| fail("launch_error", None, &format!("the shim's fd: {e}")));
    prefer_as_oom_victim();
    if let Some(cg) = &plan.cgroup {
        join_cgroup(cg).unwrap_or_else(|m| fail("sandbox_error", Some("cgroup"), &m));
    }
    if plan.network_namespace {
        // SAFETY: plain syscall.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            fail(
                "sandbox_error",
                Some("network_namespace"),
                &format!(
                    "unshare(CLONE_NEWNET): {} (needs CAP_SYS_ADMIN, which container runtimes and unprivileged daemons lack; seccomp already denies every socket)",
                    errno()
                ),
            );
        }
    }
    let ruleset = plan.landlock.as_ref().map(|ll| {
        landlock::prepare(ll).unwrap_or_else(|m| fail("sandbox_error", Some("landlock"), &m))
    });
    match (plan.identity, plan.retain_setid) {
        (Some(id), None) => drop_identity(id),
        (Some(id), Some(range)) => retain_setid_identity(id, range),
        (None, Some(_)) => Err("retain_setid without an identity to switch to".into()),
        (None, None) => Ok(()),
    }
    .unwrap_or_else(|m| fail("sandbox_error", Some("identity"), &m));
    // A fork server template has no scratch dir of its own (its cwd is `/`).
    if plan.identity.is_some() && plan.retain_setid.is_none() {
        scratch_reachable(&plan).unwrap_or_else(|m| fail("launch_error", None, &m));
    }
    if let Err(message) = die_with_parent(plan.parent_pid) {
        fail("launch_error", None, &message);
    }
    // SAFETY: plain syscall, no memory involved.
    if unsafe { libc::setsid() } < 0 {
        fail("launch_error", None, &format!("setsid: {}", errno()));
    }
    for r in &plan.rlimits {
        set_rlimit(r.resource, r.soft, r.hard)
            .unwrap_or_else(|m| fail("sandbox_error", Some("rlimits"), &m));
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        fail(
            "sandbox_error",
            Some("no_new_privs"),
            &format!("PR_SET_NO_NEW_PRIVS: {}", errno()),
        );
    }
    if let Some(ruleset) = ruleset {
        landlock::enforce(ruleset).unwrap_or_else(|m| fail("sandbox_error", Some("landlock"), &m));
    }
    for (i, program) in plan.seccomp.iter().enumerate() {
        seccomp::install(program).unwrap_or_else(|m| {
            fail(
                "sandbox_error",
                Some("seccomp"),
                &format!("filter {}: {m}", i + 1),
            )
        });
    }
    if plan.compensation.any() {
        seccomp::install_compensation(plan.compensation)
            .unwrap_or_else(|m| fail("sandbox_error", Some("seccomp"), &m));
    }
    exec(&plan)
}

/// Reads and closes the plan fd.
fn read_plan() -> Result<SandboxPlan, String> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    // SAFETY: the daemon put the plan on PLAN_FD for this process; nothing else owns it, and the
    // `File` closes it when dropped here.
    let file = unsafe { std::fs::File::from_raw_fd(PLAN_FD) };
    let mut bytes = Vec::new();
    file.take(MAX_PLAN_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading fd {PLAN_FD}: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// `oom_score_adj` = 1000: under memory pressure the kernel kills the script, not the daemon
/// (whose unit lowers its own score). Raising one's own score needs no privilege; done while
/// still root, before `/proc` is out of reach. Best effort: a host without `/proc` only loses
/// the preference.
fn prefer_as_oom_victim() {
    let _ = std::fs::write("/proc/self/oom_score_adj", b"1000");
}

/// No supplementary groups, then gid, then uid; verifies that root cannot be regained.
fn drop_identity(id: Identity) -> Result<(), String> {
    switch_ids(id)?;
    // SAFETY: plain syscalls with integer arguments.
    unsafe {
        if libc::setuid(0) == 0 || libc::getuid() != id.uid || libc::geteuid() != id.uid {
            return Err("uid 0 could be regained after dropping it".into());
        }
        // Ambient capabilities would survive exec; a uid change already clears the others.
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
    }
    Ok(())
}

/// No supplementary groups, then gid, then uid (real, effective and saved).
fn switch_ids(id: Identity) -> Result<(), String> {
    // SAFETY: plain syscalls with integer arguments (setgroups with an empty list).
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(format!("setgroups: {}", errno()));
        }
        if libc::setresgid(id.gid, id.gid, id.gid) != 0 {
            return Err(format!("setresgid({}): {}", id.gid, errno()));
        }
        if libc::setresuid(id.uid, id.uid, id.uid) != 0 {
            return Err(format!("setresuid({}): {}", id.uid, errno()));
        }
    }
    Ok(())
}

/// A fork server template's identity: uid/gid `id` (from `range`, leased like a run's) keeping
/// exactly `CAP_KILL`, `CAP_SETUID` and `CAP_SETGID`, in the effective, permitted, inheritable
/// and ambient sets, so that they survive the exec of the interpreter (no file capabilities,
/// under `no_new_privs`) and the template can give each forked child its run's uid. Seccomp
/// bounds every id it may set to `range` ([`seccomp::template_filters`]); `CAP_KILL` is there
/// only so that the kernel delivers its children's parent-death signal across uids, and
/// Landlock's signal scope (required for a template with per-run uids) keeps it to them.
///
/// Order: `PR_SET_KEEPCAPS` (else the switch away from uid 0 clears the permitted set) → drop
/// every other capability from the bounding set when `CAP_SETPCAP` is held (a container without
/// it keeps its bounding set: with `no_new_privs` and no exec after this one it grants nothing)
/// → no supplementary groups → gid → uid → capset → ambient raise → verify.
fn retain_setid_identity(id: Identity, range: SetidRange) -> Result<(), String> {
    let keep = [caps::CAP_KILL, caps::CAP_SETUID, caps::CAP_SETGID];
    for (what, v) in [("uid", id.uid), ("gid", id.gid)] {
        if !(range.first..=range.last).contains(&v) {
            return Err(format!(
                "template {what} {v} is outside the range {}-{}",
                range.first, range.last
            ));
        }
    }
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(format!("PR_SET_KEEPCAPS: {}", errno()));
    }
    let before = caps::get().map_err(|e| format!("capget: {e}"))?;
    if before.effective & caps::bit(caps::CAP_SETPCAP) != 0 {
        caps::drop_bounding_except(&keep).map_err(|e| format!("PR_CAPBSET_DROP: {e}"))?;
    }
    switch_ids(id)?;
    // SAFETY: plain syscalls with no arguments.
    unsafe {
        if libc::getuid() != id.uid || libc::geteuid() != id.uid || libc::getgid() != id.gid {
            return Err("the uid/gid switch did not take".into());
        }
    }
    let wanted = caps::Caps::only(&keep);
    caps::set(wanted).map_err(|e| format!("capset(CAP_KILL, CAP_SETUID, CAP_SETGID): {e}"))?;
    for cap in keep {
        caps::raise_ambient(cap).map_err(|e| format!("PR_CAP_AMBIENT_RAISE {cap}: {e}"))?;
    }
    // SAFETY: prctl with integer arguments only; exec clears it anyway.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    let held = caps::get().map_err(|e| format!("capget: {e}"))?;
    if held != wanted || !keep.iter().all(|&c| caps::ambient_is_set(c)) {
        return Err(format!(
            "capabilities are {held:?} (ambient kill {}, setuid {}, setgid {}), not exactly CAP_KILL, CAP_SETUID and CAP_SETGID",
            caps::ambient_is_set(caps::CAP_KILL),
            caps::ambient_is_set(caps::CAP_SETUID),
            caps::ambient_is_set(caps::CAP_SETGID)
        ));
    }
    Ok(())
}

/// After the uid drop: the scratch dir must be reachable by its absolute path (HOME, TMPDIR).
fn scratch_reachable(plan: &SandboxPlan) -> Result<(), String> {
    let path = CString::new(plan.cwd.as_os_str().as_bytes()).map_err(|_| "NUL in scratch path")?;
    // SAFETY: `path` is a valid C string for the call.
    if unsafe { libc::access(path.as_ptr(), libc::R_OK | libc::W_OK | libc::X_OK) } != 0 {
        return Err(format!(
            "the scratch dir {} is not reachable by the run's uid: {} (every parent of the \
             scratch root must be searchable by others, e.g. mode 0711)",
            plan.cwd.display(),
            errno()
        ));
    }
    Ok(())
}

/// Moves the launcher into its cgroup (v2) after setting the limits.
fn join_cgroup(cg: &CgroupPlan) -> Result<(), String> {
    match std::fs::create_dir(&cg.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("mkdir {}: {e}", cg.dir.display())),
    }
    let write = |file: &str, value: String| {
        std::fs::write(cg.dir.join(file), value)
            .map_err(|e| format!("{}/{file}: {e}", cg.dir.display()))
    };
    write("memory.max", cg.memory_max.to_string())?;
    write("pids.max", cg.pids_max.to_string())?;
    write("cgroup.procs", std::process::id().to_string())
}

fn set_rlimit(resource: Resource, soft: u64, hard: u64) -> Result<(), String> {
    let which = match resource {
        Resource::Cpu => libc::RLIMIT_CPU,
        Resource::As => libc::RLIMIT_AS,
        Resource::Fsize => libc::RLIMIT_FSIZE,
        Resource::Nofile => libc::RLIMIT_NOFILE,
        Resource::Nproc => libc::RLIMIT_NPROC,
        Resource::Core => libc::RLIMIT_CORE,
        Resource::Memlock => libc::RLIMIT_MEMLOCK,
        Resource::Msgqueue => libc::RLIMIT_MSGQUEUE,
    };
    // Never above the current hard limit: raising it needs CAP_SYS_RESOURCE, which container
    // runtimes drop; a lower limit inherited from the host or container is only stricter.
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `current` is a valid rlimit for the duration of the call.
    if unsafe { libc::getrlimit(which, &mut current) } != 0 {
        return Err(format!("{}: getrlimit: {}", resource.name(), errno()));
    }
    let hard = hard.min(current.rlim_max);
    let lim = libc::rlimit {
        rlim_cur: soft.min(hard),
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit for the duration of the call.
    if unsafe { libc::setrlimit(which, &lim) } != 0 {
        return Err(format!("{} = {soft}/{hard}: {}", resource.name(), errno()));
    }
    Ok(())
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
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
        return Err(format!("PR_SET_PDEATHSIG: {}", errno()));
    }
    // SAFETY: getppid cannot fail.
    if unsafe { libc::getppid() } != parent_pid {
        return Err("the daemon exited before the child started".into());
    }
    Ok(())
}

/// Closes every fd except stdin/stdout/stderr and the control fd.
fn close_other_fds() {
    // SAFETY: close_range only closes descriptors.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, CONTROL_FD as u32 + 1, u32::MAX, 0u32) };
    if rc != 0 {
        // Older kernels: close them one by one.
        for fd in (CONTROL_FD + 1)..1024 {
            // SAFETY: closing an fd that may not exist is harmless.
            unsafe {
                libc::close(fd);
            }
        }
    }
}

/// The shim's source on [`SHIM_FD`], inherited by the interpreter (which closes it first).
fn hand_over_shim() -> std::io::Result<()> {
    use std::os::fd::{AsRawFd, IntoRawFd};
    let memfd = sealed_memfd(c"ptcd-shim", SHIM_SOURCE.as_bytes())?;
    // SAFETY: fcntl/dup2 on fds this process owns, integer arguments only.
    unsafe {
        if memfd.as_raw_fd() == SHIM_FD {
            // Already in place (the lowest free fd after close_other_fds): keep it across exec.
            if libc::fcntl(memfd.into_raw_fd(), libc::F_SETFD, 0) != 0 {
                return Err(errno());
            }
        } else if libc::dup2(memfd.as_raw_fd(), SHIM_FD) < 0 {
            return Err(errno());
        }
    }
    Ok(())
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
                &format!("chdir {}: {}", plan.cwd.display(), errno()),
            );
        }
        libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr());
    }
    fail(
        "launch_error",
        None,
        &format!("exec {}: {}", plan.executable.display(), errno()),
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
