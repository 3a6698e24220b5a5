//! The words of `to:` and `from:`, and `ports:`, in terms both targets
//! share: address blocks, pod selectors, DNS names, entities.
//!
//! | word | becomes |
//! |---|---|
//! | `internet` | `0.0.0.0/0` and `::/0`, except everything that is not public (the private ranges, `metadata` among them) |
//! | `private`, `metadata`, a set, an address or CIDR | one block per range (a set as the file lists it) |
//! | `same-network` | every pod of the namespace |
//! | a policy's name | the pods of that policy ([`Plan::pods_of`]) |
//! | `any` | everything |
//! | `host` | the node ([`Out::Host`]; Cilium only) |
//! | a DNS name, `*.suffix` | [`Out::Fqdn`] (Cilium only) |

use cordon_compiler::words;
use cordon_policy::{Peer, PolicyFile, PortSpec, Rule};
use ipnet::IpNet;

use crate::selection::{Plan, Sel};

/// One peer, before it is written for a target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Out {
    /// An address block, minus some of its parts.
    Cidr {
        /// The block.
        cidr: IpNet,
        /// Parts of it that are not included (sorted).
        except: Vec<IpNet>,
    },
    /// Pods of the policy's namespace that a selector takes.
    Pods(Sel),
    /// Every address: no restriction on the peer.
    Everything,
    /// The node the pod runs on (Cilium's `host` entity).
    Host,
    /// A DNS name, or with `wildcard` every name below it.
    Fqdn {
        /// The name (or the suffix, without `*.`).
        name: String,
        /// True for `*.suffix`.
        wildcard: bool,
    },
}

impl PartialOrd for Sel {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Sel {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |s: &Sel| serde_json::to_string(s).unwrap_or_default();
        key(self).cmp(&key(other))
    }
}

fn blocks(nets: &[IpNet]) -> Vec<Out> {
    nets.iter()
        .map(|n| Out::Cidr {
            cidr: n.trunc(),
            except: Vec::new(),
        })
        .collect()
}

/// `internet`: both whole address spaces, except what is not public.
pub fn internet() -> Vec<Out> {
    let (v4, v6) = words::split_aggregate(&words::nonpublic());
    vec![
        Out::Cidr {
            cidr: "0.0.0.0/0".parse().expect("constant"),
            except: v4,
        },
        Out::Cidr {
            cidr: "::/0".parse().expect("constant"),
            except: v6,
        },
    ]
}

/// What one word becomes.
pub fn map_peer(file: &PolicyFile, plan: &Plan, peer: &Peer) -> Vec<Out> {
    match peer {
        Peer::Internet => internet(),
        Peer::Private => blocks(&words::private()),
        Peer::Metadata => blocks(&words::metadata()),
        Peer::Host => vec![Out::Host],
        Peer::SameNetwork => vec![Out::Pods(Sel::default())],
        Peer::Any => vec![Out::Everything],
        Peer::Set(name) => file.set(name).map_or_else(Vec::new, |s| blocks(&s.addrs)),
        Peer::Policy(name) => plan.pods_of(name).into_iter().map(Out::Pods).collect(),
        Peer::Net(net) => blocks(&[*net]),
        Peer::Dns(name) => vec![Out::Fqdn {
            name: name.clone(),
            wildcard: false,
        }],
        Peer::DnsWildcard(suffix) => vec![Out::Fqdn {
            name: suffix.clone(),
            wildcard: true,
        }],
    }
}

/// What all the words of a rule become, sorted, each once.
pub fn map_rule(file: &PolicyFile, plan: &Plan, rule: &Rule) -> Vec<Out> {
    let mut out: Vec<Out> = rule
        .peers
        .iter()
        .flat_map(|p| map_peer(file, plan, p))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A TCP or UDP port range of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortRange {
    /// `TCP` or `UDP`.
    pub protocol: &'static str,
    /// The first port.
    pub lo: u16,
    /// The last port (equal to `lo` for one port).
    pub hi: u16,
}

/// The ports of a rule: `None` for every port and protocol, else the TCP
/// and UDP ranges (sorted) and whether `icmp` was listed (which neither
/// target's port list can say).
pub fn ports(rule: &Rule) -> (Option<Vec<PortRange>>, bool) {
    if rule.ports.is_empty() {
        return (None, false);
    }
    let mut icmp = false;
    let mut out = Vec::new();
    for p in &rule.ports {
        match *p {
            PortSpec::Tcp(lo, hi) => out.push(PortRange {
                protocol: "TCP",
                lo,
                hi,
            }),
            PortSpec::Udp(lo, hi) => out.push(PortRange {
                protocol: "UDP",
                lo,
                hi,
            }),
            PortSpec::Icmp => icmp = true,
        }
    }
    out.sort();
    out.dedup();
    (Some(out), icmp)
}

/// The warning for `icmp` in `ports:`.
pub const ICMP_DROPPED: &str =
    "`icmp` in `ports:` cannot be exported (the port list takes TCP and UDP only); ICMP stays closed";
