//! The run loop: one `select!` over the child's control messages, tool answers, output
//! back-pressure, the wall clock, the scratch dir's size and cancellation, until one of them
//! ends the run ([`Ending`]).

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::confined::{ChildFault, ChildMessage, Chunk, ConfinedChild};
use crate::error::StartError;
use crate::limits::Limits;
use crate::relay::{tool_error_object, Admission, Relay};
use crate::rpc::Raw;
use crate::scratch::DiskWatch;
use crate::shim::{self, DoneStatus, ScriptError};

/// How the run loop ended.
pub enum Ending {
    Done {
        status: DoneStatus,
        value: Raw,
        error: Option<ScriptError>,
    },
    Cancelled,
    Timeout,
    TooManyToolCalls,
    /// The scratch dir outgrew `scratch_mb`, with the reason.
    DiskFull(String),
    /// The control channel closed or spoke nonsense before `done`.
    ChildGone(Option<String>),
    /// Nothing ran: the launcher refused or failed.
    NotStarted(StartError),
}

/// What ends a run from outside the child's control: the wall clock and the scratch dir's size.
pub struct Tripwires {
    pub deadline: tokio::time::Instant,
    pub disk: DiskWatch,
}

/// The run loop: reacts to the child, tool answers, the deadline and cancellation.
///
/// Back-pressure instead of queues: output the child sends as control messages goes to
/// `output`, and while the collector is behind no further control message is read; while the
/// child's outbox (answers not yet written to it) or the relay's queued arguments are over their
/// byte budgets, the loop neither reads the child nor takes answers (the child waits; the
/// deadline and cancellation still fire). Every branch is cancel-safe: the line reader keeps its
/// partial line, `join_next` and `reserve` lose nothing when another branch wins.
pub async fn drive(
    interpreter: &mut ConfinedChild,
    mut exec_line: Vec<u8>,
    limits: &Limits,
    relay: &mut Relay,
    mut tripwires: Tripwires,
    cancel: &CancellationToken,
    output: mpsc::Sender<Chunk>,
) -> Ending {
    if interpreter.is_ready() {
        // A persistent interpreter that finished its previous run waits for this one.
        interpreter.send(std::mem::take(&mut exec_line));
    }
    let outbox = interpreter.outbox().clone();
    let queued = relay.queued_arguments().clone();
    let mut unsent: Option<Chunk> = None;
    // Made once, not per turn of the loop: a turn per tool call and per answer would otherwise
    // register a timer and a cancellation waiter each time.
    let cancelled = cancel.cancelled();
    let deadline = tokio::time::sleep_until(tripwires.deadline);
    tokio::pin!(cancelled, deadline);
    loop {
        let outbox_full = outbox.is_full();
        let read_child = unsent.is_none() && !outbox_full && !queued.is_full();
        tokio::select! {
            biased;
            _ = &mut cancelled => return Ending::Cancelled,
            _ = &mut deadline => return Ending::Timeout,
            why = tripwires.disk.exceeded() => return Ending::DiskFull(why),
            _ = outbox.has_room(), if outbox_full => {}
            _ = queued.has_room(), if queued.is_full() => {}
            (call_id, outcome, permit) = relay.next_answer(), if !relay.is_idle() && !outbox_full => {
                let answer = match &outcome {
                    Ok(result) => shim::tool_result_line(call_id, Ok(result)),
                    Err(e) => shim::tool_result_line(call_id, Err(&tool_error_object(e))),
                };
                interpreter.send(answer);
                // The call's slot is free once its answer is the writer's.
                drop(permit);
            }
            permit = output.reserve(), if unsent.is_some() => {
                if let (Ok(permit), Some(chunk)) = (permit, unsent.take()) {
                    permit.send(chunk);
                }
            }
            message = interpreter.next_message(), if read_child => {
                match message {
                    Err(ChildFault::NotStarted(e)) => return Ending::NotStarted(e),
                    Err(ChildFault::Gone(detail)) => return Ending::ChildGone(detail),
                    Ok(ChildMessage::Ready) => interpreter.send(std::mem::take(&mut exec_line)),
                    Ok(ChildMessage::ToolCall { id, name, arguments }) => {
                        if relay.count >= limits.max_tool_calls {
                            return Ending::TooManyToolCalls;
                        }
                        if let Admission::Refused(err) = relay.start(id, name, arguments) {
                            interpreter.send(shim::tool_result_line(id, Err(&tool_error_object(&err))));
                        }
                    }
                    Ok(ChildMessage::Output { stream, text }) => {
                        unsent = Some((stream, text.into_bytes()));
                    }
                    Ok(ChildMessage::Done { status, value, error }) => {
                        return Ending::Done { status, value, error };
                    }
                }
            }
        }
    }
}
