//! A bounded line reader.
//!
//! `tokio_util`'s `LinesCodec` ends the stream on the first oversize line; the contract wants the
//! daemon to answer `-32600`, discard the rest of that line and keep the connection. The same
//! reader decodes the child's control channel, so a hostile child cannot make the daemon buffer
//! more than `max` bytes either.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// One frame read from the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line without its `\n` (and without a trailing `\r`).
    Line(Vec<u8>),
    /// A line longer than the limit; its bytes were discarded.
    TooLong,
}

/// Reads `\n`-terminated lines of at most `max` bytes.
pub struct LineReader<R> {
    inner: R,
    max: usize,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        LineReader { inner, max }
    }

    /// The next frame, or `None` at end of stream. A final line without `\n` still counts.
    pub async fn next_frame(&mut self) -> std::io::Result<Option<Frame>> {
        let mut line = Vec::new();
        let mut too_long = false;
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                return Ok(match (too_long, line.is_empty()) {
                    (true, _) => Some(Frame::TooLong),
                    (false, true) => None,
                    (false, false) => Some(finish(line)),
                });
            }
            let (chunk, consumed, complete) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            if !too_long {
                if line.len() + chunk.len() > self.max {
                    too_long = true;
                    line = Vec::new();
                } else {
                    line.extend_from_slice(chunk);
                }
            }
            self.inner.consume(consumed);
            if complete {
                return Ok(Some(if too_long {
                    Frame::TooLong
                } else {
                    finish(line)
                }));
            }
        }
    }
}

fn finish(mut line: Vec<u8>) -> Frame {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Frame::Line(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8], max: usize) -> Vec<Frame> {
        let mut reader = LineReader::new(tokio::io::BufReader::with_capacity(4, input), max);
        let mut out = Vec::new();
        while let Some(frame) = reader.next_frame().await.expect("in-memory read") {
            out.push(frame);
        }
        out
    }

    #[tokio::test]
    async fn splits_lines_across_small_buffers() {
        let got = frames(b"hello world\r\nsecond\nlast", 100).await;
        assert_eq!(
            got,
            vec![
                Frame::Line(b"hello world".to_vec()),
                Frame::Line(b"second".to_vec()),
                Frame::Line(b"last".to_vec())
            ]
        );
    }

    #[tokio::test]
    async fn oversize_line_is_skipped_and_stream_continues() {
        let got = frames(b"0123456789abcdef\nok\n", 8).await;
        assert_eq!(got, vec![Frame::TooLong, Frame::Line(b"ok".to_vec())]);
    }

    #[tokio::test]
    async fn line_of_exactly_max_bytes_is_accepted() {
        let got = frames(b"12345678\n", 8).await;
        assert_eq!(got, vec![Frame::Line(b"12345678".to_vec())]);
    }
}
