//! The one path that starts children, and the plan that says how they are confined.
//!
//! The daemon never forks a Python interpreter directly. It re-executes its own binary in a
//! hidden, single-threaded launcher mode (`ptcd __launch <plan>`), which applies the
//! [`SandboxPlan`] to itself step by step and then `exec`s CPython. Doing the confinement in a
//! fresh single-threaded process means no async-signal-safety constraints (unlike `pre_exec` in a
//! multithreaded daemon) and a parent-death signal tied to a long-lived parent.
//!
//! - [`plan`]: the pure description of one child (built by the daemon, serialized to the launcher);
//! - [`spawn`]: the parent side, the only place that creates a child process;
//! - [`launcher`]: the child side, which applies the plan and execs the interpreter.

pub mod launcher;
pub mod plan;
pub mod spawn;

pub use plan::SandboxPlan;
pub use spawn::{spawn, SandboxError};

/// What confinement this daemon enforces, as reported by `initialize`.
pub fn enforced_summary() -> serde_json::Value {
    serde_json::json!({"landlock_abi": null, "seccomp": false, "namespaces": false})
}
