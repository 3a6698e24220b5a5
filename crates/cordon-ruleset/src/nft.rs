//! A small model of the nftables objects cordon creates.
//!
//! It covers exactly what the compiler emits, no more, and renders to the
//! nft text syntax (for people, [`crate::text`]) and to libnftables JSON (for
//! the kernel, [`crate::json`]).

use ipnet::IpNet;

pub use compact_str::{format_compact, CompactString};
pub use smallvec::{smallvec, SmallVec};

/// A short string kept inline (up to 24 bytes) with no heap allocation of
/// its own: interface names (at most 15 bytes), MACs and chain names. At
/// 10,000 containers the compiled ruleset holds a quarter of a million
/// elements, and one heap allocation per name made them the daemon's
/// largest and most fragmented use of memory.
pub type Name = CompactString;

/// An element's key: one value, or two for most concatenations, inline;
/// a longer concatenation (interface . MAC . address) spills to the heap.
pub type Key = SmallVec<[Value; 2]>;

/// An nftables address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `inet`: IPv4 and IPv6.
    Inet,
    /// `bridge`: frames crossing Linux bridges.
    Bridge,
}

impl Family {
    /// The family's keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Bridge => "bridge",
        }
    }
}

/// A whole ruleset: the tables cordon owns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ruleset {
    /// Tables, each replaced whole on install.
    pub tables: Vec<Table>,
}

impl Ruleset {
    /// The table of `family` (cordon has one per family).
    pub fn table(&self, family: Family) -> Option<&Table> {
        self.tables.iter().find(|t| t.family == family)
    }
}

/// One table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Its family.
    pub family: Family,
    /// Its name.
    pub name: String,
    /// Named sets and maps, declared before the chains that use them.
    pub sets: Vec<Set>,
    /// Chains, base chains last.
    pub chains: Vec<Chain>,
}

/// The type of one component of a set key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `ipv4_addr`.
    Ipv4,
    /// `ipv6_addr`.
    Ipv6,
    /// `ifname`.
    Ifname,
    /// `ether_addr`.
    Ether,
    /// `mark`: 32 bits, host byte order.
    Mark,
}

impl KeyType {
    /// The nft type name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ipv4 => "ipv4_addr",
            KeyType::Ipv6 => "ipv6_addr",
            KeyType::Ifname => "ifname",
            KeyType::Ether => "ether_addr",
            KeyType::Mark => "mark",
        }
    }
}

/// A named set, or a verdict map when `verdict_map` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct Set {
    /// Its name.
    pub name: String,
    /// Its key: one type, or several for a concatenation.
    pub key: Vec<KeyType>,
    /// True for `type K : verdict`.
    pub verdict_map: bool,
    /// `flags interval`.
    pub interval: bool,
    /// `flags timeout` (elements added later with a lifetime).
    pub timeout: bool,
    /// `counter`: every element counts the packets and bytes that matched
    /// it (the kernel attaches a counter to each element added).
    pub counter: bool,
    /// A comment saying what it holds.
    pub comment: String,
    /// Its elements.
    pub elements: Vec<Element>,
}

impl Set {
    /// A plain set with no elements yet.
    pub fn new(name: impl Into<String>, key: Vec<KeyType>, comment: impl Into<String>) -> Self {
        Set {
            name: name.into(),
            key,
            verdict_map: false,
            interval: false,
            timeout: false,
            counter: false,
            comment: comment.into(),
            elements: Vec::new(),
        }
    }
}

impl Set {
    /// Its flags, in nft's words: `interval`, `timeout`.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut flags = Vec::new();
        if self.interval {
            flags.push("interval");
        }
        if self.timeout {
            flags.push("timeout");
        }
        flags
    }
}

/// A set element: its key and, in a verdict map, its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Element {
    /// One value per key component.
    pub key: Key,
    /// The verdict, for verdict maps.
    pub verdict: Option<Verdict>,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    /// An address or prefix; a host prefix renders as a bare address.
    Net(IpNet),
    /// An interface name.
    Ifname(Name),
    /// A MAC address, `aa:bb:cc:dd:ee:ff`.
    Mac(Name),
    /// A packet mark (`meta mark`), host byte order.
    Mark(u32),
}

/// One chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// Its name.
    pub name: String,
    /// For base chains, where it hooks.
    pub base: Option<BaseChain>,
    /// Its rules in order.
    pub rules: Vec<Rule>,
}

/// The hook of a base chain (policy `accept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseChain {
    /// Its type: `filter` or `nat`.
    pub kind: ChainType,
    /// The hook.
    pub hook: Hook,
    /// Its priority: lower runs first.
    pub priority: i32,
}

/// The type of a base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChainType {
    /// `filter`: judges packets.
    #[default]
    Filter,
    /// `nat`: rewrites addresses; sees only a connection's first packet.
    Nat,
}

impl ChainType {
    /// The type's keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
        }
    }
}

/// A netfilter hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `prerouting`.
    Prerouting,
    /// `input`.
    Input,
    /// `forward`.
    Forward,
    /// `output`.
    Output,
    /// `postrouting`.
    Postrouting,
}

impl Hook {
    /// The hook's keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
        }
    }
}

/// One rule: statements evaluated left to right.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Its statements.
    pub stmts: Vec<Stmt>,
    /// A comment saying where it comes from (policy file line).
    pub comment: Option<String>,
}

impl Rule {
    /// A rule from statements.
    pub fn new(stmts: Vec<Stmt>) -> Self {
        Rule {
            stmts,
            comment: None,
        }
    }

    /// The same rule with a comment.
    pub fn with_comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }
}

impl Stmt {
    /// The positive match of one field: `FIELD RIGHT` (`tcp dport 443`,
    /// `ip daddr @set`).
    pub fn is(field: Field, right: Rhs) -> Stmt {
        Stmt::Match {
            left: vec![field],
            negate: false,
            right,
        }
    }
}

/// A statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// A match; the rule stops here when it fails.
    Match {
        /// The packet fields, concatenated when more than one.
        left: Vec<Field>,
        /// `==` (or set membership) when false, `!=` when true.
        negate: bool,
        /// What they are compared with.
        right: Rhs,
    },
    /// An anonymous counter.
    Counter,
    /// Log to an nflog group.
    Log {
        /// The prefix, which names direction, policy and verdict.
        prefix: String,
        /// The nflog group.
        group: u16,
    },
    /// Look the fields up in a verdict map.
    Vmap {
        /// The key fields.
        key: Vec<Field>,
        /// The map's name.
        map: String,
    },
    /// `masquerade`: source NAT to the outgoing interface's address (nat
    /// chains only).
    Masquerade,
    /// `redirect to :PORT`: destination NAT to the host's address on the
    /// incoming interface, this port (nat chains only).
    Redirect(u16),
    /// `meta mark set FIELD` (a raw 32-bit payload copied into the mark,
    /// byte for byte), or `meta mark set 0` when `None`.
    SetMark(Option<Field>),
    /// A verdict.
    Verdict(Verdict),
}

/// A verdict.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// End this base chain's evaluation; later base chains still run.
    Accept,
    /// Drop the packet for good.
    Drop,
    /// Continue in the named chain, coming back after it.
    Jump(Name),
    /// Continue in the named chain without coming back here: its `return`
    /// (or its end) goes back to the chain that jumped to this one.
    Goto(Name),
    /// Back to the chain that jumped here.
    Return,
}

/// A packet field (left side of a match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `meta iifname`.
    Iifname,
    /// `meta oifname`.
    Oifname,
    /// `meta l4proto`.
    L4proto,
    /// `th dport`.
    ThDport,
    /// `ct state`.
    CtState,
    /// `ct status` (`dnat`, …).
    CtStatus,
    /// `fib daddr type`.
    FibDaddrType,
    /// `ether saddr`.
    EtherSaddr,
    /// `ether type`.
    EtherType,
    /// `ip saddr`.
    IpSaddr,
    /// `ip daddr`.
    IpDaddr,
    /// `ip6 saddr`.
    Ip6Saddr,
    /// `ip6 daddr`.
    Ip6Daddr,
    /// `arp saddr ip`.
    ArpSaddrIp,
    /// `arp saddr ether`.
    ArpSaddrEther,
    /// `icmpv6 type`.
    Icmpv6Type,
    /// `ip6 hoplimit`.
    Ip6Hoplimit,
    /// `ip6 nexthdr`: the header right after the fixed IPv6 header.
    Ip6Nexthdr,
    /// `ip6 length`: the payload length.
    Ip6Length,
    /// `th sport`.
    ThSport,
    /// `meta mark`.
    Mark,
    /// `meta iifkind`: the kind of the input device (`bridge`, `veth`, …).
    Iifkind,
    /// `meta oifkind`.
    Oifkind,
    /// `meta iif`: the input interface's index, 0 when the packet has
    /// none (the output hook: the host's own packets).
    Iif,
    /// `meta oif`: the output interface's index, 0 when the packet has
    /// none (the input hook: packets to the host).
    Oif,
    /// `@th,OFFSET,LEN`: raw bits of the transport header (offset and
    /// length in bits), a big-endian integer.
    Th(u16, u16),
}

/// The right side of a match.
#[derive(Debug, Clone, PartialEq)]
pub enum Rhs {
    /// A named set, `@name`.
    Set(String),
    /// An anonymous set of addresses.
    Nets(Vec<IpNet>),
    /// One address.
    Net(IpNet),
    /// An anonymous set of ports and port ranges.
    Ports(Vec<(u16, u16)>),
    /// Symbolic constants (`tcp`, `established`, `local`, `ip6`, …);
    /// more than one forms an anonymous set.
    Symbols(Vec<&'static str>),
    /// Integers; more than one forms an anonymous set.
    Ints(Vec<u64>),
    /// A quoted string, such as an interface name with a trailing `*`
    /// wildcard (`"br-*"`: every name that starts with `br-`).
    Str(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compiled ruleset of 10,000 containers holds about a quarter of
    /// a million elements for as long as it is in force: each must stay
    /// small and own no heap memory of its own (names inline, keys of up
    /// to two values inline).
    #[test]
    fn an_element_is_small_and_owns_no_heap_memory() {
        assert!(
            std::mem::size_of::<Value>() <= 32,
            "{}",
            std::mem::size_of::<Value>()
        );
        assert!(
            std::mem::size_of::<Element>() <= 112,
            "{}",
            std::mem::size_of::<Element>()
        );
        let e = Element {
            key: smallvec![
                Value::Ifname("veth0123456789a".into()),
                Value::Mac("02:42:ac:11:00:02".into()),
            ],
            verdict: Some(Verdict::Goto("eg_fwd_customers_sftp".into())),
        };
        assert!(!e.key.spilled());
        assert!(e.key.iter().all(|v| match v {
            Value::Ifname(n) | Value::Mac(n) => !n.is_heap_allocated(),
            _ => true,
        }));
        assert!(matches!(&e.verdict, Some(Verdict::Goto(c)) if !c.is_heap_allocated()));
    }
}
