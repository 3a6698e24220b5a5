//! What the policy says about one flow a container starts: allowed or
//! dropped, and the rule that decides.
//!
//! ```text
//! Evaluator::new(Facts { policy, inventory, overrides, learned, host }).egress(container, &flow)
//!     -> Expected { allowed, audit, policy, reason }
//! ```
//!
//! It mirrors, step by step, what the ruleset [`compile`](crate::compile)
//! emits does to the first packet of a connection (`docs/design.md`; the
//! kernel's ruleset stays the source of truth, and `cordon verify` compares
//! the two): traffic to the container's own addresses never leaves it; the
//! DNS of containers whose policy names DNS names goes to cordon's proxy;
//! traffic to the host's own addresses meets the policy's `eg_host` chain,
//! where only `host` and `any` allow; anything else meets `eg_fwd`, then,
//! when it goes to a Docker subnet, the receiver's ingress (an address no
//! known container holds is dropped, fail closed): both in the one
//! `forward` chain, an egress allow returning to it for the ingress
//! (`tests/forward.rs` runs that chain against this evaluation). A rule allows when one
//! of its peers holds the address and one of its ports the port; when no
//! rule does, an `enforce` policy drops and an `audit` policy lets it
//! through (logged as `audit`). Addresses learned through the DNS proxy
//! are an input ([`Facts::learned`]), as the kernel's timeout sets hold
//! them. Pure: no kernel, no Docker.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use cordon_inventory::{Container, Inventory};
use cordon_policy::{Body, Mode, Peer, PolicyFile, PortSpec, Rule};
use ipnet::IpNet;

use cordon_ruleset::{names, PolicyKey};

use crate::{compile, words, Assignment, SetOverrides};

/// A transport protocol of a probed flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP echo (ICMPv6 for IPv6 addresses).
    Icmp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        })
    }
}

/// One connection a container would start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flow {
    /// Its destination address.
    pub dst: IpAddr,
    /// Its protocol.
    pub proto: Proto,
    /// Its destination port (ignored for ICMP).
    pub port: u16,
}

/// A connection already open, as the policy judges it: who opened it and
/// where it really goes (after Docker's DNAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// The address that opened it.
    pub src: IpAddr,
    /// The address it reaches.
    pub dst: IpAddr,
    /// Its protocol; `None` for protocols other than TCP, UDP and ICMP,
    /// which the evaluation does not model.
    pub proto: Option<Proto>,
    /// Its destination port (ignored for ICMP).
    pub port: u16,
}

/// What the evaluation needs: the compiler's inputs plus what the kernel
/// learned at run time.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The policy file.
    pub policy: &'a PolicyFile,
    /// The containers and networks.
    pub inventory: &'a Inventory,
    /// Live edits of named sets.
    pub overrides: &'a SetOverrides,
    /// The addresses cordon's DNS proxy opened, by set name
    /// ([`names::dns_set`]): what the kernel's `dns_<policy>_<rule>_<4|6>`
    /// timeout sets hold now.
    pub learned: &'a BTreeMap<String, Vec<IpAddr>>,
    /// The host's own addresses (every interface's, in the host's network
    /// namespace): traffic to them meets the `eg_host` chains.
    pub host: &'a [IpAddr],
}

/// The policy's answer for one flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// True when the flow gets through.
    pub allowed: bool,
    /// True when it gets through only because a policy is in audit mode
    /// (it is logged as `audit`).
    pub audit: bool,
    /// The container's policy as `cordon plan` shows it (`default`,
    /// `unknown policy NAME`, or the name).
    pub policy: String,
    /// The rule (or fixed behaviour) that decides, one line.
    pub reason: String,
}

/// Why a flow cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// No container of the inventory has this name or id.
    UnknownContainer(String),
    /// cordon does not filter this container's traffic (host network, or
    /// only networks that are not bridges).
    NotEnforced {
        /// The container's name.
        container: String,
        /// Why.
        why: String,
    },
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::UnknownContainer(c) => write!(f, "no running container {c}"),
            EvalError::NotEnforced { container, why } => {
                write!(f, "cordon does not filter container {container}: {why}")
            }
        }
    }
}

impl std::error::Error for EvalError {}

/// Evaluates flows against one policy file and inventory.
pub struct Evaluator<'a> {
    facts: Facts<'a>,
    /// Per inventory container: the compiler's assignment.
    assigned: std::borrow::Cow<'a, [Assignment]>,
    deny_all: Body,
}

/// One side of a flow: who it is and which policy body applies.
struct Side<'e> {
    idx: usize,
    key: &'e PolicyKey,
    shown: String,
    body: &'e Body,
}

impl<'a> Evaluator<'a> {
    /// Prepares the evaluation (the compiler decides which policy and which
    /// addresses each container gets).
    pub fn new(facts: Facts<'a>) -> Evaluator<'a> {
        let compiled = compile(facts.policy, facts.inventory, facts.overrides);
        Self::assigned(facts, compiled.assignments.into())
    }

    /// [`Evaluator::new`] with the assignments of a compile of these same
    /// facts already at hand (`compile(policy, inventory, overrides)`'s,
    /// one per inventory container, in its order), so nothing is compiled
    /// again: the daemon's, whose compile is current. Assignments of
    /// another length are not these facts': then it compiles.
    pub fn with_assignments(facts: Facts<'a>, assigned: &'a [Assignment]) -> Evaluator<'a> {
        if assigned.len() != facts.inventory.containers.len() {
            return Self::new(facts);
        }
        Self::assigned(facts, assigned.into())
    }

    fn assigned(facts: Facts<'a>, assigned: std::borrow::Cow<'a, [Assignment]>) -> Evaluator<'a> {
        Evaluator {
            facts,
            assigned,
            deny_all: Body {
                mode: Mode::Enforce,
                ingress: Some(vec![]),
                egress: vec![],
            },
        }
    }

    /// The index of the container with this name or id (or unique id
    /// prefix of at least 12 digits).
    pub fn find(&self, name_or_id: &str) -> Option<usize> {
        let cs = &self.facts.inventory.containers;
        let name = name_or_id.trim_start_matches('/');
        cs.iter()
            .position(|c| c.name == name || c.id == name_or_id)
            .or_else(|| {
                let hits: Vec<usize> = (0..cs.len())
                    .filter(|&i| name_or_id.len() >= 12 && cs[i].id.starts_with(name_or_id))
                    .collect();
                (hits.len() == 1).then(|| hits[0])
            })
    }

    /// The policy container `idx` gets, as `cordon plan` shows it.
    pub fn policy_of(&self, idx: usize) -> &PolicyKey {
        &self.assigned[idx].policy
    }

    /// The addresses cordon enforces for container `idx`.
    pub fn addresses_of(&self, idx: usize) -> &[IpAddr] {
        &self.assigned[idx].addresses
    }

    /// The egress rules of container `idx`'s policy body.
    pub fn egress_rules(&self, idx: usize) -> &[Rule] {
        &self.side(idx).body.egress
    }

    fn side(&self, idx: usize) -> Side<'_> {
        let a = &self.assigned[idx];
        let body = match &a.policy {
            PolicyKey::Default => &self.facts.policy.default,
            PolicyKey::Unknown(_) => &self.deny_all,
            PolicyKey::Named(k) => {
                &self
                    .facts
                    .policy
                    .policy(k)
                    .expect("selected policy exists")
                    .body
            }
        };
        Side {
            idx,
            key: &a.policy,
            shown: a.policy.to_string(),
            body,
        }
    }

    fn container(&self, idx: usize) -> &Container {
        &self.facts.inventory.containers[idx]
    }

    /// What the policy says about `flow` started by the container with this
    /// name or id.
    pub fn egress(&self, name_or_id: &str, flow: &Flow) -> Result<Expected, EvalError> {
        let idx = self
            .find(name_or_id)
            .ok_or_else(|| EvalError::UnknownContainer(name_or_id.to_string()))?;
        self.egress_of(idx, flow)
    }

    /// [`Evaluator::egress`] for container `idx`.
    pub fn egress_of(&self, idx: usize, flow: &Flow) -> Result<Expected, EvalError> {
        let c = self.container(idx);
        let src = self.side(idx);
        let own = c
            .endpoints
            .iter()
            .flat_map(|e| [e.ipv4.map(IpAddr::V4), e.ipv6.map(IpAddr::V6)])
            .flatten()
            .any(|a| a == flow.dst);
        let verdict = |allowed: bool, audit: bool, reason: String| Expected {
            allowed,
            audit,
            policy: src.shown.to_string(),
            reason,
        };
        if own || flow.dst.is_loopback() {
            return Ok(verdict(
                true,
                false,
                "the container's own address: it never leaves the container".into(),
            ));
        }
        if c.network_mode == "host" {
            return Err(EvalError::NotEnforced {
                container: c.name.clone(),
                why: "it uses the host's network".into(),
            });
        }
        let addrs = self.addresses_of(idx);
        if addrs.is_empty() {
            if c.endpoints.iter().any(|e| e.bridge.is_none()) {
                return Err(EvalError::NotEnforced {
                    container: c.name.clone(),
                    why: "none of its networks is a bridge network".into(),
                });
            }
            return Ok(verdict(
                false,
                false,
                "the container has no address cordon knows: dropped (fail closed)".into(),
            ));
        }
        if !addrs.iter().any(|a| a.is_ipv4() == flow.dst.is_ipv4()) {
            let fam = if flow.dst.is_ipv4() { "IPv4" } else { "IPv6" };
            return Ok(verdict(
                false,
                false,
                format!("the container has no {fam} address cordon knows: it cannot send there"),
            ));
        }
        let dns_client = src.body.egress.iter().any(rule_names_dns);
        if dns_client && flow.proto != Proto::Icmp && flow.port == 53 {
            return Ok(verdict(
                true,
                false,
                format!(
                    "DNS of policy {} goes to cordon's DNS proxy (redirected), whatever the address",
                    src.shown
                ),
            ));
        }
        if let Some((allowed, audit, reason)) = self.server_name(&src, flow) {
            return Ok(verdict(allowed, audit, reason));
        }
        if self.facts.host.contains(&flow.dst) {
            return Ok(
                match self.first_rule(&src, Way::EgressHost, flow, None, &src.shown) {
                    Some(r) => verdict(true, false, r),
                    None => {
                        let why = format!(
                            "no egress rule of {} allows the host (only `host` or `any` do)",
                            src.shown
                        );
                        fallthrough(&src, why, verdict)
                    }
                },
            );
        }
        let egress = match self.first_rule(&src, Way::EgressFwd, flow, None, &src.shown) {
            Some(r) => verdict(true, false, r),
            None => {
                let why = format!("no egress rule of {} allows it", src.shown);
                fallthrough(&src, why, verdict)
            }
        };
        if !egress.allowed {
            return Ok(egress);
        }
        match self.ingress(&src, flow) {
            None => Ok(egress),
            Some(ing) => Ok(Expected {
                allowed: ing.allowed,
                audit: egress.audit || ing.audit,
                policy: egress.policy,
                reason: format!("{}; {}", egress.reason, ing.reason),
            }),
        }
    }

    /// Rules with `match: server-name`, which act before every other rule:
    /// a TCP connection to an address learned for one of them, on one of
    /// its ports, is redirected to cordon's L7 proxy (it passes if its
    /// server name matches); QUIC (443/udp) to such an address is dropped
    /// (audited in audit mode). `None` when no such rule holds the address.
    fn server_name(&self, src: &Side, flow: &Flow) -> Option<(bool, bool, String)> {
        let fam = if flow.dst.is_ipv4() { 4 } else { 6 };
        let learned = |i: usize| {
            self.facts
                .learned
                .get(&names::dns_set(src.key, i, fam))
                .is_some_and(|l| l.contains(&flow.dst))
        };
        let rules = src.body.egress.iter().enumerate();
        let mut holding = rules.filter(|(i, r)| r.server_name && learned(*i));
        let quic = flow.proto == Proto::Udp && flow.port == 443;
        if quic {
            let (i, rule) = holding.next()?;
            let why = format!(
                "QUIC (443/udp) to an address of a server-name rule is dropped, so that clients fall back to TCP: {}",
                describe(Way::EgressFwd, i, &src.shown, rule)
            );
            return Some(match src.body.mode {
                Mode::Enforce => (false, false, why),
                Mode::Audit => (
                    true,
                    true,
                    format!(
                        "{why}, but {} is in audit mode: logged as audit and let through",
                        src.shown
                    ),
                ),
            });
        }
        let (i, rule) = holding.find(|(_, r)| {
            flow.proto == Proto::Tcp && r.ports.iter().any(|p| port_holds(p, flow))
        })?;
        Some((
            true,
            false,
            format!(
                "goes through cordon's L7 proxy, server name must match: {}",
                describe(Way::EgressFwd, i, &src.shown, rule)
            ),
        ))
    }

    /// What the policy says about a connection that is already open, as
    /// the first packet of a new one would be judged: by the opener's
    /// egress when a known container opened it (and the receiver's
    /// ingress), else by the receiving container's ingress. `None` when
    /// cordon governs neither end. An address in a Docker subnet that no
    /// known container holds, or a protocol the evaluation does not model,
    /// is judged not allowed (fail closed).
    pub fn connection(&self, conn: &Connection) -> Option<Expected> {
        let holder = |a: IpAddr| self.assigned.iter().position(|x| x.addresses.contains(&a));
        let host = |a: IpAddr| self.facts.host.contains(&a);
        let denied = |reason: String| Expected {
            allowed: false,
            audit: false,
            policy: String::new(),
            reason,
        };
        let flow = |proto| Flow {
            dst: conn.dst,
            proto,
            port: conn.port,
        };
        if let Some(idx) = holder(conn.src) {
            let Some(proto) = conn.proto else {
                return Some(denied("a protocol cordon does not judge by rule".into()));
            };
            return self.egress_of(idx, &flow(proto)).ok();
        }
        if !host(conn.src) && self.in_subnets(conn.src) {
            return Some(denied(format!(
                "no container cordon knows holds {} in a Docker subnet: dropped (fail closed)",
                conn.src
            )));
        }
        if let Some(idx) = holder(conn.dst) {
            let Some(proto) = conn.proto else {
                return Some(denied("a protocol cordon does not judge by rule".into()));
            };
            return Some(self.ingress_from(idx, conn.src, &flow(proto)));
        }
        if !host(conn.dst) && self.in_subnets(conn.dst) {
            return Some(denied(format!(
                "no container cordon knows holds {} in a Docker subnet: dropped (fail closed)",
                conn.dst
            )));
        }
        None
    }

    /// What container `idx`'s ingress says about `flow` opened by `from`,
    /// an address no known container holds (the host's own, or outside).
    pub fn ingress_from(&self, idx: usize, from: IpAddr, flow: &Flow) -> Expected {
        let dst = self.side(idx);
        let shown = format!("{} (policy {})", self.container(idx).name, dst.shown);
        let make = |allowed, audit, reason| Expected {
            allowed,
            audit,
            policy: dst.shown.to_string(),
            reason,
        };
        if dst.body.ingress.is_none() {
            return make(true, false, format!("{shown} has no ingress rules"));
        }
        let way = if self.facts.host.contains(&from) {
            Way::IngressLocal
        } else {
            Way::IngressFwd
        };
        match self.first_rule(&dst, way, flow, Some(from), &shown) {
            Some(reason) => make(true, false, reason),
            None => fallthrough(&dst, format!("no ingress rule of {shown} allows it"), make),
        }
    }

    /// True when `a` is in the subnet of a bridge network cordon manages.
    fn in_subnets(&self, a: IpAddr) -> bool {
        self.facts
            .inventory
            .networks
            .iter()
            .filter(|n| n.driver == "bridge" && n.bridge.is_some())
            .flat_map(|n| &n.subnets)
            .any(|s| s.contains(&a))
    }

    /// The receiver's side when the flow goes into a Docker subnet: `None`
    /// when nothing there restricts it.
    fn ingress(&self, src: &Side, flow: &Flow) -> Option<Expected> {
        if !self.in_subnets(flow.dst) {
            return None;
        }
        let Some(didx) = self
            .assigned
            .iter()
            .position(|a| a.addresses.contains(&flow.dst))
        else {
            return Some(Expected {
                allowed: false,
                audit: false,
                policy: String::new(),
                reason: format!(
                    "no container cordon knows holds {} in a Docker subnet: dropped (fail closed)",
                    flow.dst
                ),
            });
        };
        let dst = self.side(didx);
        dst.body.ingress.as_ref()?;
        let from = self.source_address(src.idx, flow.dst);
        let shown = format!("{} (policy {})", self.container(didx).name, dst.shown);
        Some(
            match self.first_rule(&dst, Way::IngressFwd, flow, from, &shown) {
                Some(reason) => Expected {
                    allowed: true,
                    audit: false,
                    policy: String::new(),
                    reason,
                },
                None => {
                    let why = format!("no ingress rule of {shown} allows it");
                    fallthrough(&dst, why, |allowed, audit, reason| Expected {
                        allowed,
                        audit,
                        policy: String::new(),
                        reason,
                    })
                }
            },
        )
    }

    /// The address container `idx` sends from towards `dst`: the one on
    /// the network whose subnet holds `dst`, else its first of that family.
    fn source_address(&self, idx: usize, dst: IpAddr) -> Option<IpAddr> {
        let c = self.container(idx);
        let nets = &self.facts.inventory.networks;
        let same_family = |a: &IpAddr| a.is_ipv4() == dst.is_ipv4();
        let addrs = self.addresses_of(idx);
        c.endpoints
            .iter()
            .filter(|e| {
                nets.iter()
                    .any(|n| n.name == e.network && n.subnets.iter().any(|s| s.contains(&dst)))
            })
            .flat_map(|e| [e.ipv4.map(IpAddr::V4), e.ipv6.map(IpAddr::V6)])
            .flatten()
            .find(|a| same_family(a) && addrs.contains(a))
            .or_else(|| addrs.iter().copied().find(same_family))
    }

    /// The first rule of a side that accepts the flow, described as a rule
    /// of `owner`.
    fn first_rule(
        &self,
        side: &Side,
        way: Way,
        flow: &Flow,
        from: Option<IpAddr>,
        owner: &str,
    ) -> Option<String> {
        let rules = match way {
            Way::IngressFwd | Way::IngressLocal => side.body.ingress.as_deref().unwrap_or(&[]),
            _ => &side.body.egress,
        };
        rules.iter().enumerate().find_map(|(i, rule)| {
            if rule.server_name {
                // Accepts nothing itself: see `server_name`.
                return None;
            }
            let ports = rule.ports.is_empty() || rule.ports.iter().any(|p| port_holds(p, flow));
            let peer = rule
                .peers
                .iter()
                .any(|p| self.peer_holds(side, way, i, p, flow, from));
            (ports && peer).then(|| describe(way, i, owner, rule))
        })
    }

    /// True when `peer` (in rule `idx` of `side`) holds the flow's far end.
    fn peer_holds(
        &self,
        side: &Side,
        way: Way,
        idx: usize,
        peer: &Peer,
        flow: &Flow,
        from: Option<IpAddr>,
    ) -> bool {
        if matches!(way, Way::EgressHost | Way::IngressLocal) {
            return matches!(peer, Peer::Host | Peer::Any);
        }
        let Some(addr) = (match way {
            Way::IngressFwd => from,
            _ => Some(flow.dst),
        }) else {
            return false;
        };
        let within = |nets: &[IpNet]| nets.iter().any(|n| n.contains(&addr));
        match peer {
            Peer::Host => false,
            Peer::Any => true,
            Peer::Internet => !within(&words::nonpublic()),
            Peer::Private => within(&words::private()),
            Peer::Metadata => within(&words::metadata()),
            Peer::SameNetwork => self.same_network(side.idx, way, flow.dst, addr),
            Peer::Set(name) => self
                .facts
                .policy
                .set(name)
                .is_some_and(|s| within(&self.facts.overrides.effective(name, &s.addrs))),
            Peer::Policy(name) => self
                .assigned
                .iter()
                .any(|a| a.policy == PolicyKey::Named(name.clone()) && a.addresses.contains(&addr)),
            Peer::Net(n) => n.contains(&addr),
            Peer::Dns(_) | Peer::DnsWildcard(_) => {
                let fam = if addr.is_ipv4() { 4 } else { 6 };
                way == Way::EgressFwd
                    && self
                        .facts
                        .learned
                        .get(&names::dns_set(side.key, idx, fam))
                        .is_some_and(|l| l.contains(&addr))
            }
        }
    }

    /// `same-network`: the packet enters and leaves through the same
    /// user-defined bridge, i.e. `dst` is in the subnet of a user-defined
    /// bridge network the sender is attached to (for ingress, the receiver
    /// is container `idx` and `from` the sender's address).
    fn same_network(&self, idx: usize, way: Way, dst: IpAddr, from: IpAddr) -> bool {
        let sender = match way {
            Way::IngressFwd => self
                .assigned
                .iter()
                .position(|a| a.addresses.contains(&from)),
            _ => Some(idx),
        };
        let Some(c) = sender.map(|s| self.container(s)) else {
            return false;
        };
        self.facts.inventory.networks.iter().any(|n| {
            n.driver == "bridge"
                && n.bridge.is_some()
                && !n.default_bridge
                && n.subnets.iter().any(|s| s.contains(&dst))
                && c.endpoints
                    .iter()
                    .any(|e| e.host_iface.is_some() && e.bridge == n.bridge)
        })
    }
}

/// Which policy chain judges the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// `eg_fwd_<policy>`: to anything but the host.
    EgressFwd,
    /// `eg_host_<policy>`: to the host's own addresses.
    EgressHost,
    /// `in_fwd_<policy>`: into the receiving container.
    IngressFwd,
    /// `in_local_<policy>`: from the host itself into the container.
    IngressLocal,
}

/// The chain's last rule: drop, or accept when the policy audits.
fn fallthrough(
    side: &Side,
    why: String,
    make: impl Fn(bool, bool, String) -> Expected,
) -> Expected {
    if matches!(side.key, PolicyKey::Unknown(_)) {
        return make(
            false,
            false,
            format!("{}: the container gets no network at all", side.shown),
        );
    }
    match side.body.mode {
        Mode::Enforce => make(false, false, why),
        Mode::Audit => make(
            true,
            true,
            format!(
                "{why}, but {} is in audit mode: logged as audit and let through",
                side.shown
            ),
        ),
    }
}

fn rule_names_dns(rule: &Rule) -> bool {
    rule.peers
        .iter()
        .any(|p| matches!(p, Peer::Dns(_) | Peer::DnsWildcard(_)))
}

fn port_holds(spec: &PortSpec, flow: &Flow) -> bool {
    match (*spec, flow.proto) {
        (PortSpec::Tcp(lo, hi), Proto::Tcp) | (PortSpec::Udp(lo, hi), Proto::Udp) => {
            (lo..=hi).contains(&flow.port)
        }
        (PortSpec::Icmp, Proto::Icmp) => true,
        _ => false,
    }
}

/// `egress rule 2 of web (line 9): to [internet] ports [80/tcp]`.
fn describe(way: Way, idx: usize, owner: &str, rule: &Rule) -> String {
    let (dir, prep) = match way {
        Way::IngressFwd | Way::IngressLocal => ("ingress", "from"),
        _ => ("egress", "to"),
    };
    let peers: Vec<String> = rule.peers.iter().map(peer_word).collect();
    let mut s = format!(
        "{dir} rule {} of {owner} (line {}): {prep} [{}]",
        idx + 1,
        rule.loc.line,
        peers.join(", ")
    );
    if !rule.ports.is_empty() {
        let ports: Vec<String> = rule.ports.iter().map(port_word).collect();
        s.push_str(&format!(" ports [{}]", ports.join(", ")));
    }
    if rule.server_name {
        s.push_str(" match server-name");
    }
    s
}

/// A peer as the policy file spells it.
fn peer_word(p: &Peer) -> String {
    match p {
        Peer::Internet => "internet".into(),
        Peer::Private => "private".into(),
        Peer::Metadata => "metadata".into(),
        Peer::Host => "host".into(),
        Peer::SameNetwork => "same-network".into(),
        Peer::Any => "any".into(),
        Peer::Set(n) | Peer::Policy(n) | Peer::Dns(n) => n.clone(),
        Peer::Net(n) => n.to_string(),
        Peer::DnsWildcard(n) => format!("*.{n}"),
    }
}

/// A port spec as the policy file spells it.
fn port_word(p: &PortSpec) -> String {
    let range = |lo: u16, hi: u16, proto: &str| {
        if lo == hi {
            format!("{lo}/{proto}")
        } else {
            format!("{lo}-{hi}/{proto}")
        }
    };
    match *p {
        PortSpec::Tcp(lo, hi) => range(lo, hi, "tcp"),
        PortSpec::Udp(lo, hi) => range(lo, hi, "udp"),
        PortSpec::Icmp => "icmp".into(),
    }
}
