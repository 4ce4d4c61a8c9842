//! JSON-RPC 2.0 over newline-delimited lines, in both directions.
//!
//! jsonrpsee has no Unix-socket server and cannot send server→client requests, which is the heart
//! of ptcd (the `tool/call` relay). The protocol surface is small, so the daemon owns it here:
//! - [`codec`]: a bounded line reader (an oversize line is reported, skipped, and the stream goes on);
//! - [`inbound`]: the client connection's line reader (cancel-safe, charged to a global byte
//!   budget, with a deadline for a started line);
//! - [`message`]: classifying one line into a request, notification or response;
//! - [`error`]: the wire error codes and error object (domain errors become one in
//!   `connection::wire_error`);
//! - [`peer`]: the outbound side — one writer per connection, and the table of requests the
//!   daemon sent to the client that still wait for an answer (keyed by a typed `OutgoingId`).

pub mod codec;
pub mod error;
pub mod inbound;
pub mod message;
pub mod peer;

pub use error::RpcError;
pub use message::{Id, Incoming, Raw};
pub use peer::Peer;
