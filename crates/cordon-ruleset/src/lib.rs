//! The contract between cordon's compiler, dataplane, DNS proxy and
//! daemon: everything one of them writes into the kernel and another reads
//! back.
//!
//! - [`nft`]: the nftables object model the compiler produces, rendered as
//!   nft text for people ([`text`]) and as libnftables JSON for the kernel
//!   ([`json`]); [`diff`] compares two rulesets (or a ruleset and the
//!   kernel) and [`inplace`] builds the transaction that replaces cordon's
//!   tables without deleting them.
//! - [`key`]: which policy a container got ([`PolicyKey`]), as the
//!   compiler keys its chains and as people see it.
//! - [`names`]: every chain, set and map name the compiler writes, built
//!   and read back in one place.
//! - [`prefix`]: the nflog prefixes of the logging rules ([`LogPrefix`]).
//! - [`listing`]: the one reader of `nft -j list` output ([`Listing`]).
//! - [`size`]: how large each set is declared, and why.
//!
//! Nothing here touches the kernel; all of it is tested without root.

pub mod diff;
pub mod inplace;
pub mod json;
pub mod key;
pub mod listing;
pub mod names;
pub mod nft;
pub mod prefix;
pub mod size;
pub mod text;

pub use key::PolicyKey;
pub use listing::Listing;
pub use prefix::LogPrefix;

/// The name of cordon's tables (`inet cordon` and `bridge cordon`).
pub const TABLE: &str = "cordon";

/// The host port cordon's DNS proxy listens on; containers whose policy
/// names DNS names have their DNS (port 53, UDP and TCP, to any address)
/// redirected to it.
pub const DNS_PROXY_PORT: u16 = 15353;

/// The host port cordon's L7 proxy listens on (issue 17).
pub const L7_PROXY_PORT: u16 = 15380;

/// The nflog group every drop and audit is logged to.
pub const NFLOG_GROUP: u16 = 100;
