//! Finding and loading the policy file and the inventory.

use std::path::{Path, PathBuf};

use cordon_inventory::Inventory;
use cordon_policy::{LoadError, PolicyFile};

use crate::{CmdResult, Failure};

/// The policy file used when `-c` is not given, if it exists.
pub const DEFAULT_CONFIG: &str = "/etc/cordon/cordon.yaml";

/// Loads the policy: `-c FILE`, else the default path if it exists, else
/// the embedded default. Invalid files fail with every located error
/// (exit 1); unreadable ones with exit 2.
pub fn policy(config: Option<&Path>) -> Result<PolicyFile, Failure> {
    let path: PathBuf = match config {
        Some(p) => p.to_path_buf(),
        None if Path::new(DEFAULT_CONFIG).exists() => PathBuf::from(DEFAULT_CONFIG),
        None => return Ok(cordon_policy::embedded_default()),
    };
    cordon_policy::load(&path).map_err(|e| match e {
        LoadError::Invalid(diags) => Failure::invalid(
            diags
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        other => Failure::env(other),
    })
}

/// `cordon check`.
pub fn check(config: Option<&Path>) -> CmdResult {
    let p = policy(config)?;
    println!(
        "{}: ok ({} policies, {} sets)",
        p.source,
        p.policies.len(),
        p.sets.len()
    );
    Ok(())
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
