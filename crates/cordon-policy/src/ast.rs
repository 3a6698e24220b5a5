//! The typed, validated form of a policy file.
//!
//! Every value a user wrote carries its [`Loc`] so later stages (the
//! compiler, the daemon) can point back into the file.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

/// A position in the policy file, 1-based like editors count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Loc {
    /// Line, starting at 1.
    pub line: usize,
    /// Column, starting at 1.
    pub col: usize,
}

/// A whole policy file (or the embedded default).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyFile {
    /// Where it came from: a path, or `<embedded default>`.
    pub source: String,
    /// `version:`; only 1 exists.
    pub version: u32,
    /// `sets:` in file order.
    pub sets: Vec<NamedSet>,
    /// `dns:`.
    pub dns: DnsConfig,
    /// `l7:`: the L7 proxy's settings (rules with `match: server-name`).
    pub l7: L7Config,
    /// `default:`: the body for containers no policy selects.
    pub default: Body,
    /// `policies:` in file order (first match wins).
    pub policies: Vec<Policy>,
    /// `trust_image_labels: true`: labels a container's image gave it may
    /// select its policy (`cordon.policy`, `select: {label: …}`,
    /// `select: {compose: …}`). Off by default, so that an image cannot
    /// choose its own policy.
    pub trust_image_labels: bool,
}

/// A named, live-changeable address set.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedSet {
    /// The set's name, unique among sets and policies.
    pub name: String,
    /// Its addresses; a single address is a /32 or /128.
    pub addrs: Vec<IpNet>,
    /// Where the name was written.
    pub loc: Loc,
}

/// `dns:`: the DNS proxy's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsConfig {
    /// Where cordon's DNS proxy forwards; empty means the host's resolvers.
    pub upstream: Vec<IpAddr>,
    /// `min_ttl`: the shortest time an answer's address stays allowed,
    /// whatever its TTL (default 5 s).
    pub min_ttl: Duration,
    /// `max_ttl`: the longest time an answer's address stays allowed,
    /// whatever its TTL (default 1 h).
    pub max_ttl: Duration,
    /// `max_addresses`: the most addresses one allowlisted name holds open
    /// at a time, across lookups and containers of a policy (default 32).
    pub max_addresses: usize,
    /// `refuse_with: nxdomain`: refused names get NXDOMAIN instead of
    /// REFUSED.
    pub nxdomain: bool,
    /// `query_rate`: the queries per second one container may send to the
    /// proxy (a token bucket per container address); `None` (`off`) for no
    /// limit (default 100).
    pub query_rate: Option<u32>,
    /// `query_burst`: the bucket's size, the queries a quiet container may
    /// send at once (default 200).
    pub query_burst: u32,
    /// `cache`: the most answers the proxy's cache holds; 0 (`off`) for no
    /// cache (default 10000).
    pub cache: usize,
}

impl Default for DnsConfig {
    /// The defaults of [`crate::dns_defaults`].
    fn default() -> Self {
        use crate::dns_defaults;
        DnsConfig {
            upstream: Vec::new(),
            min_ttl: dns_defaults::MIN_TTL,
            max_ttl: dns_defaults::MAX_TTL,
            max_addresses: dns_defaults::MAX_ADDRESSES,
            nxdomain: false,
            query_rate: Some(dns_defaults::QUERY_RATE),
            query_burst: dns_defaults::QUERY_BURST,
            cache: dns_defaults::CACHE,
        }
    }
}

/// `l7:`: the settings of cordon's L7 proxy, which checks the server
/// name of the connections rules with `match: server-name` govern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L7Config {
    /// `max_connections_per_container`: the most connections one container
    /// may have open through the proxy at a time; the next is reset
    /// (default [`L7Config::DEFAULT_PER_CONTAINER`]).
    pub max_connections_per_container: usize,
}

impl L7Config {
    /// The default of `max_connections_per_container`.
    pub const DEFAULT_PER_CONTAINER: usize = 256;
    /// The largest `max_connections_per_container` accepted.
    pub const MAX_PER_CONTAINER: usize = 65_535;
}

impl Default for L7Config {
    fn default() -> Self {
        L7Config {
            max_connections_per_container: L7Config::DEFAULT_PER_CONTAINER,
        }
    }
}

/// One entry of `policies:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The policy's name, unique among sets and policies.
    pub name: String,
    /// Which containers it applies to.
    pub select: Selector,
    /// What they may do.
    pub body: Body,
    /// Where `name:` was written.
    pub loc: Loc,
}

/// `select:`. Every criterion given must match; an empty selector matches
/// nothing (a policy with no `select` is reachable only through the
/// `cordon.policy` label).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selector {
    /// `label: {k: v}`: each label must be present with that value.
    pub labels: BTreeMap<String, String>,
    /// `name: "web-*"`: a glob over the container name (no leading `/`).
    pub name: Option<String>,
    /// `image: "nginx:*"`: a glob over the image reference as the container
    /// was created with it.
    pub image: Option<String>,
    /// `compose: { project: p }`.
    pub compose_project: Option<String>,
    /// `compose: { service: s }`.
    pub compose_service: Option<String>,
}

impl Selector {
    /// True when no criterion is given.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
            && self.name.is_none()
            && self.image.is_none()
            && self.compose_project.is_none()
            && self.compose_service.is_none()
    }
}

/// Enforce or only log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Mode {
    /// Drop what no rule allows.
    #[default]
    Enforce,
    /// Log what would be dropped as `audit`, drop nothing.
    Audit,
}

/// What a policy (or `default:`) allows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Body {
    /// `mode:`.
    pub mode: Mode,
    /// `ingress:`; `None` (absent) means ingress is not restricted.
    pub ingress: Option<Vec<Rule>>,
    /// `egress:`; an allowlist. Absent means the same as `[]`: nothing.
    pub egress: Vec<Rule>,
}

/// One `- to: [...]` / `- from: [...]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// `to:` (egress) or `from:` (ingress). Never empty.
    pub peers: Vec<Peer>,
    /// `ports:`; empty means all ports and protocols.
    pub ports: Vec<PortSpec>,
    /// `match: server-name` (egress only): a connection must also present
    /// one of the rule's names as its TLS server name (SNI) or HTTP Host,
    /// checked by cordon's L7 proxy. Such a rule names only DNS names and
    /// only TCP ports.
    pub server_name: bool,
    /// Where the rule starts.
    pub loc: Loc,
}

/// A destination (egress) or source (ingress) word.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Peer {
    /// Any unicast address outside `private`.
    Internet,
    /// The private, loopback and link-local ranges.
    Private,
    /// The cloud metadata endpoint.
    Metadata,
    /// The Docker host's own addresses.
    Host,
    /// Containers sharing a user-defined Docker network.
    SameNetwork,
    /// Everything.
    Any,
    /// A name from `sets:`.
    Set(String),
    /// The containers of the policy with this name.
    Policy(String),
    /// A literal address or CIDR.
    Net(IpNet),
    /// A DNS name (lower-case, no trailing dot).
    Dns(String),
    /// `*.suffix`: any name below the suffix (lower-case, no leading `*.`).
    DnsWildcard(String),
}

/// One element of `ports:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortSpec {
    /// TCP ports `lo..=hi`.
    Tcp(u16, u16),
    /// UDP ports `lo..=hi`.
    Udp(u16, u16),
    /// ICMP and ICMPv6.
    Icmp,
}

/// A located error in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// The file, as the user named it.
    pub file: String,
    /// Where.
    pub loc: Loc,
    /// What is wrong, one line, no trailing period.
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.loc.line, self.loc.col, self.message
        )
    }
}
