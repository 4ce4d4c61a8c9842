//! Wire error codes and the error object sent to clients.

use serde::Serialize;
use serde_json::{json, Value};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
pub const UNKNOWN_SESSION: i64 = -32001;
pub const OVERLOADED: i64 = -32002;
pub const LIMITS_EXCEED_POLICY: i64 = -32003;
pub const UNKNOWN_POLICY: i64 = -32004;
pub const UNKNOWN_RUN: i64 = -32005;
pub const SANDBOX_UNAVAILABLE: i64 = -32006;
pub const SHUTTING_DOWN: i64 = -32007;
pub const MCP_UNAVAILABLE: i64 = -32008;

/// A JSON-RPC error object, as sent on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{message} ({code})")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// `-32602` naming the offending field in `data.field`, as the contract requires.
    pub fn invalid_params(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        RpcError {
            code: INVALID_PARAMS,
            message: message.into(),
            data: Some(json!({ "field": field })),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        RpcError::new(INTERNAL_ERROR, message)
    }
}
