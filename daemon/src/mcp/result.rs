//! A `tools/call` result mapped to what the script gets (pure; contract v1.1 "In the script").
//!
//! - `isError: true` → a `ToolError` (code [`TOOL_FAILED`], data `{"server", "tool"}`) whose
//!   message is the result's text content;
//! - else `structuredContent` when present;
//! - else the content blocks: text blocks become their text parsed as JSON when it parses, else
//!   the text; other blocks become described dicts (`{"type": "image", "mime_type", "data"}`,
//!   `audio` likewise, `{"type": "resource", "uri", "mime_type", "text" | "blob"}`,
//!   `{"type": "resource_link", "uri", "name"}`); one block → that value, several → a list,
//!   none → `null`.
//!
//! The mapped value is raw JSON text no bigger than `max_line_bytes`; a bigger one is refused
//! as a `ToolError` naming the limit.

use serde_json::{json, Map, Value};

use crate::rpc::{Raw, RpcError};
use crate::tool_source::ToolError;

/// The code of the `ToolError` for a tool that reported `isError` (JSON-RPC server error).
pub const TOOL_FAILED: i64 = -32000;

/// Maps `result` (a `CallToolResult` as JSON) of `server`'s `tool`.
pub fn tool_result(
    server: &str,
    tool: &str,
    result: Value,
    max_bytes: usize,
) -> Result<Raw, ToolError> {
    let Value::Object(mut result) = result else {
        return Err(failed(server, tool, "the result is not an object".into()));
    };
    let content = match result.remove("content") {
        Some(Value::Array(blocks)) => blocks,
        _ => Vec::new(),
    };
    if result.get("isError") == Some(&Value::Bool(true)) {
        let text: Vec<&str> = content
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect();
        let message = if text.is_empty() {
            format!("MCP server {server}: {tool} reported an error without a message")
        } else {
            text.join("\n")
        };
        return Err(failed(server, tool, message));
    }
    let value = match result.remove("structuredContent") {
        Some(structured) => structured,
        None => {
            let mut values: Vec<Value> = content.into_iter().map(block).collect();
            match values.len() {
                0 => Value::Null,
                1 => values.pop().unwrap_or(Value::Null),
                _ => Value::Array(values),
            }
        }
    };
    let text = serde_json::to_string(&value)
        .map_err(|e| failed(server, tool, format!("cannot encode the result: {e}")))?;
    if text.len() > max_bytes {
        return Err(failed(
            server,
            tool,
            format!(
                "MCP server {server}: the result of {tool} is {} bytes of JSON, over max_line_bytes = {max_bytes}",
                text.len()
            ),
        ));
    }
    serde_json::value::RawValue::from_string(text)
        .map_err(|e| failed(server, tool, format!("cannot encode the result: {e}")))
}

/// A `ToolError` of `server`'s `tool` with `message`.
pub fn failed(server: &str, tool: &str, message: String) -> ToolError {
    ToolError::Failed(RpcError {
        code: TOOL_FAILED,
        message,
        data: Some(json!({ "server": server, "tool": tool })),
    })
}

/// One content block as the script sees it.
fn block(block: Value) -> Value {
    let Value::Object(mut b) = block else {
        return block;
    };
    let kind = b
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut take = |key: &str| b.remove(key).unwrap_or(Value::Null);
    match kind.as_str() {
        "text" => match take("text") {
            Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
            other => other,
        },
        "image" | "audio" => json!({
            "type": kind,
            "mime_type": take("mimeType"),
            "data": take("data"),
        }),
        "resource" => {
            let Value::Object(mut resource) = take("resource") else {
                return json!({ "type": "resource" });
            };
            let mut out = Map::new();
            out.insert("type".into(), "resource".into());
            out.insert("uri".into(), resource.remove("uri").unwrap_or(Value::Null));
            out.insert(
                "mime_type".into(),
                resource.remove("mimeType").unwrap_or(Value::Null),
            );
            for key in ["text", "blob"] {
                if let Some(v) = resource.remove(key) {
                    out.insert(key.into(), v);
                }
            }
            Value::Object(out)
        }
        "resource_link" => {
            let mut out = Map::new();
            out.insert("type".into(), "resource_link".into());
            out.insert("uri".into(), take("uri"));
            out.insert("name".into(), take("name"));
            if let Some(mime) = b.remove("mimeType") {
                out.insert("mime_type".into(), mime);
            }
            Value::Object(out)
        }
        _ => Value::Object(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;

    fn ok(result: Value) -> Value {
        let raw = tool_result("db", "q", result, MAX).expect("a value");
        serde_json::from_str(raw.get()).expect("JSON")
    }

    fn err(result: Value) -> RpcError {
        match tool_result("db", "q", result, MAX) {
            Err(ToolError::Failed(e)) => e,
            other => panic!("not a failure: {other:?}"),
        }
    }

    #[test]
    fn structured_content_is_preferred_over_text() {
        let r = json!({
            "content": [{"type": "text", "text": "{\"rows\": 1}"}],
            "structuredContent": {"rows": [1, 2]},
        });
        assert_eq!(ok(r), json!({"rows": [1, 2]}));
        // An explicit null is a value too.
        assert_eq!(
            ok(json!({"content": [], "structuredContent": null})),
            Value::Null
        );
    }

    #[test]
    fn one_text_block_is_parsed_as_json_when_it_parses() {
        let r = json!({"content": [{"type": "text", "text": "{\"tz\": \"UTC\", \"n\": 2}"}]});
        assert_eq!(ok(r), json!({"tz": "UTC", "n": 2}));
        assert_eq!(
            ok(json!({"content": [{"type": "text", "text": "42"}]})),
            json!(42)
        );
    }

    #[test]
    fn text_that_is_not_json_stays_text() {
        let r = json!({"content": [{"type": "text", "text": "hello, world"}]});
        assert_eq!(ok(r), json!("hello, world"));
    }

    #[test]
    fn several_text_blocks_become_a_list() {
        let r = json!({"content": [
            {"type": "text", "text": "[1]"},
            {"type": "text", "text": "plain"},
        ]});
        assert_eq!(ok(r), json!([[1], "plain"]));
    }

    #[test]
    fn no_content_is_null() {
        assert_eq!(ok(json!({"content": []})), Value::Null);
        assert_eq!(ok(json!({})), Value::Null);
    }

    #[test]
    fn image_and_audio_become_described_dicts() {
        let r = json!({"content": [{"type": "image", "mimeType": "image/png", "data": "iVBO"}]});
        assert_eq!(
            ok(r),
            json!({"type": "image", "mime_type": "image/png", "data": "iVBO"})
        );
        let r = json!({"content": [{"type": "audio", "mimeType": "audio/wav", "data": "UklG"}]});
        assert_eq!(
            ok(r),
            json!({"type": "audio", "mime_type": "audio/wav", "data": "UklG"})
        );
    }

    #[test]
    fn embedded_resources_keep_text_or_blob() {
        let r = json!({"content": [
            {"type": "resource", "resource": {"uri": "file:///a", "mimeType": "text/plain", "text": "hi"}},
            {"type": "resource", "resource": {"uri": "file:///b", "blob": "AAE="}},
        ]});
        assert_eq!(
            ok(r),
            json!([
                {"type": "resource", "uri": "file:///a", "mime_type": "text/plain", "text": "hi"},
                {"type": "resource", "uri": "file:///b", "mime_type": null, "blob": "AAE="},
            ])
        );
    }

    #[test]
    fn resource_links_give_uri_and_name() {
        let r = json!({"content": [
            {"type": "resource_link", "uri": "file:///x", "name": "x", "mimeType": "text/csv"},
        ]});
        assert_eq!(
            ok(r),
            json!({"type": "resource_link", "uri": "file:///x", "name": "x", "mime_type": "text/csv"})
        );
    }

    #[test]
    fn mixed_content_is_a_list_in_order() {
        let r = json!({"content": [
            {"type": "text", "text": "{\"a\": 1}"},
            {"type": "image", "mimeType": "image/gif", "data": "R0lG"},
        ]});
        assert_eq!(
            ok(r),
            json!([{"a": 1}, {"type": "image", "mime_type": "image/gif", "data": "R0lG"}])
        );
    }

    #[test]
    fn is_error_raises_a_tool_error_with_the_text() {
        let e = err(json!({
            "isError": true,
            "content": [{"type": "text", "text": "no such table: x"}],
        }));
        assert_eq!(e.code, TOOL_FAILED);
        assert_eq!(e.message, "no such table: x");
        assert_eq!(e.data, Some(json!({"server": "db", "tool": "q"})));
        let e = err(json!({"isError": true, "content": []}));
        assert!(
            e.message.contains("db: q reported an error"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_result_over_max_line_bytes_is_refused_naming_the_limit() {
        let big = "x".repeat(2000);
        let r = json!({"content": [{"type": "text", "text": big}]});
        match tool_result("db", "q", r, 1024) {
            Err(ToolError::Failed(e)) => {
                assert!(
                    e.message.contains("over max_line_bytes = 1024"),
                    "{}",
                    e.message
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
