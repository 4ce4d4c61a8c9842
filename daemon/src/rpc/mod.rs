//! JSON-RPC 2.0 over newline-delimited lines, in both directions.
//!
//! jsonrpsee has no Unix-socket server and cannot send server→client requests, which is the heart
//! of ptcd (the `tool/call` relay). The protocol surface is small, so the daemon owns it here:
//! - [`codec`]: a bounded line reader (an oversize line is reported, skipped, and the stream goes on);
//! - [`message`]: classifying one line into a request, notification or response;
//! - [`error`]: the wire error codes, the one place internal errors become JSON-RPC errors;
//! - [`peer`]: the outbound side — one writer per connection, and the table of requests the
//!   daemon sent to the client that still wait for an answer.

pub mod codec;
pub mod error;
pub mod message;
pub mod peer;

pub use error::RpcError;
pub use message::{Id, Incoming, Raw};
pub use peer::Peer;
