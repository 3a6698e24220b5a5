//! Finding and loading the policy file and the inventory.
//!
//! Commands that install (`apply`, `daemon`, `boot`) take `-c FILE`, else
//! `/etc/cordon/cordon.yaml`, else the embedded default, and record what
//! they installed as the policy in force. Commands that only read a policy
//! (`set`, `verify`, `plan`, `status`, `suggest`, `audit`) take `-c FILE`,
//! else the policy in force ([`policy_in_force`]).

use std::path::{Path, PathBuf};

use cordon_daemon::admin::{self, Request};
use cordon_dataplane::{sha256_hex, InForce, StateDir};
use cordon_inventory::Inventory;
use cordon_policy::{LoadError, PolicyFile};

use crate::{CmdResult, Failure, Format};

/// The policy file used when `-c` is not given, if it exists.
pub const DEFAULT_CONFIG: &str = "/etc/cordon/cordon.yaml";

/// Where a command's policy comes from, in the order commands without
/// `-c` look: the running daemon's, the one recorded by the last install,
/// the default path, the embedded default.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// `-c FILE`.
    Flag(PathBuf),
    /// The running daemon's policy, as it answered.
    Daemon(InForce),
    /// The policy recorded by the last `apply`, `daemon`, `boot` or
    /// `reload`.
    Recorded(InForce),
    /// `/etc/cordon/cordon.yaml`.
    DefaultPath,
    /// The embedded default.
    Embedded,
}

/// The precedence of [`Source`], as a pure function of what exists.
pub fn choose(
    flag: Option<&Path>,
    daemon: Option<InForce>,
    recorded: Option<InForce>,
    default_exists: bool,
) -> Source {
    match (flag, daemon, recorded) {
        (Some(f), _, _) => Source::Flag(f.to_path_buf()),
        (None, Some(d), _) => Source::Daemon(d),
        (None, None, Some(r)) => Source::Recorded(r),
        (None, None, None) if default_exists => Source::DefaultPath,
        _ => Source::Embedded,
    }
}

/// The running daemon's policy in force, if a daemon answers on `socket`.
pub fn daemon_policy(socket: &Path) -> Result<Option<InForce>, Failure> {
    match admin::call(socket, &Request::Policy).map_err(Failure::env)? {
        Some(r) if r.code == 0 => Ok(r.policy),
        Some(r) => Err(Failure {
            code: r.code,
            message: r.message,
        }),
        None => Ok(None),
    }
}

/// The policy a reading command (`set`, `verify`, `plan`, `status`,
/// `suggest`, `audit`) acts on: `-c FILE`, else the policy in force (the
/// daemon's, else the recorded one), else the default path, else the
/// embedded default. Returns it with the policy in force, when there is
/// one (to say when `-c FILE` differs from it).
pub fn policy_in_force(
    config: Option<&Path>,
    socket: Option<&Path>,
) -> Result<(PolicyFile, Option<InForce>), Failure> {
    let socket = socket.map_or_else(admin::socket_path, Path::to_path_buf);
    if let Some(file) = config {
        // The policy in force only serves to name a difference: a daemon
        // or state that cannot be read is no reason to fail.
        let current = daemon_policy(&socket)
            .ok()
            .flatten()
            .or_else(|| StateDir::default().in_force().ok().flatten());
        return Ok((policy(Some(file))?, current));
    }
    let daemon = daemon_policy(&socket)?;
    let recorded = if daemon.is_none() {
        StateDir::default().in_force().map_err(Failure::env)?
    } else {
        None
    };
    let current = daemon.clone().or_else(|| recorded.clone());
    let source = choose(None, daemon, recorded, Path::new(DEFAULT_CONFIG).exists());
    let policy = match source {
        Source::Daemon(p) | Source::Recorded(p) => parse_in_force(&p)?,
        Source::Flag(f) => policy(Some(&f))?,
        Source::DefaultPath | Source::Embedded => policy(None)?,
    };
    Ok((policy, current))
}

/// Parses a recorded policy's content, errors named after its path.
fn parse_in_force(p: &InForce) -> Result<PolicyFile, Failure> {
    cordon_policy::parse(&p.path, &p.content).map_err(|diags| {
        Failure::invalid(
            diags
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}

/// One line for stderr when `-c FILE` is not the policy in force: the
/// command reads FILE, the kernel enforces the other.
pub fn differs_note(config: Option<&Path>, current: Option<&InForce>) -> Option<String> {
    let (file, current) = (config?, current?);
    let text = std::fs::read_to_string(file).ok()?;
    (sha256_hex(&text) != current.sha256).then(|| {
        format!(
            "note: {} differs from the policy in force, {}",
            file.display(),
            current.describe()
        )
    })
}

/// The policy an installing command (`apply`, `daemon`, `boot`) puts in
/// force: `-c FILE`, else the file of the policy in force read afresh
/// (when it is a file that still exists), else the default path, else the
/// embedded default.
pub fn to_install(config: Option<&Path>) -> Result<(PolicyFile, InForce), Failure> {
    if config.is_none() {
        let recorded = StateDir::default().in_force().map_err(Failure::env)?;
        if let Some(r) = recorded
            .filter(|r| r.path != cordon_policy::EMBEDDED_SOURCE && Path::new(&r.path).is_file())
        {
            return read(Some(Path::new(&r.path)));
        }
    }
    read(config)
}

/// Loads the policy: `-c FILE`, else the default path if it exists, else
/// the embedded default. Invalid files fail with every located error
/// (exit 1); unreadable ones with exit 2.
pub fn policy(config: Option<&Path>) -> Result<PolicyFile, Failure> {
    read(config).map(|(p, _)| p)
}

/// [`policy`] with the record of where it came from and its text.
pub fn read(config: Option<&Path>) -> Result<(PolicyFile, InForce), Failure> {
    let path: PathBuf = match config {
        Some(p) => p.to_path_buf(),
        None if Path::new(DEFAULT_CONFIG).exists() => PathBuf::from(DEFAULT_CONFIG),
        None => {
            return Ok((
                cordon_policy::embedded_default(),
                InForce::new(
                    cordon_policy::EMBEDDED_SOURCE,
                    cordon_policy::EMBEDDED_DEFAULT,
                ),
            ))
        }
    };
    let (policy, text) = cordon_policy::read(&path).map_err(load_failure)?;
    let shown = absolute(&path);
    Ok((policy, InForce::new(&shown, &text)))
}

/// A path as recorded: absolute, so that `reload` finds it from anywhere.
fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// The exit code and message of a policy that cannot be loaded.
pub fn load_failure(e: LoadError) -> Failure {
    match e {
        LoadError::Invalid(diags) => Failure::invalid(
            diags
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        other => Failure::env(other),
    }
}

/// `cordon check`.
pub fn check(config: Option<&Path>, output: Format) -> CmdResult {
    if output == Format::Text {
        let p = policy(config)?;
        println!(
            "{}: ok ({} policies, {} sets)",
            p.source,
            p.policies.len(),
            p.sets.len()
        );
        return Ok(());
    }
    let (file, parsed) = match config {
        Some(path) => {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::env(format!("cannot read {shown}: {e}")))?;
            let parsed = cordon_policy::parse(&shown, &text);
            (shown, parsed)
        }
        None => {
            let p = policy(None)?;
            (p.source.clone(), Ok(p))
        }
    };
    let v = match &parsed {
        Ok(p) => serde_json::json!({
            "file": file, "ok": true, "policies": p.policies.len(), "sets": p.sets.len(), "errors": [],
        }),
        Err(diags) => serde_json::json!({
            "file": file, "ok": false,
            "errors": diags.iter().map(|d| serde_json::json!({
                "file": d.file, "line": d.loc.line, "column": d.loc.col, "message": d.message,
            })).collect::<Vec<_>>(),
        }),
    };
    println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
    match parsed {
        Ok(_) => Ok(()),
        Err(diags) => Err(Failure::invalid(format!(
            "{file}: {} error(s)",
            diags.len()
        ))),
    }
}

/// Reads a saved inventory.
pub fn inventory_file(path: &Path) -> Result<Inventory, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::env(format!("cannot read {}: {e}", path.display())))?;
    Inventory::from_json(&path.display().to_string(), &text)
        .map_err(|e| Failure::invalid(e.to_string()))
}

/// The inventory from a file when given, else from Docker.
pub fn inventory(file: Option<&Path>) -> Result<Inventory, Failure> {
    match file {
        Some(f) => inventory_file(f),
        None => runtime()?.block_on(async {
            let docker = cordon_docker::connect().await.map_err(Failure::env)?;
            cordon_docker::collect(&docker).await.map_err(Failure::env)
        }),
    }
}

/// A small runtime for the commands that talk to Docker.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::env(format!("cannot start the async runtime: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(path: &str) -> InForce {
        InForce::new(path, "version: 1\n")
    }

    #[test]
    fn precedence_of_the_policy_a_command_reads() {
        let flag = Path::new("/x.yaml");
        let (d, r) = (rec("/daemon.yaml"), rec("/recorded.yaml"));
        assert_eq!(
            choose(Some(flag), Some(d.clone()), Some(r.clone()), true),
            Source::Flag(flag.to_path_buf())
        );
        assert_eq!(
            choose(None, Some(d.clone()), Some(r.clone()), true),
            Source::Daemon(d)
        );
        assert_eq!(
            choose(None, None, Some(r.clone()), true),
            Source::Recorded(r)
        );
        assert_eq!(choose(None, None, None, true), Source::DefaultPath);
        assert_eq!(choose(None, None, None, false), Source::Embedded);
    }

    #[test]
    fn a_differing_file_is_named_and_an_equal_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.yaml");
        std::fs::write(&f, "version: 1\n").unwrap();
        let same = rec("/srv/p.yaml");
        assert_eq!(differs_note(Some(&f), Some(&same)), None);
        let other = InForce::new("/srv/p.yaml", "version: 1\nsets: {}\n");
        let note = differs_note(Some(&f), Some(&other)).expect("differs");
        assert!(
            note.contains("differs from the policy in force, /srv/p.yaml (sha256 "),
            "{note}"
        );
        assert_eq!(differs_note(None, Some(&other)), None);
        assert_eq!(differs_note(Some(&f), None), None);
    }
}
