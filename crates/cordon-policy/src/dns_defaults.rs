//! The DNS proxy's defaults, defined once: the policy file's `dns:`
//! section starts from them ([`crate::DnsConfig::default`]), and the proxy
//! (`cordon-dns`) and the daemon use them for what the file does not set.

use std::time::Duration;

/// `dns.min_ttl`: the shortest time an answer's address stays allowed.
/// An answer with TTL 0 still opens the firewall long enough for the
/// connection the client makes right after it; 5 s keeps such a short-lived
/// answer from holding the address open for long.
pub const MIN_TTL: Duration = Duration::from_secs(5);

/// `dns.max_ttl`: the longest time an answer's address stays allowed. An
/// answer with a week-long TTL would keep an address open long after the
/// name moved away from it; an hour bounds that, and clients that stay
/// connected re-resolve well within it.
pub const MAX_TTL: Duration = Duration::from_secs(3600);

/// `dns.max_addresses`: the most addresses one allowlisted name holds
/// open at a time (and one answer may add). It bounds how much one name
/// under someone else's control can open; 32 is well above what large
/// CDNs answer with (a handful).
pub const MAX_ADDRESSES: usize = 32;

/// `dns.query_rate`: queries per second one container may send to the
/// proxy. Far above what a program resolving its peers needs, low enough
/// that one container cannot keep the proxy or the upstreams busy.
pub const QUERY_RATE: u32 = 100;

/// `dns.query_burst`: the queries a quiet container may send at once
/// (twice the rate: a program starting up resolves many names together).
pub const QUERY_BURST: u32 = 200;

/// `dns.cache`: the most answers the proxy's cache holds (a few MiB at
/// most; the cache also bounds its bytes).
pub const CACHE: usize = 10_000;

/// How long one upstream resolver may take before the proxy tries the
/// next (not settable in the policy file). Under the 5 s after which a
/// client's resolver (glibc's default) gives up on the proxy and asks
/// again, so a dead first upstream still leaves time for the next.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
