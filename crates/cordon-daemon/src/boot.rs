//! The fail-closed ruleset installed at boot, before Docker starts.
//!
//! Whenever the networks change, the daemon writes `boot.json` in its state
//! directory: the ruleset compiled for the known networks and *no*
//! containers (one nftables JSON transaction). Installed at boot
//! (`cordon boot`, from `packaging/cordon-boot.service`, ordered before
//! `docker.service`), it drops every packet from or to a container on a
//! managed bridge, since no container is known yet, until the daemon has
//! followed Docker and filled in each container's elements. Nothing is
//! parsed or compiled at boot when the file exists, so a policy file
//! broken since the last run cannot leave the host open.

use cordon_compiler::{compile, SetOverrides};
use cordon_dataplane::{Nft, StateDir};
use cordon_inventory::{Inventory, Network, INVENTORY_VERSION};
use cordon_policy::PolicyFile;
use cordon_ruleset::json;

use crate::DaemonError;

/// The file name of the boot ruleset in the state directory.
pub const BOOT_FILE: &str = "boot.json";

/// The fail-closed ruleset for `networks`: the policy compiled with no
/// containers.
pub fn ruleset_text(policy: &PolicyFile, networks: &[Network], overrides: &SetOverrides) -> String {
    let inv = Inventory {
        version: INVENTORY_VERSION,
        networks: networks.to_vec(),
        containers: Vec::new(),
    };
    json::replace_text(&compile(policy, &inv, overrides).ruleset)
}

/// Writes the boot ruleset atomically.
pub fn save(
    policy: &PolicyFile,
    networks: &[Network],
    overrides: &SetOverrides,
    state: &StateDir,
) -> Result<(), DaemonError> {
    let text = ruleset_text(policy, networks, overrides);
    let dir = state.root();
    let file = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| DaemonError::File { path, source }
    };
    std::fs::create_dir_all(dir).map_err(file(dir))?;
    let tmp = dir.join(format!(".{BOOT_FILE}.tmp"));
    std::fs::write(&tmp, text).map_err(file(&tmp))?;
    let path = dir.join(BOOT_FILE);
    std::fs::rename(&tmp, &path).map_err(file(&path))
}

/// What [`install`] installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// The saved boot ruleset.
    Saved,
    /// No saved ruleset: the policy with no networks known (containers on
    /// bridges cordon has never seen are not covered until the daemon runs).
    Fresh,
}

/// Installs the saved boot ruleset, or, when there is none, `fallback`
/// compiled with no networks. br_netfilter is switched on first.
pub fn install(
    nft: &Nft,
    state: &StateDir,
    fallback: impl FnOnce() -> Result<PolicyFile, DaemonError>,
) -> Result<Installed, DaemonError> {
    let path = state.root().join(BOOT_FILE);
    let (text, what) = match std::fs::read_to_string(&path) {
        Ok(t) => (t, Installed::Saved),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let policy = fallback()?;
            let overrides = state.set_overrides()?;
            (ruleset_text(&policy, &[], &overrides), Installed::Fresh)
        }
        Err(source) => return Err(DaemonError::File { path, source }),
    };
    let refused = |source| DaemonError::BootRuleset {
        path: path.clone(),
        source,
    };
    nft.run_text(text.clone(), true).map_err(refused)?;
    cordon_dataplane::ensure_br_netfilter(state)?;
    nft.run_text(text, false).map_err(refused)?;
    Ok(what)
}
