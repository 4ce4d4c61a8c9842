//! ptcd — a programmatic-tool-calling daemon.
//!
//! A client connects to a Unix socket and speaks newline-delimited JSON-RPC 2.0 (see
//! `docs/protocol.md`). It sends a model-written Python script with `run`; the daemon starts a
//! confined CPython child for it, and every time the script awaits a tool the daemon sends a
//! `tool/call` request back to the same client, waits for the answer, and hands it to the script.
//! Only the script's output and final value go back to the model.
//!
//! Module map (one concept each):
//! - [`rpc`]: framing, JSON-RPC messages, error codes, and the outbound request table (`peer`).
//! - [`server`]: socket setup and the accept loop; [`connection`]: one client's reader loop.
//! - [`run`]: one script execution from `run` request to result; [`relay`]: its tool calls;
//!   [`interpreter`]: the confined child and its channels; [`session`]: runs sharing settings
//!   (and, when persistent, one interpreter); [`pool`]: interpreters started ahead of time, each
//!   serving one run.
//! - [`definitions`]: `tools/definition`, the tool list and Python stubs handed to the model.
//! - [`policy`] and [`limits`]: what a run may do; [`sandbox`]: the one path that starts children.
//! - [`runtime`]: the embedded Python shim and the messages it exchanges with the daemon.
//! - [`python`]: finding the real CPython binary once at start-up.

pub mod budget;
pub mod client_source;
pub mod config;
pub mod connection;
pub mod control;
pub mod definitions;
pub mod error;
pub mod interpreter;
pub mod limits;
pub mod memory;
pub mod params;
pub mod policy;
pub mod pool;
pub mod python;
pub mod relay;
pub mod rpc;
pub mod run;
pub mod runtime;
pub mod sandbox;
pub mod scratch;
pub mod secure_dir;
pub mod server;
pub mod service;
pub mod session;
pub mod state;
pub mod tool_source;
pub mod tools;
pub mod unwind;
