//! Why a request was refused: the domain errors of the request and run path.
//!
//! Everything below the connection (params, tools, sessions, runs, starting a child) speaks
//! [`RequestError`] or [`StartError`]; none of it builds wire errors. The connection maps a
//! `RequestError` to its JSON-RPC error object in one place (`connection::wire_error`), like
//! rmcp keeps `ServiceError` apart from the wire's `ErrorData`. Each message names the field or
//! the limit involved, so the client can act on it.

pub use crate::confined::{SandboxUnavailable, StartError};

/// Why a request got no result. Each variant is one error code of the contract.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// A param is missing, of the wrong type or out of range (`-32602`, `data.field`).
    #[error("{message}")]
    InvalidParams { field: String, message: String },
    /// The request cannot be served as sent (`-32600`), e.g. a reused run id.
    #[error("{0}")]
    InvalidRequest(String),
    /// No such method (`-32601`).
    #[error("unknown method {0:?}")]
    UnknownMethod(String),
    /// The session does not exist on this connection (`-32001`).
    #[error("unknown session {0:?} (never created on this connection, or closed)")]
    UnknownSession(String),
    /// No run slot, queue place or session slot is free (`-32002`).
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// A requested limit is looser than the policy allows (`-32003`, `data.field`).
    #[error("{message}")]
    LimitsExceedPolicy { field: String, message: String },
    /// No policy by that name (`-32004`).
    #[error("{0}")]
    UnknownPolicy(String),
    /// No run in flight with that request id (`-32005`).
    #[error("no run in flight with request id {0} on this connection")]
    UnknownRun(String),
    /// A confinement the policy requires is not available here; nothing ran (`-32006`).
    #[error("{0}")]
    SandboxUnavailable(SandboxUnavailable),
    /// An attached MCP server could not start or answer at attach time (`-32008`).
    #[error("{0}")]
    McpUnavailable(crate::mcp::McpUnavailable),
    /// The daemon is draining (`-32007`).
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// The daemon failed (`-32603`).
    #[error("{0}")]
    Internal(String),
}

impl RequestError {
    pub fn invalid_params(field: impl Into<String>, message: impl Into<String>) -> Self {
        RequestError::InvalidParams {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        RequestError::Internal(message.into())
    }

    /// A scratch dir that could not be created: overloaded when the daemon's scratch space
    /// (`max_scratch_total_mb`) is used up, an internal error otherwise.
    pub fn scratch(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::StorageFull {
            RequestError::Overloaded(e.to_string())
        } else {
            RequestError::Internal(format!("cannot create scratch dir: {e}"))
        }
    }

    /// The field the error is about, for the wire's `data.field`.
    pub fn field(&self) -> Option<&str> {
        match self {
            RequestError::InvalidParams { field, .. }
            | RequestError::LimitsExceedPolicy { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl From<StartError> for RequestError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::SandboxUnavailable(missing) => RequestError::SandboxUnavailable(missing),
            other => RequestError::Internal(other.to_string()),
        }
    }
}

impl From<crate::limits::LimitsError> for RequestError {
    fn from(e: crate::limits::LimitsError) -> Self {
        RequestError::LimitsExceedPolicy {
            field: e.field(),
            message: e.to_string(),
        }
    }
}
