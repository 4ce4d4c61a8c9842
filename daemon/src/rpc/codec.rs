//! A bounded line reader.
//!
//! `tokio_util`'s `LinesCodec` ends the stream on the first oversize line; the contract wants the
//! daemon to answer `-32600`, discard the rest of that line and keep the connection. The same
//! reader decodes the child's control channel, so a hostile child cannot make the daemon buffer
//! more than `max` bytes either.
//!
//! [`LineReader::next_frame`] is cancel-safe: the run loop and the connection loop poll it in a
//! `select!` and drop it whenever another branch wins. The partial line therefore lives in the
//! reader, never in the future; a dropped call loses nothing and the next call resumes the line.

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
    /// The line read so far (kept across dropped `next_frame` calls).
    line: Vec<u8>,
    /// The current line went over `max`; its remaining bytes are skipped.
    too_long: bool,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            max,
            line: Vec::new(),
            too_long: false,
        }
    }

    /// The next frame, or `None` at end of stream. A final line without `\n` still counts.
    ///
    /// Cancel-safe: the only await is `fill_buf`, which consumes nothing; bytes are moved from
    /// the buffer into `self.line` and consumed in one synchronous step.
    pub async fn next_frame(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                let line = std::mem::take(&mut self.line);
                return Ok(
                    match (std::mem::take(&mut self.too_long), line.is_empty()) {
                        (true, _) => Some(Frame::TooLong),
                        (false, true) => None,
                        (false, false) => Some(finish(line)),
                    },
                );
            }
            let (chunk, consumed, complete) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            if !self.too_long {
                if self.line.len() + chunk.len() > self.max {
                    self.too_long = true;
                    self.line = Vec::new();
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            self.inner.consume(consumed);
            if complete {
                let line = std::mem::take(&mut self.line);
                return Ok(Some(if std::mem::take(&mut self.too_long) {
                    Frame::TooLong
                } else {
                    finish(line)
                }));
            }
        }
    }

    /// Bytes of the current, unfinished line held by the reader.
    pub fn partial_len(&self) -> usize {
        self.line.len()
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

    /// Polls `next_frame` once without waiting and drops the future.
    fn poll_once<R: AsyncBufRead + Unpin>(
        reader: &mut LineReader<R>,
    ) -> std::task::Poll<std::io::Result<Option<Frame>>> {
        use std::future::Future;
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        std::pin::pin!(reader.next_frame()).poll(&mut cx)
    }

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

    /// The run loop drops `next_frame` whenever a tool answer or output wins its `select!`. A
    /// line that arrives in several reads must survive that.
    #[tokio::test]
    async fn dropping_next_frame_mid_line_keeps_the_partial_line() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut reader = LineReader::new(tokio::io::BufReader::with_capacity(8, rx), 1000);
        tokio::io::AsyncWriteExt::write_all(&mut tx, b"{\"first\":\"half")
            .await
            .expect("in-memory write");
        // One poll takes every available byte; then the future is dropped, as `select!` does.
        assert!(poll_once(&mut reader).is_pending(), "no complete line yet");
        assert_eq!(reader.partial_len(), b"{\"first\":\"half".len());
        tokio::io::AsyncWriteExt::write_all(&mut tx, b" and the rest\"}\nnext\n")
            .await
            .expect("in-memory write");
        let got = reader.next_frame().await.expect("read");
        assert_eq!(
            got,
            Some(Frame::Line(b"{\"first\":\"half and the rest\"}".to_vec()))
        );
        let got = reader.next_frame().await.expect("read");
        assert_eq!(got, Some(Frame::Line(b"next".to_vec())));
    }

    #[tokio::test]
    async fn dropping_next_frame_mid_oversize_line_still_skips_it() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut reader = LineReader::new(tokio::io::BufReader::with_capacity(4, rx), 8);
        tokio::io::AsyncWriteExt::write_all(&mut tx, b"0123456789abc")
            .await
            .expect("in-memory write");
        assert!(poll_once(&mut reader).is_pending());
        tokio::io::AsyncWriteExt::write_all(&mut tx, b"def\nok\n")
            .await
            .expect("in-memory write");
        assert_eq!(
            reader.next_frame().await.expect("read"),
            Some(Frame::TooLong)
        );
        assert_eq!(
            reader.next_frame().await.expect("read"),
            Some(Frame::Line(b"ok".to_vec()))
        );
    }

    #[tokio::test]
    async fn line_of_exactly_max_bytes_is_accepted() {
        let got = frames(b"12345678\n", 8).await;
        assert_eq!(got, vec![Frame::Line(b"12345678".to_vec())]);
    }
}
