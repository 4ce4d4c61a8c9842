//! What a fork server template (T) is allowed to be: a pure value, built from the same policy by
//! the same code as a run's plan ([`plan::build`]) and then narrowed or widened where T differs.
//!
//! T is a CPython started through the ordinary launcher with this plan; it imports what a run
//! imports and then only forks run children (C), which confine themselves further with their
//! run's plan. So T's confinement must be a *superset* of every run's (C can only add layers)
//! and must still keep T itself from root, the network, exec and other files:
//!
//! | layer | T | why |
//! |---|---|---|
//! | identity | its own leased uid from the policy's range, keeping only `CAP_KILL`/`CAP_SETUID`/`CAP_SETGID` (`retain_setid`) | to give each C its run's uid; `CAP_KILL` so that the kernel delivers C's parent-death signal across uids (Landlock's signal scope, required, keeps it to T's own children) |
//! | seccomp | [`seccomp::template_filters`] (set*id bounded to the range, fork and `pidfd_open` allowed), then [`seccomp::template_late_filter`] (no exec) | C stacks [`seccomp::forked_child_filters`] on top (what T allows beyond a run, taken back) and answers every syscall as a cold child |
//! | Landlock | the policy's rules with `{scratch}` = the scratch *root* | covers every run's dir (a tmpfs mounted beneath the root) |
//! | rlimits | the policy's maxima, no `RLIMIT_CPU` (T lives long), no `RLIMIT_NPROC`, `RLIMIT_NOFILE` ≥ 1024 | C can only lower limits |
//! | command line, environment, cwd | a run's command line plus the argument `template` (the shim's template mode: an argument, so no client `env` value can select it); the base environment with `HOME`/`TMPDIR` = `/nonexistent`; `/` | no client value ever reaches T |
//!
//! Policies that need the launcher's root-only steps per run (a cgroup, a network namespace) or
//! run without seccomp never get a template: the plan carries a refusal (mechanism
//! `fork_server`) and their runs start cold.

use std::path::{Path, PathBuf};

use super::coverage::Compensation;
use super::identity::Leased;
use super::plan::{self, Host, Refusal, Resource, SandboxPlan, SetidRange};
use super::seccomp;
use crate::policy::Policy;

/// The argument after the bootstrap that puts the shim in template mode (`sys.argv[1]`).
pub const TEMPLATE_ARG: &str = "template";
/// `PTCD_RUN_ID` of a template (it runs no run).
pub const TEMPLATE_RUN_ID: &str = "template";
/// T's `HOME` and `TMPDIR`: it has no directory of its own.
pub const NO_HOME: &str = "/nonexistent";
/// The least `RLIMIT_NOFILE` of a template: it holds a pidfd per live child.
pub const MIN_OPEN_FILES: u64 = 1024;

/// The plan of the template of `policy`: `plan::build` with the policy's maximum limits, run id
/// `template`, no client environment and `scratch_root` for `{scratch}`, then transformed as the
/// module docs say. `leased` is T's own uid lease (`identity::for_policy`), held by the plan.
pub fn build_template(
    host: Host<'_>,
    policy: &Policy,
    scratch_root: &Path,
    leased: &Leased,
) -> SandboxPlan {
    let mut plan = plan::build(
        host,
        policy,
        &policy.limits,
        scratch_root,
        TEMPLATE_RUN_ID,
        &[],
        leased,
    );
    for (name, value) in &mut plan.env {
        if name == "HOME" || name == "TMPDIR" {
            *value = NO_HOME.to_string();
        }
    }
    plan.argv.push(TEMPLATE_ARG.to_string());
    plan.cwd = PathBuf::from("/");

    if let Leased::Uid(_) = leased {
        match policy.identity {
            Some((first, last)) => plan.retain_setid = Some(SetidRange { first, last }),
            None => {
                plan.refuse.get_or_insert(Refusal {
                    mechanism: "identity".into(),
                    message: "a template uid lease for a policy without a uid range".into(),
                });
            }
        }
    }

    plan.rlimits
        .retain(|r| !matches!(r.resource, Resource::Cpu | Resource::Nproc));
    for r in plan
        .rlimits
        .iter_mut()
        .filter(|r| r.resource == Resource::Nofile)
    {
        r.soft = r.soft.max(MIN_OPEN_FILES);
        r.hard = r.hard.max(MIN_OPEN_FILES);
    }

    let range = plan.retain_setid.map(|r| (r.first, r.last));
    plan.seccomp = seccomp::template_filters(range).into();
    plan.late_seccomp = Some(seccomp::template_late_filter().into());
    // Runs that need compensation are not forked (their filter embeds the child's pid).
    plan.compensation = Compensation::default();

    let cold_only = if policy.cgroup.is_some() || policy.network_namespace {
        Some("policies with cgroup/network_namespace start cold")
    } else if !policy.seccomp {
        Some("policies without seccomp start cold (a template always runs under its filters)")
    } else if plan.retain_setid.is_some() && plan.landlock.as_ref().is_none_or(|l| l.abi < 6) {
        Some(
            "with per-run uids a template holds CAP_KILL, which only Landlock's signal scope \
             (ABI 6) confines to its own children: runs start cold",
        )
    } else {
        None
    };
    if let Some(message) = cold_only {
        plan.refuse = Some(Refusal {
            mechanism: "fork_server".into(),
            message: message.into(),
        });
    }
    plan
}

/// The seccomp filters a child forked from the template of `policy` installs on the template's
/// ([`seccomp::forked_child_filters`] of the filters the runs of `policy` carry, as a run plan
/// has them), which the template preloads for its children; empty when its runs carry none or
/// other ones. A forked child installs them only when its confine job names the same digest
/// (`forkserver::confine_job`, from the run's own plan).
pub fn child_filters(
    host: Host<'_>,
    policy: &Policy,
    scratch_root: &Path,
    leased: &Leased,
) -> Vec<String> {
    let plan = plan::build(
        host,
        policy,
        &policy.limits,
        scratch_root,
        TEMPLATE_RUN_ID,
        &[],
        leased,
    );
    seccomp::forked_child_filters(&plan.seccomp)
        .map(<[String]>::to_vec)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::limits::Limits;
    use crate::policy::{CgroupPolicy, PolicySet};
    use crate::python::Interpreter;
    use crate::sandbox::identity::LeaseDir;
    use crate::sandbox::plan::Rlimit;

    const ROOT: &str = "/run/ptcd-scratch";

    use crate::sandbox::plan::tests::python;

    fn host(python: &Interpreter) -> Host<'_> {
        crate::sandbox::plan::tests::host(python, 7)
    }

    fn default_policy() -> Policy {
        (*PolicySet::builtin().get(None).expect("default policy")).clone()
    }

    /// Runs `check` with a real uid lease from the policy's range (a private lease dir).
    fn with_lease(policy: &Policy, check: impl FnOnce(Leased)) {
        let dir = std::env::temp_dir().join(format!(
            "ptcd-template-leases-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let leases = LeaseDir::open(&dir).expect("lease dir");
        let (first, last) = policy.identity.expect("the default policy has a uid range");
        let lease = leases
            .lease(first, last)
            .expect("lease")
            .expect("a free uid");
        check(Leased::Uid(Arc::new(lease)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The template of `policy` on the test host, without a uid switch.
    fn template_of(policy: &Policy) -> SandboxPlan {
        build_template(
            host(&python()),
            policy,
            Path::new(ROOT),
            &Leased::Unswitched,
        )
    }

    /// The child filters that template preloads.
    fn preloaded_for(policy: &Policy) -> Vec<String> {
        child_filters(
            host(&python()),
            policy,
            Path::new(ROOT),
            &Leased::Unswitched,
        )
    }

    fn run_plan(policy: &Policy, limits: &Limits, leased: &Leased) -> SandboxPlan {
        let scratch = Path::new(ROOT).join("r-1");
        plan::build(
            host(&python()),
            policy,
            limits,
            &scratch,
            "r-1",
            &[],
            leased,
        )
    }

    #[test]
    fn template_landlock_rules_are_a_runs_with_the_scratch_root_for_its_dir() {
        let policy = default_policy();
        let run = run_plan(&policy, &policy.limits, &Leased::Unswitched);
        let t = template_of(&policy);
        let (run_ll, t_ll) = (run.landlock.expect("on"), t.landlock.expect("on"));
        assert_eq!((t_ll.abi, t_ll.min_abi), (run_ll.abi, run_ll.min_abi));
        assert_eq!(run_ll.rules.len(), t_ll.rules.len());
        let run_dir = Path::new(ROOT).join("r-1");
        let mut scratch_rules = 0;
        for (r, t) in run_ll.rules.iter().zip(&t_ll.rules) {
            assert_eq!((r.access, r.optional), (t.access, t.optional));
            match r.path.strip_prefix(&run_dir) {
                Ok(rest) => {
                    scratch_rules += 1;
                    assert_eq!(t.path, Path::new(ROOT).join(rest));
                }
                Err(_) => assert_eq!(t.path, r.path),
            }
        }
        assert!(scratch_rules >= 1, "the policy's {{scratch}} rule");
    }

    fn limit(rlimits: &[Rlimit], resource: Resource) -> Option<Rlimit> {
        rlimits.iter().find(|r| r.resource == resource).copied()
    }

    #[test]
    fn template_rlimits_are_never_below_a_runs_and_drop_cpu_and_nproc() {
        let policy = default_policy();
        with_lease(&policy, |leased| {
            let t = build_template(host(&python()), &policy, Path::new(ROOT), &leased);
            assert_eq!(limit(&t.rlimits, Resource::Cpu), None);
            assert_eq!(limit(&t.rlimits, Resource::Nproc), None);
            let nofile = limit(&t.rlimits, Resource::Nofile).expect("RLIMIT_NOFILE");
            assert!(nofile.soft >= MIN_OPEN_FILES && nofile.hard >= MIN_OPEN_FILES);
            let tightened = Limits {
                cpu_ms: 1000,
                memory_mb: 64,
                ..policy.limits
            };
            for limits in [policy.limits, tightened] {
                let run = run_plan(&policy, &limits, &Leased::Unswitched);
                for r in &run.rlimits {
                    let Some(tl) = limit(&t.rlimits, r.resource) else {
                        assert!(matches!(r.resource, Resource::Cpu | Resource::Nproc));
                        continue;
                    };
                    assert!(
                        tl.soft >= r.soft && tl.hard >= r.hard,
                        "{}: template {tl:?} below run {r:?}",
                        r.resource.name()
                    );
                }
            }
        });
    }

    #[test]
    fn template_env_has_no_client_value_and_its_argv_selects_template_mode() {
        let policy = default_policy();
        let t = template_of(&policy);
        let run = run_plan(&policy, &policy.limits, &Leased::Unswitched);
        let get = |k: &str| t.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("HOME"), Some(NO_HOME));
        assert_eq!(get("TMPDIR"), Some(NO_HOME));
        assert_eq!(get("PTCD_RUN_ID"), Some(TEMPLATE_RUN_ID));
        // Exactly the base environment of a run without client env.
        let names =
            |env: &[(String, String)]| env.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(names(&t.env), names(&run.env));
        assert!(t.env.iter().all(|(_, v)| !v.contains("r-1")));
        assert_eq!(t.cwd, Path::new("/"));
        let mut want = run.argv.clone();
        want.push(TEMPLATE_ARG.to_string());
        assert_eq!(
            t.argv, want,
            "a run's command line plus the template argument"
        );
    }

    #[test]
    fn template_keeps_setuid_within_the_policy_range_as_its_own_leased_uid() {
        let policy = default_policy();
        let (first, last) = policy.identity.expect("range");
        with_lease(&policy, |leased| {
            let uid = leased.lease().expect("uid").uid;
            let t = build_template(host(&python()), &policy, Path::new(ROOT), &leased);
            assert!(t.refuse.is_none(), "{:?}", t.refuse);
            assert_eq!(t.identity.map(|i| (i.uid, i.gid)), Some((uid, uid)));
            assert_eq!(t.retain_setid, Some(SetidRange { first, last }));
            assert_eq!(t.seccomp, seccomp::template_filters(Some((first, last))));
            assert_eq!(
                t.late_seccomp.as_deref(),
                Some(seccomp::template_late_filter())
            );
            assert!(!t.compensation.any());
            assert!(t.uid_lease.is_some(), "the plan holds T's lease");
            // The field survives the trip to the launcher; older plans without it read as None.
            let json = serde_json::to_value(&t).expect("json");
            let back: SandboxPlan = serde_json::from_value(json.clone()).expect("back");
            assert_eq!(back.retain_setid, t.retain_setid);
            let mut old = json;
            old.as_object_mut().expect("object").remove("retain_setid");
            let back: SandboxPlan = serde_json::from_value(old).expect("old plan");
            assert_eq!(back.retain_setid, None);
        });
        // A run plan never retains set*id; an unprivileged daemon's template neither.
        with_lease(&policy, |leased| {
            assert_eq!(
                run_plan(&policy, &policy.limits, &leased).retain_setid,
                None
            );
        });
        let t = template_of(&policy);
        assert_eq!((t.identity, t.retain_setid), (None, None));
        assert_eq!(t.seccomp, seccomp::template_filters(None));
    }

    #[test]
    fn template_preloads_the_forked_child_filters_of_its_policys_runs() {
        let policy = default_policy();
        let preloaded = preloaded_for(&policy);
        assert!(
            !preloaded.is_empty(),
            "the default policy's runs carry filters"
        );
        let tightened = Limits {
            cpu_ms: 1000,
            memory_mb: 64,
            ..policy.limits
        };
        for limits in [policy.limits, tightened] {
            let run = run_plan(&policy, &limits, &Leased::Unswitched);
            let named = seccomp::forked_child_filters(&run.seccomp);
            assert_eq!(
                named,
                Some(preloaded.as_slice()),
                "what a run's confine job names"
            );
        }
        // The template's own filters are not the runs' (a child stacks these on T's).
        let t = template_of(&policy);
        assert_ne!(t.seccomp, preloaded);
        // A policy without seccomp has no child filters (and never gets a template).
        let mut off = default_policy();
        off.seccomp = false;
        assert!(preloaded_for(&off).is_empty());
    }

    #[test]
    fn policies_with_cgroup_netns_or_without_seccomp_get_no_template() {
        let mut cgroup = default_policy();
        cgroup.cgroup = Some(CgroupPolicy {
            parent: "/sys/fs/cgroup/ptcd".into(),
            memory_mb: None,
            pids: None,
        });
        let mut netns = default_policy();
        netns.network_namespace = true;
        let mut no_seccomp = default_policy();
        no_seccomp.seccomp = false;
        for (policy, says) in [
            (cgroup, "cgroup/network_namespace"),
            (netns, "cgroup/network_namespace"),
            (no_seccomp, "without seccomp"),
        ] {
            let t = build_template(
                host(&python()),
                &policy,
                Path::new(ROOT),
                &Leased::Unswitched,
            );
            let refusal = t.refuse.expect("refused");
            assert_eq!(refusal.mechanism, "fork_server");
            assert!(refusal.message.contains(says), "{}", refusal.message);
            assert!(
                refusal.message.contains("start cold"),
                "{}",
                refusal.message
            );
        }
        // A refused lease refuses the template as it refuses a run.
        let t = build_template(
            host(&python()),
            &default_policy(),
            Path::new(ROOT),
            &Leased::Refused("every uid in 1-2 is in use".into()),
        );
        assert_eq!(t.refuse.map(|r| r.mechanism).as_deref(), Some("identity"));
    }
}
