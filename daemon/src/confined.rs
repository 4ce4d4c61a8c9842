//! A started, confined interpreter and its channels to the daemon.
//!
//! One [`ConfinedChild`] serves one run, or — in a persistent session — every run of the session
//! until one of them ends abnormally. That is why the channels live here and not in a run:
//! - the control socket (fd 3, see [`crate::control`]): a bounded, cancel-safe line reader, and
//!   a writer task so that a child that stops reading can never stall the run loop. What waits
//!   for that writer is counted in bytes ([`ConfinedChild::outbox`]); while it is over
//!   [`OUTBOX_BYTES`] the run loop stops reading the child (back-pressure, not a queue);
//! - the output pipes (fd 1/2): one reader task each, for the interpreter's whole life. They put
//!   what they read into the *current run's* output channel ([`ConfinedChild::attach`]); bytes read
//!   while no run is attached (between the runs of a persistent session) are dropped.
//!
//! Output is collected per run (`run/output.rs`). In a persistent session the shim forwards
//! `print()` output as `output` control messages instead of writing to the pipes, so each run
//! gets exactly its own output (see `shim/shim.py`).
//!
//! This module knows nothing of runs, connections or the daemon: a child is started from a
//! [`Launch`] (the daemon-wide facts) plus the run's policy, limits, scratch dir and uid lease.

use std::borrow::Cow;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::Ordering;

use crate::budget::ByteGauge;
use crate::config::ForkServerMode;
use crate::control::{self, ControlReader};
use crate::forkserver::{self, ForkServer, ForkedProc};
use crate::limits::Limits;
use crate::policy::Policy;
use crate::rpc::codec::{Frame, LineReader};
use crate::rpc::Raw;
use crate::sandbox::identity::{Leased, UidLease};
use crate::sandbox::plan::SandboxPlan;
use crate::sandbox::{self, SandboxError};
use crate::shim::{DoneStatus, FromShim, ScriptError};

/// Longest control line the daemon accepts from a child (a tool call with its arguments, the
/// script's value), unless `max_tool_argument_bytes` asks for more.
const MAX_CONTROL_LINE: usize = 16 << 20;
/// Room for a call's envelope around its arguments in a control line.
const CONTROL_ENVELOPE: usize = 64 << 10;
/// Control lines for the child (tool answers) the daemon holds before it stops reading the
/// child: a script that never reads its answers cannot make the daemon queue more than this
/// (plus one line).
pub const OUTBOX_BYTES: usize = 1 << 20;
/// The most bytes of queued lines the writer to a child joins into one write.
const WRITE_BATCH_BYTES: usize = 64 << 10;
/// Bytes asked of a child's control channel, and of its stdout or stderr, per read. Small: every
/// child (a warm one too) holds these buffers for its whole life, most of them for a few short
/// lines; a long line costs more reads, never more than one copy (`LineReader` collects it).
const READ_BYTES: usize = 8 << 10;

/// What every child of a daemon is started with.
#[derive(Clone, Copy)]
pub struct Launch<'a> {
    /// The CPython binary and the daemon's pid, for the plan.
    pub host: sandbox::plan::Host<'a>,
    /// `max_tool_argument_bytes`: sizes the control-line reader.
    pub max_argument_bytes: usize,
    /// Forks eligible children from a template (`forkserver.rs`).
    pub forks: &'a Arc<ForkServer>,
    /// The scratch root (a template's Landlock layer covers everything beneath it).
    pub scratch_root: &'a Path,
}

impl Launch<'_> {
    /// What the fork server needs to start a template.
    pub fn template_host(&self) -> forkserver::TemplateHost<'_> {
        forkserver::TemplateHost {
            host: self.host,
            scratch_root: self.scratch_root,
        }
    }
}

/// How long a forked child may take to confine itself and say `ready`.
const FORKED_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a killed forked child's exit report may take (T reaps it).
const FORKED_EXIT_DEADLINE: Duration = Duration::from_secs(5);

/// The interpreter's process: started by the launcher, or forked from a template (whose pidfd
/// is the only way the daemon signals it).
enum Proc {
    Spawned(Child),
    Forked(ForkedProc),
}

/// Why a child could not be started (its launcher refused or failed). Nothing ran.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    SandboxUnavailable(SandboxUnavailable),
    #[error("could not start the interpreter: {0}")]
    Launch(String),
}

/// A missing confinement, with the mechanism that is missing. One message format wherever it
/// is found (before spawning, by the launcher, or when a session leases its uid).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("sandbox unavailable: {mechanism}: {message}; no code ran")]
pub struct SandboxUnavailable {
    pub mechanism: String,
    pub message: String,
}

/// A valid control message from a running child (see [`ConfinedChild::next_message`]).
#[derive(Debug)]
pub enum ChildMessage {
    /// The shim finished its imports and waits for the `exec`.
    Ready,
    ToolCall {
        id: u64,
        name: String,
        /// Raw JSON, checked to be an object.
        arguments: Raw,
    },
    /// Text the script wrote to `sys.stdout`/`sys.stderr` (persistent mode).
    Output { stream: Stream, text: String },
    Done {
        status: DoneStatus,
        /// Raw JSON (`null` when absent).
        value: Raw,
        error: Option<ScriptError>,
    },
}

/// Why a child's control channel ends its run.
#[derive(Debug)]
pub enum ChildFault {
    /// Its launcher refused or failed before `ready`: nothing ran.
    NotStarted(StartError),
    /// It closed the channel, or said something invalid or out of turn (the detail, if any).
    Gone(Option<String>),
}

/// Which output stream a chunk belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A piece of a run's output.
pub type Chunk = (Stream, Vec<u8>);

type AttachedOutput = Arc<Mutex<Option<mpsc::Sender<Chunk>>>>;

/// Aborts a task when dropped.
pub struct AbortOnDrop(pub JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A confined child running the shim.
pub struct ConfinedChild {
    child: Proc,
    reader: LineReader<BufReader<ControlReader>>,
    to_child: mpsc::UnboundedSender<Vec<u8>>,
    /// Bytes sent to `to_child` and not yet written to the socket.
    outbox: ByteGauge,
    _writer: AbortOnDrop,
    attached: AttachedOutput,
    pipes: Vec<JoinHandle<()>>,
    /// The shim said `ready` (set only by [`ConfinedChild::next_message`]).
    ready: bool,
    /// What the child keeps of its plan (the rest is dropped once it started).
    kept: KeptOfPlan,
}

/// The parts of a child's [`SandboxPlan`] needed after the start.
struct KeptOfPlan {
    /// The scratch dir (the child's working directory).
    scratch: PathBuf,
    /// The late seccomp program the shim installs before the first script (hex).
    late_seccomp: Option<Cow<'static, str>>,
    /// Keeps the plan's uid lease for as long as the child lives.
    _uid_lease: Option<Arc<UidLease>>,
}

impl From<SandboxPlan> for KeptOfPlan {
    fn from(plan: SandboxPlan) -> Self {
        KeptOfPlan {
            scratch: plan.cwd,
            late_seccomp: plan.late_seccomp,
            _uid_lease: plan.uid_lease,
        }
    }
}

impl ConfinedChild {
    /// The child's scratch dir (its working directory).
    pub fn scratch(&self) -> &Path {
        &self.kept.scratch
    }

    /// Starts a child for `policy` with `limits`, working in `scratch`: forked from the
    /// policy's template when the run is eligible and the fork server serves it (see
    /// `forkserver.rs`), else cold through the launcher. A forked child has confined itself and
    /// said `ready` when this returns.
    pub async fn start(
        launch: Launch<'_>,
        policy: &Policy,
        limits: &Limits,
        scratch: &Path,
        run_id: &str,
        env: &[(String, String)],
        leased: &Leased,
    ) -> Result<ConfinedChild, StartError> {
        // `scratch` was created owned by the lease's uid (a session's, for its whole life).
        let plan = sandbox::plan::build(launch.host, policy, limits, scratch, run_id, env, leased);
        let forks = launch.forks;
        let mode = forks.mode();
        if forks.ineligible(policy, &plan, env).is_none() {
            match Self::fork(launch, policy, plan.clone()).await {
                Ok(child) => return Ok(child),
                Err(e) if mode == ForkServerMode::Require => {
                    return Err(StartError::SandboxUnavailable(SandboxUnavailable {
                        mechanism: "fork_server".into(),
                        message: e,
                    }))
                }
                Err(e) => {
                    forks.fallbacks_total.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "fork server: starting this run cold");
                }
            }
        }
        forks.cold_total.fetch_add(1, Ordering::Relaxed);
        Self::spawn(launch, plan)
    }

    /// Starts the launcher with `plan`.
    fn spawn(launch: Launch<'_>, plan: SandboxPlan) -> Result<ConfinedChild, StartError> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| StartError::Launch(format!("socketpair: {e}")))?;
        let mut child = sandbox::spawn(&plan, theirs.into()).map_err(|e| match e {
            SandboxError::Unavailable { mechanism, message } => {
                StartError::SandboxUnavailable(SandboxUnavailable { mechanism, message })
            }
            other => StartError::Launch(other.to_string()),
        })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        Self::assemble(launch, Proc::Spawned(child), ours, stdout, stderr, plan)
    }

    /// Forks a child from the template of `policy` and waits until it confined itself.
    async fn fork(
        launch: Launch<'_>,
        policy: &Policy,
        plan: SandboxPlan,
    ) -> Result<ConfinedChild, String> {
        use std::io::Write;
        let (ours, theirs) =
            std::os::unix::net::UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
        // Waiting in the socket when the child starts: the steps it applies to itself.
        ours.set_nonblocking(true)
            .and_then(|()| (&ours).write_all(&forkserver::confine_job(&plan)))
            .map_err(|e| format!("confine job: {e}"))?;
        let (out_r, out_w) = pipe().map_err(|e| format!("pipe: {e}"))?;
        let (err_r, err_w) = pipe().map_err(|e| format!("pipe: {e}"))?;
        let mut fds: Vec<OwnedFd> = vec![theirs.into(), out_w, err_w];
        if let Some(ll) = plan.landlock.clone() {
            // Prepared here, as root, like the launcher does before it drops its uid; on a
            // blocking thread (it opens every rule's path).
            let fd = tokio::task::spawn_blocking(move || {
                sandbox::landlock::prepare(&ll).map(Option::<OwnedFd>::from)
            })
            .await
            .map_err(|e| format!("landlock: {e}"))?
            .map_err(|m| format!("landlock: {m}"))?;
            fds.push(fd.ok_or("landlock: no ruleset fd")?);
        }
        let proc = launch
            .forks
            .fork(launch.template_host(), policy, fds)
            .await
            .map_err(|e| e.to_string())?;
        let stdout = tokio::net::unix::pipe::Receiver::from_owned_fd(out_r)
            .map_err(|e| format!("pipe: {e}"))?;
        let stderr = tokio::net::unix::pipe::Receiver::from_owned_fd(err_r)
            .map_err(|e| format!("pipe: {e}"))?;
        let mut child = Self::assemble(
            launch,
            Proc::Forked(proc),
            ours,
            Some(stdout),
            Some(stderr),
            plan,
        )
        .map_err(|e| e.to_string())?;
        let first = tokio::time::timeout(FORKED_READY_TIMEOUT, child.next_message()).await;
        let failure = match first {
            Ok(Ok(ChildMessage::Ready)) => return Ok(child),
            Ok(Ok(_)) => "the forked child spoke before `ready`".to_string(),
            Ok(Err(ChildFault::NotStarted(e))) => e.to_string(),
            Ok(Err(ChildFault::Gone(detail))) => format!(
                "the forked child exited before `ready`{}",
                detail.map(|d| format!(": {d}")).unwrap_or_default()
            ),
            Err(_) => format!(
                "the forked child did not confine itself within {} s",
                FORKED_READY_TIMEOUT.as_secs()
            ),
        };
        child.kill().await;
        Err(failure)
    }

    /// The channels of a started child (either kind).
    fn assemble<O, E>(
        launch: Launch<'_>,
        child: Proc,
        ours: std::os::unix::net::UnixStream,
        stdout: Option<O>,
        stderr: Option<E>,
        plan: SandboxPlan,
    ) -> Result<ConfinedChild, StartError>
    where
        O: AsyncRead + Unpin + Send + 'static,
        E: AsyncRead + Unpin + Send + 'static,
    {
        let (read_half, mut write_half) = ours
            .set_nonblocking(true)
            .and_then(|()| control::split(ours.into()))
            .map_err(|e| StartError::Launch(format!("control channel: {e}")))?;
        // Unbounded as a channel, bounded in bytes by `outbox`: the run loop stops producing
        // (reading the child, taking answers) while the outbox is full.
        let (to_child, mut queue) = mpsc::unbounded_channel::<Vec<u8>>();
        let outbox = ByteGauge::new(OUTBOX_BYTES);
        let written = outbox.clone();
        let writer = tokio::spawn(async move {
            // What the run loop queued meanwhile (answers to gathered calls) goes out in one
            // write of at most WRITE_BATCH_BYTES; a longer line goes alone, never copied.
            let mut next: Option<Vec<u8>> = None;
            loop {
                let mut batch = match next.take() {
                    Some(line) => line,
                    None => match queue.recv().await {
                        Some(line) => line,
                        None => break,
                    },
                };
                while let Ok(line) = queue.try_recv() {
                    if batch.len() + line.len() > WRITE_BATCH_BYTES {
                        next = Some(line);
                        break;
                    }
                    batch.extend_from_slice(&line);
                }
                let ok = write_half.write_all(&batch).await.is_ok();
                written.release(batch.len());
                if !ok {
                    break;
                }
            }
            if let Some(line) = next {
                written.release(line.len());
            }
            // The child is gone: nothing will be written, nothing is held.
            queue.close();
            while let Some(line) = queue.recv().await {
                written.release(line.len());
            }
        });
        let attached: AttachedOutput = Arc::default();
        let mut pipes = Vec::new();
        if let Some(out) = stdout {
            pipes.push(tokio::spawn(read_pipe(
                out,
                Stream::Stdout,
                attached.clone(),
            )));
        }
        if let Some(err) = stderr {
            pipes.push(tokio::spawn(read_pipe(
                err,
                Stream::Stderr,
                attached.clone(),
            )));
        }
        let max_line =
            MAX_CONTROL_LINE.max(launch.max_argument_bytes.saturating_add(CONTROL_ENVELOPE));
        Ok(ConfinedChild {
            child,
            reader: LineReader::new(BufReader::with_capacity(READ_BYTES, read_half), max_line),
            to_child,
            outbox,
            _writer: AbortOnDrop(writer),
            attached,
            pipes,
            ready: false,
            kept: plan.into(),
        })
    }

    /// Sends one control line to the child (never blocks; counted in [`ConfinedChild::outbox`]).
    pub fn send(&self, line: Vec<u8>) {
        let len = line.len();
        self.outbox.add(len);
        if self.to_child.send(line).is_err() {
            self.outbox.release(len);
        }
    }

    /// The bytes waiting to be written to the child.
    pub fn outbox(&self) -> &ByteGauge {
        &self.outbox
    }

    /// True once the shim said `ready`: it waits for (or runs) an `exec`.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The next control message from the child, decoded and checked against where the child is
    /// in its life — the one decoder for the pool (waiting for `ready`) and the run loop. Before
    /// `ready` only `ready`, `sandbox_error` and `launch_error` are valid (the last two become
    /// [`ChildFault::NotStarted`]); after it only `tool_call`, `output` and `done`. Anything
    /// else, an oversize line, or the channel closing is [`ChildFault::Gone`]. Cancel-safe (the
    /// line reader keeps a partial line).
    pub async fn next_message(&mut self) -> Result<ChildMessage, ChildFault> {
        let line = match self.reader.next_frame().await {
            Ok(Some(Frame::Line(line))) => line,
            Ok(Some(Frame::TooLong)) => {
                return Err(ChildFault::Gone(Some(
                    "the child sent an oversize control message".into(),
                )))
            }
            Ok(None) | Err(_) => return Err(ChildFault::Gone(None)),
        };
        let message = FromShim::parse(&line).map_err(|e| {
            ChildFault::Gone(Some(format!(
                "the child sent an invalid control message: {e}"
            )))
        })?;
        drop(line);
        match message {
            FromShim::Ready if !self.ready => {
                self.ready = true;
                Ok(ChildMessage::Ready)
            }
            FromShim::SandboxError { mechanism, message } if !self.ready => {
                Err(ChildFault::NotStarted(StartError::SandboxUnavailable(
                    SandboxUnavailable { mechanism, message },
                )))
            }
            FromShim::LaunchError { message } if !self.ready => {
                Err(ChildFault::NotStarted(StartError::Launch(message)))
            }
            FromShim::ToolCall {
                id,
                name,
                arguments,
            } if self.ready => Ok(ChildMessage::ToolCall {
                id,
                name,
                arguments,
            }),
            FromShim::Output { stream, text } if self.ready => {
                Ok(ChildMessage::Output { stream, text })
            }
            FromShim::Done {
                status,
                value,
                error,
            } if self.ready => Ok(ChildMessage::Done {
                status,
                value,
                error,
            }),
            other => Err(ChildFault::Gone(Some(format!(
                "unexpected control message from the child: {}",
                other.describe()
            )))),
        }
    }

    /// Directs what the child writes to fd 1/2 to a run's output channel (`None`: drop it).
    pub fn attach(&self, to: Option<mpsc::Sender<Chunk>>) {
        *self.attached.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }

    /// Kills the child (a cold child's whole process group; a forked child cannot fork) and
    /// waits until it is reaped. Returns its exit status (`None` when unknown).
    pub async fn kill(&mut self) -> Option<ExitStatus> {
        match &mut self.child {
            Proc::Spawned(child) => {
                if let Some(pid) = child.id() {
                    // The launcher called setsid(), so its pid is its process group id. The
                    // child is not reaped yet, so neither id can have been reused.
                    // SAFETY: kill with a negative pid signals the group; no memory involved.
                    unsafe {
                        libc::kill(-(pid as i32), libc::SIGKILL);
                    }
                }
                let _ = child.start_kill();
                child.wait().await.ok()
            }
            Proc::Forked(forked) => {
                forked.kill();
                // Its template reaps it and reports; a stopped template is replaced by the
                // fork server's health check, which ends this child too.
                tokio::time::timeout(FORKED_EXIT_DEADLINE, forked.exited())
                    .await
                    .ok()
                    .flatten()
                    .map(|e| ExitStatus::from_raw(e.status))
            }
        }
    }

    /// Waits up to `grace` for the child to exit on its own, then kills it.
    pub async fn exit_within(&mut self, grace: Duration) -> Option<ExitStatus> {
        let exited = match &mut self.child {
            Proc::Spawned(child) => tokio::time::timeout(grace, child.wait())
                .await
                .map(|status| status.ok()),
            Proc::Forked(forked) => tokio::time::timeout(grace, forked.exited())
                .await
                .map(|exit| exit.map(|e| ExitStatus::from_raw(e.status))),
        };
        match exited {
            Ok(status) => status,
            Err(_) => self.kill().await,
        }
    }

    /// Once the child is gone: waits (at most `grace`) until everything it wrote to its pipes has
    /// been read and handed to the attached run.
    pub async fn drain_pipes(&mut self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        for task in &mut self.pipes {
            if tokio::time::timeout_at(deadline, &mut *task).await.is_err() {
                task.abort();
            }
        }
    }

    /// The late seccomp program the shim installs before the first script (hex), if any.
    pub fn late_seccomp(&self) -> Option<&str> {
        self.kept.late_seccomp.as_deref()
    }

    /// For an idle child (warm pool): it is still running and has said nothing since `ready`. An
    /// idle shim only waits for its `exec`; a child that exited, closed its control socket or
    /// wrote anything must not serve a run.
    pub fn idle_intact(&mut self) -> bool {
        let running = match &mut self.child {
            Proc::Spawned(child) => matches!(child.try_wait(), Ok(None)),
            Proc::Forked(forked) => forked.try_exit().is_none(),
        };
        if !running {
            return false;
        }
        // Poll the control reader once without waiting: `Pending` means nothing arrived.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let frame = std::pin::pin!(self.reader.next_frame());
        frame.poll(&mut cx).is_pending()
    }

    /// CPU time (user + system) the child has used, from `/proc/<pid>/stat`. Still readable
    /// after it died and before it is reaped, which is how a kill by the hard CPU limit (SIGKILL,
    /// when the script ignored SIGXCPU) is told apart from other kills.
    /// A forked child's comes from its exit report once the template reaped it.
    pub fn cpu_time_ms(&self) -> Option<u64> {
        if let Proc::Forked(forked) = &self.child {
            if let Some(exit) = forked.try_exit() {
                return exit.map(|e| e.cpu_ms);
            }
        }
        let pid = self.pid()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf has no memory arguments.
        let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
        (per_second > 0).then(|| ticks * 1000 / per_second)
    }

    /// The child's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        match &self.child {
            Proc::Spawned(child) => child.id(),
            Proc::Forked(forked) => forked.try_exit().is_none().then_some(forked.pid),
        }
    }

    /// True when the child was forked from a template.
    pub fn is_forked(&self) -> bool {
        matches!(self.child, Proc::Forked(_))
    }
}

impl Drop for ConfinedChild {
    fn drop(&mut self) {
        for task in &self.pipes {
            task.abort();
        }
        match &self.child {
            // `kill_on_drop` kills the interpreter itself; this gets the rest of its group.
            Proc::Spawned(child) => {
                if let Some(pid) = child.id() {
                    // SAFETY: as in `kill`; the child is not reaped, so the group id is ours.
                    unsafe {
                        libc::kill(-(pid as i32), libc::SIGKILL);
                    }
                }
            }
            // The template reaps it.
            Proc::Forked(forked) => forked.kill(),
        }
    }
}

/// Forwards what the child writes to `stream` to the run attached at the time, in chunks of at
/// most [`READ_BYTES`], each its own allocation of its own size (a queue of one-byte chunks holds
/// bytes, not read buffers).
async fn read_pipe<R: AsyncRead + Unpin>(mut pipe: R, stream: Stream, attached: AttachedOutput) {
    loop {
        let mut chunk = Vec::with_capacity(READ_BYTES);
        match pipe.read_buf(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(_) => chunk.shrink_to_fit(),
        }
        let to = attached.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(to) = to {
            let _ = to.send((stream, chunk)).await;
        }
    }
}

/// A pipe (read end, write end), both close-on-exec.
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds are fresh and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
