//! `cordon sandbox run|serve`: untrusted code in a locked-down container
//! (the work is in the `cordon-sandbox` crate; this maps options and exit
//! codes).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use cordon_sandbox::{
    Error, InputFile, Network, OutputKind, Profile, RunRequest, Sandbox, Status, StdinSource,
};

use crate::{CmdResult, Failure, Format};

/// Limits shared by `run` and `serve` (the defaults of every run).
#[derive(clap::Args, Clone)]
pub struct LimitArgs {
    /// Wall-clock seconds before the run is killed (time_limit).
    #[arg(long, default_value_t = 10.0)]
    wall: f64,
    /// CPU seconds of all its processes (time_limit).
    #[arg(long, default_value_t = 5.0)]
    cpu: f64,
    /// Memory, swap included: 256m, 1g, bytes (memory_limit).
    #[arg(long, default_value = "256m")]
    memory: String,
    /// Processes and threads.
    #[arg(long, default_value_t = 64)]
    pids: i64,
    /// Bytes of stdout+stderr kept (output_limit beyond): 1m, 64k.
    #[arg(long, default_value = "1m")]
    max_output: String,
    /// CPUs it may use at once.
    #[arg(long, default_value_t = 1.0)]
    cpus: f64,
    /// OCI runtime, e.g. runsc (gVisor) when Docker has it registered.
    #[arg(long)]
    runtime: Option<String>,
}

/// `cordon sandbox` subcommands.
#[derive(Subcommand)]
pub enum SandboxOp {
    /// Run CMD from IMAGE locked down; print the verdict.
    Run {
        /// Copy file SRC (on this host) into the work directory as DEST.
        #[arg(long = "file", value_name = "DEST=SRC")]
        files: Vec<String>,
        /// Attach to Docker network --network under this cordon policy
        /// (needs cordon's daemon) instead of no network at all.
        #[arg(long)]
        policy: Option<String>,
        /// The Docker network for --policy.
        #[arg(long, default_value = "bridge", requires = "policy")]
        network: String,
        #[command(flatten)]
        limits: LimitArgs,
        /// text: the output as it comes, then a table on stderr; json: one
        /// object with the verdict and the output.
        #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
        format: Format,
        /// Image name, name@sha256:DIGEST or sha256:ID (must be local).
        image: String,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// Serve a Piston-like HTTP JSON API (POST /api/v2/execute).
    Serve {
        /// Unix socket to listen on.
        #[arg(long, default_value = "/run/cordon/sandbox.sock")]
        socket: PathBuf,
        /// Also listen on this loopback TCP port.
        #[arg(long)]
        port: Option<u16>,
        /// Runs at once.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// Requests waiting for a slot; more get 503.
        #[arg(long, default_value_t = 16)]
        queue: usize,
        /// Warm containers kept ready for --pool-image.
        #[arg(long, default_value_t = 0)]
        pool: usize,
        /// The image the pool keeps warm (needs `sleep` in it).
        #[arg(long)]
        pool_image: Option<String>,
        /// Language to image map, `python=python:3.12-slim` (repeatable).
        #[arg(long = "language", value_name = "NAME=IMAGE")]
        languages: Vec<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

/// Parses `256m`, `1g`, `64k` or plain bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t.as_str(), 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("size {s:?} must be a positive number with an optional k, m or g"))
}

fn secs(name: &str, v: f64) -> Result<Duration, Failure> {
    if v > 0.0 && v.is_finite() {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(Failure::env(format!(
            "cordon sandbox: --{name} must be a positive number of seconds"
        )))
    }
}

impl LimitArgs {
    /// The default profile with these limits.
    pub fn profile(&self) -> Result<Profile, Failure> {
        let size = |name: &str, v: &str| {
            parse_size(v).map_err(|e| Failure::env(format!("cordon sandbox: --{name}: {e}")))
        };
        let mut p = Profile::default();
        p.limits.wall = secs("wall", self.wall)?;
        p.limits.cpu = secs("cpu", self.cpu)?;
        p.limits.memory = size("memory", &self.memory)?;
        p.limits.output = size("max-output", &self.max_output)?;
        if self.pids < 1 {
            return Err(Failure::env("cordon sandbox: --pids must be at least 1"));
        }
        p.limits.pids = self.pids;
        secs("cpus", self.cpus)?;
        p.limits.cpus = self.cpus;
        p.runtime = self.runtime.clone();
        Ok(p)
    }
}

/// Runs a sandbox command.
pub fn run(op: SandboxOp) -> CmdResult {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::env(format!("cordon sandbox: cannot start a runtime: {e}")))?;
    rt.block_on(async {
        match op {
            SandboxOp::Run {
                files,
                policy,
                network,
                limits,
                format,
                image,
                cmd,
            } => {
                let mut profile = limits.profile()?;
                if let Some(policy) = policy {
                    check_daemon(&policy)?;
                    profile.network = Network::Policy { policy, network };
                }
                let req = RunRequest {
                    image,
                    cmd,
                    files: read_files(&files)?,
                    profile,
                };
                run_one(req, format).await
            }
            SandboxOp::Serve {
                socket,
                port,
                concurrency,
                queue,
                pool,
                pool_image,
                languages,
                limits,
            } => {
                if pool > 0 && pool_image.is_none() {
                    return Err(Failure::env(
                        "cordon sandbox serve: --pool needs --pool-image IMAGE (the image to keep warm)",
                    ));
                }
                let languages = languages
                    .iter()
                    .map(|l| {
                        l.split_once('=')
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .ok_or_else(|| {
                                Failure::env(format!(
                                    "cordon sandbox serve: --language {l:?} must be NAME=IMAGE"
                                ))
                            })
                    })
                    .collect::<Result<_, _>>()?;
                let opts = cordon_sandbox::server::Options {
                    socket,
                    port,
                    concurrency: concurrency.max(1),
                    queue,
                    pool,
                    pool_image,
                    languages,
                    profile: limits.profile()?,
                };
                let sandbox = connect().await?;
                cordon_sandbox::server::serve(sandbox, opts)
                    .await
                    .map_err(|e| Failure::env(format!("cordon sandbox serve: {e}")))
            }
        }
    })
}

async fn connect() -> Result<Sandbox, Failure> {
    Sandbox::connect()
        .await
        .map_err(|e| Failure::env(format!("cordon sandbox: {e}")))
}

/// With --policy the container is on a network: only cordon's daemon
/// keeps it to its policy, so it must be running.
fn check_daemon(policy: &str) -> CmdResult {
    let path = cordon_daemon::admin::socket_path();
    std::os::unix::net::UnixStream::connect(&path)
        .map(|_| ())
        .map_err(|e| {
            Failure::env(format!(
                "cordon sandbox: --policy {policy} needs cordon's daemon, which does not answer at {} ({e}); start `cordon daemon`",
                path.display()
            ))
        })
}

fn read_files(specs: &[String]) -> Result<Vec<InputFile>, Failure> {
    specs
        .iter()
        .map(|spec| {
            let (dest, src) = spec.split_once('=').ok_or_else(|| {
                Failure::env(format!("cordon sandbox: --file {spec:?} must be DEST=SRC"))
            })?;
            let meta = std::fs::metadata(src)
                .map_err(|e| Failure::env(format!("cordon sandbox: --file {src}: {e}")))?;
            let content = std::fs::read(src)
                .map_err(|e| Failure::env(format!("cordon sandbox: --file {src}: {e}")))?;
            use std::os::unix::fs::PermissionsExt;
            Ok(InputFile {
                name: dest.trim_start_matches("./").to_string(),
                content,
                executable: meta.permissions().mode() & 0o111 != 0,
            })
        })
        .collect()
}

async fn run_one(req: RunRequest, format: Format) -> CmdResult {
    let sandbox = connect().await?;
    let stdin: Option<StdinSource> = if std::io::stdin().is_terminal() {
        None
    } else {
        Some(Box::pin(tokio::io::stdin()))
    };
    let sink: Option<cordon_sandbox::OutputSink> = match format {
        Format::Text => Some(Box::new(|kind, bytes: &[u8]| {
            let _ = match kind {
                OutputKind::Stdout => std::io::stdout().write_all(bytes),
                OutputKind::Stderr => std::io::stderr().write_all(bytes),
            };
        })),
        Format::Json => None,
    };
    let image = req.image.clone();
    // On SIGINT or SIGTERM the run is dropped, which removes its container.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Failure::env(format!("cordon sandbox: {e}")))?;
    let v = tokio::select! {
        v = sandbox.run(&req, stdin, sink) => v.map_err(|e| match e {
            Error::Invalid(m) | Error::Env(m) => Failure::env(format!("cordon sandbox: {m}")),
        })?,
        _ = tokio::signal::ctrl_c() => {
            return Err(Failure::env("cordon sandbox: interrupted; the container was removed"));
        }
        _ = term.recv() => {
            return Err(Failure::env("cordon sandbox: terminated; the container was removed"));
        }
    };
    match format {
        Format::Text => {
            let _ = std::io::stdout().flush();
            eprint!("{}", v.table());
        }
        Format::Json => {
            let text = serde_json::to_string_pretty(&v).expect("a verdict serializes");
            let _ = writeln!(std::io::stdout(), "{text}");
        }
    }
    if v.status == Status::Ok {
        Ok(())
    } else {
        Err(Failure::invalid(format!(
            "cordon sandbox: {image}: the run ended with {}",
            v.status.label()
        )))
    }
}
