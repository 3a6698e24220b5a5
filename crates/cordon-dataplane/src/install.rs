//! A whole-ruleset install with its preconditions, shared by `cordon apply`,
//! the daemon and the boot unit.

use cordon_ruleset::nft::Ruleset;

use crate::{BrNetfilter, Nft, NftError, StateDir, StateError, SysctlError};

/// Why an install did not happen; nothing was changed in nftables.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// nftables refused the ruleset.
    #[error(transparent)]
    Nft(#[from] NftError),
    /// br_netfilter could not be switched on.
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    /// cordon's state could not be written.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Installs `ruleset` whole: the kernel validates it first (`nft -c`), then
/// br_netfilter is switched on (recording the old values for `cordon down`),
/// then one transaction replaces cordon's tables in place. `previous` is the
/// ruleset the caller last installed, when it knows the kernel still holds
/// it (then the kernel is not read first: [`Nft::install_over`]).
pub fn install_whole(
    nft: &Nft,
    state: &StateDir,
    ruleset: &Ruleset,
    previous: Option<&Ruleset>,
) -> Result<(), InstallError> {
    nft.check(ruleset)?;
    ensure_br_netfilter(state)?;
    match previous {
        Some(p) => nft.install_over(ruleset, p)?,
        None => nft.install(ruleset)?,
    }
    Ok(())
}

/// Switches br_netfilter on, recording in `state` the values it changed
/// (the first recorded value wins, so `cordon down` restores the original).
pub fn ensure_br_netfilter(state: &StateDir) -> Result<(), InstallError> {
    let changed = BrNetfilter::default().ensure()?;
    if !changed.values.is_empty() {
        let mut saved = state.saved_sysctls()?;
        for (k, v) in changed.values {
            saved.values.entry(k).or_insert(v);
        }
        state.save_sysctls(&saved)?;
    }
    Ok(())
}
