//! Resource limits of a run.
//!
//! Every policy sets all of them ([`Limits`]); a `run` request may only tighten them
//! ([`LimitsRequest`]). Asking for more than the policy allows is an error (`-32003`) rather than
//! a silent clamp, so a client never believes it has a limit it does not have.

use serde::{Deserialize, Serialize};

/// The limits in force for a run. All values are positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock time of the whole run, tool calls included.
    pub timeout_ms: u64,
    /// CPU time of the child (RLIMIT_CPU, rounded up to whole seconds).
    pub cpu_ms: u64,
    /// Address space of the child (RLIMIT_AS).
    pub memory_mb: u64,
    /// Cap on each of stdout and stderr; the rest is counted and dropped.
    pub max_output_bytes: u64,
    /// Tool calls one run may make; one more ends the run with `limit_exceeded`.
    pub max_tool_calls: u64,
    /// Tool calls in flight at once; further calls wait their turn inside the daemon.
    pub max_concurrent_tool_calls: u64,
}

/// The `limits` field of a `run` request: any subset, each at most the policy's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsRequest {
    pub timeout_ms: Option<u64>,
    pub cpu_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    pub max_output_bytes: Option<u64>,
    pub max_tool_calls: Option<u64>,
    pub max_concurrent_tool_calls: Option<u64>,
}

/// A requested limit that is looser than the policy's, or zero.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    #[error("limits.{field} = {requested} exceeds the policy's {allowed}")]
    Exceeds {
        field: &'static str,
        requested: u64,
        allowed: u64,
    },
    #[error("limits.{field} must be at least 1")]
    Zero { field: &'static str },
}

impl LimitsError {
    /// The wire name of the offending field, e.g. `limits.timeout_ms`.
    pub fn field(&self) -> String {
        match self {
            LimitsError::Exceeds { field, .. } | LimitsError::Zero { field } => {
                format!("limits.{field}")
            }
        }
    }
}

impl Limits {
    /// Applies a request on top of these (policy) limits.
    pub fn tighten(&self, req: &LimitsRequest) -> Result<Limits, LimitsError> {
        fn pick(field: &'static str, allowed: u64, req: Option<u64>) -> Result<u64, LimitsError> {
            match req {
                None => Ok(allowed),
                Some(0) => Err(LimitsError::Zero { field }),
                Some(r) if r > allowed => Err(LimitsError::Exceeds {
                    field,
                    requested: r,
                    allowed,
                }),
                Some(r) => Ok(r),
            }
        }
        Ok(Limits {
            timeout_ms: pick("timeout_ms", self.timeout_ms, req.timeout_ms)?,
            cpu_ms: pick("cpu_ms", self.cpu_ms, req.cpu_ms)?,
            memory_mb: pick("memory_mb", self.memory_mb, req.memory_mb)?,
            max_output_bytes: pick(
                "max_output_bytes",
                self.max_output_bytes,
                req.max_output_bytes,
            )?,
            max_tool_calls: pick("max_tool_calls", self.max_tool_calls, req.max_tool_calls)?,
            max_concurrent_tool_calls: pick(
                "max_concurrent_tool_calls",
                self.max_concurrent_tool_calls,
                req.max_concurrent_tool_calls,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Limits = Limits {
        timeout_ms: 30_000,
        cpu_ms: 30_000,
        memory_mb: 512,
        max_output_bytes: 1 << 20,
        max_tool_calls: 1000,
        max_concurrent_tool_calls: 64,
    };

    #[test]
    fn empty_request_keeps_policy_limits() {
        assert_eq!(POLICY.tighten(&LimitsRequest::default()), Ok(POLICY));
    }

    #[test]
    fn tighter_request_applies() {
        let req = LimitsRequest {
            timeout_ms: Some(100),
            ..Default::default()
        };
        assert_eq!(POLICY.tighten(&req).map(|l| l.timeout_ms), Ok(100));
    }

    #[test]
    fn looser_request_is_refused_naming_the_field() {
        let req = LimitsRequest {
            memory_mb: Some(4096),
            ..Default::default()
        };
        let err = POLICY.tighten(&req).unwrap_err();
        assert_eq!(err.field(), "limits.memory_mb");
    }

    #[test]
    fn zero_is_refused() {
        let req = LimitsRequest {
            max_tool_calls: Some(0),
            ..Default::default()
        };
        assert!(matches!(
            POLICY.tighten(&req),
            Err(LimitsError::Zero { .. })
        ));
    }
}
