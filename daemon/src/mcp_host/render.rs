//! The text a model reads from a run result: the same shape as the Python client's
//! `RunResult.render()` (clients/python/src/ptcd/_result.py), so a model sees one format whether
//! it reaches ptcd through a framework integration or through `ptcd mcp`.
//!
//! Ok runs: stdout (and a note if it was cut), stderr if any, then the last expression's value if
//! it is not null (strings as they are, anything else as compact JSON). Other runs: stdout,
//! stderr, then `"<status>: <type>: <message>"` and the script's traceback, whose own closing
//! `Type: message` lines are not repeated.

use serde_json::Value;

/// Renders a RunResult object (as the daemon sent it; missing fields count as empty).
pub fn render(result: &Value) -> String {
    let text = |key: &str| result.get(key).and_then(Value::as_str).unwrap_or_default();
    let truncated = |key: &str| {
        result
            .get("truncated")
            .and_then(|t| t.get(key))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let status = text("status");
    let mut parts: Vec<String> = Vec::new();
    let stdout = text("stdout");
    if !stdout.is_empty() {
        parts.push(stdout.trim_end_matches('\n').to_string());
    }
    if truncated("stdout") > 0 {
        parts.push(format!(
            "[stdout truncated: {} bytes omitted]",
            truncated("stdout")
        ));
    }
    let stderr = text("stderr");
    if !stderr.is_empty() {
        parts.push(format!("[stderr]\n{}", stderr.trim_end_matches('\n')));
    }
    if truncated("stderr") > 0 {
        parts.push(format!(
            "[stderr truncated: {} bytes omitted]",
            truncated("stderr")
        ));
    }
    if status == "ok" {
        match result.get("value") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => parts.push(s.clone()),
            Some(other) => parts.push(other.to_string()),
        }
        return if parts.is_empty() {
            "(no output)".into()
        } else {
            parts.join("\n")
        };
    }
    match result.get("error").filter(|e| !e.is_null()) {
        Some(error) => {
            let field = |key: &str| error.get(key).and_then(Value::as_str).unwrap_or_default();
            let kind = match field("type") {
                "" => "Error",
                t => t,
            };
            let message = field("message");
            let headline_error = if message.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}: {message}")
            };
            let traceback = field("traceback").trim_end_matches('\n');
            let lines: Vec<&str> = traceback.lines().collect();
            let lines = without_closing_error(&lines, &headline_error);
            let mut headline = format!("{status}: {headline_error}");
            if lines.iter().any(|l| !l.trim().is_empty()) {
                headline.push('\n');
                headline.push_str(&lines.join("\n"));
            }
            parts.push(headline);
        }
        None => parts.push(status.to_string()),
    }
    parts.join("\n")
}

/// `lines` minus a closing `Type: message` (possibly module-qualified, possibly several lines
/// long) equal to `error`, which the headline already shows.
fn without_closing_error<'a>(lines: &[&'a str], error: &str) -> Vec<&'a str> {
    let expected: Vec<&str> = if error.is_empty() {
        vec![error]
    } else {
        error.lines().collect()
    };
    let n = expected.len();
    if n == 0 || lines.len() < n || lines[lines.len() - n + 1..] != expected[1..] {
        return lines.to_vec();
    }
    let first = lines[lines.len() - n];
    if first == expected[0] || first.ends_with(&format!(".{}", expected[0])) {
        return lines[..lines.len() - n].to_vec();
    }
    lines.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ok_run_shows_output_then_value_as_compact_json() {
        let r = json!({"status": "ok", "stdout": "a\nb\n", "stderr": "", "value": {"x": [1, 2]},
            "truncated": {"stdout": 0, "stderr": 0}});
        assert_eq!(render(&r), "a\nb\n{\"x\":[1,2]}");
    }

    #[test]
    fn ok_run_without_output_says_so_and_strings_are_shown_as_they_are() {
        assert_eq!(
            render(&json!({"status": "ok", "value": null})),
            "(no output)"
        );
        assert_eq!(render(&json!({"status": "ok", "value": "hé"})), "hé");
    }

    #[test]
    fn truncation_and_stderr_are_marked() {
        let r = json!({"status": "ok", "stdout": "x", "stderr": "warn\n",
            "truncated": {"stdout": 5, "stderr": 2}});
        assert_eq!(
            render(&r),
            "x\n[stdout truncated: 5 bytes omitted]\n[stderr]\nwarn\n[stderr truncated: 2 bytes omitted]"
        );
    }

    #[test]
    fn failed_run_shows_headline_and_traceback_without_repeating_the_error() {
        let r = json!({"status": "error", "stdout": "before\n", "error": {"type": "ZeroDivisionError",
            "message": "division by zero", "line": 2,
            "traceback": "Traceback (most recent call last):\n  File \"<script>\", line 2, in <module>\nZeroDivisionError: division by zero\n"}});
        assert_eq!(
            render(&r),
            "before\nerror: ZeroDivisionError: division by zero\nTraceback (most recent call last):\n  File \"<script>\", line 2, in <module>"
        );
    }

    #[test]
    fn module_qualified_closing_line_is_dropped_and_limits_show_their_message() {
        let r = json!({"status": "error", "error": {"type": "ToolError", "message": "boom",
            "traceback": "Traceback:\n  x\nptcd.ToolError: boom"}});
        assert_eq!(render(&r), "error: ToolError: boom\nTraceback:\n  x");
        let r = json!({"status": "timeout", "error": {"type": "Timeout",
            "message": "timeout_ms = 100 passed", "traceback": null}});
        assert_eq!(render(&r), "timeout: Timeout: timeout_ms = 100 passed");
        assert_eq!(render(&json!({"status": "crashed"})), "crashed");
    }
}
