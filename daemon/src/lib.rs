//! ptcd — a programmatic-tool-calling daemon.
//!
//! A client connects to a Unix socket and speaks newline-delimited JSON-RPC 2.0 (see
//! `docs/protocol.md`). It sends a model-written Python script with `run`; the daemon starts a
//! confined CPython child for it, and every time the script awaits a tool the daemon asks the
//! tool's source (today: a `tool/call` request back to the same client) and hands the answer to
//! the script. Only the script's output and final value go back to the model.
//!
//! Module map, top-down (a module uses only modules below its layer; see ARCHITECTURE.md):
//! - process and service: [`service`] (start-up, `run(listener, shutdown)`, reload, shutdown),
//!   [`doctor`] and [`probe`] (`ptcd doctor`: host facts and a real confined run per policy),
//!   [`mcp_host`] (`ptcd mcp`: an MCP server on stdio that is a client of the daemon's socket).
//! - connection edge: [`server`] (socket, accept loop), [`connection`] (one client: reader loop,
//!   dispatch, the one mapping of domain errors to JSON-RPC), [`client_source`] (the client as
//!   the source of a run's declared tools and receiver of its output), [`session`] (runs sharing
//!   settings and, when persistent, one child), [`definitions`] (`tools/definition`).
//! - runs: [`run`] (one execution: choose the child, drive, tail, result), [`relay`] (its tool
//!   calls), [`tool_source`] (the `ToolSource` trait and per-run `ToolRouter`), [`params`],
//!   [`tools`] (validating requests), [`error`] (domain errors), [`pool`] (warm children),
//!   [`daemon`] (the shared [`daemon::Daemon`]).
//! - children: [`confined`] (a started `ConfinedChild` and its channels), [`control`] (its
//!   control socket), [`shim`] (the embedded Python shim and the typed messages both ways),
//!   [`sandbox`] (the one path that starts processes), [`scratch`] (scratch dirs),
//!   [`policy`] and [`limits`] (what a run may do), [`python`] (finding CPython once),
//!   [`config`] (config file, flags, `ServeConfig`).
//! - foundations: [`rpc`] (framing, JSON-RPC messages, wire error codes, the outbound
//!   request table), [`budget`] (byte budgets), [`memory`], [`secure_dir`], [`unwind`].

pub mod attach;
pub mod budget;
pub mod client_source;
pub mod config;
pub mod confined;
pub mod connection;
pub mod control;
pub mod daemon;
pub mod definitions;
pub mod discovery;
pub mod doctor;
pub mod error;
pub mod forkserver;
pub mod limits;
pub mod mcp;
pub mod mcp_host;
pub mod memory;
pub mod params;
pub mod policy;
pub mod pool;
pub mod probe;
pub mod python;
pub mod relay;
pub mod rpc;
pub mod run;
pub mod sandbox;
pub mod scratch;
pub mod secure_dir;
pub mod server;
pub mod service;
pub mod session;
pub mod shim;
pub mod stubs;
pub mod tool_source;
pub mod tools;
pub mod unwind;
