//! What this host can enforce: `ptcd doctor` and the `sandbox` field of `initialize`.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use super::coverage::{self, Assessment, Facts};
use super::{identity, seccomp};
use crate::policy::{Policy, LANDLOCK_MAX_ABI};

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

/// `landlock_max_abi`: the highest ABI the daemon may use (0: no cap). Set once at start-up.
static LANDLOCK_CAP: AtomicU32 = AtomicU32::new(0);

/// Caps the Landlock ABI this process uses at `max` (`landlock_max_abi`, `--landlock-max-abi`):
/// a newer kernel is then used as if it were older, with the compensating layers of
/// [`coverage`]. Call before the first run or report.
pub fn set_landlock_cap(max: Option<u32>) {
    LANDLOCK_CAP.store(max.unwrap_or(0), Ordering::Relaxed);
}

/// Validates a `landlock_max_abi` value.
pub fn check_landlock_cap(n: u32) -> Result<(), String> {
    if (1..=LANDLOCK_MAX_ABI).contains(&n) {
        Ok(())
    } else {
        Err(format!(
            "{n}: must be a Landlock ABI from 1 to {LANDLOCK_MAX_ABI} (1: Linux 5.13, 2: 5.19, 3: 6.2, 4: 6.7, 5: 6.10, 6: 6.12, 7: 6.15)"
        ))
    }
}

/// The configured cap, if any.
pub fn landlock_cap() -> Option<u32> {
    match LANDLOCK_CAP.load(Ordering::Relaxed) {
        0 => None,
        n => Some(n),
    }
}

/// The Landlock ABI runs use: the kernel's, capped at what this daemon knows
/// ([`LANDLOCK_MAX_ABI`]) and at `landlock_max_abi`; 0 when Landlock is unavailable.
pub fn landlock_level() -> u32 {
    let kernel = landlock_abi().unwrap_or(0).min(LANDLOCK_MAX_ABI);
    match landlock_cap() {
        Some(cap) => kernel.min(cap),
        None => kernel,
    }
}

/// How `policy`'s Landlock layer is enforced here (`None`: the policy turns Landlock off).
pub fn assessment(policy: &Policy) -> Option<Assessment> {
    policy.landlock_min_abi?;
    Some(coverage::assess(Facts {
        abi: landlock_level(),
        seccomp: policy.seccomp && seccomp::available(),
        per_run_uid: policy.identity.is_some() && identity::daemon_is_root(),
    }))
}

/// "this kernel has ABI 7" or "this host uses ABI 2 (landlock_max_abi = 2, the kernel has 7)".
fn level_text() -> String {
    match (landlock_abi(), landlock_cap()) {
        (Some(k), Some(cap)) if cap < k.min(LANDLOCK_MAX_ABI) => {
            format!("this host uses ABI {cap} (landlock_max_abi = {cap}; the kernel has ABI {k})")
        }
        (Some(k), _) => format!("this kernel has ABI {k}"),
        (None, _) => "this kernel has no Landlock".into(),
    }
}

/// Why the Landlock layer of a policy with `min_abi` cannot apply at the ABI in use, if so.
pub fn landlock_refusal(min_abi: u32, assessment: &Assessment) -> Option<String> {
    if assessment.abi < min_abi && assessment.abi > 0 {
        return Some(format!(
            "the policy requires ABI {min_abi}, {}",
            level_text()
        ));
    }
    let missing = assessment.missing();
    (!missing.is_empty()).then(|| missing.join("; "))
}

/// The capabilities a root daemon needs to give runs their own uid, by bit number: switch to
/// the uid, hand it its scratch dir, end its processes, remove what it left.
const IDENTITY_CAPS: &[(u32, &str)] = &[
    (0, "CAP_CHOWN"),
    (1, "CAP_DAC_OVERRIDE"),
    (3, "CAP_FOWNER"),
    (5, "CAP_KILL"),
    (6, "CAP_SETGID"),
    (7, "CAP_SETUID"),
];

/// Which of [`IDENTITY_CAPS`] this root process lacks (a container's `securityContext` may drop
/// them); empty when it has them all or is not root. Read once from `/proc/self/status`.
pub fn missing_identity_caps() -> &'static [&'static str] {
    static MISSING: OnceLock<Vec<&'static str>> = OnceLock::new();
    MISSING.get_or_init(|| {
        if !identity::daemon_is_root() {
            return Vec::new();
        }
        let effective = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapEff:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
            .unwrap_or(0);
        IDENTITY_CAPS
            .iter()
            .filter(|(bit, _)| effective & (1u64 << bit) == 0)
            .map(|(_, name)| *name)
            .collect()
    })
}

/// Why per-run uids cannot work here, if they cannot.
pub fn identity_refusal() -> Option<String> {
    identity_refusal_for(missing_identity_caps())
}

/// Why per-run uids cannot work for a root daemon lacking the `missing` capabilities (pure).
pub fn identity_refusal_for(missing: &[&str]) -> Option<String> {
    (!missing.is_empty()).then(|| {
        format!(
            "the daemon runs as root without {} (needed to run each run as its own uid and to end and clean up after it; add them to the container's capabilities)",
            missing.join(", ")
        )
    })
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
    if let (Some(min), Some(a)) = (policy.landlock_min_abi, assessment(policy)) {
        if let Some(m) = landlock_refusal(min, &a) {
            problems.push(if m.starts_with("landlock") {
                m
            } else {
                format!("landlock: {m}")
            });
        }
    }
    if policy.identity.is_some() {
        if let Some(m) = identity_refusal() {
            problems.push(format!("identity: {m}"));
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
            let assessment = assessment(&policy);
            let landlock = match (policy.landlock_min_abi, &assessment) {
                (Some(min), Some(a)) if landlock_refusal(min, a).is_none() => Some(a.abi),
                _ => None,
            };
            serde_json::json!({
                "landlock_abi": landlock,
                "landlock_kernel_abi": landlock_abi(),
                "landlock_max_abi": landlock_cap(),
                "compensations": assessment
                    .map(|a| a.compensations_json())
                    .unwrap_or_else(|| serde_json::json!([])),
                "seccomp": policy.seccomp && seccomp::available(),
                "namespaces": policy.network_namespace && identity::daemon_is_root(),
            })
        })
        .clone()
}
