//! Request lines from one client: cancel-safe, bounded in bytes, with a completion deadline.
//!
//! The child's control channel has its own reader (`codec.rs`); a client connection needs three
//! more things, all kept here:
//! - **cancel safety**: every byte read lives in the reader itself, never in a local of
//!   [`ClientLines::next_frame`], so the connection loop can poll it in a `select!` and drop the
//!   call at any point without losing or tearing a line;
//! - **a global byte budget**: a connection holds up to [`FREE_BYTES`] of buffered input for free;
//!   beyond that its partial line (and the line it handed out, until the next call) is charged to
//!   `partial_lines_total_bytes`, shared by all connections. When the budget is used up the reader
//!   stops reading (the client's writes block in its own socket) until bytes come back;
//! - **a completion deadline**: a line whose first byte arrived more than `line_timeout_ms` ago and
//!   whose `\n` has not, ends the connection ([`ReadError::LineTimeout`]). An idle connection (no
//!   partial line) has no deadline.
//!
//! A line longer than `max_line_bytes` is discarded as it streams in and reported as
//! [`Frame::TooLong`]; the connection goes on.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use crate::budget::{ByteBudget, Charge};

/// Input a connection may buffer without charging the global budget (one read's worth).
pub const FREE_BYTES: usize = 64 * 1024;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

/// One frame read from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line without its `\n` (and without a trailing `\r`).
    Line(Vec<u8>),
    /// A line longer than the limit; its bytes were discarded.
    TooLong,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("a request line was started and not finished within line_timeout_ms ({0} ms)")]
    LineTimeout(u128),
    #[error("the input budget is closed")]
    BudgetClosed,
    #[error("the client hung up while its line waited for the input budget")]
    HungUp,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Limits of one connection's reader.
#[derive(Debug, Clone)]
pub struct InboundLimits {
    /// Longest accepted line (`max_line_bytes`).
    pub max_line: usize,
    /// How long a started line may take to finish (`line_timeout_ms`).
    pub line_timeout: Duration,
    /// Shared by every connection (`partial_lines_total_bytes`).
    pub budget: Arc<ByteBudget>,
}

/// Reads `\n`-terminated lines from a client.
pub struct ClientLines<R> {
    inner: R,
    limits: InboundLimits,
    /// Bytes read; those before `start` were handed out already (lines copied out of the
    /// buffer, which is compacted before the next read).
    buf: Vec<u8>,
    /// Where the next line starts in `buf`.
    start: usize,
    /// Prefix of `buf` known to hold no `\n` (never below `start`).
    scanned: usize,
    /// In a line longer than the limit: its bytes are dropped until its `\n`.
    discarding: bool,
    /// Charged for `buf`'s capacity above [`FREE_BYTES`].
    charge: Charge,
    /// Charged for the line handed out by the previous call (the caller is still using it).
    handed_out: Charge,
    /// When the first byte of the current partial line arrived (or, for bytes that came with
    /// the previous line, when the caller asked for the next frame).
    line_started: Option<Instant>,
    /// `buf` holds the start of a line whose clock starts at the next call: the time the caller
    /// spends handling the previous line is not the client's.
    clock_pending: bool,
    eof: bool,
    /// The socket, watched for a full close while the reader waits for budget (it reads
    /// nothing then, so it would not see the end of stream).
    hangup_fd: Option<RawFd>,
}

impl<R: AsyncRead + Unpin> ClientLines<R> {
    pub fn new(inner: R, limits: InboundLimits) -> Self {
        ClientLines {
            inner,
            limits,
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            discarding: false,
            charge: Charge::default(),
            handed_out: Charge::default(),
            line_started: None,
            clock_pending: false,
            eof: false,
            hangup_fd: None,
        }
    }

    /// Ends a wait for budget with [`ReadError::HungUp`] when `fd` is fully closed by the peer.
    pub fn watch_hangup(mut self, fd: RawFd) -> Self {
        self.hangup_fd = Some(fd);
        self
    }

    /// True while part of a line has arrived and its end has not.
    pub fn mid_line(&self) -> bool {
        self.line_started.is_some() || self.clock_pending
    }

    /// Bytes read and kept (buffered input plus the line last handed out).
    pub fn buffered(&self) -> usize {
        self.buf.capacity() + self.handed_out.bytes()
    }

    /// The next frame; `None` at end of stream (a final line without `\n` still counts).
    /// Cancel-safe.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, ReadError> {
        // The caller is done with the previous line.
        self.handed_out = Charge::default();
        if std::mem::take(&mut self.clock_pending) {
            self.line_started = Some(Instant::now());
        }
        loop {
            if let Some(frame) = self.take_line() {
                return Ok(Some(frame));
            }
            if self.eof {
                return Ok(self.take_rest());
            }
            self.read_more().await?;
        }
    }

    /// A complete line from `buf`, if there is one; otherwise notes how far `buf` was scanned
    /// and switches to discarding when the partial line is over the limit.
    fn take_line(&mut self) -> Option<Frame> {
        let found = self.buf[self.scanned..].iter().position(|&b| b == b'\n');
        let Some(i) = found else {
            self.scanned = self.buf.len();
            if !self.discarding && self.buf.len() - self.start > self.limits.max_line + 1 {
                self.discarding = true;
            }
            if self.discarding {
                self.consume(self.buf.len());
            }
            return None;
        };
        let end = self.scanned + i;
        // The limit is on the line without its terminator, `\n` or `\r\n` alike.
        let len = if end > self.start && self.buf[end - 1] == b'\r' {
            end - 1 - self.start
        } else {
            end - self.start
        };
        let frame = if self.discarding || len > self.limits.max_line {
            self.discarding = false;
            self.consume(end + 1);
            Frame::TooLong
        } else if self.start == 0 && self.buf.capacity() > FREE_BYTES {
            // The buffer grew for this line: the line keeps the big allocation (and its
            // charge, until the next call); the rest (at most one read) moves to a fresh
            // buffer.
            let rest = self.buf.split_off(end + 1);
            let mut line = std::mem::replace(&mut self.buf, rest);
            self.handed_out = std::mem::take(&mut self.charge);
            line.truncate(len);
            self.scanned = 0;
            self.fit_buffer();
            Frame::Line(line)
        } else {
            // A line of one read or less: copied out, the buffer stays for the next lines.
            let line = self.buf[self.start..self.start + len].to_vec();
            self.consume(end + 1);
            Frame::Line(line)
        };
        self.line_started = None;
        self.clock_pending = self.start < self.buf.len();
        Some(frame)
    }

    /// Marks `buf[..upto]` as handed out or dropped. An empty buffer is let go (an idle
    /// connection holds none); one that grew for a long line shrinks back.
    fn consume(&mut self, upto: usize) {
        if upto >= self.buf.len() {
            self.buf = Vec::new();
            self.start = 0;
            self.scanned = 0;
        } else {
            self.start = upto;
            self.scanned = upto;
        }
        self.fit_buffer();
    }

    /// At end of stream: what is left in `buf`.
    fn take_rest(&mut self) -> Option<Frame> {
        let frame = if self.discarding {
            Some(Frame::TooLong)
        } else if self.start == self.buf.len() {
            None
        } else {
            // Like a line with its `\n`: the whole buffer goes out with its charge (kept until
            // the next call), a line behind others is copied out.
            let mut line = if self.start == 0 {
                self.handed_out = std::mem::take(&mut self.charge);
                std::mem::take(&mut self.buf)
            } else {
                self.buf[self.start..].to_vec()
            };
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.len() > self.limits.max_line {
                Some(Frame::TooLong)
            } else {
                Some(Frame::Line(line))
            }
        };
        self.discarding = false;
        self.line_started = None;
        self.clock_pending = false;
        self.consume(self.buf.len());
        frame
    }

    /// Shrinks a buffer that grew for a long line once it holds little, and gives back the
    /// charge it no longer needs.
    fn fit_buffer(&mut self) {
        if self.buf.capacity() > FREE_BYTES && self.buf.len() - self.start <= FREE_BYTES {
            self.compact();
            self.buf.shrink_to(FREE_BYTES);
        }
        self.charge
            .shrink_to(self.buf.capacity().saturating_sub(FREE_BYTES));
    }

    /// Drops the lines already handed out from the front of `buf`.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
    }

    /// One read from the socket, after room for it has been charged; both waits end at the
    /// current line's deadline.
    async fn read_more(&mut self) -> Result<(), ReadError> {
        self.compact();
        let deadline = self.line_started.map(|t| t + self.limits.line_timeout);
        let want = self.buf.len() + READ_CHUNK;
        if self.buf.capacity() < want {
            // Double (bounded by the longest line we keep) so a long line costs few copies.
            let cap = want
                .max(self.buf.capacity().saturating_mul(2))
                .min(self.limits.max_line + 2 * READ_CHUNK)
                .max(want);
            let needed = cap.saturating_sub(FREE_BYTES);
            if needed > self.charge.bytes() {
                let extra = needed - self.charge.bytes();
                let fd = self.hangup_fd;
                let wait = async {
                    tokio::select! {
                        charge = self.limits.budget.acquire(extra) => {
                            charge.map_err(|_| ReadError::BudgetClosed)
                        }
                        _ = hangup(fd) => Err(ReadError::HungUp),
                    }
                };
                let charge = self.until(deadline, wait).await??;
                self.charge.merge(charge);
            }
            self.buf.reserve_exact(cap - self.buf.len());
        }
        let timeout = self.limits.line_timeout;
        // At most READ_CHUNK per read, however much room a buffer grown for a long line has:
        // what follows that line's end in the same read stays under one read, so the lines
        // after it are copied out (not each handed the rest) and the rest needs no charge.
        let mut read = (&mut self.inner).take(READ_CHUNK as u64);
        let n = match deadline {
            Some(d) => tokio::time::timeout_at(d, read.read_buf(&mut self.buf))
                .await
                .map_err(|_| ReadError::LineTimeout(timeout.as_millis()))??,
            None => read.read_buf(&mut self.buf).await?,
        };
        if n == 0 {
            self.eof = true;
        } else if self.line_started.is_none() {
            self.line_started = Some(Instant::now());
        }
        Ok(())
    }

    async fn until<F: std::future::Future>(
        &self,
        deadline: Option<Instant>,
        fut: F,
    ) -> Result<F::Output, ReadError> {
        match deadline {
            Some(d) => tokio::time::timeout_at(d, fut)
                .await
                .map_err(|_| ReadError::LineTimeout(self.limits.line_timeout.as_millis())),
            None => Ok(fut.await),
        }
    }
}

/// Resolves when the socket `fd` is fully closed by the peer (POLLHUP), as opposed to
/// half-closed; never for `None`. Polls every 50 ms (a zero-timeout `poll`, no blocking).
pub async fn hangup(fd: Option<RawFd>) {
    let Some(fd) = fd else {
        return std::future::pending().await;
    };
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout; the caller keeps the fd open while it waits.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        if n < 0 || pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn limits(max_line: usize, budget: usize) -> InboundLimits {
        InboundLimits {
            max_line,
            line_timeout: Duration::from_secs(30),
            budget: ByteBudget::new(budget),
        }
    }

    /// A reader of the server end of an in-memory stream of `capacity` bytes, charging `budget`.
    fn charged_reader(
        capacity: usize,
        max_line: usize,
        budget: &Arc<ByteBudget>,
    ) -> (
        tokio::io::DuplexStream,
        ClientLines<tokio::io::DuplexStream>,
    ) {
        let (client, server) = tokio::io::duplex(capacity);
        let limits = InboundLimits {
            max_line,
            line_timeout: Duration::from_secs(30),
            budget: budget.clone(),
        };
        (client, ClientLines::new(server, limits))
    }

    async fn frames(input: &[u8], max: usize) -> Vec<Frame> {
        let mut reader = ClientLines::new(input, limits(max, 1 << 30));
        let mut out = Vec::new();
        while let Some(frame) = reader.next_frame().await.expect("in-memory read") {
            out.push(frame);
        }
        out
    }

    #[tokio::test]
    async fn splits_lines_and_keeps_a_final_unterminated_one() {
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
        let mut input = vec![b'x'; 300_000];
        input.extend_from_slice(b"\nok\n");
        let got = frames(&input, 100_000).await;
        assert_eq!(got, vec![Frame::TooLong, Frame::Line(b"ok".to_vec())]);
        assert_eq!(
            frames(b"12345678\n", 8).await,
            vec![Frame::Line(b"12345678".to_vec())]
        );
    }

    /// The limit counts the line, not its terminator: `\r\n` is tolerated like `\n`.
    #[tokio::test]
    async fn line_of_exactly_max_bytes_may_end_in_crlf() {
        assert_eq!(
            frames(b"12345678\r\n123456789\r\n12345678\r\r\nok\n", 8).await,
            vec![
                Frame::Line(b"12345678".to_vec()),
                Frame::TooLong,
                Frame::TooLong,
                Frame::Line(b"ok".to_vec())
            ]
        );
    }

    /// A read full of short lines hands each out as its own small copy (not the read's buffer
    /// with the rest copied again per line), and once every line is out the reader holds no
    /// buffer: an idle connection costs no read buffer.
    #[tokio::test]
    async fn short_lines_are_copied_out_and_an_idle_reader_holds_no_buffer() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let mut reader = ClientLines::new(server, limits(1 << 20, 1 << 30));
        let mut batch = Vec::new();
        for i in 0..1000 {
            batch.extend_from_slice(format!("{{\"id\":{i}}}\r\n").as_bytes());
        }
        batch.extend_from_slice(b"{\"tail\":");
        client.write_all(&batch).await.expect("write");
        for i in 0..1000 {
            let want = format!("{{\"id\":{i}}}").into_bytes();
            match reader.next_frame().await.expect("read") {
                Some(Frame::Line(line)) => {
                    assert_eq!(line, want);
                    assert!(
                        line.capacity() < 64,
                        "line {i} kept {} bytes",
                        line.capacity()
                    );
                }
                other => panic!("line {i}: {other:?}"),
            }
        }
        client.write_all(b"1}\n").await.expect("write");
        assert_eq!(
            reader.next_frame().await.expect("read"),
            Some(Frame::Line(b"{\"tail\":1}".to_vec()))
        );
        assert!(!reader.mid_line());
        assert_eq!(reader.buffered(), 0, "an idle reader keeps no buffer");
    }

    /// A final line without `\n` obeys the limit like any other (found by review).
    #[tokio::test]
    async fn a_final_unterminated_line_over_the_limit_is_too_long() {
        assert_eq!(frames(b"123456789", 8).await, vec![Frame::TooLong]);
        assert_eq!(frames(b"ok\n123456789\r", 8).await[1], Frame::TooLong);
        assert_eq!(
            frames(b"12345678\r", 8).await,
            vec![Frame::Line(b"12345678".to_vec())]
        );
    }

    /// A long final line at end of stream stays charged while the caller handles it, like a
    /// line with its `\n` (found by review: it was handed out with its charge given back).
    #[tokio::test]
    async fn a_long_final_line_at_end_of_stream_keeps_its_charge() {
        let budget = ByteBudget::new(64 << 20);
        let (mut client, mut reader) = charged_reader(1 << 20, 16 << 20, &budget);
        let writer = tokio::spawn(async move {
            client.write_all(&vec![b'{'; 4 << 20]).await.expect("write");
        });
        let frame = reader.next_frame().await.expect("read");
        writer.await.expect("writer");
        let Some(Frame::Line(line)) = frame else {
            panic!("{frame:?}")
        };
        assert_eq!(line.len(), 4 << 20);
        assert!(
            budget.in_use() + FREE_BYTES >= line.capacity(),
            "{} bytes held, {} charged",
            line.capacity(),
            budget.in_use()
        );
        drop(line);
        assert_eq!(reader.next_frame().await.expect("read"), None);
        assert_eq!(budget.in_use(), 0, "given back at the next call");
    }

    /// After a buffer grew for a long line, one read could fill all its room: what followed the
    /// line's end then became a rest over `FREE_BYTES`, uncharged, and each short line after it
    /// was handed that whole rest, copied again per line (quadratic; found by review). Reads are
    /// at most one chunk now: the lines after are copied out, and what the reader holds beyond
    /// the free bytes is charged.
    #[tokio::test]
    async fn short_lines_after_a_long_one_are_copied_out_and_stay_within_the_free_bytes() {
        let budget = ByteBudget::new(1 << 30);
        let (mut client, mut reader) = charged_reader(4 << 20, 16 << 20, &budget);
        client
            .write_all(&vec![b'a'; 512 << 10])
            .await
            .expect("write");
        let mut rest = vec![b'\n'; (256 << 10) + 1];
        rest.push(b'z');
        client.write_all(&rest).await.expect("write");
        let first = reader.next_frame().await.expect("read");
        assert!(matches!(first, Some(Frame::Line(ref l)) if l.len() == 512 << 10));
        drop(first);
        for i in 0..256 << 10 {
            match reader.next_frame().await.expect("read") {
                Some(Frame::Line(line)) => {
                    assert!(line.is_empty());
                    assert_eq!(line.capacity(), 0, "empty line {i} holds a buffer");
                    let uncharged = reader.buf.capacity().saturating_sub(budget.in_use());
                    assert!(
                        uncharged <= FREE_BYTES,
                        "line {i}: {uncharged} bytes held uncharged"
                    );
                }
                other => panic!("line {i}: {other:?}"),
            }
        }
        drop(client);
        assert_eq!(
            reader.next_frame().await.expect("read"),
            Some(Frame::Line(b"z".to_vec()))
        );
    }

    #[tokio::test]
    async fn dropping_next_frame_mid_line_loses_nothing() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let mut reader = ClientLines::new(server, limits(1 << 20, 1 << 30));
        let long = vec![b'a'; 200_000];
        client.write_all(&long[..150_000]).await.expect("write");
        // Poll until the first part has been read, then drop the call mid-line.
        for _ in 0..10 {
            tokio::select! {
                biased;
                _ = reader.next_frame() => panic!("no line is complete yet"),
                _ = tokio::task::yield_now() => {}
            }
        }
        assert!(reader.mid_line());
        client.write_all(&long[150_000..]).await.expect("write");
        client.write_all(b"\n").await.expect("write");
        let frame = reader.next_frame().await.expect("read");
        assert_eq!(frame, Some(Frame::Line(long)));
    }

    #[tokio::test]
    async fn partial_lines_beyond_the_free_bytes_are_charged_and_given_back() {
        let budget = ByteBudget::new(1 << 30);
        let (mut client, mut reader) = charged_reader(1 << 20, 4 << 20, &budget);
        let writer = tokio::spawn(async move {
            client.write_all(&vec![b'a'; 1 << 20]).await.expect("write");
            client.write_all(b"\nsmall\n").await.expect("write");
            client
        });
        let frame = reader.next_frame().await.expect("read");
        assert!(matches!(frame, Some(Frame::Line(ref l)) if l.len() == 1 << 20));
        assert!(
            budget.in_use() >= (1 << 20) - FREE_BYTES,
            "the long line is charged"
        );
        drop(frame);
        let _client = writer.await.expect("writer");
        assert_eq!(
            reader.next_frame().await.expect("read"),
            Some(Frame::Line(b"small".to_vec()))
        );
        assert_eq!(budget.in_use(), 0, "charges given back");
    }

    #[tokio::test]
    async fn reading_waits_while_the_budget_is_used_up() {
        let budget = ByteBudget::new(256 * 1024);
        let hog = budget.acquire(256 * 1024).await.expect("open");
        let (mut client, mut reader) = charged_reader(1 << 20, 1 << 20, &budget);
        let line = vec![b'b'; 200_000];
        client.write_all(&line).await.expect("write");
        client.write_all(b"\n").await.expect("write");
        let mut read = Box::pin(reader.next_frame());
        for _ in 0..20 {
            tokio::select! {
                biased;
                _ = &mut read => panic!("read a line that needs budget while none is free"),
                _ = tokio::task::yield_now() => {}
            }
        }
        drop(hog);
        assert_eq!(read.await.expect("read"), Some(Frame::Line(line)));
    }

    #[tokio::test]
    async fn unfinished_line_times_out_but_idle_connection_does_not() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut reader = ClientLines::new(
            server,
            InboundLimits {
                max_line: 1024,
                line_timeout: Duration::from_millis(200),
                budget: ByteBudget::new(1 << 20),
            },
        );
        // Idle for twice the line deadline: still no error (an idle connection has none).
        let idle = tokio::time::timeout(Duration::from_millis(400), reader.next_frame()).await;
        assert!(idle.is_err(), "an idle connection has no line deadline");
        client.write_all(b"{\"jsonrpc\"").await.expect("write");
        let err = reader.next_frame().await.expect_err("deadline");
        assert!(matches!(err, ReadError::LineTimeout(200)), "{err}");
    }

    #[tokio::test]
    async fn time_spent_handling_the_previous_line_is_not_the_clients() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut reader = ClientLines::new(
            server,
            InboundLimits {
                max_line: 1024,
                line_timeout: Duration::from_millis(200),
                budget: ByteBudget::new(1 << 20),
            },
        );
        client.write_all(b"first\n{\"next\":").await.expect("write");
        let first = reader.next_frame().await.expect("read");
        assert_eq!(first, Some(Frame::Line(b"first".to_vec())));
        // The daemon is slow with "first" (its client's queue is full, say): longer than the
        // line deadline, while the start of the next line already waits in the buffer.
        tokio::time::sleep(Duration::from_millis(400)).await;
        client.write_all(b"1}\n").await.expect("write");
        let next = reader.next_frame().await.expect("not a timeout");
        assert_eq!(next, Some(Frame::Line(b"{\"next\":1}".to_vec())));
    }
}
