//! What one child is allowed to be: a pure value, built before the launch and unit-tested.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
}
