//! The client that sent a run, as the source of the run's declared tools and the receiver of
//! its streamed output.
//!
//! A call becomes a `tool/call` request through the connection's [`Peer`] (ids from the peer's
//! outgoing table); when the run ends first, the request is withdrawn and the client told with
//! `$/cancelRequest`, so the client hears about exactly the calls nobody waits for any more.

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::rpc::peer::PeerGone;
use crate::rpc::{Id, Peer};
use crate::tool_source::{
    OutputFuture, Requester, RunIdentity, ToolCall, ToolError, ToolFuture, ToolSource,
};

/// The requesting client, reached through its connection's [`Peer`].
#[derive(Clone)]
pub struct ClientSource {
    peer: Arc<Peer>,
}

/// The `params` of a `tool/call` request; `arguments` is copied in as raw JSON.
#[derive(Serialize)]
struct ToolCallParams<'a> {
    run_id: &'a str,
    request_id: &'a Id,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<&'a str>,
    call_id: u64,
    name: &'a str,
    arguments: &'a serde_json::value::RawValue,
}

impl ClientSource {
    pub fn new(peer: Arc<Peer>) -> ClientSource {
        ClientSource { peer }
    }
}

impl Requester for ClientSource {
    /// Sends one `run/output` notification.
    fn output<'a>(
        &'a self,
        run: &'a RunIdentity,
        stream: &'a str,
        text: &'a str,
    ) -> OutputFuture<'a> {
        Box::pin(async move {
            let params = json!({"run_id": run.run_id, "request_id": run.request_id,
                "stream": stream, "text": text});
            let _ = self.peer.notify("run/output", &params).await;
        })
    }
}

impl ToolSource for ClientSource {
    fn call(&self, call: ToolCall, cancel: CancellationToken) -> ToolFuture {
        let peer = self.peer.clone();
        Box::pin(async move {
            let ToolCall {
                run,
                call_id,
                name,
                arguments,
            } = call;
            let id = peer.new_request_id();
            let params = ToolCallParams {
                run_id: &run.run_id,
                request_id: &run.request_id,
                session_id: run.session_id.as_deref(),
                call_id,
                name: &name,
                arguments: arguments.raw(),
            };
            let sent = tokio::select! {
                sent = peer.request(id, "tool/call", &params) => sent,
                _ = cancel.cancelled() => {
                    peer.cancel(id).await;
                    return Err(ToolError::Cancelled);
                }
            };
            // The request line now holds the arguments (in the connection's writer queue).
            drop(arguments);
            let pending = sent.map_err(unreachable)?;
            tokio::select! {
                answer = pending.answer() => match answer {
                    Ok(Ok(result)) => Ok(result),
                    Ok(Err(error)) => Err(ToolError::Failed(error)),
                    Err(gone) => Err(unreachable(gone)),
                },
                _ = cancel.cancelled() => {
                    peer.cancel(id).await;
                    Err(ToolError::Cancelled)
                }
            }
        })
    }
}

fn unreachable(gone: PeerGone) -> ToolError {
    ToolError::Unreachable(gone.to_string())
}
