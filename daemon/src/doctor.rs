//! `ptcd doctor`: what this host can enforce, and a real confined run per policy to prove it.
//!
//! The host facts come from `sandbox::host` (pure probing); the proof comes from [`crate::probe`],
//! which starts an in-process daemon. Only this module prints: the domain modules return values.

use std::fmt::Write as _;
use std::path::Path;

use crate::policy::Policy;
use crate::python::Interpreter;
use crate::sandbox::host::{
    assessment, cgroups, landlock_abi, landlock_cap, landlock_level, policy_problems,
    user_namespaces,
};
use crate::sandbox::{identity, seccomp};

/// The `ptcd doctor` report, and whether the default policy can be enforced. `probes`: the
/// outcome of each policy's real confined run ([`crate::probe`]), by policy name.
pub fn doctor(
    python: Result<&Interpreter, String>,
    policies: &[std::sync::Arc<Policy>],
    probes: &[(String, crate::probe::Outcome)],
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
            Some(abi) => match landlock_cap() {
                Some(cap) => format!(
                    "ABI {abi}; runs use ABI {} (landlock_max_abi = {cap})",
                    landlock_level()
                ),
                None => format!("ABI {abi}; runs use ABI {}", landlock_level()),
            },
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
                "interpreter       {} (CPython {}, stdlib {}{}{})",
                py.executable.display(),
                py.version,
                py.stdlib.display(),
                py.libpython
                    .as_ref()
                    .map(|l| format!(", shared {}", l.display()))
                    .unwrap_or_default(),
                py.venv
                    .as_ref()
                    .map(|v| format!(", venv {}", v.display()))
                    .unwrap_or_default()
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
        if let Some(a) = assessment(policy) {
            for line in a.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
        let probe = probes
            .iter()
            .find(|(n, _)| *n == policy.name)
            .map(|(_, o)| o);
        match probe {
            Some(Ok(what)) => {
                let _ = writeln!(out, "    probe run: ok: {what}");
            }
            Some(Err(why)) => {
                let _ = writeln!(out, "    probe run: FAILED: {why}");
            }
            None => {
                let _ = writeln!(out, "    probe run: not run (no usable interpreter)");
            }
        }
        if policy.name == "default" {
            default_ok = problems.is_empty() && matches!(probe, Some(Ok(_)));
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
    // The probes mount scratch dirs: keep them out of the host's mount table, as `serve` does.
    let _ = crate::scratch::enter_private_mount_namespace();
    let probes = match &py {
        Ok(interpreter) => crate::probe::run(interpreter, &set).unwrap_or_else(|e| {
            set.names()
                .into_iter()
                .map(|n| (n, Err(format!("cannot start the probe: {e}"))))
                .collect()
        }),
        Err(_) => Vec::new(),
    };
    let (report, default_ok) = doctor(py.as_ref().map_err(Clone::clone), &policies, &probes);
    print!("{report}");
    if default_ok && py.is_ok() {
        println!("ok: the default policy can be enforced on this host");
        0
    } else {
        println!("NOT OK: runs on the default policy would be refused (-32006) on this host");
        1
    }
}
