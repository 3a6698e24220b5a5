//! The error of every nft invocation.

/// An nft invocation that failed; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The `nft` binary could not be run.
    #[error("cannot run nft: {0} (install the nftables package)")]
    Spawn(std::io::Error),
    /// nft rejected the transaction.
    #[error("nftables rejected the change, nothing was modified: {0}")]
    Rejected(String),
    /// nft printed something cordon could not read.
    #[error("cannot read nft's output: {0}")]
    Output(String),
}
