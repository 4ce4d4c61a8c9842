//! The floor for ptcd's tool-call path: a raw two-hop newline-JSON relay, nothing else.
//!
//! ```text
//! cargo build --release --example echo_relay
//! target/release/examples/echo_relay CLIENT_SOCKET CHILD_SOCKET
//! ```
//!
//! A ptcd tool call travels child → daemon → client and back. This program is that path with
//! every ptcd concern removed (no JSON parsing, no ids, no limits, no confinement, no async
//! runtime): it binds two Unix stream sockets, prints `ready` on stdout, accepts one connection on
//! each (the "child", a Python process playing the shim's side, and the "client", playing the
//! answering side), then copies whole lines between them, one thread per direction, until either
//! side closes. A direction flushes whenever its input buffer is empty, so a burst of lines (a
//! gathered fan-out) crosses in few writes, as a good relay would do.
//!
//! `benches/compare.py` times round trips through it (F_echo) and subtracts that from ptcd's own
//! per-call time (W9). It is a benchmark helper, not part of the daemon: std only, no dependency.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::ExitCode;
use std::thread;

/// Longest line relayed; a longer one ends the relay with an error (a bench never sends one).
const MAX_LINE_BYTES: u64 = 16 << 20;

/// Copies whole lines from `from` to `to` until `from` reaches end of file, then shuts down the
/// writing side of `to` so the peer sees the end too.
fn pump(from: UnixStream, to: UnixStream) -> io::Result<()> {
    let half_close = to.try_clone()?;
    let mut reader = BufReader::with_capacity(1 << 16, from);
    let mut writer = BufWriter::with_capacity(1 << 16, to);
    let mut line = Vec::with_capacity(1 << 12);
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        if line.last() != Some(&b'\n') && n as u64 > MAX_LINE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a line is longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
        writer.write_all(&line)?;
        if reader.buffer().is_empty() {
            writer.flush()?;
        }
    }
    writer.flush()?;
    // The peer may already be gone; the relay is ending either way.
    let _ = half_close.shutdown(Shutdown::Write);
    Ok(())
}

fn accept_one(path: &Path) -> io::Result<UnixListener> {
    // A stale socket file from an earlier run would make bind fail.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    UnixListener::bind(path)
}

fn run(client_path: &Path, child_path: &Path) -> io::Result<()> {
    let client_listener = accept_one(client_path)?;
    let child_listener = accept_one(child_path)?;
    println!("ready");
    io::stdout().flush()?;
    let (child, _) = child_listener.accept()?;
    let (client, _) = client_listener.accept()?;
    let up = {
        let (child, client) = (child.try_clone()?, client.try_clone()?);
        thread::spawn(move || pump(child, client))
    };
    let down = pump(client, child);
    let up = up
        .join()
        .map_err(|_| io::Error::other("the child-to-client thread panicked"))?;
    down.and(up)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, client, child] = args.as_slice() else {
        eprintln!("usage: echo_relay CLIENT_SOCKET CHILD_SOCKET");
        return ExitCode::from(2);
    };
    match run(Path::new(client), Path::new(child)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_relay: {e}");
            ExitCode::FAILURE
        }
    }
}
