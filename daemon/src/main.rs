//! The `ptcd` binary: parses the command line and wires the library together.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use ptcd::config::{self, LogFormat, Overrides, Settings};

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
    /// Print what this host can enforce and whether the default policy can run here.
    Doctor {
        /// The CPython binary to check [default: /usr/bin/python3]
        #[arg(long)]
        python: Option<PathBuf>,
        /// Also check the policies in this directory.
        #[arg(long)]
        policy_dir: Option<PathBuf>,
        /// Report as a daemon started with this `--landlock-max-abi` would enforce.
        #[arg(long)]
        landlock_max_abi: Option<u32>,
    },
    /// Policy files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Serve MCP on stdio (Code Mode for MCP hosts), as a client of the running daemon.
    Mcp(McpArgs),
}

#[derive(clap::Args)]
struct McpArgs {
    /// Socket of the daemon [default: $PTCD_SOCKET, else the default socket path]
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Attach only these MCP servers of the daemon's config (comma-separated) [default: all]
    #[arg(long, value_delimiter = ',')]
    servers: Option<Vec<String>>,
    /// Config file for a daemon that `ptcd mcp` starts itself (when none answers)
    #[arg(long)]
    config: Option<PathBuf>,
    /// Policy of every run [default: the daemon's default policy]
    #[arg(long)]
    policy: Option<String>,
    /// Fail instead of starting a private daemon when none answers on the socket
    #[arg(long)]
    no_start: bool,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate one policy file and show what it enforces.
    Check { file: PathBuf },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Config file [default: /etc/ptcd/config.toml as root, else $XDG_CONFIG_HOME/ptcd/config.toml]
    #[arg(long)]
    config: Option<PathBuf>,
    /// Socket path [default: $XDG_RUNTIME_DIR/ptcd.sock, else /run/ptcd/ptcd.sock as root under
    /// systemd, else /tmp/ptcd-$UID/ptcd.sock]
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Socket file mode, octal [default: 0600]
    #[arg(long)]
    socket_mode: Option<String>,
    /// Group of the socket file (name or gid).
    #[arg(long)]
    socket_group: Option<String>,
    /// Directory of extra policy files (*.toml).
    #[arg(long)]
    policy_dir: Option<PathBuf>,
    /// The CPython binary to run scripts with [default: /usr/bin/python3]
    #[arg(long)]
    python: Option<PathBuf>,
    /// Runs executing at once across all connections [default: 32]
    #[arg(long)]
    max_runs: Option<usize>,
    /// Longest accepted request line, in bytes [default: 16 MiB]
    #[arg(long)]
    max_line_bytes: Option<usize>,
    /// Parent directory of the per-run scratch directories [default: $TMPDIR/ptcd-scratch-$UID]
    #[arg(long)]
    scratch_dir: Option<PathBuf>,
    /// Log format on stderr [default: text]
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Use at most this Landlock ABI (1-7), as on an older kernel; the missing features get
    /// compensating layers (see `ptcd doctor`) [default: the kernel's]
    #[arg(long)]
    landlock_max_abi: Option<u32>,
    /// Fork runs from a pre-imported template interpreter: on, off, or require (never start
    /// an eligible run cold) [default: on]
    #[arg(long, value_enum)]
    fork_server: Option<config::ForkServerMode>,
}

fn main() -> anyhow::Result<()> {
    // The launcher mode must come first: a single-threaded process that confines itself and execs
    // the interpreter, before any runtime or logger exists.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(ptcd::sandbox::spawn::LAUNCH_ARG) {
        ptcd::sandbox::launcher::main();
    }
    match Cli::parse().command {
        Command::Serve(args) => serve(args),
        Command::Doctor {
            python,
            policy_dir,
            landlock_max_abi,
        } => {
            if let Some(n) = landlock_max_abi {
                if let Err(m) = ptcd::sandbox::host::check_landlock_cap(n) {
                    eprintln!("--landlock-max-abi {m}");
                    std::process::exit(2);
                }
            }
            ptcd::sandbox::host::set_landlock_cap(landlock_max_abi);
            std::process::exit(ptcd::doctor::doctor_main(
                python.as_deref(),
                policy_dir.as_deref(),
            ))
        }
        Command::Policy(PolicyCommand::Check { file }) => {
            std::process::exit(ptcd::policy::check_main(&file))
        }
        Command::Mcp(args) => mcp(args),
    }
}

/// `ptcd mcp`: stdout is the MCP channel, so everything else (logs, errors) goes to stderr.
fn mcp(args: McpArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PTCD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let options = ptcd::mcp_host::Options {
        socket: args.socket,
        servers: args.servers,
        config: args.config,
        policy: args.policy,
        no_start: args.no_start,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    // On this (main) thread: a private daemon's death signal is tied to the forking thread.
    let served = runtime.block_on(ptcd::mcp_host::run(options));
    // A blocking read of stdin (when it is not a pipe) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    if let Err(e) = served {
        eprintln!("ptcd mcp: {e}");
        std::process::exit(1);
    }
    Ok(())
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
    let flags = Overrides {
        socket: args.socket,
        socket_mode: args.socket_mode,
        socket_group: args.socket_group,
        policy_dir: args.policy_dir,
        python: args.python,
        scratch_dir: args.scratch_dir,
        log_format: args.log_format,
        max_concurrent_runs: args.max_runs,
        max_line_bytes: args.max_line_bytes,
        landlock_max_abi: args.landlock_max_abi,
        fork_server: args.fork_server,
    };
    let (file, source) = config::read_file(args.config.as_deref())?;
    let settings = Settings::resolve(file, flags.clone(), source)?;
    ptcd::sandbox::host::set_landlock_cap(settings.landlock_max_abi);
    // Before the runtime starts any thread (see the function's docs).
    let namespace = ptcd::scratch::enter_private_mount_namespace();
    init_logging(settings.log_format);
    tracing::debug!(?namespace, "mount namespace");
    ptcd::memory::configure_allocator();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_keep_alive(ptcd::memory::BLOCKING_KEEP_ALIVE)
        .on_thread_stop(ptcd::memory::thread_stopped)
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(ptcd::service::serve(settings, flags));
    // Blocking tasks still running (a stuck cleanup) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served?;
    Ok(())
}
