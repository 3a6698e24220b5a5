//! `cordon logs`, `cordon suggest` and `cordon metrics`: what the daemon
//! saw, over its admin socket. They need a running daemon (the drop log
//! lives in it) and say so when none answers.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cordon_daemon::admin::{self, Request, Response};
use cordon_daemon::droplog::{one_line, Event};

use crate::{CmdResult, Failure, Format};

fn no_daemon(path: &std::path::Path, what: &str) -> Failure {
    Failure::env(format!(
        "cordon {what}: no daemon answers on {}; start it with `cordon daemon` (the drop log lives in the daemon)",
        path.display()
    ))
}

fn ask(path: &std::path::Path, req: &Request, what: &str) -> Result<Response, Failure> {
    match admin::call(path, req).map_err(Failure::env)? {
        None => Err(no_daemon(path, what)),
        Some(r) if r.code != 0 => Err(Failure {
            code: r.code,
            message: r.message,
        }),
        Some(r) => Ok(r),
    }
}

fn print(e: &Event, output: Format) -> bool {
    let line = match output {
        Format::Json => serde_json::to_string(e).expect("event serialises"),
        Format::Text => one_line(e),
    };
    // A closed pipe (`cordon logs -f | head`) ends the command quietly.
    writeln!(std::io::stdout(), "{line}").is_ok() && std::io::stdout().flush().is_ok()
}

/// `cordon logs [-f] [-n N] [-o json]`.
pub fn logs(socket: Option<PathBuf>, follow: bool, limit: usize, output: Format) -> CmdResult {
    let path = socket.unwrap_or_else(admin::socket_path);
    if !follow {
        let r = ask(&path, &Request::Logs { limit, follow }, "logs")?;
        for e in r.events.unwrap_or_default() {
            if !print(&e, output) {
                break;
            }
        }
        return Ok(());
    }
    let mut failure = None;
    let answered = admin::follow(&path, limit, |item| match item {
        Ok(r) if r.code != 0 => {
            failure = Some(Failure {
                code: r.code,
                message: r.message,
            });
            false
        }
        Ok(r) => r
            .events
            .unwrap_or_default()
            .iter()
            .all(|e| print(e, output)),
        Err(e) => print(&e, output),
    })
    .map_err(Failure::env)?;
    if !answered {
        return Err(no_daemon(&path, "logs"));
    }
    failure.map_or(Ok(()), Err)
}

/// Parses `--since`: `30s`, `10m`, `2h`, `1d` (humantime syntax).
pub fn since(s: &str) -> Result<Duration, Failure> {
    humantime::parse_duration(s).map_err(|e| {
        Failure::env(format!(
            "cordon suggest: --since {s}: {e}; write e.g. `10m`, `2h` or `1d`"
        ))
    })
}

/// `cordon suggest [--since DURATION]`.
pub fn suggest(socket: Option<PathBuf>, since: Option<Duration>) -> CmdResult {
    let path = socket.unwrap_or_else(admin::socket_path);
    let since_ms = since
        .and_then(|d| SystemTime::now().checked_sub(d))
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let r = ask(&path, &Request::Suggest { since_ms }, "suggest")?;
    print!("{}", r.suggestion.unwrap_or_default());
    Ok(())
}

/// `cordon metrics`: the Prometheus text exposition.
pub fn metrics(socket: Option<PathBuf>) -> CmdResult {
    let path = socket.unwrap_or_else(admin::socket_path);
    let r = ask(&path, &Request::Metrics, "metrics")?;
    print!("{}", r.metrics.unwrap_or_default());
    Ok(())
}
