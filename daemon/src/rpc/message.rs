//! Classifying one received line into a JSON-RPC message.
//!
//! Both directions share the connection: the client sends requests (`run`, …) and notifications,
//! and answers the daemon's `tool/call` requests with responses. Everything that is not a
//! well-formed JSON-RPC 2.0 object becomes an [`RpcError`] that the connection sends back with
//! the request's id when one could be read, `null` otherwise.

use serde::Serialize;
use serde_json::{Map, Value};

use super::error::{self, RpcError};

/// A request id: a string or a number (the contract refuses `null`).
pub type Id = Value;

/// One message received from the client.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    Request {
        id: Id,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
    /// An answer to one of the daemon's own requests.
    Response {
        id: Id,
        outcome: Result<Value, RpcError>,
    },
}

/// Why a line could not be used, and the id to answer with (`Value::Null` when unknown).
#[derive(Debug, PartialEq)]
pub struct Rejected {
    pub id: Id,
    pub error: RpcError,
}

impl Incoming {
    /// Parses one line (already stripped of its newline).
    pub fn parse(line: &[u8]) -> Result<Incoming, Box<Rejected>> {
        let value: Value = serde_json::from_slice(line).map_err(|e| {
            Box::new(Rejected {
                id: Value::Null,
                error: RpcError::new(error::PARSE_ERROR, format!("parse error: {e}")),
            })
        })?;
        let object = match value {
            Value::Object(object) => object,
            Value::Array(_) => {
                return Err(invalid(
                    Value::Null,
                    "batch requests are not supported; send one object per line",
                ))
            }
            _ => return Err(invalid(Value::Null, "a message must be a JSON object")),
        };
        classify(object)
    }
}

fn invalid(id: Id, message: &str) -> Box<Rejected> {
    Box::new(Rejected {
        id,
        error: RpcError::new(error::INVALID_REQUEST, message),
    })
}

fn classify(mut object: Map<String, Value>) -> Result<Incoming, Box<Rejected>> {
    let id = object.remove("id");
    let usable_id = match &id {
        Some(v @ (Value::String(_) | Value::Number(_))) => v.clone(),
        _ => Value::Null,
    };
    if object.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err(invalid(usable_id, "\"jsonrpc\" must be \"2.0\""));
    }
    if let Some(method) = object.remove("method") {
        let Value::String(method) = method else {
            return Err(invalid(usable_id, "\"method\" must be a string"));
        };
        let params = object.remove("params").unwrap_or(Value::Null);
        if !matches!(params, Value::Object(_) | Value::Array(_) | Value::Null) {
            return Err(invalid(usable_id, "\"params\" must be an object"));
        }
        return match id {
            None => Ok(Incoming::Notification { method, params }),
            Some(Value::String(_) | Value::Number(_)) => Ok(Incoming::Request {
                id: usable_id,
                method,
                params,
            }),
            Some(_) => Err(invalid(Value::Null, "\"id\" must be a string or a number")),
        };
    }
    let Some(id @ (Value::String(_) | Value::Number(_))) = id else {
        return Err(invalid(
            Value::Null,
            "a message needs \"method\" (a request) or \"id\" with \"result\"/\"error\" (a response)",
        ));
    };
    match (object.remove("result"), object.remove("error")) {
        (Some(result), None) => Ok(Incoming::Response {
            id,
            outcome: Ok(result),
        }),
        (None, Some(err)) => Ok(Incoming::Response {
            id,
            outcome: Err(parse_error_object(err)),
        }),
        _ => Err(invalid(
            id,
            "a response needs exactly one of \"result\" and \"error\"",
        )),
    }
}

/// A client's error answer; anything malformed still becomes an error with a readable message.
fn parse_error_object(err: Value) -> RpcError {
    let code = err.get("code").and_then(Value::as_i64).unwrap_or(-32000);
    let message = match err.get("message") {
        Some(Value::String(s)) => s.clone(),
        _ => "tool failed (the client sent an error without a message)".to_string(),
    };
    RpcError {
        code,
        message,
        data: err.get("data").cloned(),
    }
}

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a RpcError>,
}

fn line<T: Serialize>(envelope: &Envelope<'_, T>) -> Vec<u8> {
    // Serializing Values and plain structs cannot fail; fall back to an internal error line anyway.
    let mut out = serde_json::to_vec(envelope).unwrap_or_else(|_| {
        br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"unserializable message"}}"#
            .to_vec()
    });
    out.push(b'\n');
    out
}

/// A success response line.
pub fn response_line<T: Serialize>(id: &Id, result: &T) -> Vec<u8> {
    line(&Envelope {
        jsonrpc: "2.0",
        id: Some(id),
        method: None,
        params: None,
        result: Some(result),
        error: None,
    })
}

/// An error response line (`id` is `null` when the request's id could not be read).
pub fn error_line(id: &Id, error: &RpcError) -> Vec<u8> {
    line::<Value>(&Envelope {
        jsonrpc: "2.0",
        id: Some(id),
        method: None,
        params: None,
        result: None,
        error: Some(error),
    })
}

/// A request (with id) or notification (without) line.
pub fn request_line<T: Serialize>(id: Option<&Id>, method: &str, params: &T) -> Vec<u8> {
    line(&Envelope {
        jsonrpc: "2.0",
        id,
        method: Some(method),
        params: Some(params),
        result: None,
        error: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code_of(line: &str) -> i64 {
        Incoming::parse(line.as_bytes()).unwrap_err().error.code
    }

    #[test]
    fn request_notification_and_response_are_told_apart() {
        let req = Incoming::parse(br#"{"jsonrpc":"2.0","id":1,"method":"run","params":{}}"#);
        assert!(matches!(req, Ok(Incoming::Request { .. })));
        let note = Incoming::parse(br#"{"jsonrpc":"2.0","method":"x"}"#);
        assert!(matches!(note, Ok(Incoming::Notification { .. })));
        let resp = Incoming::parse(br#"{"jsonrpc":"2.0","id":"t-1","result":5}"#);
        assert_eq!(
            resp,
            Ok(Incoming::Response {
                id: json!("t-1"),
                outcome: Ok(json!(5))
            })
        );
    }

    #[test]
    fn invalid_json_is_a_parse_error() {
        assert_eq!(code_of("{not json"), error::PARSE_ERROR);
        assert_eq!(
            Incoming::parse(b"\xff\xfe").unwrap_err().error.code,
            error::PARSE_ERROR
        );
    }

    #[test]
    fn batch_is_an_invalid_request() {
        assert_eq!(
            code_of(r#"[{"jsonrpc":"2.0","id":1,"method":"run"}]"#),
            error::INVALID_REQUEST
        );
    }

    #[test]
    fn wrong_version_keeps_the_id_for_the_answer() {
        let rejected = Incoming::parse(br#"{"jsonrpc":"1.0","id":7,"method":"run"}"#).unwrap_err();
        assert_eq!(rejected.id, json!(7));
        assert_eq!(rejected.error.code, error::INVALID_REQUEST);
    }

    #[test]
    fn null_id_is_refused() {
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":null,"method":"run"}"#),
            error::INVALID_REQUEST
        );
    }

    #[test]
    fn error_response_carries_code_and_message() {
        let resp = Incoming::parse(
            br#"{"jsonrpc":"2.0","id":"t-2","error":{"code":-32000,"message":"boom","data":1}}"#,
        );
        let Ok(Incoming::Response {
            outcome: Err(e), ..
        }) = resp
        else {
            panic!("expected an error response, got {resp:?}");
        };
        assert_eq!(
            (e.code, e.message.as_str(), e.data),
            (-32000, "boom", Some(json!(1)))
        );
    }
}
