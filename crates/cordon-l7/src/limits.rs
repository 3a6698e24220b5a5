//! The bounds on one proxied connection and on how many there are.

use std::time::Duration;

use crate::flight::FIRST_FLIGHT_MAX;

/// The proxy's bounds. A connection over any of them is reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes read before a decision (default and ceiling
    /// [`FIRST_FLIGHT_MAX`]); a first flight still incomplete at this size
    /// is [`crate::FirstFlight::Unknown`].
    pub first_flight_bytes: usize,
    /// The time the whole first flight may take, from accept (not per
    /// read: a client sending one byte a second is cut at this deadline).
    pub first_flight_timeout: Duration,
    /// The time connecting to the original destination may take.
    pub connect_timeout: Duration,
    /// Concurrent proxied connections per source address, counted from
    /// accept until close; the next one is reset.
    pub per_source: usize,
    /// Concurrent proxied connections in all.
    pub total: usize,
    /// Descriptors of the process the proxy leaves to the rest of it (see
    /// [`crate::budget`]): the proxy's connections and pipes use at most
    /// the soft `RLIMIT_NOFILE` less this many. None (the default):
    /// [`crate::budget::DEFAULT_RESERVE`], or half the limit when that is
    /// smaller.
    pub reserved_descriptors: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            first_flight_bytes: FIRST_FLIGHT_MAX,
            first_flight_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            per_source: 256,
            total: 20_000,
            reserved_descriptors: None,
        }
    }
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit and
/// returns the new soft limit. A proxied connection holds two descriptors
/// (client and server) plus two per direction while bytes flow (the
/// splice pipes), so the common soft default of 1,024 would cap the proxy
/// at a few hundred connections; the caller (the daemon) calls this once
/// at start.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(std::io::Error::from)?;
    }
    Ok(hard.max(soft))
}
