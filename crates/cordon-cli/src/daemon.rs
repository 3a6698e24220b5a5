//! `cordon daemon`, `cordon status` and `cordon boot`: thin wrappers over
//! `cordon-daemon`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cordon_daemon::admin::{self, Request};
use cordon_daemon::{boot, status};
use cordon_dataplane::{check_environment, Nft, StateDir};
use cordon_ruleset::nft::Family;
use cordon_ruleset::TABLE;

use crate::{apply, load, CmdResult, Failure, Format};

/// `cordon daemon`: runs until SIGINT or SIGTERM.
pub fn run(
    config: Option<&Path>,
    socket: Option<PathBuf>,
    reconcile_every: Duration,
    metrics: Option<std::net::SocketAddr>,
    metrics_token_file: Option<&Path>,
) -> CmdResult {
    if let Some(addr) = metrics.filter(|a| !a.ip().is_loopback()) {
        return Err(Failure::env(format!(
            "cordon daemon: --metrics {addr}: only a loopback address (127.0.0.1, ::1) is allowed; the metrics name every container"
        )));
    }
    let metrics_token = metrics_token_file
        .map(cordon_daemon::metrics::read_token)
        .transpose()
        .map_err(|e| Failure::env(format!("cordon daemon: {e}")))?;
    let (policy, source) = load::to_install(config)?;
    check_environment().map_err(Failure::env)?;
    cordon_daemon::run(cordon_daemon::Options {
        policy,
        source,
        socket: socket.unwrap_or_else(admin::socket_path),
        reconcile_every,
        state: StateDir::default(),
        metrics,
        metrics_token,
    })
    .map_err(Failure::env)
}

/// `cordon status`: from the daemon when it runs, else from Docker and the
/// kernel directly.
pub fn status(config: Option<&Path>, socket: Option<PathBuf>, output: Format) -> CmdResult {
    let path = socket.unwrap_or_else(admin::socket_path);
    let s = match admin::call(&path, &Request::Status).map_err(Failure::env)? {
        Some(r) if r.code != 0 => {
            return Err(Failure {
                code: r.code,
                message: r.message,
            })
        }
        Some(r) => r
            .status
            .ok_or_else(|| Failure::env("the daemon sent no status"))?,
        None => {
            let (policy, in_force) = load::policy_in_force(config, Some(&path))?;
            check_environment().map_err(Failure::env)?;
            let inv = load::inventory(None)?;
            let compiled = apply::build(&policy, &inv, &StateDir::default())?;
            let nft = Nft::host();
            let inet = nft
                .read_table(Family::Inet, TABLE, &status::keys)
                .map_err(Failure::env)?;
            let bridge = nft
                .read_table(Family::Bridge, TABLE, &status::keys)
                .map_err(Failure::env)?;
            let mut s = status::build(
                "kernel",
                &compiled.assignments,
                inet.as_ref(),
                bridge.as_ref(),
            );
            s.policy = Some(match (config, in_force) {
                (Some(c), _) => format!("{} (given with -c)", c.display()),
                (None, Some(p)) => p.describe(),
                (None, None) => format!("{} (none recorded as in force)", policy.source),
            });
            s
        }
    };
    match output {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&s).expect("status serialises")
        ),
        Format::Text => print!("{}", status::render_text(&s)),
    }
    Ok(())
}

/// `cordon boot`: installs the saved fail-closed ruleset (before Docker).
pub fn boot(config: Option<&Path>) -> CmdResult {
    check_environment().map_err(Failure::env)?;
    let state = StateDir::default();
    let mut fresh = None;
    let what = boot::install(&Nft::host(), &state, || {
        let (p, source) =
            load::to_install(config).map_err(|f| cordon_daemon::DaemonError::Policy(f.message))?;
        fresh = Some(source);
        Ok(p)
    })
    .map_err(Failure::env)?;
    if let Some(source) = fresh {
        state.save_in_force(&source).map_err(Failure::env)?;
    }
    match what {
        boot::Installed::Saved => println!(
            "installed the fail-closed boot ruleset from {}",
            state.root().join(boot::BOOT_FILE).display()
        ),
        boot::Installed::Fresh => println!(
            "no saved boot ruleset in {}: installed the policy with no networks known",
            state.root().display()
        ),
    }
    Ok(())
}

/// `cordon reload`: the running daemon re-reads its policy file, or FILE.
pub fn reload(config: Option<&Path>, socket: Option<PathBuf>) -> CmdResult {
    let file = config.map(|c| {
        std::path::absolute(c)
            .unwrap_or_else(|_| c.to_path_buf())
            .display()
            .to_string()
    });
    reload_file(file, socket.unwrap_or_else(admin::socket_path))
}

/// Asks the daemon on `path` to reload `file` (an absolute path, or
/// `<embedded default>`), or its own file.
pub fn reload_file(file: Option<String>, path: PathBuf) -> CmdResult {
    match admin::call(&path, &Request::Reload { path: file }).map_err(Failure::env)? {
        None => Err(Failure::env(format!(
            "cordon reload: no daemon answers on {}; start it (systemctl start cordon) or use cordon apply",
            path.display()
        ))),
        Some(r) if r.code != 0 => Err(Failure {
            code: r.code,
            message: r.message,
        }),
        Some(r) => {
            println!("{}", r.message);
            if let Some(p) = r.policy {
                println!("policy: {}", p.describe());
            }
            Ok(())
        }
    }
}
