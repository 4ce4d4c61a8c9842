//! What one child is allowed to be: a pure value, built before the launch and unit-tested.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::limits::Limits;
use crate::policy::Policy;
use crate::python::Interpreter;
use crate::runtime;

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
    /// by the launcher.
    pub late_seccomp: Option<String>,
}

/// The environment and argv of the child; confinement settings come from the policy.
pub fn build(
    python: &Interpreter,
    _policy: &Policy,
    _limits: &Limits,
    scratch: &Path,
    run_id: &str,
    extra_env: &[(String, String)],
) -> SandboxPlan {
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
    let exe = python.executable.display().to_string();
    SandboxPlan {
        parent_pid: std::process::id() as i32,
        executable: python.executable.clone(),
        argv: vec![
            exe,
            "-I".into(),
            "-S".into(),
            "-B".into(),
            "-c".into(),
            runtime::SHIM_SOURCE.into(),
        ],
        env,
        cwd: scratch.to_path_buf(),
        late_seccomp: None,
    }
}
