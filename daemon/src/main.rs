//! The `ptcd` binary: parses the command line and wires the library together.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use ptcd::policy::PolicySet;
use ptcd::python::Interpreter;
use ptcd::state::{Daemon, ServeConfig};

#[derive(Parser)]
#[command(name = "ptcd", version, about = "Programmatic tool calling daemon")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Listen on a Unix socket and serve runs.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Socket path [default: $XDG_RUNTIME_DIR/ptcd.sock, else /run/ptcd/ptcd.sock as root under
    /// systemd, else /tmp/ptcd-$UID/ptcd.sock]
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// The CPython binary to run scripts with [default: /usr/bin/python3].
    #[arg(long)]
    python: Option<PathBuf>,
    /// Runs executing at once across all connections.
    #[arg(long, default_value_t = 32)]
    max_runs: usize,
    /// Longest accepted request line, in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    max_line_bytes: usize,
    /// Parent directory of the per-run scratch directories.
    #[arg(long)]
    scratch_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> anyhow::Result<()> {
    // The launcher mode must come first: a single-threaded process that confines itself and execs
    // the interpreter, before any runtime or logger exists.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(ptcd::sandbox::spawn::LAUNCH_ARG) {
        ptcd::sandbox::launcher::main(args.get(2).map(String::as_str).unwrap_or(""));
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PTCD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let python =
        Interpreter::resolve(args.python.as_deref()).context("resolving the interpreter")?;
    let mut config = ServeConfig {
        max_concurrent_runs: args.max_runs.max(1),
        max_line_bytes: args.max_line_bytes.max(1024),
        ..ServeConfig::default()
    };
    if let Some(dir) = args.scratch_dir {
        config.scratch_root = dir;
    }
    let socket = args
        .socket
        .unwrap_or_else(ptcd::server::default_socket_path);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = ptcd::server::bind(&socket, 0o600)?;
        let daemon = Daemon::new(config, python, PolicySet::builtin());
        tracing::info!(socket = %socket.display(), python = %daemon.python.executable.display(), "ptcd listening");
        run_until_signal(daemon, listener).await;
        let _ = std::fs::remove_file(&socket);
        tracing::info!("stopped");
        Ok(())
    })
}

async fn run_until_signal(daemon: Arc<Daemon>, listener: tokio::net::UnixListener) {
    use tokio::signal::unix::{signal, SignalKind};
    let accept = tokio::spawn(ptcd::server::accept_loop(daemon.clone(), listener));
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    daemon.draining.cancel();
    let _ = accept.await;
    daemon.connections.close();
    let grace = std::time::Duration::from_millis(daemon.config.shutdown_grace_ms);
    if tokio::time::timeout(grace, daemon.connections.wait())
        .await
        .is_err()
    {
        daemon.stop.cancel();
        daemon.connections.wait().await;
    }
}
