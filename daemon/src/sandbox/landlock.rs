//! Landlock: the filesystem allowlist, TCP denial and IPC scopes of one child.
//!
//! The ruleset is created and its path fds are opened by the launcher while it is still
//! privileged ([`prepare`]), and enforced on itself just before seccomp ([`enforce`]). Every
//! right is a hard requirement: a ruleset the kernel would only partly enforce is an error, never
//! a silent downgrade (the `landlock` crate's default is best effort).

use landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreated, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

use super::host;
use super::plan::LandlockPlan;
use crate::policy::{FsAccess, LANDLOCK_MAX_ABI};

/// The Landlock ABI the plan asks for (the daemon's choice: the kernel's, capped), checked
/// against the kernel and the policy's minimum.
fn landlock_abi(plan: &LandlockPlan) -> Result<ABI, String> {
    let kernel = host::landlock_abi().ok_or_else(|| {
        "not available on this kernel (not built in, or not in the lsm= boot list)".to_string()
    })?;
    if kernel < plan.min_abi {
        return Err(format!(
            "the policy requires ABI {}, this kernel has ABI {kernel}",
            plan.min_abi
        ));
    }
    if plan.abi < plan.min_abi || plan.abi > kernel.min(LANDLOCK_MAX_ABI) || plan.abi == 0 {
        return Err(format!(
            "the plan asks for ABI {} (policy minimum {}, kernel {kernel})",
            plan.abi, plan.min_abi
        ));
    }
    Ok(ABI::from(plan.abi as i32))
}

/// Creates the ruleset and adds every rule, opening the paths while still privileged.
pub fn prepare(plan: &LandlockPlan) -> Result<RulesetCreated, String> {
    let abi = landlock_abi(plan)?;
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .map_err(|e| format!("filesystem rights: {e}"))?;
    if abi >= ABI::V4 {
        // Handled with no rule: every TCP bind and connect is denied.
        ruleset = ruleset
            .handle_access(AccessNet::from_all(abi))
            .map_err(|e| format!("network rights: {e}"))?;
    }
    if abi >= ABI::V6 {
        ruleset = ruleset
            .scope(Scope::from_all(abi))
            .map_err(|e| format!("scopes: {e}"))?;
    }
    let mut created = ruleset.create().map_err(|e| format!("create: {e}"))?;
    for rule in &plan.rules {
        let fd = match PathFd::new(&rule.path) {
            Ok(fd) => fd,
            Err(_) if rule.optional => continue,
            Err(e) => {
                return Err(format!(
                    "required path {} cannot be opened: {e}",
                    rule.path.display()
                ))
            }
        };
        let is_dir = std::fs::metadata(&rule.path)
            .map(|m| m.is_dir())
            .unwrap_or(false);
        let mut access = rights(rule.access, abi);
        if !is_dir {
            access &= AccessFs::from_file(abi);
        }
        created = created
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|e| format!("rule for {}: {e}", rule.path.display()))?;
    }
    Ok(created)
}

/// The Landlock rights of a policy access level.
pub fn rights(access: FsAccess, abi: ABI) -> BitFlags<AccessFs> {
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    match access {
        FsAccess::Read => read,
        FsAccess::Execute => read | AccessFs::Execute,
        FsAccess::ReadWrite => {
            let all = AccessFs::from_all(abi);
            all & !(AccessFs::Execute
                | AccessFs::MakeChar
                | AccessFs::MakeBlock
                | AccessFs::MakeSock
                | AccessFs::IoctlDev)
        }
    }
}

/// Restricts the calling process; anything short of full enforcement is an error.
pub fn enforce(ruleset: RulesetCreated) -> Result<(), String> {
    match ruleset.restrict_self() {
        Ok(status) if status.ruleset == RulesetStatus::FullyEnforced => Ok(()),
        Ok(status) => Err(format!("ruleset not fully enforced: {:?}", status.ruleset)),
        Err(e) => Err(format!("restrict_self: {e}")),
    }
}
