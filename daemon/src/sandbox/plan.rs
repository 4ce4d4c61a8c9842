//! What one child is allowed to be: a pure value, built before the launch and unit-tested.
//!
//! [`build`] turns a validated [`Policy`] plus the run's limits and scratch dir into a
//! [`SandboxPlan`]: the identity to switch to, rlimits, Landlock rules (placeholders resolved),
//! seccomp programs (already compiled to BPF), and the environment. The launcher only applies it.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::coverage::{self, Compensation, Facts};
use super::identity::{Leased, UidLease};
use super::seccomp;
use crate::limits::Limits;
use crate::policy::{FsAccess, Policy};
use crate::python::Interpreter;
use crate::shim;

/// Everything the launcher needs to confine itself and exec the interpreter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxPlan {
    /// The daemon's pid: the launcher exits if its parent is already someone else.
    pub parent_pid: i32,
    /// The interpreter binary.
    pub executable: PathBuf,
    /// argv, including argv[0].
    pub argv: Vec<String>,
    /// The complete environment of the child.
    pub env: Vec<(String, String)>,
    /// The working directory (the run's scratch dir).
    pub cwd: PathBuf,
    /// Hex of the BPF program the shim installs before user code (forbids exec); not applied
    /// by the launcher. Borrowed from the compiled constants in every plan the daemon builds
    /// (no plan copies the programs).
    pub late_seccomp: Option<Cow<'static, str>>,
    /// A layer that cannot apply, found while building: the launcher reports it and stops.
    pub refuse: Option<Refusal>,
    /// uid/gid to switch to (daemon running as root), with no supplementary groups.
    pub identity: Option<Identity>,
    /// Only for a fork server template (see [`super::template`]): switch to `identity` but keep
    /// `CAP_SETUID`/`CAP_SETGID` (ambient, across the exec), to set each forked run child's uid
    /// from this range. `None` for every run plan.
    #[serde(default)]
    pub retain_setid: Option<SetidRange>,
    /// Resource limits, applied in order.
    pub rlimits: Vec<Rlimit>,
    /// Landlock ruleset; `None` when the policy turns Landlock off.
    pub landlock: Option<LandlockPlan>,
    /// Hex BPF programs the launcher installs just before exec, in order.
    pub seccomp: Cow<'static, [String]>,
    /// Seccomp rules standing in for Landlock features the ABI in use lacks (see
    /// [`coverage`]); compiled by the launcher, which knows its own pid.
    #[serde(default)]
    pub compensation: Compensation,
    /// Move into a new, empty network namespace (needs root).
    pub network_namespace: bool,
    /// Join a per-uid cgroup v2 child of this directory, with these limits.
    pub cgroup: Option<CgroupPlan>,
    /// Keeps the uid reserved while the plan (and so the run) lives.
    #[serde(skip)]
    pub uid_lease: Option<Arc<UidLease>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    pub mechanism: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
}

/// The uids (and gids) a fork server template may give its children: the policy's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetidRange {
    pub first: u32,
    pub last: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    Cpu,
    As,
    Fsize,
    Nofile,
    Nproc,
    Core,
    Memlock,
    Msgqueue,
}

impl Resource {
    pub fn name(self) -> &'static str {
        match self {
            Resource::Cpu => "RLIMIT_CPU",
            Resource::As => "RLIMIT_AS",
            Resource::Fsize => "RLIMIT_FSIZE",
            Resource::Nofile => "RLIMIT_NOFILE",
            Resource::Nproc => "RLIMIT_NPROC",
            Resource::Core => "RLIMIT_CORE",
            Resource::Memlock => "RLIMIT_MEMLOCK",
            Resource::Msgqueue => "RLIMIT_MSGQUEUE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub resource: Resource,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LandlockPlan {
    /// The lowest ABI the policy accepts; a lower kernel ABI fails the run.
    pub min_abi: u32,
    /// The ABI to enforce: the host's, capped by `landlock_max_abi` (chosen by the daemon).
    pub abi: u32,
    pub rules: Vec<FsRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsRule {
    pub path: PathBuf,
    pub access: FsAccess,
    pub optional: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CgroupPlan {
    /// The run's cgroup directory (created by the launcher if missing).
    pub dir: PathBuf,
    pub memory_max: u64,
    pub pids_max: u64,
}

const MIB: u64 = 1 << 20;

/// Facts about the daemon process a plan depends on, passed in (like the uid lease) so that
/// [`build`] stays pure.
#[derive(Debug, Clone, Copy)]
pub struct Host<'a> {
    /// The resolved CPython binary.
    pub python: &'a Interpreter,
    /// The daemon's pid: the launcher exits if its parent is already someone else.
    pub parent_pid: i32,
    /// The Landlock ABI runs use: the kernel's, capped by `landlock_max_abi`.
    pub landlock_abi: u32,
    /// Capabilities a root daemon lacks to run, end and clean up after per-run uids (a
    /// container without CAP_KILL...): such a daemon refuses per-run-uid plans.
    pub missing_identity_caps: &'a [&'static str],
}

/// The plan of one run: confinement from the policy, limits from the run, paths from the host,
/// and the uid lease taken before (`identity::for_policy`), with the scratch dir it owns.
pub fn build(
    host: Host<'_>,
    policy: &Policy,
    limits: &Limits,
    scratch: &Path,
    run_id: &str,
    extra_env: &[(String, String)],
    leased: &Leased,
) -> SandboxPlan {
    let python = host.python;
    let landlock_abi = host.landlock_abi;
    let scratch_str = scratch.display().to_string();
    let mut env = vec![
        ("LANG".to_string(), "C.UTF-8".to_string()),
        ("PYTHONIOENCODING".into(), "utf-8".into()),
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
        ("MALLOC_ARENA_MAX".into(), "2".into()),
        ("HOME".into(), scratch_str.clone()),
        ("TMPDIR".into(), scratch_str),
        ("PTCD_RUN_ID".into(), run_id.to_string()),
    ];
    for (k, v) in extra_env {
        env.retain(|(existing, _)| existing != k);
        env.push((k.clone(), v.clone()));
    }
    let exe = python.argv0(policy.python_site).display().to_string();
    let mut argv = vec![exe, "-I".into()];
    if !policy.python_site {
        argv.push("-S".into());
    }
    argv.extend(["-B".into(), "-c".into(), shim::BOOTSTRAP.into()]);

    let mut refuse = None;
    let (identity, uid_lease) = match leased {
        Leased::Uid(lease) => (
            Some(Identity {
                uid: lease.uid,
                gid: lease.uid,
            }),
            Some(lease.clone()),
        ),
        Leased::Refused(message) => {
            refuse = Some(Refusal {
                mechanism: "identity".into(),
                message: message.clone(),
            });
            (None, None)
        }
        Leased::Unswitched => (None, None),
    };
    if identity.is_some() {
        // A root daemon that could switch uids but not end or clean up after them would leave
        // runs it cannot stop: refuse instead.
        if let Some(message) = super::host::identity_refusal_for(host.missing_identity_caps) {
            refuse.get_or_insert(Refusal {
                mechanism: "identity".into(),
                message,
            });
        }
    }

    let x = &policy.rlimits;
    let cpu_s = limits.cpu_ms.div_ceil(1000).max(1);
    let mut rlimits = vec![
        Rlimit {
            resource: Resource::Cpu,
            soft: cpu_s,
            hard: cpu_s + 1,
        },
        same(Resource::As, limits.memory_mb.saturating_mul(MIB)),
        same(Resource::Fsize, x.file_size_mb.saturating_mul(MIB)),
        same(Resource::Nofile, x.open_files),
        same(Resource::Core, 0),
        same(Resource::Memlock, 64 * 1024),
        same(Resource::Msgqueue, 0),
    ];
    if identity.is_some() {
        // Counts every task of the uid: only meaningful when the uid is the run's own.
        rlimits.push(same(Resource::Nproc, x.threads));
    }

    let mut compensation = Compensation::default();
    if let Some(min_abi) = policy.landlock_min_abi {
        let assessment = coverage::assess(Facts {
            abi: landlock_abi,
            seccomp: policy.seccomp,
            per_run_uid: identity.is_some(),
        });
        compensation = assessment.compensation;
        if let Some(message) = super::host::landlock_refusal(min_abi, &assessment) {
            refuse.get_or_insert(Refusal {
                mechanism: "landlock".into(),
                message,
            });
        }
    }
    let landlock = policy.landlock_min_abi.map(|min_abi| LandlockPlan {
        min_abi,
        abi: landlock_abi,
        rules: policy
            .filesystem
            .iter()
            .filter_map(|e| match resolve(&e.path, python, scratch) {
                Some(path) => Some(FsRule {
                    path: PathBuf::from(path),
                    access: e.access,
                    optional: e.optional,
                }),
                // A placeholder this interpreter has no value for ({venv} outside a venv).
                None if e.optional => None,
                None => {
                    refuse.get_or_insert(Refusal {
                        mechanism: "landlock".into(),
                        message: format!(
                            "required path {}: the interpreter {} has no value for its placeholder",
                            e.path,
                            python.executable.display()
                        ),
                    });
                    None
                }
            })
            .collect(),
    });

    let (seccomp, late_seccomp) = if policy.seccomp {
        (
            Cow::Borrowed(seccomp::early_filters()),
            Some(Cow::Borrowed(seccomp::late_filter())),
        )
    } else {
        (Cow::Borrowed(&[][..]), None)
    };

    let cgroup = policy.cgroup.as_ref().map(|c| CgroupPlan {
        dir: Path::new(&c.parent).join(match &identity {
            Some(id) => format!("ptcd-uid-{}", id.uid),
            None => format!("ptcd-{run_id}"),
        }),
        memory_max: c.memory_mb.unwrap_or(limits.memory_mb).saturating_mul(MIB),
        pids_max: c.pids.unwrap_or(x.threads),
    });

    SandboxPlan {
        parent_pid: host.parent_pid,
        executable: python.executable.clone(),
        argv,
        env,
        cwd: scratch.to_path_buf(),
        late_seccomp,
        refuse,
        identity,
        retain_setid: None,
        rlimits,
        landlock,
        seccomp,
        compensation,
        network_namespace: policy.network_namespace,
        cgroup,
        uid_lease,
    }
}

fn same(resource: Resource, value: u64) -> Rlimit {
    Rlimit {
        resource,
        soft: value,
        hard: value,
    }
}

/// Substitutes the placeholders of a policy path; `None` when the interpreter has no value for
/// one of them (`{venv}` outside a venv, `{libpython}` for a static build).
pub fn resolve(path: &str, python: &Interpreter, scratch: &Path) -> Option<String> {
    let mut out = path
        .replace("{python}", &python.executable.display().to_string())
        .replace("{stdlib}", &python.stdlib.display().to_string())
        .replace("{scratch}", &scratch.display().to_string())
        .replace("{version}", &python.version);
    for (placeholder, value) in [("{venv}", &python.venv), ("{libpython}", &python.libpython)] {
        if out.contains(placeholder) {
            out = out.replace(placeholder, &value.as_ref()?.display().to_string());
        }
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::policy::PolicySet;

    /// The facts of a root daemon with pid 4242 and every capability, at Landlock ABI `abi`.
    pub(crate) fn host(python: &Interpreter, abi: u32) -> Host<'_> {
        Host {
            python,
            parent_pid: 4242,
            landlock_abi: abi,
            missing_identity_caps: &[],
        }
    }

    /// A CPython 3.11 at the usual Debian paths (nothing is read from disk).
    pub(crate) fn python() -> Interpreter {
        Interpreter {
            executable: "/usr/bin/python3.11".into(),
            version: "3.11".into(),
            stdlib: "/usr/lib/python3.11".into(),
            venv: None,
            libpython: None,
        }
    }

    #[test]
    fn default_policy_plan_confines_everything() {
        let policy = PolicySet::builtin().get(None).unwrap();
        let scratch = Path::new("/tmp/scratch/r-1");
        let dir = std::env::temp_dir().join(format!("ptcd-plan-leases-{}", std::process::id()));
        let leases = super::super::identity::LeaseDir::open(&dir).expect("lease dir");
        let lease = Arc::new(leases.lease(64000, 64999).unwrap().expect("a free uid"));
        let leased = Leased::Uid(lease);
        let plan = build(
            host(&python(), 7),
            &policy,
            &policy.limits,
            scratch,
            "r-1",
            &[],
            &leased,
        );
        assert_eq!(
            plan.parent_pid, 4242,
            "the pid passed in, not this process's"
        );
        let ll = plan.landlock.as_ref().expect("landlock on");
        assert_eq!(ll.min_abi, 1);
        assert!(ll
            .rules
            .iter()
            .any(|r| r.path == Path::new("/usr/bin/python3.11") && r.access == FsAccess::Execute));
        assert!(ll
            .rules
            .iter()
            .any(|r| r.path == scratch && r.access == FsAccess::ReadWrite));
        assert!(ll.rules.iter().all(|r| r.access != FsAccess::ReadWrite
            || r.path == scratch
            || r.path == Path::new("/dev/null")));
        assert_eq!(plan.seccomp.len(), 3);
        assert!(plan.late_seccomp.is_some());
        assert!(plan.argv.contains(&"-S".to_string()));
        let cpu = plan.rlimits.iter().find(|r| r.resource == Resource::Cpu);
        assert_eq!(cpu.map(|r| (r.soft, r.hard)), Some((30, 31)));
        let core = plan.rlimits.iter().find(|r| r.resource == Resource::Core);
        assert_eq!(core.map(|r| r.hard), Some(0));
        assert!(plan.env.iter().all(|(k, _)| !k.starts_with("LD_")));
        // The plan survives the trip to the launcher (minus the lease, which stays here).
        let json = serde_json::to_string(&plan).unwrap();
        let back: SandboxPlan = serde_json::from_str(&json).unwrap();
        assert_eq!(back.landlock, plan.landlock);
        assert_eq!(back.identity, plan.identity);
        let id = plan.identity.expect("a leased uid becomes the identity");
        assert!((64000..=64999).contains(&id.uid));
        assert!(plan.rlimits.iter().any(|r| r.resource == Resource::Nproc));
        drop(plan);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_refused_lease_refuses_the_plan() {
        let policy = PolicySet::builtin().get(None).unwrap();
        let leased = Leased::Refused("every uid in 1-2 is in use".into());
        let plan = build(
            host(&python(), 7),
            &policy,
            &policy.limits,
            Path::new("/s"),
            "r-4",
            &[],
            &leased,
        );
        assert!(plan.identity.is_none());
        let refusal = plan.refuse.expect("refused");
        assert_eq!(refusal.mechanism, "identity");
        assert!(refusal.message.contains("in use"));
    }

    #[test]
    fn site_packages_policy_keeps_site_and_reads_dist_packages() {
        let policy = PolicySet::builtin().get(Some("site-packages")).unwrap();
        let plan = build(
            host(&python(), 7),
            &policy,
            &policy.limits,
            Path::new("/s"),
            "r-2",
            &[],
            &Leased::Unswitched,
        );
        assert!(!plan.argv.contains(&"-S".to_string()));
        let rules = &plan.landlock.unwrap().rules;
        assert!(rules
            .iter()
            .any(|r| r.path == Path::new("/usr/local/lib/python3.11/dist-packages")));
    }

    #[test]
    fn tightened_limits_reach_the_rlimits() {
        let policy = PolicySet::builtin().get(None).unwrap();
        let limits = Limits {
            cpu_ms: 1500,
            memory_mb: 256,
            ..policy.limits
        };
        let plan = build(
            host(&python(), 7),
            &policy,
            &limits,
            Path::new("/s"),
            "r-3",
            &[],
            &Leased::Unswitched,
        );
        let get = |res| plan.rlimits.iter().find(|r| r.resource == res).unwrap();
        assert_eq!(get(Resource::Cpu).soft, 2);
        assert_eq!(get(Resource::As).hard, 256 << 20);
    }

    #[test]
    fn capped_abi_plans_carry_the_compensating_seccomp_rules() {
        let policy = PolicySet::builtin().get(None).unwrap();
        let at = |abi, leased: &Leased| {
            build(
                host(&python(), abi),
                &policy,
                &policy.limits,
                Path::new("/s"),
                "r-5",
                &[],
                leased,
            )
        };
        // ABI 2 (Debian 12), unprivileged: truncate and signals compensated by seccomp.
        let plan = at(2, &Leased::Unswitched);
        assert_eq!(plan.landlock.as_ref().map(|l| l.abi), Some(2));
        assert!(plan.refuse.is_none(), "{:?}", plan.refuse);
        assert!(plan.compensation.truncate && plan.compensation.signals);
        // ABI 6: nothing to compensate.
        let plan = at(6, &Leased::Unswitched);
        assert!(!plan.compensation.any());
        // No Landlock at all: refused, naming the feature and the kernel.
        let plan = at(0, &Leased::Unswitched);
        let refusal = plan.refuse.expect("refused");
        assert_eq!(refusal.mechanism, "landlock");
        assert!(
            refusal.message.contains("Linux 5.13"),
            "{}",
            refusal.message
        );
    }

    #[test]
    fn a_policy_minimum_above_the_capped_abi_refuses() {
        let mut policy = (*PolicySet::builtin().get(None).unwrap()).clone();
        policy.landlock_min_abi = Some(4);
        let plan = build(
            host(&python(), 3),
            &policy,
            &policy.limits,
            Path::new("/s"),
            "r-6",
            &[],
            &Leased::Unswitched,
        );
        let refusal = plan.refuse.expect("refused");
        assert!(
            refusal.message.contains("requires ABI 4"),
            "{}",
            refusal.message
        );
    }
}
