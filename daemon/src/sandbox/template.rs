//! PLACEHOLDER (replaced by the template-confinement work): the plan of a fork-server template.

use std::path::{Path, PathBuf};

use super::identity::Leased;
use super::plan::{self, Host, Resource, SandboxPlan};
use crate::policy::Policy;

/// The plan of the template of `policy`.
pub fn build_template(
    host: Host<'_>,
    policy: &Policy,
    scratch_root: &Path,
    leased: &Leased,
) -> SandboxPlan {
    let _ = leased;
    let mut plan = plan::build(
        host,
        policy,
        &policy.limits,
        scratch_root,
        "template",
        &[],
        &Leased::Unswitched,
    );
    plan.argv.push("template".into());
    plan.cwd = PathBuf::from("/");
    plan.rlimits
        .retain(|r| !matches!(r.resource, Resource::Cpu | Resource::Nproc));
    plan.seccomp = Vec::new();
    plan.late_seccomp = None;
    plan
}
