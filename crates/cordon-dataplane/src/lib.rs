//! cordon's dataplane: puts a compiled ruleset into the kernel.
//!
//! Everything goes through libnftables' JSON interface (`nft -j -f -`), one
//! transaction per change: a ruleset is installed whole or not at all, and a
//! kernel error leaves the live ruleset exactly as it was. Cordon's tables
//! are read back over netlink ([`dump`]), not through `nft`.
//!
//! This crate is deliberately thin; it is tested against real nftables in
//! throw-away network namespaces.

pub mod conntrack;
pub mod dump;
pub mod elements;
mod env;
mod error;
mod flat;
pub mod generation;
mod install;
pub mod kernel;
pub mod monitor;
pub mod nflog;
mod nft;
mod nl;
mod state;
mod sysctl;

pub use env::{check_environment, is_root, EnvError};
pub use error::NftError;
pub use install::{ensure_br_netfilter, install_whole, InstallError};
pub use monitor::{Change, Monitor, Touched};
pub use nft::{Nft, Steps};
pub use state::{sha256_hex, InForce, StateDir, StateError};
pub use sysctl::{BrNetfilter, SysctlError};
