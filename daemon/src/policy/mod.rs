//! Policies: named sets of limits and confinement settings a run executes under.
//!
//! (Minimal core version: the built-in `default` policy with its limits. The TOML format,
//! `--policy-dir` and validation live in this module as they land.)

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::limits::Limits;

/// A validated policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    pub description: String,
    pub limits: Limits,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PolicyError {
    #[error("unknown policy {name:?}; known policies: {known}")]
    Unknown { name: String, known: String },
}

/// The policies the daemon knows, by name.
#[derive(Debug, Clone)]
pub struct PolicySet {
    policies: BTreeMap<String, Arc<Policy>>,
    default: String,
}

/// The limits of the built-in default policy.
pub const DEFAULT_LIMITS: Limits = Limits {
    timeout_ms: 30_000,
    cpu_ms: 30_000,
    memory_mb: 1024,
    max_output_bytes: 1 << 20,
    max_tool_calls: 1000,
    max_concurrent_tool_calls: 64,
};

impl PolicySet {
    /// Only the built-in `default` policy.
    pub fn builtin() -> PolicySet {
        let default = Policy {
            name: "default".into(),
            description: "stdlib only, no network, a private scratch dir".into(),
            limits: DEFAULT_LIMITS,
        };
        PolicySet {
            policies: BTreeMap::from([(default.name.clone(), Arc::new(default))]),
            default: "default".into(),
        }
    }

    /// The named policy, or the default one for `None`.
    pub fn get(&self, name: Option<&str>) -> Result<Arc<Policy>, PolicyError> {
        let name = name.unwrap_or(&self.default);
        self.policies
            .get(name)
            .cloned()
            .ok_or_else(|| PolicyError::Unknown {
                name: name.to_string(),
                known: self.names().join(", "),
            })
    }

    pub fn names(&self) -> Vec<String> {
        self.policies.keys().cloned().collect()
    }

    pub fn default_name(&self) -> &str {
        &self.default
    }
}
