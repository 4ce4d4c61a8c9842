//! One client connection: the reader loop and request dispatch.
//!
//! The reader never waits for a run: `run` requests are spawned as tasks, because a run waits
//! for `tool/call` answers that only this same reader can deliver. Everything written to the
//! client goes through the connection's [`Peer`].
//!
//! End of a connection:
//! - read EOF (the client shut down its sending side, as `printf … | socat` does): nothing new can
//!   arrive, so pending and future tool calls fail at once, but in-flight runs finish and their
//!   results are still written;
//! - full close (or a write error): every run of the connection is cancelled — children killed
//!   and reaped, scratch dirs removed, `$/cancelRequest` for the client's pending tool calls.
//!
//! - a request line started and not finished within `line_timeout_ms`: the connection is closed
//!   like a full close, with the reason logged (an idle connection has no deadline);
//! - shutdown: after the grace period the runs are cancelled and their answers still written; a
//!   write still blocked [`WRITE_DEADLINE_AFTER_STOP`] after that (a client that does not read)
//!   drops the client, so no client can hold the daemon.
//!
//! Either way, once the connection's runs have ended its sessions are closed (persistent
//! interpreters killed and reaped, their scratch dirs removed).
//!
//! Memory: lines read are bounded by `max_line_bytes` each and by `partial_lines_total_bytes`
//! together (`rpc::inbound`); replies queued by `client_queue_bytes` per connection and
//! `client_queue_total_bytes` together (`rpc::peer`). Both stop the producer, never grow a queue.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::client_source::ClientSource;
use crate::daemon::{ConnectionSlot, Daemon};
use crate::error::RequestError;
use crate::rpc::error::{self, RpcError};
use crate::rpc::inbound::{hangup, ClientLines, Frame, InboundLimits, ReadError};
use crate::rpc::message::Rejected;
use crate::rpc::peer::{outbox, OutboxReader, QueuedLine};
use crate::rpc::{Id, Incoming, Peer};
use crate::run::{RunContext, SessionTicket};
use crate::session::Sessions;

/// What the connection's request handlers share.
#[derive(Clone)]
pub struct ConnectionCtx {
    pub daemon: Arc<Daemon>,
    pub peer: Arc<Peer>,
    /// Fired when the client is gone: cancels every run of the connection.
    pub closed: CancellationToken,
    /// What the connection's runs get: the client as their requester (`client_source.rs`).
    pub runs: RunContext,
}

/// Runs in flight on this connection, by their request id (exactly as sent).
type RunTable = Arc<Mutex<HashMap<Id, CancellationToken>>>;

/// What the reader loop keeps for the connection's requests.
struct ConnectionState {
    runs: RunTable,
    sessions: Sessions,
    tasks: TaskTracker,
    /// Places for `session/create` and `tools/definition` requests in flight (they may wait
    /// for MCP servers to start): one more is refused with `-32002`, so a client cannot pile
    /// up parsed requests while a server starts.
    attaching: Arc<tokio::sync::Semaphore>,
}

/// `session/create` and `tools/definition` requests one connection may have in flight.
pub const MAX_ATTACHING_REQUESTS: usize = 8;

/// The most bytes of queued lines the writer joins into one write (a longer line goes alone).
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// How long a write may stay blocked after `stop` (the end of the shutdown grace): long enough
/// for a client that reads to take the runs' `cancelled` results, short enough that one that
/// does not cannot hold the daemon.
pub const WRITE_DEADLINE_AFTER_STOP: Duration = Duration::from_secs(2);

/// Serves one client until it disconnects and its runs have ended. `slot` is its place in the
/// `max_connections` count, taken at accept and given back when this returns.
pub async fn serve(daemon: Arc<Daemon>, stream: UnixStream, conn_id: u64, slot: ConnectionSlot) {
    let span = tracing::info_span!("connection", conn = conn_id);
    async move {
        tracing::info!("connected");
        serve_inner(&daemon, stream).await;
        drop(slot);
        tracing::info!("disconnected");
    }
    .instrument(span)
    .await
}

async fn serve_inner(daemon: &Arc<Daemon>, stream: UnixStream) {
    let raw_fd = stream.as_raw_fd();
    let (read_half, write_half) = stream.into_split();
    let (outbox, queue) = outbox(daemon.config.client_queue_bytes, daemon.client_out.clone());
    let closed = daemon.stop.child_token();
    let writer = tokio::spawn(write_loop(
        write_half,
        queue,
        closed.clone(),
        daemon.clone(),
    ));
    let peer = Arc::new(Peer::new(outbox));
    let ctx = ConnectionCtx {
        daemon: daemon.clone(),
        peer: peer.clone(),
        closed: closed.clone(),
        runs: RunContext {
            daemon: daemon.clone(),
            requester: Arc::new(ClientSource::new(peer)),
            gone: closed.clone(),
        },
    };
    let state = ConnectionState {
        runs: Arc::default(),
        sessions: Sessions::default(),
        tasks: TaskTracker::new(),
        attaching: Arc::new(tokio::sync::Semaphore::new(MAX_ATTACHING_REQUESTS)),
    };
    let tasks = &state.tasks;
    let mut reader = ClientLines::new(
        read_half,
        InboundLimits {
            max_line: daemon.config.max_line_bytes,
            line_timeout: Duration::from_millis(daemon.config.line_timeout_ms),
            budget: daemon.client_in.clone(),
        },
    )
    .watch_hangup(raw_fd);

    // Once the daemon drains, the connection ends as soon as its runs have (new requests are
    // refused meanwhile, so no run can start).
    let drained = async {
        daemon.draining.cancelled().await;
        tasks.close();
        tasks.wait().await;
    };
    tokio::pin!(drained);
    loop {
        // `next_frame` is cancel-safe: a branch that wins mid-line loses no bytes.
        let frame = tokio::select! {
            _ = closed.cancelled() => break,
            _ = &mut drained => break,
            frame = reader.next_frame() => frame,
        };
        match frame {
            Ok(Some(Frame::Line(line))) => {
                daemon.activity.note(line.len());
                if !line.iter().all(u8::is_ascii_whitespace) {
                    handle_line(&ctx, &state, &line).await;
                }
            }
            Ok(Some(Frame::TooLong)) => {
                daemon.activity.note(daemon.config.max_line_bytes);
                let message = format!(
                    "line longer than {} bytes (max_line_bytes); it was discarded",
                    daemon.config.max_line_bytes
                );
                let err = RpcError::new(error::INVALID_REQUEST, message);
                let _ = ctx.peer.respond_error(&Id::Null, &err).await;
            }
            Ok(None) => break,
            Err(e @ ReadError::LineTimeout(_)) => {
                tracing::warn!(reason = %e, "closing the connection");
                break;
            }
            Err(e) => {
                tracing::info!(error = %e, "read from client failed");
                break;
            }
        }
    }
    drop(reader);

    // The client sends nothing more: its pending tool calls can never be answered.
    ctx.peer.close_input();
    tasks.close();
    tokio::select! {
        _ = tasks.wait() => {}
        _ = closed.cancelled() => {}
        _ = hangup(Some(raw_fd)) => tracing::info!("client hung up; cancelling its runs"),
    }
    closed.cancel();
    tasks.wait().await;
    state.sessions.close_all().await;
    drop(ctx);
    let _ = writer.await;
}

/// Writes queued lines until every sender is gone. A write error, or a client still not
/// reading [`WRITE_DEADLINE_AFTER_STOP`] into a write after `stop`, cancels the connection's
/// runs; then the queue is closed so nothing waits for room in it any more. Waiting for the
/// next line has no deadline: after `stop` the runs are cancelled and their answers (queued
/// once their children are reaped, however long that takes on a loaded host) must still go
/// out; the senders are gone once the connection's runs and sessions have ended, and the
/// daemon's own `STOP_DEADLINE` bounds the whole shutdown.
async fn write_loop(
    mut out: OwnedWriteHalf,
    mut queue: OutboxReader,
    closed: CancellationToken,
    daemon: Arc<Daemon>,
) {
    // Lines a burst queued meanwhile (the answers to 1000 gathered calls) go out in one write
    // of at most WRITE_BATCH_BYTES (a longer line goes alone, never copied); each keeps its
    // budget charge until it is written.
    let mut next: Option<QueuedLine> = None;
    loop {
        let first = match next.take() {
            Some(line) => line,
            None => match queue.recv().await {
                Some(line) => line,
                None => break,
            },
        };
        let mut size = first.bytes.len();
        let mut lines = vec![first];
        while let Some(line) = queue.try_recv() {
            if size + line.bytes.len() > WRITE_BATCH_BYTES {
                next = Some(line);
                break;
            }
            size += line.bytes.len();
            lines.push(line);
        }
        let joined: Vec<u8>;
        let bytes: &[u8] = match lines.as_slice() {
            [one] => &one.bytes,
            many => {
                joined = many.iter().fold(Vec::with_capacity(size), |mut all, l| {
                    all.extend_from_slice(&l.bytes);
                    all
                });
                &joined
            }
        };
        let written = write_line(&mut out, bytes, &daemon.stop).await;
        daemon.activity.note(size);
        drop(lines);
        match written {
            Ok(()) => {}
            Err(WriteFailed::NotReading) => {
                tracing::warn!("the client did not read its replies after shutdown; dropping it");
                closed.cancel();
                break;
            }
            Err(WriteFailed::Io(e)) => {
                tracing::info!(error = %e, "write to client failed");
                closed.cancel();
                break;
            }
        }
    }
    queue.close();
    let _ = tokio::time::timeout(Duration::from_secs(1), out.shutdown()).await;
}

enum WriteFailed {
    Io(std::io::Error),
    /// The write was still blocked [`WRITE_DEADLINE_AFTER_STOP`] after `stop` (or after it
    /// began, if it began later).
    NotReading,
}

/// Writes one line; once `stop` has fired, the write gets [`WRITE_DEADLINE_AFTER_STOP`].
async fn write_line(
    out: &mut OwnedWriteHalf,
    bytes: &[u8],
    stop: &CancellationToken,
) -> Result<(), WriteFailed> {
    let write = out.write_all(bytes);
    tokio::pin!(write);
    tokio::select! {
        biased;
        written = &mut write => return written.map_err(WriteFailed::Io),
        _ = stop.cancelled() => {}
    }
    match tokio::time::timeout(WRITE_DEADLINE_AFTER_STOP, write).await {
        Ok(written) => written.map_err(WriteFailed::Io),
        Err(_) => Err(WriteFailed::NotReading),
    }
}

async fn handle_line(ctx: &ConnectionCtx, state: &ConnectionState, line: &[u8]) {
    let peer = &ctx.peer;
    match Incoming::parse(line) {
        Err(rejected) => {
            let Rejected { id, error } = *rejected;
            let _ = peer.respond_error(&id, &error).await;
        }
        Ok(Incoming::Response { id, outcome }) => {
            if !peer.deliver(&id, outcome) {
                tracing::info!(%id, "answer for a call that is no longer pending was ignored");
            }
        }
        Ok(Incoming::Notification { method }) => {
            tracing::debug!(%method, "notification ignored");
        }
        Ok(Incoming::Request { id, method, params }) => {
            if ctx.daemon.draining.is_cancelled() {
                reply(peer, &id, Err::<Value, _>(RequestError::ShuttingDown)).await;
                return;
            }
            if method == "run/cancel" {
                reply(peer, &id, cancel_run(&state.runs, params.as_deref())).await;
                return;
            }
            if method == "run" {
                // `inputs` stay raw JSON text (see `params`): never a `Value` tree.
                match crate::params::RunParams::from_raw(params.as_deref()) {
                    Ok(run) => return start_run(ctx, state, id, run),
                    Err(err) => {
                        reply(peer, &id, Err::<Value, _>(err)).await;
                        return;
                    }
                }
            }
            let params = match params_value(params.as_deref()) {
                Ok(params) => params,
                Err(err) => {
                    reply(peer, &id, Err::<Value, _>(err)).await;
                    return;
                }
            };
            let result = match method.as_str() {
                "initialize" => Ok(describe(&ctx.daemon)),
                "daemon/status" => Ok(ctx.daemon.status()),
                "tools/definition" => {
                    // May start MCP servers (up to their startup timeouts): not in the reader.
                    let place = match attaching_place(state, &method) {
                        Ok(place) => place,
                        Err(e) => return reply(peer, &id, Err::<Value, _>(e)).await,
                    };
                    let (peer, sessions, daemon) =
                        (peer.clone(), state.sessions.clone(), ctx.daemon.clone());
                    state.tasks.spawn(async move {
                        let _place = place;
                        // The provider formats (`definitions.rs`) still speak wire errors.
                        let answer = answered(
                            &id,
                            "tools/definition request",
                            tool_definitions(&daemon, &sessions, params),
                        )
                        .await
                        .unwrap_or_else(|e| Err(wire_error(&e)));
                        let _ = match answer {
                            Ok(result) => peer.respond(&id, &result).await,
                            Err(err) => peer.respond_error(&id, &err).await,
                        };
                    });
                    return;
                }
                "session/create" => {
                    // May start MCP servers (up to their startup timeouts): not in the reader.
                    let place = match attaching_place(state, &method) {
                        Ok(place) => place,
                        Err(e) => return reply(peer, &id, Err::<Value, _>(e)).await,
                    };
                    let (peer, sessions, daemon, closed) = (
                        peer.clone(),
                        state.sessions.clone(),
                        ctx.daemon.clone(),
                        ctx.closed.clone(),
                    );
                    state.tasks.spawn(async move {
                        let _place = place;
                        let created = sessions.create(&daemon, &closed, params);
                        let answer = answered(&id, "session/create request", created).await;
                        reply(&peer, &id, answer.and_then(|r| r)).await;
                    });
                    return;
                }
                "session/close" => {
                    // Waits for the session's running run to end: not in the reader.
                    let (peer, sessions) = (peer.clone(), state.sessions.clone());
                    state.tasks.spawn(async move {
                        let answer =
                            answered(&id, "session/close request", sessions.close(&params));
                        reply(&peer, &id, answer.await.and_then(|r| r)).await;
                    });
                    return;
                }
                _ => Err(RequestError::UnknownMethod(method)),
            };
            reply(peer, &id, result).await;
        }
    }
}

/// Answers a request: its result, or its error mapped to the wire by [`wire_error`].
/// A place for one more request that attaches MCP servers, or `-32002` naming the limit.
fn attaching_place(
    state: &ConnectionState,
    method: &str,
) -> Result<tokio::sync::OwnedSemaphorePermit, RequestError> {
    state.attaching.clone().try_acquire_owned().map_err(|_| {
        RequestError::Overloaded(format!(
            "{method}: this connection already has {MAX_ATTACHING_REQUESTS} session/create or \
             tools/definition requests in flight (they wait for MCP servers to start); try again \
             when one has been answered"
        ))
    })
}

/// Awaits a request's task body; a panic in it becomes `-32603`, so the request still gets
/// exactly one answer (`unwind.rs`).
async fn answered<T>(
    id: &Id,
    what: &str,
    body: impl std::future::Future<Output = T>,
) -> Result<T, RequestError> {
    crate::unwind::catch_panic(body).await.map_err(|panic| {
        tracing::error!(%id, panic = %panic, "a {what} panicked");
        RequestError::internal(crate::unwind::panic_message(what, &panic))
    })
}

async fn reply<T: serde::Serialize>(peer: &Peer, id: &Id, result: Result<T, RequestError>) {
    let _ = match result {
        Ok(result) => peer.respond(id, &result).await,
        Err(err) => peer.respond_error(id, &wire_error(&err)).await,
    };
}

/// The one place a domain error becomes a JSON-RPC error object: its code from the contract,
/// its message, and `data.field` when it is about one field.
pub fn wire_error(e: &RequestError) -> RpcError {
    let code = match e {
        RequestError::InvalidParams { .. } => error::INVALID_PARAMS,
        RequestError::InvalidRequest(_) => error::INVALID_REQUEST,
        RequestError::UnknownMethod(_) => error::METHOD_NOT_FOUND,
        RequestError::UnknownSession(_) => error::UNKNOWN_SESSION,
        RequestError::Overloaded(_) => error::OVERLOADED,
        RequestError::LimitsExceedPolicy { .. } => error::LIMITS_EXCEED_POLICY,
        RequestError::UnknownPolicy(_) => error::UNKNOWN_POLICY,
        RequestError::UnknownRun(_) => error::UNKNOWN_RUN,
        RequestError::SandboxUnavailable(_) => error::SANDBOX_UNAVAILABLE,
        RequestError::ShuttingDown => error::SHUTTING_DOWN,
        RequestError::McpUnavailable(_) => error::MCP_UNAVAILABLE,
        RequestError::Internal(_) => error::INTERNAL_ERROR,
    };
    let mut wire = RpcError::new(code, e.to_string());
    wire.data = e.field().map(|field| json!({ "field": field }));
    wire
}

/// A request's `params` as a `Value` (`null` when absent). JSON nested deeper than serde_json's
/// recursion limit (128) is refused with `-32602`, never forwarded half-parsed.
fn params_value(params: Option<&serde_json::value::RawValue>) -> Result<Value, RequestError> {
    match params {
        None => Ok(Value::Null),
        Some(raw) => serde_json::from_str(raw.get()).map_err(|e| {
            RequestError::invalid_params("params", format!("params could not be read: {e}"))
        }),
    }
}

/// `run/cancel`: reads `request_id` from the raw params, so a big numeric id keeps its digits.
fn cancel_run(
    runs: &RunTable,
    params: Option<&serde_json::value::RawValue>,
) -> Result<Value, RequestError> {
    #[derive(serde::Deserialize)]
    struct CancelParams<'a> {
        #[serde(borrow)]
        request_id: Option<&'a serde_json::value::RawValue>,
    }
    let raw_id = params
        .and_then(|p| serde_json::from_str::<CancelParams<'_>>(p.get()).ok())
        .and_then(|p| p.request_id);
    let id = match raw_id.and_then(Id::from_raw) {
        Some(id) => id,
        None => {
            return Err(RequestError::invalid_params(
                "request_id",
                "request_id (the id of the run request) must be a string or a number",
            ))
        }
    };
    let table = runs.lock().unwrap_or_else(|p| p.into_inner());
    match table.get(&id) {
        Some(token) => {
            token.cancel();
            Ok(json!({"cancelled": true}))
        }
        None => Err(RequestError::UnknownRun(id.to_string())),
    }
}

/// `initialize`'s result: the daemon's description plus the configured MCP servers (sorted)
/// and the discovery threshold.
fn describe(daemon: &Daemon) -> Value {
    let mut result = daemon.describe();
    let names: Vec<&str> = daemon.mcp.names().collect();
    result["mcp_servers"] = json!(names);
    result["discovery_threshold"] = json!(daemon.config.discovery_threshold);
    result
}

/// `tools/definition`: the tools of the session and/or of the request (a request tool replaces
/// the session's tool of the same Python name), and the MCP servers of both (attached, so
/// their tools are listed; `-32008` when one cannot start), in the provider's format.
async fn tool_definitions(
    daemon: &Daemon,
    sessions: &Sessions,
    params: Value,
) -> Result<Value, RpcError> {
    let Value::Object(mut map) = params else {
        return Err(RpcError::invalid_params(
            "params",
            "params must be an object with at least \"format\"",
        ));
    };
    let format = crate::definitions::Format::parse(map.get("format"))?;
    map.remove("format");
    let mut specs = Vec::new();
    let mut persistent = false;
    let mut servers: Vec<String> = Vec::new();
    match map.remove("session_id") {
        None | Some(Value::Null) => {}
        Some(Value::String(id)) => {
            let session = sessions
                .get(&id)
                .ok_or_else(|| wire_error(&crate::session::unknown_session(&id)))?;
            // Built into values only for this answer; the session keeps the text.
            specs = session
                .specs
                .iter()
                .map(|raw| serde_json::from_str(raw.get()))
                .collect::<Result<Vec<Value>, _>>()
                .map_err(|e| RpcError::internal(format!("session tool specs: {e}")))?;
            persistent = session.persistent;
            servers = session.mcp_servers.clone();
        }
        Some(_) => {
            return Err(RpcError::invalid_params(
                "session_id",
                "session_id must be a string",
            ))
        }
    }
    if let Some(tools) = map.remove("tools").filter(|t| !t.is_null()) {
        crate::tools::parse_tools(&tools, "tools").map_err(|e| wire_error(&e))?;
        let extra = match tools {
            Value::Array(extra) => extra,
            _ => Vec::new(),
        };
        let py = |spec: &Value| {
            crate::tools::python_name(spec.get("name").and_then(Value::as_str).unwrap_or_default())
        };
        specs.retain(|old| !extra.iter().any(|new| py(new) == py(old)));
        specs.extend(extra);
    }
    let own =
        crate::params::parse_mcp_servers(map.remove("mcp_servers")).map_err(|e| wire_error(&e))?;
    crate::params::reject_unknown(&map, "tools/definition").map_err(|e| wire_error(&e))?;
    let code_tools = crate::tools::parse_tools(&Value::Array(specs.clone()), "tools")
        .map_err(|e| wire_error(&e))?;
    let attached = crate::attach::for_request(&daemon.mcp, &servers, &own, &code_tools)
        .await
        .map_err(|e| wire_error(&e))?;
    let catalog = crate::stubs::Catalog {
        client: specs,
        namespaces: crate::attach::namespaces(&attached),
    };
    Ok(crate::definitions::definitions(
        &catalog,
        format,
        persistent,
        daemon.config.discovery_threshold,
    ))
}

fn start_run(
    ctx: &ConnectionCtx,
    state: &ConnectionState,
    id: Id,
    params: crate::params::RunParams,
) {
    let (runs, tasks) = (&state.runs, &state.tasks);
    let key = id.clone();
    let refuse = |id: Id, err: RequestError| {
        let peer = ctx.peer.clone();
        tasks.spawn(async move {
            reply(&peer, &id, Err::<Value, _>(err)).await;
        });
    };
    let session = params
        .session_id
        .as_deref()
        .and_then(|sid| state.sessions.get(sid));
    let cancel = match &session {
        Some(s) => s.closed.child_token(),
        None => ctx.closed.child_token(),
    };
    // Checked before the run joins its session's queue: a refused run never takes a turn (a
    // dropped turn would let the next run start before the earlier ones ended).
    if runs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains_key(&key)
    {
        let err = RequestError::InvalidRequest(format!(
            "a run with request id {id} is already in flight on this connection"
        ));
        return refuse(id, err);
    }
    // A session run takes its place in the session's queue now, in arrival order. One that
    // must wait for an earlier run holds its params meanwhile, so it first takes a place in the
    // daemon's queue (`queue_depth`), or is refused without joining the session's queue: runs
    // pipelined into a session cannot pile up (before: 60 runs of 4 MiB of code waiting in one
    // session held +271 MiB, without bound).
    let mut queued = false;
    if let Some(session) = &session {
        if session.busy() {
            if let Err(err) = crate::run::reserve_queue_place(&ctx.daemon) {
                return refuse(id, err);
            }
            queued = true;
        }
    }
    let ticket = session.map(|session| SessionTicket {
        turn: session.enqueue(),
        session,
        queued,
    });
    runs.lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key.clone(), cancel.clone());
    let ctx = ctx.clone();
    let runs = runs.clone();
    tasks.spawn(async move {
        // A panic in the run still gets its answer (and the run's guards restore the counters).
        let run = crate::run::execute(&ctx.runs, &id, params, cancel, ticket);
        let outcome = answered(&id, "run", run).await.and_then(|r| r);
        runs.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        reply(&ctx.peer, &id, outcome).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SandboxUnavailable;

    #[test]
    fn domain_errors_map_to_the_contract_codes_with_their_field() {
        let bad = wire_error(&RequestError::invalid_params("limits.cpu_ms", "too big"));
        assert_eq!(bad.code, error::INVALID_PARAMS);
        assert_eq!(bad.data, Some(json!({"field": "limits.cpu_ms"})));
        let looser = wire_error(&RequestError::LimitsExceedPolicy {
            field: "limits.timeout_ms".into(),
            message: "looser than the policy".into(),
        });
        assert_eq!(looser.code, error::LIMITS_EXCEED_POLICY);
        assert_eq!(looser.data, Some(json!({"field": "limits.timeout_ms"})));
        let missing = wire_error(&RequestError::SandboxUnavailable(SandboxUnavailable {
            mechanism: "landlock".into(),
            message: "not supported".into(),
        }));
        assert_eq!(missing.code, error::SANDBOX_UNAVAILABLE);
        assert_eq!(
            missing.message,
            "sandbox unavailable: landlock: not supported; no code ran"
        );
        assert_eq!(missing.data, None);
        let busy = wire_error(&RequestError::Overloaded("2 runs are executing".into()));
        assert_eq!(
            (busy.code, busy.message.as_str()),
            (error::OVERLOADED, "overloaded: 2 runs are executing")
        );
        assert_eq!(
            wire_error(&RequestError::ShuttingDown).code,
            error::SHUTTING_DOWN
        );
    }
}
