//! A run's output: what the child writes to fd 1/2 (or, in a persistent session, sends as
//! `output` control messages), collected per run by [`collect_output`]. It keeps at most
//! `max_output_bytes` per stream, counts the rest, marks the cut, and streams whole characters
//! to the run's requester when the run asked for `stream: true`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::confined::{Chunk, Stream};
use crate::tool_source::{Requester, RunIdentity};

/// Chunks of output waiting for the collector; a full channel stops the pipe readers, and with
/// them a child that writes faster than the client reads.
const OUTPUT_QUEUE: usize = 16;

/// Where streamed output goes (`stream: true`): the run's requester.
#[derive(Clone)]
pub struct Streamer {
    pub to: Arc<dyn Requester>,
    pub run: Arc<RunIdentity>,
}

/// One stream of one run: the kept bytes and the count of the dropped ones.
struct Captured {
    stream: Stream,
    kept: Vec<u8>,
    dropped: u64,
    streamed: usize,
}

impl Captured {
    fn new(stream: Stream) -> Captured {
        Captured {
            stream,
            kept: Vec::new(),
            dropped: 0,
            streamed: 0,
        }
    }

    async fn push(&mut self, bytes: &[u8], cap: usize, streamer: Option<&Streamer>) {
        let room = cap.saturating_sub(self.kept.len());
        let keep = bytes.len().min(room);
        self.kept.extend_from_slice(&bytes[..keep]);
        self.dropped += (bytes.len() - keep) as u64;
        let Some(s) = streamer else { return };
        // Stream whole characters only; an incomplete trailing sequence waits for more bytes.
        let pending = &self.kept[self.streamed..];
        let valid = match std::str::from_utf8(pending) {
            Ok(_) => pending.len(),
            Err(e) if e.error_len().is_none() && keep == bytes.len() => e.valid_up_to(),
            Err(_) => pending.len(),
        };
        if valid > 0 {
            let text = String::from_utf8_lossy(&pending[..valid]);
            s.to.output(&s.run, self.stream.name(), &text).await;
            self.streamed += valid;
        }
    }

    /// The kept text, cut at a character boundary, with a marker where text was dropped.
    fn render(mut self) -> (String, u64) {
        if self.dropped > 0 {
            if let Err(e) = std::str::from_utf8(&self.kept) {
                if e.error_len().is_none() {
                    self.dropped += (self.kept.len() - e.valid_up_to()) as u64;
                    self.kept.truncate(e.valid_up_to());
                }
            }
        }
        let mut text = String::from_utf8_lossy(&self.kept).into_owned();
        if self.dropped > 0 {
            text.push_str(&format!(
                "\n[ptcd: output truncated here, {} more bytes dropped]\n",
                self.dropped
            ));
        }
        (text, self.dropped)
    }
}

/// A run's output: `(text, dropped bytes)` for stdout and stderr.
pub type Output = [(String, u64); 2];

/// The output channel of one run and the task collecting from it.
pub fn collect_output(
    cap: usize,
    streamer: Option<Streamer>,
) -> (mpsc::Sender<Chunk>, JoinHandle<Output>) {
    let (tx, mut rx) = mpsc::channel::<Chunk>(OUTPUT_QUEUE);
    let task = tokio::spawn(async move {
        let mut out = Captured::new(Stream::Stdout);
        let mut err = Captured::new(Stream::Stderr);
        while let Some((stream, bytes)) = rx.recv().await {
            let target = match stream {
                Stream::Stdout => &mut out,
                Stream::Stderr => &mut err,
            };
            target.push(&bytes, cap, streamer.as_ref()).await;
        }
        [out.render(), err.render()]
    });
    (tx, task)
}

/// Waits (at most `grace`) for a collector whose senders are all gone.
pub async fn finish_output(mut task: JoinHandle<Output>, grace: Duration) -> Output {
    match tokio::time::timeout(grace, &mut task).await {
        Ok(Ok(output)) => output,
        _ => {
            task.abort();
            [(String::new(), 0), (String::new(), 0)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_keeps_cap_and_counts_the_rest() {
        let (tx, task) = collect_output(100, None);
        tx.send((Stream::Stdout, vec![b'x'; 1000]))
            .await
            .expect("collector runs");
        tx.send((Stream::Stderr, b"e".to_vec()))
            .await
            .expect("collector runs");
        drop(tx);
        let [(out, out_dropped), (err, err_dropped)] =
            finish_output(task, Duration::from_secs(5)).await;
        assert_eq!(out_dropped, 900);
        assert!(out.starts_with(&"x".repeat(100)));
        assert!(out.contains("900 more bytes dropped"));
        assert_eq!((err.as_str(), err_dropped), ("e", 0));
    }

    #[tokio::test]
    async fn truncation_cuts_at_a_character_boundary() {
        let (tx, task) = collect_output(5, None);
        tx.send((Stream::Stdout, "ééé".as_bytes().to_vec()))
            .await
            .expect("collector runs");
        drop(tx);
        let [(out, dropped), _] = finish_output(task, Duration::from_secs(5)).await;
        assert!(out.starts_with("éé\n[ptcd"), "{out}");
        assert_eq!(dropped, 2);
    }
}
