//! The `driftless` binary: parses the command line, adds context to errors and maps them
//! to exit codes. All behaviour lives in the library crates.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod local;
mod output;
mod quickstart;
mod remote;
mod render;
mod token;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// driftless — GitOps for Kubernetes and host files, in one binary.
///
/// Git is the source of truth: driftless pulls desired state from a Git repository,
/// renders it, applies it to a target, reverts drift, prunes what left Git and keeps a
/// history of every sync so that any revision can be restored.
#[derive(Parser)]
#[command(
    name = "driftless",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Try driftless in one command: a local Git repo with sample content, reconciled
    /// into a local folder, served on loopback, with instructions to follow.
    Quickstart(quickstart::QuickstartArgs),
    /// Run the daemon: reconcile every app in the config and serve the API.
    Serve(ServeArgs),
    /// Print what a folder (or a path in a Git repository) renders to.
    Render(render::RenderArgs),
    /// Check that a folder renders; list every error with file:line:col.
    Validate(render::ValidateArgs),
    /// Show what a sync would change, changing nothing.
    /// Exit code 0: no changes, 2: changes pending, 1: error.
    Plan(LocalArgs),
    /// Run one reconcile pass for each app (or one app), then exit.
    Apply(LocalArgs),
    /// Talk to a running server: list, inspect, sync, roll back, suspend, resume apps.
    #[command(subcommand)]
    App(remote::AppCommand),
    /// Make API tokens and their hashes for `server.tokens`.
    #[command(subcommand)]
    Token(token::TokenCommand),
}

/// Options shared by the commands that run the engine in this process.
#[derive(Args, Clone)]
pub struct EngineArgs {
    /// The configuration file.
    #[arg(
        short,
        long,
        env = "DRIFTLESS_CONFIG",
        default_value = "driftless.yaml"
    )]
    config: PathBuf,
    /// Where history, events and inventories are kept (SQLite) and Git is cached.
    #[arg(long, env = "DRIFTLESS_STATE_DIR")]
    state: Option<PathBuf>,
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    engine: EngineArgs,
    /// Address to listen on. Without API tokens only loopback addresses are allowed.
    #[arg(long, env = "DRIFTLESS_LISTEN", default_value = "127.0.0.1:7420")]
    listen: SocketAddr,
    /// Serve HTTPS with this PEM certificate chain (leaf first).
    #[arg(long, requires = "tls_key", env = "DRIFTLESS_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert", env = "DRIFTLESS_TLS_KEY")]
    tls_key: Option<PathBuf>,
}

#[derive(Args)]
pub struct LocalArgs {
    #[command(flatten)]
    engine: EngineArgs,
    /// Only this app.
    #[arg(long)]
    app: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = output::Format::Table)]
    output: output::Format,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let daemon = matches!(cli.command, Command::Serve(_) | Command::Quickstart(_));
    init_logging(daemon);
    if daemon {
        raise_fd_limit();
    }
    let result = match cli.command {
        Command::Quickstart(args) => quickstart::run(args),
        Command::Serve(args) => local::serve(args),
        Command::Render(args) => render::render(args),
        Command::Validate(args) => render::validate(args),
        Command::Plan(args) => local::plan(args),
        Command::Apply(args) => local::apply(args),
        Command::App(command) => remote::run(command),
        Command::Token(command) => token::run(command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// Logs go to stderr. The daemon logs at info by default; one-shot commands report their
/// own failures, so they log only errors (no warning repeating what they print).
/// `RUST_LOG` overrides both.
fn init_logging(daemon: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if daemon { "info" } else { "error" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// Raises the soft limit on open files to the hard limit: a daemon holds Git caches,
/// watches, SQLite and every client connection at once, and the usual soft limit (1024)
/// is far below what the system allows. Failing to raise it is not fatal.
fn raise_fd_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        // `None` is "unlimited"; Linux refuses an unlimited soft limit for files, so
        // such a hard limit is left alone.
        let (Some(current), Some(maximum)) = (limit.current, limit.maximum) else {
            return;
        };
        if current >= maximum {
            return;
        }
        match setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(maximum),
                maximum: Some(maximum),
            },
        ) {
            Ok(()) => tracing::debug!(from = current, to = maximum, "raised the open-file limit"),
            Err(err) => {
                tracing::warn!(%err, current, maximum, "could not raise the open-file limit")
            }
        }
    }
}
