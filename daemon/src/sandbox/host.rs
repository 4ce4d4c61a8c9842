//! What this host can enforce: `ptcd doctor` and the `sandbox` field of `initialize`.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use super::{identity, seccomp};
use crate::policy::{Policy, LANDLOCK_MAX_ABI};
use crate::python::Interpreter;

/// The kernel's Landlock ABI version, or `None` when Landlock is unavailable.
pub fn landlock_abi() -> Option<u32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a NULL attr and size 0 this syscall only returns the ABI version.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    (v > 0).then_some(v as u32)
}

/// Whether unprivileged user namespaces can be created (informational: ptcd does not need them).
pub fn user_namespaces() -> bool {
    let max = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let unpriv = std::fs::read_to_string("/proc/sys/kernel/unprivileged_userns_clone")
        .map(|s| s.trim() != "0")
        .unwrap_or(true);
    max > 0 && unpriv
}

/// The cgroup hierarchies mounted here, as `(type, mount point)`.
pub fn cgroups() -> Vec<(String, String)> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.get(2) {
                Some(&"cgroup2") => Some(("cgroup2".to_string(), f[1].to_string())),
                Some(&"cgroup") => Some((format!("cgroup v1 ({})", f[3]), f[1].to_string())),
                _ => None,
            }
        })
        .collect()
}

/// Why `policy` cannot be enforced on this host, one line per problem (empty: it can).
pub fn policy_problems(policy: &Policy) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(min) = policy.landlock_min_abi {
        match landlock_abi() {
            None => problems.push("landlock: not available on this kernel".to_string()),
            Some(abi) if abi < min => problems.push(format!(
                "landlock: the policy requires ABI {min}, this kernel has ABI {abi}"
            )),
            Some(_) => {}
        }
    }
    if policy.seccomp && !seccomp::available() {
        problems.push("seccomp: filters are not available on this kernel".into());
    }
    if (policy.network_namespace || policy.cgroup.is_some()) && !identity::daemon_is_root() {
        problems.push("network_namespace/cgroup: need the daemon to run as root".into());
    }
    if let Some(c) = &policy.cgroup {
        let dir = Path::new(&c.parent);
        for file in ["cgroup.procs", "memory.max", "pids.max"] {
            let probe = if file == "cgroup.procs" {
                dir.join(file)
            } else {
                dir.join("cgroup.subtree_control")
            };
            if !probe.exists() {
                problems.push(format!(
                    "cgroup: {} is not a cgroup v2 directory with {file} available",
                    dir.display()
                ));
                break;
            }
        }
        if let Ok(ctl) = std::fs::read_to_string(dir.join("cgroup.subtree_control")) {
            for controller in ["memory", "pids"] {
                if !ctl.split_whitespace().any(|c| c == controller) {
                    problems.push(format!(
                        "cgroup: the {controller} controller is not enabled in {}/cgroup.subtree_control",
                        dir.display()
                    ));
                }
            }
        }
    }
    problems
}

/// The `sandbox` field of `initialize`: what the default policy enforces on this host.
pub fn enforced_summary() -> serde_json::Value {
    static SUMMARY: OnceLock<serde_json::Value> = OnceLock::new();
    SUMMARY
        .get_or_init(|| {
            let policy = crate::policy::PolicySet::builtin()
                .get(None)
                .expect("built-in default policy");
            let landlock = match (policy.landlock_min_abi, landlock_abi()) {
                (Some(min), Some(abi)) if abi >= min => Some(abi.min(LANDLOCK_MAX_ABI)),
                _ => None,
            };
            serde_json::json!({
                "landlock_abi": landlock,
                "seccomp": policy.seccomp && seccomp::available(),
                "namespaces": policy.network_namespace && identity::daemon_is_root(),
            })
        })
        .clone()
}

/// The `ptcd doctor` report, and whether the default policy can be enforced.
pub fn doctor(
    python: Result<&Interpreter, String>,
    policies: &[std::sync::Arc<Policy>],
) -> (String, bool) {
    let mut out = String::new();
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut uname: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct we own.
    let kernel = if unsafe { libc::uname(&mut uname) } == 0 {
        // SAFETY: the kernel NUL-terminates the release string.
        unsafe { std::ffi::CStr::from_ptr(uname.release.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    } else {
        "unknown".into()
    };
    let _ = writeln!(out, "kernel            {kernel}");
    let _ = writeln!(
        out,
        "landlock          {}",
        match landlock_abi() {
            Some(abi) => format!("ABI {abi} (ptcd uses up to {LANDLOCK_MAX_ABI})"),
            None => "not available".into(),
        }
    );
    let _ = writeln!(out, "seccomp           {}", yes(seccomp::available()));
    let _ = writeln!(out, "user namespaces   {}", yes(user_namespaces()));
    let _ = writeln!(
        out,
        "running as root   {} (children get per-run uids only when root)",
        yes(identity::daemon_is_root())
    );
    let _ = writeln!(
        out,
        "scratch dirs      {}",
        match crate::scratch::probe_mode() {
            crate::scratch::Mode::Tmpfs =>
                "tmpfs per run (scratch_mb enforced by the kernel: ENOSPC)",
            crate::scratch::Mode::Measured =>
                "measured (cannot mount a tmpfs: no CAP_SYS_ADMIN); scratch_mb polled every 100 ms",
        }
    );
    let cg = cgroups();
    if cg.is_empty() {
        let _ = writeln!(out, "cgroups           none mounted");
    }
    for (kind, at) in cg {
        let _ = writeln!(out, "cgroups           {kind} at {at}");
    }
    match python {
        Ok(py) => {
            let _ = writeln!(
                out,
                "interpreter       {} (Python {}, stdlib {})",
                py.executable.display(),
                py.version,
                py.stdlib.display()
            );
        }
        Err(e) => {
            let _ = writeln!(out, "interpreter       NOT USABLE: {e}");
        }
    }
    let mut default_ok = false;
    for policy in policies {
        let problems = policy_problems(policy);
        let _ = writeln!(
            out,
            "policy {:<10} {}",
            policy.name,
            if problems.is_empty() {
                format!("can be enforced: {}", policy.layers().join(", "))
            } else {
                format!("CANNOT be enforced:\n    {}", problems.join("\n    "))
            }
        );
        if policy.name == "default" {
            default_ok = problems.is_empty();
        }
    }
    (out, default_ok)
}

/// `ptcd doctor`: prints the report; exit status 0 when the default policy can be enforced.
pub fn doctor_main(python: Option<&Path>, policy_dir: Option<&Path>) -> i32 {
    let py = Interpreter::resolve(python).map_err(|e| e.to_string());
    let set = match policy_dir {
        Some(dir) => match crate::policy::PolicySet::with_dir(dir) {
            Ok(set) => set,
            Err(errors) => {
                for e in errors {
                    eprintln!("{e}");
                }
                return 2;
            }
        },
        None => crate::policy::PolicySet::builtin(),
    };
    let policies: Vec<_> = set
        .names()
        .iter()
        .filter_map(|n| set.get(Some(n)).ok())
        .collect();
    let (report, default_ok) = doctor(py.as_ref().map_err(Clone::clone), &policies);
    print!("{report}");
    if default_ok && py.is_ok() {
        println!("ok: the default policy can be enforced on this host");
        0
    } else {
        println!("NOT OK: runs on the default policy would be refused (-32006) on this host");
        1
    }
}
