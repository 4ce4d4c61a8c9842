//! Where a run's tools come from: the [`ToolSource`] trait and the per-run [`ToolRouter`].
//!
//! The relay (`relay.rs`) never talks to a connection: it asks the run's router which source
//! serves a tool name and hands the call to that source. The tools a run declares are served by
//! the client that sent the run (`client_source.rs`, routed by [`ToolRouter::for_run`]); each
//! attached MCP server serves its tools' wire names `"<server>.<tool>"` (`mcp/`), and the
//! discovery built-ins `search_tools`/`describe_tool` are answered by `discovery.rs` — those
//! routes are added in `run/sources.rs`. A new source is one new module implementing
//! [`ToolSource`], plus its routes there.
//!
//! A source's answer is the tool's result as raw JSON (forwarded to the script as it came,
//! never re-parsed) or a [`ToolError`]; how a `ToolError` is shown to the script is decided in
//! one place, `relay::tool_error_object`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::budget::Held;
use crate::rpc::{Id, Raw, RpcError};

/// Which run a tool call belongs to (sent along with the call, e.g. in `tool/call`'s params).
#[derive(Debug, Clone)]
pub struct RunIdentity {
    pub run_id: String,
    /// The id of the `run` request, exactly as the client sent it.
    pub request_id: Id,
    /// Set for the runs of a session.
    pub session_id: Option<String>,
}

/// One tool call, as the relay hands it to a source.
pub struct ToolCall {
    pub run: Arc<RunIdentity>,
    /// The shim's id for the call, unique within the run.
    pub call_id: u64,
    pub name: String,
    /// The call's arguments: a JSON object, as the raw text the child sent.
    pub arguments: Arguments,
}

/// A call's arguments, charged to the run's queued-arguments budget until dropped: a source
/// drops them once they left the daemon (or were copied into something that is counted).
pub struct Arguments {
    raw: Raw,
    _held: Held,
}

impl Arguments {
    pub fn new(raw: Raw, held: Held) -> Arguments {
        Arguments { raw, _held: held }
    }

    /// The arguments' JSON text.
    pub fn raw(&self) -> &serde_json::value::RawValue {
        &self.raw
    }
}

/// Why a tool call has no result. Shown to the script as a `ToolError`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// No source serves this name for this run.
    #[error("unknown tool {0:?}")]
    Unknown(String),
    /// The script reused a call id.
    #[error("tool call id {0} was already used")]
    ReusedId(u64),
    /// The arguments are over `max_tool_argument_bytes`.
    #[error(
        "tool call arguments are {size} bytes of JSON, over max_tool_argument_bytes = {limit}"
    )]
    TooLarge { size: usize, limit: usize },
    /// The source can no longer answer (its client disconnected, its server is gone, …).
    #[error("tool call not answered: {0}")]
    Unreachable(String),
    /// The call was withdrawn because the run ended.
    #[error("tool call cancelled: the run ended")]
    Cancelled,
    /// The tool failed and its source said so with this error object (passed on unchanged).
    #[error("{0}")]
    Failed(RpcError),
    /// The daemon failed while relaying the call (a panic in its task).
    #[error("{0}")]
    Internal(String),
}

/// The future a source returns for one call.
pub type ToolFuture = Pin<Box<dyn Future<Output = Result<Raw, ToolError>> + Send>>;

/// Something that can run tools for a run.
pub trait ToolSource: Send + Sync + 'static {
    /// Runs one call. The future must end soon after `cancel` fires (the run ended or was
    /// cancelled), having withdrawn the call wherever it went; the relay waits for that, for a
    /// bounded time, and then drops it. A per-call timeout, if the source has one, is its own.
    fn call(&self, call: ToolCall, cancel: CancellationToken) -> ToolFuture;
}

/// The future of [`Requester::output`].
pub type OutputFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Whoever asked for a run (today: the client on the connection that sent `run`). It serves
/// the tools the request declared, and receives the run's streamed output (`stream: true`).
pub trait Requester: ToolSource {
    /// Delivers one piece of streamed output (whole characters of `stream`, in order).
    fn output<'a>(
        &'a self,
        run: &'a RunIdentity,
        stream: &'a str,
        text: &'a str,
    ) -> OutputFuture<'a>;
}

/// The sources of one run's tools, by tool name.
#[derive(Clone, Default)]
pub struct ToolRouter {
    routes: HashMap<String, Arc<dyn ToolSource>>,
}

impl ToolRouter {
    /// The router of a run whose declared tools (`names`) are served by the requester
    /// (`requester`, the client that sent the run). Further sources add their routes with
    /// [`ToolRouter::route`] (`run/sources.rs`).
    pub fn for_run(
        requester: Arc<dyn ToolSource>,
        names: impl IntoIterator<Item = String>,
    ) -> ToolRouter {
        let mut router = ToolRouter::default();
        for name in names {
            router.route(name, requester.clone());
        }
        router
    }

    /// Serves `name` from `source` (replacing an earlier route for the same name).
    pub fn route(&mut self, name: impl Into<String>, source: Arc<dyn ToolSource>) {
        self.routes.insert(name.into(), source);
    }

    /// The source serving `name`, if any.
    pub fn source(&self, name: &str) -> Option<&Arc<dyn ToolSource>> {
        self.routes.get(name)
    }
}
