//! `cordon`: a host-level network guard for Docker containers.
//!
//! This binary only parses arguments, calls the library crates and maps
//! their errors to exit codes: 0 success, 1 a finding or a validation error,
//! 2 misuse or an environment problem (no Docker, no nftables, not root).

mod apply;
mod audit;
mod authz;
mod daemon;
mod export;
mod generate;
mod load;
mod observe;
mod sandbox;
mod scan;
mod set;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// A failure with the exit code it maps to and a one-line message.
#[derive(Debug)]
pub struct Failure {
    /// 1 (validation) or 2 (environment, misuse).
    pub code: u8,
    /// Printed to stderr, one line (or one line per located error).
    pub message: String,
}

impl Failure {
    /// A validation error or finding: exit 1.
    pub fn invalid(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    /// An environment problem or misuse: exit 2.
    pub fn env(message: impl std::fmt::Display) -> Self {
        Failure {
            code: 2,
            message: message.to_string(),
        }
    }
}

/// Result of a command.
pub type CmdResult = Result<(), Failure>;

#[derive(Parser)]
#[command(
    name = "cordon",
    version,
    about = "Keeps Docker containers on a short leash: host-enforced network policy",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Output formats for commands that print data.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    /// For people.
    Text,
    /// For programs.
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Validate a policy file; errors as FILE:LINE:COL: message.
    Check {
        /// Policy file (default /etc/cordon/cordon.yaml, else the embedded default).
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// text, or json (`{"file", "ok", "policies", "sets", "errors": [{"file", "line", "column", "message"}]}`).
        #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
        output: Format,
    },
    /// Print the ruleset cordon would install for the running containers.
    Plan {
        /// Policy file.
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// Read the containers from a saved `cordon inventory -o json`
        /// instead of Docker.
        #[arg(long)]
        inventory: Option<PathBuf>,
        /// text (nft syntax) or json (the nft JSON transaction).
        #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
        output: Format,
    },
    /// Print the containers and networks as cordon sees them.
    Inventory {
        /// json (what --inventory reads) or text.
        #[arg(short = 'o', long = "output", value_enum, default_value = "json")]
        output: Format,
    },
    /// Apply the policy once, atomically.
    Apply {
        /// Policy file.
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// Use a saved inventory instead of Docker.
        #[arg(long)]
        inventory: Option<PathBuf>,
    },
    /// The running daemon re-reads its policy file, or FILE (which then
    /// becomes its file); a bad file changes nothing.
    Reload {
        /// The new policy file.
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// The daemon's admin socket.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Keep enforcing as containers come and go.
    Daemon {
        /// Policy file.
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// The admin socket (default $CORDON_SOCKET or /run/cordon/cordon.sock).
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Time between full comparisons of the kernel with the desired
        /// state, e.g. 10s, 1m, 500ms (changes by others are also repaired
        /// as soon as they happen).
        #[arg(long, default_value = "10s", value_name = "DURATION")]
        reconcile_every: String,
        /// Also serve GET /metrics over HTTP on this loopback address,
        /// e.g. 127.0.0.1:9464 (`cordon metrics` needs no port).
        #[arg(long, value_name = "ADDR")]
        metrics: Option<std::net::SocketAddr>,
        /// With --metrics: require `Authorization: Bearer <token>`, the
        /// token read from FILE (owned by root, not readable by others).
        #[arg(long, value_name = "FILE", requires = "metrics")]
        metrics_token_file: Option<PathBuf>,
    },
    /// Dropped (and audited) connections and refused DNS names, with the
    /// container and policy; from the daemon.
    Logs {
        /// Keep following new events.
        #[arg(short = 'f', long)]
        follow: bool,
        /// How many recent events to show first.
        #[arg(short = 'n', long = "lines", default_value_t = 100)]
        lines: usize,
        /// text or json (one object per line).
        #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
        output: Format,
        /// The daemon's admin socket.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Print a policy file for the observed containers from what was
    /// audited or dropped (the audit-then-enforce workflow).
    Suggest {
        /// Only what was seen in this last span, e.g. 10m, 2h, 1d.
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// The daemon's admin socket.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// The daemon's metrics, in the Prometheus text format.
    Metrics {
        /// The daemon's admin socket.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Containers, their policy, allowed and dropped counters.
    Status {
        /// Policy file (used when no daemon runs).
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// The daemon's admin socket.
        #[arg(long)]
        socket: Option<PathBuf>,
        /// text or json.
        #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
        output: Format,
    },
    /// Install the saved fail-closed ruleset (at boot, before Docker).
    Boot {
        /// Policy file, used only when no ruleset was saved yet.
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
    },
    /// Change a named set live: add, del or list.
    Set {
        /// Policy file that defines the set (used when no daemon runs).
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// The daemon's admin socket.
        #[arg(long)]
        socket: Option<PathBuf>,
        #[command(subcommand)]
        op: set::SetOp,
    },
    /// Remove everything cordon installed, and nothing else.
    Down,
    /// CIS Docker Benchmark audit of the host and its containers.
    Audit(audit::AuditArgs),
    /// Known vulnerabilities in the OS packages of images (OSV records).
    Scan(scan::ScanArgs),
    /// Run untrusted code in a locked-down container (run, serve).
    Sandbox {
        #[command(subcommand)]
        op: sandbox::SandboxOp,
    },
    /// Probe from inside a container's network namespace and compare with the policy.
    Verify(verify::VerifyArgs),
    /// Print the policy as Kubernetes NetworkPolicy or CiliumNetworkPolicy manifests.
    Export(export::ExportArgs),
    /// Print the embedded default policy, the one used without a policy file.
    Default,
    /// Print the completion script for SHELL: bash, zsh, fish, elvish or powershell.
    Completions {
        /// The shell to complete for.
        #[arg(value_hint = clap::ValueHint::Other)]
        shell: String,
    },
    /// Write the man pages (cordon.1, cordon-apply.1, ...) into DIR; for packaging.
    #[command(hide = true)]
    Man {
        /// The directory, created if missing.
        dir: PathBuf,
    },
    /// Serve as Docker authorization plugin `cordon`: refuse containers
    /// whose policy cordon could not enforce (docs/authz.md).
    Authz {
        /// Policy file.
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// The plugin socket; dockerd finds plugin NAME at
        /// /run/docker/plugins/NAME.sock.
        #[arg(long, default_value = cordon_authz::serve::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
}

/// A positive duration in humantime's syntax (`10s`, `1m`, `500ms`); a
/// bare number is seconds.
fn parse_interval(s: &str) -> Option<std::time::Duration> {
    let d = match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => std::time::Duration::from_secs_f64(secs),
        Ok(_) => return None,
        Err(_) => humantime::parse_duration(s).ok()?,
    };
    (!d.is_zero()).then_some(d)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("CORDON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        // Colour only for a person at a terminal, never into a file or
        // the journal.
        .with_ansi(std::io::stderr().is_terminal());
    // Under systemd the journal stamps every line itself.
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    // CORDON_LOG_FORMAT=json: one JSON object per line, for log shippers.
    match (
        std::env::var("CORDON_LOG_FORMAT").as_deref() == Ok("json"),
        journal,
    ) {
        (true, _) => logs.json().init(),
        (false, true) => logs.without_time().init(),
        (false, false) => logs.init(),
    }
    let result = match cli.cmd {
        Cmd::Check { config, output } => load::check(config.as_deref(), output),
        Cmd::Plan {
            config,
            inventory,
            output,
        } => apply::plan(config.as_deref(), inventory.as_deref(), output),
        Cmd::Inventory { output } => apply::inventory(output),
        Cmd::Apply { config, inventory } => apply::apply(config.as_deref(), inventory.as_deref()),
        Cmd::Daemon {
            config,
            socket,
            reconcile_every,
            metrics,
            metrics_token_file,
        } => {
            match parse_interval(&reconcile_every) {
                None => Err(Failure::env(format!(
                    "cordon daemon: --reconcile-every {reconcile_every}: not a duration; write e.g. 10s, 1m or 500ms"
                ))),
                Some(every) => daemon::run(
                    config.as_deref(),
                    socket,
                    every,
                    metrics,
                    metrics_token_file.as_deref(),
                ),
            }
        }
        Cmd::Status {
            config,
            socket,
            output,
        } => daemon::status(config.as_deref(), socket, output),
        Cmd::Boot { config } => daemon::boot(config.as_deref()),
        Cmd::Reload { config, socket } => daemon::reload(config.as_deref(), socket),
        Cmd::Set { config, socket, op } => set::run(config.as_deref(), socket, op),
        Cmd::Down => apply::down(),
        Cmd::Logs {
            follow,
            lines,
            output,
            socket,
        } => observe::logs(socket, follow, lines, output),
        Cmd::Suggest { since, socket } => since
            .as_deref()
            .map(observe::since)
            .transpose()
            .and_then(|d| observe::suggest(socket, d)),
        Cmd::Metrics { socket } => observe::metrics(socket),
        Cmd::Audit(args) => audit::run(args),
        Cmd::Scan(args) => scan::run(args),
        Cmd::Sandbox { op } => sandbox::run(op),
        Cmd::Verify(args) => verify::run(args),
        Cmd::Export(args) => export::run(args),
        Cmd::Default => generate::default(),
        Cmd::Completions { shell } => generate::completions(&shell),
        Cmd::Man { dir } => generate::man(&dir),
        Cmd::Authz { config, socket } => authz::run(config.as_deref(), Some(socket)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("{}", f.message);
            ExitCode::from(f.code)
        }
    }
}
