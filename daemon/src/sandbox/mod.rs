//! The one path that starts children, and the plan that says how they are confined.
//!
//! The daemon never forks a Python interpreter directly. It re-executes its own binary in a
//! hidden, single-threaded launcher mode (`ptcd __launch <plan>`), which applies the
//! [`SandboxPlan`] to itself step by step and then `exec`s CPython. Doing the confinement in a
//! fresh single-threaded process means no async-signal-safety constraints (unlike `pre_exec` in a
//! multithreaded daemon) and a parent-death signal tied to a long-lived parent.
//!
//! - [`plan`]: the pure description of one child (built by the daemon, serialized to the launcher);
//! - [`landlock`]: the filesystem allowlist, TCP denial and scopes (applied by the launcher);
//! - [`coverage`]: what an older Landlock ABI leaves out and the layer that compensates;
//! - [`seccomp`]: the BPF filters (built in the daemon, installed by the launcher and the shim);
//! - [`identity`]: per-run unprivileged uids;
//! - [`spawn`]: the parent side, the only place that creates a child process;
//! - [`launcher`]: the child side, which applies the plan and execs the interpreter;
//! - [`host`]: what this host can enforce (`ptcd doctor`, `initialize`).

pub mod coverage;
pub mod host;
pub mod identity;
pub mod landlock;
pub mod launcher;
pub mod plan;
pub mod seccomp;
pub mod spawn;
pub mod syscall_table;
pub mod template;

pub use plan::SandboxPlan;
pub use spawn::{spawn, spawn_mcp_server, McpServerCommand, SandboxError};

/// What confinement this daemon enforces, as reported by `initialize`.
pub fn enforced_summary() -> serde_json::Value {
    host::enforced_summary()
}
