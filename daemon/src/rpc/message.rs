//! Classifying one received line into a JSON-RPC message.
//!
//! Both directions share the connection: the client sends requests (`run`, …) and notifications,
//! and answers the daemon's `tool/call` requests with responses. Everything that is not a
//! well-formed JSON-RPC 2.0 object becomes an [`RpcError`] that the connection sends back with
//! the request's id when one could be read, `null` otherwise.
//!
//! The envelope is read without building a `serde_json::Value` of the whole line: `params` and a
//! response's `result` stay raw JSON text ([`RawValue`]). serde_json checks raw JSON without
//! recursion, so a deeply nested `result` is still matched to its id and forwarded as it came,
//! and what the daemon only forwards costs about its size in memory. Ids are kept as their
//! original text ([`Id`]), so `123456789012345678901234567890` is echoed as sent, not as a float.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::error::{self, RpcError};

/// A request id exactly as the client sent it: a string, or a number kept as its JSON text.
/// `Null` only answers a line whose id could not be read (the contract refuses `null` ids).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    Null,
    /// The number's JSON text, as received (never converted through `f64` or `u64`).
    Number(String),
    String(String),
}

impl Id {
    /// The id in a raw JSON value, if it is a string or a number.
    pub fn from_raw(raw: &RawValue) -> Option<Id> {
        let text = raw.get().trim();
        match text.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<String>(text).ok().map(Id::String),
            Some(b'-' | b'0'..=b'9') => Some(Id::Number(text.to_string())),
            _ => None,
        }
    }

    /// The id in a parsed value, if it is a string or a number (numbers that passed through a
    /// `Value` may have lost digits: prefer [`Id::from_raw`]).
    pub fn from_value(value: &Value) -> Option<Id> {
        match value {
            Value::String(s) => Some(Id::String(s.clone())),
            Value::Number(n) => Some(Id::Number(n.to_string())),
            _ => None,
        }
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Id {
        Id::String(s.to_string())
    }
}

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Id::Null => s.serialize_unit(),
            Id::String(text) => s.serialize_str(text),
            Id::Number(text) => match RawValue::from_string(text.clone()) {
                Ok(raw) => raw.serialize(s),
                Err(_) => s.serialize_unit(),
            },
        }
    }
}

/// The id as JSON text: `"abc"` or `12`.
impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Null => f.write_str("null"),
            Id::Number(text) => f.write_str(text),
            Id::String(s) => write!(f, "{}", Value::String(s.clone())),
        }
    }
}

/// JSON text the daemon forwards without looking inside (tool results, `params`).
pub type Raw = Box<RawValue>;

/// The raw JSON `null`.
pub fn raw_null() -> Raw {
    RawValue::from_string("null".into()).unwrap_or_else(|_| unreachable!("null is JSON"))
}

/// The raw JSON `{}`.
pub fn raw_empty_object() -> Raw {
    RawValue::from_string("{}".into()).unwrap_or_else(|_| unreachable!("{{}} is JSON"))
}

/// One message received from the client.
#[derive(Debug)]
pub enum Incoming {
    Request {
        id: Id,
        method: String,
        /// Raw: each method parses what it needs (`run/cancel` reads an id without losing digits).
        params: Option<Raw>,
    },
    Notification {
        method: String,
    },
    /// An answer to one of the daemon's own requests.
    Response {
        id: Id,
        outcome: Result<Raw, RpcError>,
    },
}

/// Why a line could not be used, and the id to answer with (`Id::Null` when unknown).
#[derive(Debug, PartialEq)]
pub struct Rejected {
    pub id: Id,
    pub error: RpcError,
}

/// The envelope's members, each raw. `present` keeps an explicit `null` apart from an absent key.
#[derive(Deserialize)]
struct Members<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    jsonrpc: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    params: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

fn parse_error(e: impl fmt::Display) -> Box<Rejected> {
    Box::new(Rejected {
        id: Id::Null,
        error: RpcError::new(error::PARSE_ERROR, format!("parse error: {e}")),
    })
}

impl Incoming {
    /// Parses one line (already stripped of its newline).
    pub fn parse(line: &[u8]) -> Result<Incoming, Box<Rejected>> {
        let text = std::str::from_utf8(line).map_err(parse_error)?;
        // Checks the whole line is one JSON value (iteratively: any depth is fine).
        let whole: &RawValue = serde_json::from_str(text).map_err(parse_error)?;
        match whole.get().trim_start().as_bytes().first() {
            Some(b'{') => {}
            Some(b'[') => {
                return Err(invalid(
                    Id::Null,
                    "batch requests are not supported; send one object per line",
                ))
            }
            _ => return Err(invalid(Id::Null, "a message must be a JSON object")),
        }
        let members: Members<'_> = serde_json::from_str(text).map_err(parse_error)?;
        classify(members)
    }
}

fn invalid(id: Id, message: &str) -> Box<Rejected> {
    Box::new(Rejected {
        id,
        error: RpcError::new(error::INVALID_REQUEST, message),
    })
}

fn classify(m: Members<'_>) -> Result<Incoming, Box<Rejected>> {
    let id = m.id.map(Id::from_raw);
    let usable_id = id.clone().flatten().unwrap_or(Id::Null);
    let version: Option<String> = m.jsonrpc.and_then(|v| serde_json::from_str(v.get()).ok());
    if version.as_deref() != Some("2.0") {
        return Err(invalid(usable_id, "\"jsonrpc\" must be \"2.0\""));
    }
    if let Some(method) = m.method {
        let Ok(method) = serde_json::from_str::<String>(method.get()) else {
            return Err(invalid(usable_id, "\"method\" must be a string"));
        };
        let params = m.params.filter(|p| p.get().trim() != "null");
        if let Some(p) = params {
            if !matches!(p.get().trim_start().as_bytes().first(), Some(b'{' | b'[')) {
                return Err(invalid(usable_id, "\"params\" must be an object"));
            }
        }
        return match id {
            None => Ok(Incoming::Notification { method }),
            Some(Some(id)) => Ok(Incoming::Request {
                id,
                method,
                params: params.map(RawValue::to_owned),
            }),
            Some(None) => Err(invalid(Id::Null, "\"id\" must be a string or a number")),
        };
    }
    let Some(Some(id)) = id else {
        return Err(invalid(
            Id::Null,
            "a message needs \"method\" (a request) or \"id\" with \"result\"/\"error\" (a response)",
        ));
    };
    match (m.result, m.error) {
        (Some(result), None) => Ok(Incoming::Response {
            id,
            outcome: Ok(result.to_owned()),
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
/// `data` is kept when it is ordinary JSON; data nested deeper than serde_json's recursion limit
/// is dropped with a note (the call still gets its error).
fn parse_error_object(err: &RawValue) -> RpcError {
    #[derive(Deserialize)]
    struct ErrorObject<'a> {
        #[serde(default)]
        code: Option<Value>,
        #[serde(default)]
        message: Option<Value>,
        #[serde(default, borrow, deserialize_with = "present")]
        data: Option<&'a RawValue>,
    }
    let Ok(object) = serde_json::from_str::<ErrorObject<'_>>(err.get()) else {
        return RpcError::new(
            -32000,
            "tool failed (the client sent an error that is not an object)",
        );
    };
    let code = object
        .code
        .as_ref()
        .and_then(Value::as_i64)
        .unwrap_or(-32000);
    let mut message = match object.message {
        Some(Value::String(s)) => s,
        _ => "tool failed (the client sent an error without a message)".to_string(),
    };
    let data = match object.data.map(|d| serde_json::from_str::<Value>(d.get())) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            message.push_str(&format!(" [ptcd: the error's data was dropped: {e}]"));
            None
        }
    };
    RpcError {
        code,
        message,
        data,
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

    fn request_id(line: &str) -> Id {
        match Incoming::parse(line.as_bytes()) {
            Ok(Incoming::Request { id, .. }) => id,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn big_and_negative_numeric_ids_keep_their_text() {
        for text in [
            "123456789012345678901234567890",
            "-123456789012345678901234567890",
            "18446744073709551616",
            "7",
            "-1",
            "2.5",
        ] {
            let id = request_id(&format!(
                r#"{{"jsonrpc":"2.0","id":{text},"method":"run"}}"#
            ));
            assert_eq!(id, Id::Number(text.into()));
            let line = String::from_utf8(response_line(&id, &json!(1))).expect("utf-8");
            assert!(line.contains(&format!(r#""id":{text},"#)), "{line}");
        }
    }

    #[test]
    fn string_ids_are_compared_by_value() {
        let escaped = request_id(r#"{"jsonrpc":"2.0","id":"\u0061b","method":"run"}"#);
        assert_eq!(escaped, Id::from("ab"));
        assert_eq!(escaped.to_string(), r#""ab""#);
    }

    /// serde_json's `Value` stops at 128 levels; raw values are checked without recursion, so a
    /// deep result still reaches its call, as it was sent.
    #[test]
    fn deep_result_is_matched_to_its_id_and_kept_raw() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let line = format!(r#"{{"jsonrpc":"2.0","id":"t-9","result":{deep}}}"#);
        match Incoming::parse(line.as_bytes()) {
            Ok(Incoming::Response {
                id,
                outcome: Ok(result),
            }) => {
                assert_eq!(id, Id::from("t-9"));
                assert_eq!(result.get(), deep);
            }
            other => panic!("expected a response, got {other:?}"),
        }
    }

    #[test]
    fn deep_error_data_is_dropped_with_a_note_and_keeps_the_id() {
        let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        let line = format!(
            r#"{{"jsonrpc":"2.0","id":"t-3","error":{{"code":-32000,"message":"boom","data":{deep}}}}}"#
        );
        match Incoming::parse(line.as_bytes()) {
            Ok(Incoming::Response {
                id,
                outcome: Err(e),
            }) => {
                assert_eq!(id, Id::from("t-3"));
                assert!(e
                    .message
                    .starts_with("boom [ptcd: the error's data was dropped"));
                assert_eq!(e.data, None);
            }
            other => panic!("expected an error response, got {other:?}"),
        }
    }

    #[test]
    fn deep_params_are_a_request_with_raw_params() {
        let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        let line = format!(r#"{{"jsonrpc":"2.0","id":5,"method":"run","params":{deep}}}"#);
        assert!(matches!(
            Incoming::parse(line.as_bytes()),
            Ok(Incoming::Request { .. })
        ));
    }

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
        let Ok(Incoming::Response {
            id,
            outcome: Ok(result),
        }) = resp
        else {
            panic!("expected a response, got {resp:?}");
        };
        assert_eq!((id, result.get()), (Id::from("t-1"), "5"));
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
        assert_eq!(rejected.id, Id::Number("7".into()));
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
