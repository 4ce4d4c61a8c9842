//! The last bytes a stdio MCP server wrote to its stderr.
//!
//! A server's stderr is drained for its whole life (a full pipe would block it) by one task that
//! keeps only the last [`STDERR_TAIL_BYTES`]: a server that floods stderr costs the daemon a
//! fixed few KiB, never more. The tail is quoted in the errors that say why a server failed to
//! start or went away.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::io::{AsyncRead, AsyncReadExt};

/// How much of a server's stderr is kept.
pub const STDERR_TAIL_BYTES: usize = 4096;

/// The bounded tail of one server's stderr.
#[derive(Default)]
pub struct StderrTail {
    bytes: Mutex<VecDeque<u8>>,
}

impl StderrTail {
    /// Appends `chunk`, forgetting the oldest bytes beyond [`STDERR_TAIL_BYTES`].
    pub fn push(&self, chunk: &[u8]) {
        let mut bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let chunk = &chunk[chunk.len().saturating_sub(STDERR_TAIL_BYTES)..];
        let overflow = (bytes.len() + chunk.len()).saturating_sub(STDERR_TAIL_BYTES);
        bytes.drain(..overflow);
        bytes.extend(chunk);
    }

    /// The tail as text (lossy UTF-8, trimmed); empty when the server wrote nothing.
    pub fn text(&self) -> String {
        let bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let (a, b) = bytes.as_slices();
        String::from_utf8_lossy(&[a, b].concat()).trim().to_string()
    }

    /// `"; stderr: <tail>"`, or nothing when the server wrote nothing: the suffix of an error.
    pub fn suffix(&self) -> String {
        match self.text() {
            t if t.is_empty() => String::new(),
            t => format!("; stderr: {t}"),
        }
    }

    /// Bytes held (at most [`STDERR_TAIL_BYTES`]).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.bytes.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Reads `stream` to its end into `tail` (in fixed chunks, so memory stays fixed).
pub async fn drain(mut stream: impl AsyncRead + Unpin, tail: std::sync::Arc<StderrTail>) {
    let mut chunk = vec![0u8; 8192];
    while let Ok(n @ 1..) = stream.read(&mut chunk).await {
        tail.push(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_only_the_last_bytes_of_a_flood() {
        let tail = StderrTail::default();
        for i in 0..1000u32 {
            tail.push(format!("line {i:05} {}\n", "x".repeat(100)).as_bytes());
        }
        assert_eq!(tail.len(), STDERR_TAIL_BYTES);
        assert!(tail
            .text()
            .ends_with(&format!("line 00999 {}", "x".repeat(100))));
        tail.push(&vec![b'y'; 3 * STDERR_TAIL_BYTES]);
        assert_eq!(tail.text(), "y".repeat(STDERR_TAIL_BYTES));
    }

    #[test]
    fn short_output_is_kept_whole() {
        let tail = StderrTail::default();
        assert_eq!(tail.suffix(), "");
        tail.push(b"Traceback: boom\n");
        assert_eq!(tail.suffix(), "; stderr: Traceback: boom");
    }

    #[tokio::test]
    async fn drain_reads_to_the_end_in_bounded_memory() {
        let tail = std::sync::Arc::new(StderrTail::default());
        let flood = vec![b'z'; 1 << 20];
        drain(&flood[..], tail.clone()).await;
        assert_eq!(tail.len(), STDERR_TAIL_BYTES);
    }
}
