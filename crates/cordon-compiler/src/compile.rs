//! The compiler proper: policy file + inventory + live set edits → ruleset.
//!
//! The ruleset's *shape* (chains, rules, set declarations) depends only on
//! the policy file; containers only ever add set and map *elements*. That is
//! what lets the daemon follow containers with element updates, and what
//! keeps the per-packet cost independent of the number of containers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use cordon_inventory::{Container, Inventory, Shown};
use cordon_policy::{Body, Mode, Peer, PolicyFile, PortSpec, Rule as PRule, Selection};
use ipnet::IpNet;

use cordon_ruleset::names::{self, bridge as B, Path};
use cordon_ruleset::nft::*;
use cordon_ruleset::prefix::{Direction, FailClosed, LogVerdict};
use cordon_ruleset::{LogPrefix, PolicyKey, NFLOG_GROUP, TABLE};

use crate::words;
use crate::{Assignment, Compiled, SetOverrides};

/// Priority of the bridge table's prerouting chain: before br_netfilter.
pub const BRIDGE_PRIORITY: i32 = -200;
/// Priority of the egress base chains.
pub const EGRESS_PRIORITY: i32 = -10;
/// Priority of the ingress base chains.
pub const INGRESS_PRIORITY: i32 = -5;
/// Priority of the nat chain that masquerades for Docker: `srcnat`.
pub const SRCNAT_PRIORITY: i32 = 100;
/// Priority of the DNS redirect's nat chain: just before `dstnat` (-100),
/// where Docker's own DNAT runs, so cordon's redirect is decided first.
pub const DSTNAT_PRIORITY: i32 = -110;

struct PolicyRef<'a> {
    key: PolicyKey,
    body: std::borrow::Cow<'a, Body>,
}

/// Compiles; see the crate documentation.
pub fn compile(policy: &PolicyFile, inv: &Inventory, overrides: &SetOverrides) -> Compiled {
    let mut warnings = Vec::new();

    // Every policy gets its chains whether or not a container uses it, so
    // the ruleset's shape does not depend on the containers.
    let mut bodies: Vec<PolicyRef> = policy
        .policies
        .iter()
        .map(|p| PolicyRef {
            key: PolicyKey::Named(p.name.clone()),
            body: std::borrow::Cow::Borrowed(&p.body),
        })
        .collect();
    bodies.push(PolicyRef {
        key: PolicyKey::Default,
        body: std::borrow::Cow::Borrowed(&policy.default),
    });
    bodies.push(PolicyRef {
        key: PolicyKey::Unknown(String::new()),
        body: std::borrow::Cow::Owned(Body {
            mode: Mode::Enforce,
            ingress: Some(vec![]),
            egress: vec![],
        }),
    });
    let restricted_ingress: HashMap<&str, bool> = bodies
        .iter()
        .map(|b| (b.key.chain_part(), b.body.ingress.is_some()))
        .collect();
    let names_dns: HashMap<&str, bool> = bodies
        .iter()
        .map(|b| (b.key.chain_part(), body_names_dns(&b.body)))
        .collect();

    // Managed bridges: every bridge network Docker reports.
    let mut bridges = BTreeSet::new();
    let mut same_net = BTreeSet::new();
    let mut subnets = Vec::new();
    for n in &inv.networks {
        if n.driver != "bridge" {
            continue;
        }
        let Some(br) = &n.bridge else { continue };
        bridges.insert(br.clone());
        if !n.default_bridge {
            same_net.insert(br.clone());
        }
        subnets.extend(n.subnets.iter().copied());
    }

    let mut el = Elements::default();
    let mut assignments = Vec::new();
    let mut owner: HashMap<IpAddr, &str> = HashMap::new();

    for c in &inv.containers {
        let candidate = c.candidate();
        if let Some(name) = policy.ignored_image_policy(&candidate) {
            warnings.push(format!(
                "container {}: its image's label cordon.policy={} is ignored (image labels select no policy unless the policy file sets trust_image_labels: true)",
                Shown(&c.name),
                Shown(name)
            ));
        }
        let key = match policy.select(&candidate) {
            Selection::Policy(p) => PolicyKey::Named(p.name.clone()),
            Selection::Default => PolicyKey::Default,
            Selection::UnknownLabel(name) => {
                warnings.push(format!(
                    "container {}: label cordon.policy={} names no policy; it gets no network at all",
                    Shown(&c.name),
                    Shown(&name)
                ));
                PolicyKey::Unknown(name)
            }
        };
        let mut enforced = Vec::new();
        for ep in &c.endpoints {
            let on_bridge = ep.bridge.as_ref().is_some_and(|b| bridges.contains(b));
            if !on_bridge {
                if !ep.network.is_empty() {
                    warnings.push(format!(
                        "container {}: network {} is not a bridge network; cordon cannot enforce on it",
                        Shown(&c.name),
                        Shown(&ep.network)
                    ));
                }
                continue;
            }
            let Some(port) = &ep.host_iface else {
                warnings.push(format!(
                    "container {}: no host interface found on network {}; its traffic there is dropped",
                    Shown(&c.name),
                    Shown(&ep.network)
                ));
                continue;
            };
            let mut addrs: Vec<IpAddr> = Vec::new();
            addrs.extend(ep.ipv4.map(IpAddr::V4));
            addrs.extend(ep.ipv6.map(IpAddr::V6));
            addrs.retain(|a| match owner.get(a) {
                Some(other) => {
                    warnings.push(format!(
                        "container {}: address {a} is also claimed by {}; kept for {} only",
                        Shown(&c.name),
                        Shown(other),
                        Shown(other)
                    ));
                    false
                }
                None => {
                    owner.insert(*a, &c.name);
                    true
                }
            });
            el.bind_port(port, ep.mac.as_deref(), &addrs);
            for a in &addrs {
                el.classify(*a, &key, restricted_ingress[key.chain_part()]);
            }
            enforced.extend(addrs.iter().copied());
        }
        if names_dns[key.chain_part()] {
            for a in &enforced {
                el.dns_client(*a);
            }
        }
        if let PolicyKey::Named(name) = &key {
            for a in &enforced {
                el.member(name, *a);
            }
        }
        if c.network_mode == "host" {
            warnings.push(format!(
                "container {}: uses the host's network; cordon cannot tell it from the host",
                Shown(&c.name)
            ));
        }
        assignments.push(assignment(c, key, enforced, inv));
    }
    crate::governed::resolve(&mut assignments, &mut warnings);

    let mut inet = Table {
        family: Family::Inet,
        name: TABLE.into(),
        sets: Vec::new(),
        chains: Vec::new(),
    };
    constant_sets(&mut inet, &bridges, &same_net, &subnets);
    named_sets(&mut inet, policy, overrides);
    for p in &policy.policies {
        for fam in [4, 6] {
            let mut s = addr_set(
                names::policy_members(&p.name, fam),
                fam,
                format!("containers of policy {}", p.name),
            );
            s.elements = el.members(&p.name, fam);
            inet.sets.push(s);
        }
    }
    for (map, fam) in maps() {
        let mut s = addr_set(map.clone(), fam, "container address → policy chain");
        s.verdict_map = true;
        // Per container: the packets its policy judged (those not of an
        // established connection), for status and metrics.
        s.counter = true;
        s.elements = el.map_elements(&map);
        inet.sets.push(s);
    }
    for (i, fam) in [4u8, 6].into_iter().enumerate() {
        let mut k = addr_set(names::known(fam), fam, "addresses of known containers");
        k.elements = net_elements(&el.known[i]);
        inet.sets.push(k);
    }
    for b in &bodies {
        dns_sets(&mut inet, &b.key, &b.body);
        policy_chains(&mut inet, &b.key, &b.body);
    }
    base_chains(&mut inet);
    masquerade(&mut inet, inv);
    dns_redirect(&mut inet, &el);

    let bridge = bridge_table(&el);
    Compiled {
        ruleset: Ruleset {
            tables: vec![bridge, inet],
        },
        assignments,
        warnings,
    }
}

/// The verdict maps: (name, family).
fn maps() -> impl Iterator<Item = (String, u8)> {
    Path::ALL
        .into_iter()
        .flat_map(|p| names::FAMILIES.map(|fam| (p.map(fam), fam)))
}

fn assignment(c: &Container, policy: PolicyKey, addrs: Vec<IpAddr>, inv: &Inventory) -> Assignment {
    Assignment {
        container: c.name.clone(),
        id: c.id.clone(),
        policy,
        addresses: addrs,
        enforcement: cordon_inventory::enforcement(c, inv),
        governed_by: None,
    }
}

/// Set and map elements gathered from the containers.
#[derive(Default)]
struct Elements {
    ports: BTreeSet<String>,
    port_mac: Vec<Element>,
    bind: [Vec<Element>; 2],
    known_mac: BTreeSet<String>,
    known: [Vec<IpNet>; 2],
    /// Each port's link-local address (EUI-64 of its MAC), bound like its
    /// other addresses in the bridge table only.
    link_local: Vec<IpNet>,
    /// The words of each port's own addresses and MAC, for the neighbour
    /// discovery checks (see [`nd_sets`]), by set name.
    nd: BTreeMap<String, Vec<Element>>,
    maps: BTreeMap<String, Vec<Element>>,
    members: BTreeMap<String, [Vec<IpNet>; 2]>,
    dns_clients: [Vec<IpNet>; 2],
}

fn fam_idx(a: &IpAddr) -> usize {
    match a {
        IpAddr::V4(_) => 0,
        IpAddr::V6(_) => 1,
    }
}

impl Elements {
    fn bind_port(&mut self, port: &str, mac: Option<&str>, addrs: &[IpAddr]) {
        self.ports.insert(port.to_string());
        if let Some(mac) = mac {
            let mac = mac.to_ascii_lowercase();
            self.port_mac.push(Element {
                key: vec![Value::Ifname(port.into()), Value::Mac(mac.clone())],
                verdict: None,
            });
            self.known_mac.insert(mac.clone());
            if let Some(octets) = mac_octets(&mac) {
                let ll = link_local(octets);
                self.bind[1].push(Element {
                    key: vec![
                        Value::Ifname(port.into()),
                        Value::Mac(mac.clone()),
                        Value::Net(IpNet::from(IpAddr::V6(ll))),
                    ],
                    verdict: None,
                });
                self.link_local.push(IpNet::from(IpAddr::V6(ll)));
                let ll = ll.octets();
                self.nd_word(port, B::ND_LL3, &ll[8..12]);
                self.nd_word(port, B::ND_LL4, &ll[12..16]);
                self.nd_word(port, B::ND_MAC1, &octets[0..4]);
                self.nd_word(port, B::ND_MAC2, &octets[2..6]);
            }
        }
        for a in addrs {
            if let (IpAddr::V6(v6), Some(_)) = (a, mac) {
                let o = v6.octets();
                for (i, name) in B::ND_GLOBAL.iter().enumerate() {
                    self.nd_word(port, name, &o[4 * i..4 * i + 4]);
                }
            }
        }
        for a in addrs {
            let net = IpNet::from(*a);
            // Without a MAC there is no binding: the port's frames drop.
            if let Some(mac) = mac {
                self.bind[fam_idx(a)].push(Element {
                    key: vec![
                        Value::Ifname(port.into()),
                        Value::Mac(mac.to_ascii_lowercase()),
                        Value::Net(net),
                    ],
                    verdict: None,
                });
            }
            self.known[fam_idx(a)].push(net);
        }
    }

    /// `port . WORD` in set `set`: the word as `meta mark` holds it after
    /// `meta mark set @th,…,32` (the packet's bytes, host byte order).
    fn nd_word(&mut self, port: &str, set: &str, bytes: &[u8]) {
        let word = u32::from_ne_bytes(bytes.try_into().expect("four bytes"));
        self.nd.entry(set.to_string()).or_default().push(Element {
            key: vec![Value::Ifname(port.into()), Value::Mark(word)],
            verdict: None,
        });
    }

    fn classify(&mut self, a: IpAddr, key: &PolicyKey, ingress: bool) {
        let fam = if a.is_ipv4() { 4 } else { 6 };
        for path in Path::ALL {
            if !path.is_egress() && !ingress {
                continue;
            }
            self.maps.entry(path.map(fam)).or_default().push(Element {
                key: vec![Value::Net(IpNet::from(a))],
                verdict: Some(Verdict::Jump(path.policy_chain(key))),
            });
        }
    }

    fn dns_client(&mut self, a: IpAddr) {
        self.dns_clients[fam_idx(&a)].push(IpNet::from(a));
    }

    fn member(&mut self, policy: &str, a: IpAddr) {
        self.members.entry(policy.to_string()).or_default()[fam_idx(&a)].push(IpNet::from(a));
    }

    fn members(&self, policy: &str, fam: u8) -> Vec<Element> {
        let idx = if fam == 4 { 0 } else { 1 };
        self.members
            .get(policy)
            .map(|m| net_elements(&m[idx]))
            .unwrap_or_default()
    }

    fn map_elements(&self, map: &str) -> Vec<Element> {
        self.maps.get(map).cloned().unwrap_or_default()
    }
}

/// The six octets of `aa:bb:cc:dd:ee:ff`.
fn mac_octets(mac: &str) -> Option<[u8; 6]> {
    let v: Vec<u8> = mac
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).ok())
        .collect::<Option<_>>()?;
    v.try_into().ok()
}

/// The link-local address the kernel gives an interface with this MAC
/// (`addr_gen_mode` 0, the default in a container's namespace): fe80::/64
/// and the modified EUI-64 interface identifier.
fn link_local(mac: [u8; 6]) -> std::net::Ipv6Addr {
    let mut o = [0u8; 16];
    o[0] = 0xfe;
    o[1] = 0x80;
    o[8..16].copy_from_slice(&[
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ]);
    std::net::Ipv6Addr::from(o)
}

fn net_elements(nets: &[IpNet]) -> Vec<Element> {
    nets.iter()
        .map(|n| Element {
            key: vec![Value::Net(*n)],
            verdict: None,
        })
        .collect()
}

fn addr_set(name: String, fam: u8, comment: impl Into<String>) -> Set {
    let key = if fam == 4 {
        KeyType::Ipv4
    } else {
        KeyType::Ipv6
    };
    Set::new(name, vec![key], comment)
}

fn interval_set(name: &str, fam: u8, nets: &[IpNet], comment: &str) -> Set {
    let mut s = addr_set(name.to_string(), fam, comment);
    s.interval = true;
    s.elements = net_elements(nets);
    s
}

fn constant_sets(
    t: &mut Table,
    bridges: &BTreeSet<String>,
    same_net: &BTreeSet<String>,
    subnets: &[IpNet],
) {
    let consts: [(&str, Vec<IpNet>, &str); 4] = [
        (names::NONPUBLIC, words::nonpublic(), "not internet"),
        (names::PRIVATE, words::private(), "the word private"),
        (names::METADATA, words::metadata(), "the word metadata"),
        (names::SUBNETS, subnets.to_vec(), "Docker bridge subnets"),
    ];
    for (name, nets, comment) in consts {
        let (v4, v6) = words::split_aggregate(&nets);
        t.sets
            .push(interval_set(&names::range_set(name, 4), 4, &v4, comment));
        t.sets
            .push(interval_set(&names::range_set(name, 6), 6, &v6, comment));
    }
    let mut b = Set::new(
        names::BRIDGES,
        vec![KeyType::Ifname],
        "Docker bridges cordon manages",
    );
    b.elements = bridges
        .iter()
        .map(|n| Element {
            key: vec![Value::Ifname(n.clone())],
            verdict: None,
        })
        .collect();
    t.sets.push(b);
    t.sets.push(docker_bridge_names());
    let mut s = Set::new(
        names::SAME_NET,
        vec![KeyType::Ifname, KeyType::Ifname],
        "user-defined bridges: same-network",
    );
    s.elements = same_net
        .iter()
        .map(|n| Element {
            key: vec![Value::Ifname(n.clone()), Value::Ifname(n.clone())],
            verdict: None,
        })
        .collect();
    t.sets.push(s);
}

fn named_sets(t: &mut Table, policy: &PolicyFile, overrides: &SetOverrides) {
    for set in &policy.sets {
        let nets = overrides.effective(&set.name, &set.addrs);
        let (v4, v6) = words::split_aggregate(&nets);
        let comment = format!("set {}", set.name);
        t.sets.push(interval_set(
            &names::named_set(&set.name, 4),
            4,
            &v4,
            &comment,
        ));
        t.sets.push(interval_set(
            &names::named_set(&set.name, 6),
            6,
            &v6,
            &comment,
        ));
    }
}

fn policy_chains(t: &mut Table, key: &PolicyKey, body: &Body) {
    let mut dirs = vec![
        (Path::EgressFwd, &body.egress),
        (Path::EgressHost, &body.egress),
    ];
    if let Some(ingress) = &body.ingress {
        dirs.push((Path::IngressFwd, ingress));
        dirs.push((Path::IngressLocal, ingress));
    }
    for (dir, rules) in dirs {
        let mut chain = Chain {
            name: dir.policy_chain(key),
            base: None,
            rules: Vec::new(),
        };
        for (idx, rule) in rules.iter().enumerate() {
            rule_matches(&mut chain.rules, key, idx, rule, dir);
        }
        let verdict = match body.mode {
            Mode::Enforce => LogVerdict::Drop,
            Mode::Audit => LogVerdict::Audit,
        };
        let prefix = LogPrefix::Policy {
            direction: dir.direction(),
            policy: key.clone(),
            verdict,
        };
        chain.rules.push(Rule::new(vec![
            Stmt::Counter,
            Stmt::Log {
                prefix: prefix.format(),
                group: NFLOG_GROUP,
            },
            Stmt::Verdict(match body.mode {
                Mode::Enforce => Verdict::Drop,
                Mode::Audit => Verdict::Accept,
            }),
        ]));
        t.chains.push(chain);
    }
}

/// Declares the (empty) timeout sets the DNS proxy fills for each egress
/// rule naming DNS names; until it does, such rules match nothing.
fn dns_sets(t: &mut Table, key: &PolicyKey, body: &Body) {
    for (idx, rule) in body.egress.iter().enumerate() {
        let names: Vec<String> = rule
            .peers
            .iter()
            .filter_map(|p| match p {
                Peer::Dns(n) => Some(n.clone()),
                Peer::DnsWildcard(n) => Some(format!("*.{n}")),
                _ => None,
            })
            .collect();
        if names.is_empty() {
            continue;
        }
        for fam in [4, 6] {
            let mut s = addr_set(
                names::dns_set(key, idx, fam),
                fam,
                format!("resolved {}", names.join(" ")),
            );
            s.timeout = true;
            t.sets.push(s);
        }
    }
}

/// Appends the accept rules for one policy rule.
fn rule_matches(out: &mut Vec<Rule>, key: &PolicyKey, idx: usize, rule: &PRule, dir: Path) {
    let ingress = !dir.is_egress();
    let (f4, f6) = if ingress {
        (Field::IpSaddr, Field::Ip6Saddr)
    } else {
        (Field::IpDaddr, Field::Ip6Daddr)
    };
    let ports = port_matches(&rule.ports);
    let comment = format!("line {}", rule.loc.line);
    let mut emit = |m: Vec<Stmt>| {
        for p in &ports {
            let mut stmts = m.clone();
            stmts.extend(p.iter().cloned());
            // Counted for `cordon status`: connections this rule allowed.
            stmts.push(Stmt::Counter);
            stmts.push(Stmt::Verdict(Verdict::Accept));
            out.push(Rule::new(stmts).with_comment(comment.clone()));
        }
    };
    let set_match = |field: Field, set: String, negate: bool| Stmt::Match {
        left: vec![field],
        negate,
        right: Rhs::Set(set),
    };
    let mut literal: Vec<IpNet> = Vec::new();
    let mut dns = false;
    for peer in &rule.peers {
        if dir.is_local() {
            // Only `host` and `any` reach the host (egress), and only they
            // describe the host as a source (ingress).
            if matches!(peer, Peer::Host | Peer::Any) {
                emit(vec![]);
            }
            continue;
        }
        match peer {
            Peer::Host => {}
            Peer::Any => emit(vec![]),
            Peer::Internet => {
                emit(vec![set_match(
                    f4,
                    names::range_set(names::NONPUBLIC, 4),
                    true,
                )]);
                emit(vec![set_match(
                    f6,
                    names::range_set(names::NONPUBLIC, 6),
                    true,
                )]);
            }
            Peer::Private | Peer::Metadata => {
                let name = if *peer == Peer::Private {
                    names::PRIVATE
                } else {
                    names::METADATA
                };
                emit(vec![set_match(f4, names::range_set(name, 4), false)]);
                emit(vec![set_match(f6, names::range_set(name, 6), false)]);
            }
            Peer::SameNetwork => emit(vec![Stmt::Match {
                left: vec![Field::Iifname, Field::Oifname],
                negate: false,
                right: Rhs::Set(names::SAME_NET.into()),
            }]),
            Peer::Set(name) => {
                emit(vec![set_match(f4, names::named_set(name, 4), false)]);
                emit(vec![set_match(f6, names::named_set(name, 6), false)]);
            }
            Peer::Policy(name) => {
                emit(vec![set_match(f4, names::policy_members(name, 4), false)]);
                emit(vec![set_match(f6, names::policy_members(name, 6), false)]);
            }
            Peer::Net(n) => literal.push(*n),
            Peer::Dns(_) | Peer::DnsWildcard(_) => dns = true,
        }
    }
    if !literal.is_empty() {
        let (v4, v6) = words::split_aggregate(&literal);
        for (field, nets) in [(f4, v4), (f6, v6)] {
            match nets.len() {
                0 => {}
                1 => emit(vec![Stmt::Match {
                    left: vec![field],
                    negate: false,
                    right: Rhs::Net(nets[0]),
                }]),
                _ => emit(vec![Stmt::Match {
                    left: vec![field],
                    negate: false,
                    right: Rhs::Nets(nets),
                }]),
            }
        }
    }
    if dns {
        emit(vec![set_match(f4, names::dns_set(key, idx, 4), false)]);
        emit(vec![set_match(f6, names::dns_set(key, idx, 6), false)]);
    }
}

/// The port/protocol matches of a rule: one alternative per protocol, or a
/// single empty alternative when the rule names no ports.
fn port_matches(ports: &[PortSpec]) -> Vec<Vec<Stmt>> {
    if ports.is_empty() {
        return vec![vec![]];
    }
    let mut tcp = Vec::new();
    let mut udp = Vec::new();
    let mut icmp = false;
    for p in ports {
        match *p {
            PortSpec::Tcp(lo, hi) => tcp.push((lo, hi)),
            PortSpec::Udp(lo, hi) => udp.push((lo, hi)),
            PortSpec::Icmp => icmp = true,
        }
    }
    let mut out = Vec::new();
    for (proto, mut list) in [("tcp", tcp), ("udp", udp)] {
        if list.is_empty() {
            continue;
        }
        list.sort_unstable();
        list.dedup();
        out.push(vec![
            Stmt::Match {
                left: vec![Field::L4proto],
                negate: false,
                right: Rhs::Symbols(vec![proto]),
            },
            Stmt::Match {
                left: vec![Field::ThDport],
                negate: false,
                right: Rhs::Ports(merge_ranges(list)),
            },
        ]);
    }
    if icmp {
        out.push(vec![Stmt::Match {
            left: vec![Field::L4proto],
            negate: false,
            right: Rhs::Symbols(vec!["icmp", "ipv6-icmp"]),
        }]);
    }
    out
}

/// Merges overlapping and adjacent port ranges (interval sets refuse
/// overlaps).
fn merge_ranges(sorted: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for (lo, hi) in sorted {
        match out.last_mut() {
            Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

const ND_TYPES: [&str; 4] = [
    "nd-router-solicit",
    "nd-router-advert",
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
];

const MLD_TYPES: [&str; 4] = [
    "mld-listener-query",
    "mld-listener-report",
    "mld-listener-done",
    "mld2-listener-report",
];

/// The set of names Docker gives its bridges: `br-` and the network id's
/// first 12 hex digits, and `docker0`. nftables matches a name by prefix at
/// most, so the set holds the 256 prefixes `br-` and two lowercase hex
/// digits (`br-00*` … `br-ff*`), which leaves out names such as `br-lan`,
/// `br-ex` or `br-mgmt`; `meta iifkind bridge` leaves out what is not a
/// Linux bridge (Open vSwitch's `br-int`).
fn docker_bridge_names() -> Set {
    let mut s = Set::new(
        names::DOCKER_BRIDGE_NAMES,
        vec![KeyType::Ifname],
        "names Docker gives its bridges",
    );
    s.interval = true;
    s.elements = (0..=255u8)
        .map(|i| format!("br-{i:02x}*"))
        .chain(std::iter::once("docker0".to_string()))
        .map(|n| Element {
            key: vec![Value::Ifname(n)],
            verdict: None,
        })
        .collect();
    s
}

/// The rules after the dispatch jump: traffic from (egress) or to
/// (ingress) a bridge named as Docker names its bridges that is not in
/// `@bridges` (a network created while the daemon was down) is dropped
/// until cordon binds it.
fn unbound_bridges(dev: Field, egress: bool) -> Vec<Rule> {
    let kind = if dev == Field::Iifname {
        Field::Iifkind
    } else {
        Field::Oifkind
    };
    let prefix = LogPrefix::FailClosed {
        direction: if egress {
            Direction::Egress
        } else {
            Direction::Ingress
        },
        rule: FailClosed::UnboundBridge,
    };
    vec![Rule::new(vec![
        Stmt::Match {
            left: vec![dev],
            negate: false,
            right: Rhs::Set(names::DOCKER_BRIDGE_NAMES.into()),
        },
        Stmt::Match {
            left: vec![kind],
            negate: false,
            right: Rhs::Str("bridge"),
        },
        Stmt::Match {
            left: vec![dev],
            negate: true,
            right: Rhs::Set(names::BRIDGES.into()),
        },
        Stmt::Counter,
        Stmt::Log {
            prefix: prefix.format(),
            group: NFLOG_GROUP,
        },
        Stmt::Verdict(Verdict::Drop),
    ])
    .with_comment("a Docker bridge cordon has not bound yet: fail closed")]
}

/// `ip(6) saddr @dns_clients<fam> meta l4proto { tcp, udp } th dport PORT`.
fn dns_client_port(fam: u8, port: u16) -> Vec<Stmt> {
    let field = if fam == 4 {
        Field::IpSaddr
    } else {
        Field::Ip6Saddr
    };
    vec![
        Stmt::Match {
            left: vec![field],
            negate: false,
            right: Rhs::Set(names::dns_clients(fam)),
        },
        Stmt::Match {
            left: vec![Field::L4proto],
            negate: false,
            right: Rhs::Symbols(vec!["tcp", "udp"]),
        },
        Stmt::Match {
            left: vec![Field::ThDport],
            negate: false,
            right: Rhs::Ports(vec![(port, port)]),
        },
    ]
}

/// In `egress_host`: DNS queries the redirect sent to the proxy.
fn redirected_dns() -> Vec<Rule> {
    [4u8, 6]
        .into_iter()
        .map(|fam| {
            let mut stmts = dns_client_port(fam, cordon_ruleset::DNS_PROXY_PORT);
            stmts.push(Stmt::Match {
                left: vec![Field::CtStatus],
                negate: false,
                right: Rhs::Symbols(vec!["dnat"]),
            });
            stmts.push(Stmt::Verdict(Verdict::Accept));
            Rule::new(stmts).with_comment("DNS redirected to cordon's proxy")
        })
        .collect()
}

fn base_chains(t: &mut Table) {
    let established = || {
        Rule::new(vec![
            Stmt::Match {
                left: vec![Field::CtState],
                negate: false,
                right: Rhs::Symbols(vec!["established", "related"]),
            },
            Stmt::Verdict(Verdict::Accept),
        ])
        .with_comment("replies to allowed connections")
    };
    // Neighbour discovery and MLD pass only on the link: ND with hop limit
    // 255 (a routed packet meets the forward hook with its hop limit
    // already decremented, so this is never one leaving the link), MLD with
    // hop limit 1 to a multicast group. Anything else of these types is
    // judged by the policy like any packet.
    let nd = || {
        Rule::new(vec![
            Stmt::Match {
                left: vec![Field::Icmpv6Type],
                negate: false,
                right: Rhs::Symbols(ND_TYPES.to_vec()),
            },
            Stmt::Match {
                left: vec![Field::Ip6Hoplimit],
                negate: false,
                right: Rhs::Ints(vec![255]),
            },
            Stmt::Verdict(Verdict::Accept),
        ])
        .with_comment("IPv6 neighbour discovery, on the link only (hop limit 255)")
    };
    let mld = || {
        Rule::new(vec![
            Stmt::Match {
                left: vec![Field::Icmpv6Type],
                negate: false,
                right: Rhs::Symbols(MLD_TYPES.to_vec()),
            },
            Stmt::Match {
                left: vec![Field::Ip6Hoplimit],
                negate: false,
                right: Rhs::Ints(vec![1]),
            },
            Stmt::Match {
                left: vec![Field::Ip6Daddr],
                negate: false,
                right: Rhs::Net("ff00::/8".parse().expect("constant")),
            },
            Stmt::Verdict(Verdict::Accept),
        ])
        .with_comment("MLD, on the link only (hop limit 1, to a multicast group)")
    };
    let on_bridge = |field: Field| Stmt::Match {
        left: vec![field],
        negate: false,
        right: Rhs::Set(names::BRIDGES.into()),
    };
    let drop = |direction: Direction, rule: FailClosed| {
        vec![
            Stmt::Counter,
            Stmt::Log {
                prefix: LogPrefix::FailClosed { direction, rule }.format(),
                group: NFLOG_GROUP,
            },
            Stmt::Verdict(Verdict::Drop),
        ]
    };

    // Each base chain tests the bridge once and jumps to a dispatch chain:
    // the verdict-map lookups, then the fail-closed drop. Policy chains end
    // with a verdict, so a dispatch never comes back from a map's jump.
    for path in Path::ALL {
        let (hook, prio) = match path {
            Path::EgressFwd => (Hook::Forward, EGRESS_PRIORITY),
            Path::EgressHost => (Hook::Input, EGRESS_PRIORITY),
            Path::IngressFwd => (Hook::Forward, INGRESS_PRIORITY),
            Path::IngressLocal => (Hook::Output, INGRESS_PRIORITY),
        };
        let egress = path.is_egress();
        let dispatch = path.dispatch_chain();
        let (dev, f4, f6) = if egress {
            (Field::Iifname, Field::IpSaddr, Field::Ip6Saddr)
        } else {
            (Field::Oifname, Field::IpDaddr, Field::Ip6Daddr)
        };
        let mut rules = vec![
            Rule::new(vec![Stmt::Vmap {
                key: vec![f4],
                map: path.map(4),
            }]),
            Rule::new(vec![Stmt::Vmap {
                key: vec![f6],
                map: path.map(6),
            }]),
        ];
        if egress {
            rules.push(
                Rule::new(drop(Direction::Egress, FailClosed::UnknownSource))
                    .with_comment("not a known container: fail closed"),
            );
        } else {
            for (fam, field) in [(4, f4), (6, f6)] {
                let mut stmts = vec![
                    Stmt::Match {
                        left: vec![field],
                        negate: false,
                        right: Rhs::Set(names::range_set(names::SUBNETS, fam)),
                    },
                    Stmt::Match {
                        left: vec![field],
                        negate: true,
                        right: Rhs::Set(names::known(fam)),
                    },
                ];
                stmts.extend(drop(Direction::Ingress, FailClosed::UnknownDestination));
                rules.push(Rule::new(stmts).with_comment("not a known container: fail closed"));
            }
        }
        t.chains.push(Chain {
            name: dispatch.clone(),
            base: None,
            rules,
        });
        t.chains.push(Chain {
            name: path.base_chain().into(),
            base: Some(BaseChain {
                kind: ChainType::Filter,
                hook,
                priority: prio,
            }),
            rules: {
                let mut r = vec![established(), nd(), mld()];
                if hook == Hook::Input {
                    r.extend(redirected_dns());
                }
                r.push(Rule::new(vec![
                    on_bridge(dev),
                    Stmt::Verdict(Verdict::Jump(dispatch)),
                ]));
                r.extend(unbound_bridges(dev, egress));
                r
            },
        });
    }
}

/// The IPv4 masquerading cordon provides when Docker does not (dockerd
/// with `"iptables": false`): set `masq4` holds the subnets of the networks
/// marked [`masquerade`](cordon_inventory::Network::masquerade), and nat
/// chain `postrouting` masquerades what leaves them for anything but a
/// Docker bridge. Both always exist, empty when no network needs them, so
/// the ruleset's shape does not depend on the inventory. Only the first
/// packet of a connection meets a nat chain; the filter chains have judged
/// it already (forward runs before postrouting).
fn masquerade(t: &mut Table, inv: &Inventory) {
    let subnets: Vec<IpNet> = inv
        .networks
        .iter()
        .filter(|n| n.masquerade && n.driver == "bridge" && n.bridge.is_some() && !n.internal)
        .flat_map(|n| n.subnets.iter().copied())
        .collect();
    let (v4, _) = words::split_aggregate(&subnets);
    t.sets.push(interval_set(
        names::MASQ4,
        4,
        &v4,
        "subnets cordon masquerades (Docker does not)",
    ));
    t.chains.push(Chain {
        name: names::POSTROUTING.into(),
        base: Some(BaseChain {
            kind: ChainType::Nat,
            hook: Hook::Postrouting,
            priority: SRCNAT_PRIORITY,
        }),
        rules: vec![Rule::new(vec![
            Stmt::Match {
                left: vec![Field::IpSaddr],
                negate: false,
                right: Rhs::Set(names::MASQ4.into()),
            },
            Stmt::Match {
                left: vec![Field::Oifname],
                negate: true,
                right: Rhs::Set(names::BRIDGES.into()),
            },
            Stmt::Masquerade,
        ])
        .with_comment("IPv4 leaving a network Docker does not masquerade")],
    });
}

/// True when a body's egress names a DNS name.
fn body_names_dns(body: &Body) -> bool {
    body.egress.iter().any(|r| {
        r.peers
            .iter()
            .any(|p| matches!(p, Peer::Dns(_) | Peer::DnsWildcard(_)))
    })
}

/// The DNS redirect: containers whose policy names DNS names
/// (`@dns_clients4/6`) have every DNS query (port 53, UDP and TCP, to any
/// address) redirected to cordon's proxy on the host, which answers only
/// the allowlisted names and opens the firewall for their addresses.
/// Queries of other containers are ordinary traffic, judged by their
/// policy. The nat chain and the sets always exist (the shape does not
/// depend on the inventory); `egress_host` lets the redirected queries in.
fn dns_redirect(t: &mut Table, el: &Elements) {
    let mut rules = Vec::new();
    for (i, fam) in [4u8, 6].into_iter().enumerate() {
        let mut s = addr_set(
            names::dns_clients(fam),
            fam,
            "containers whose DNS goes to cordon's proxy",
        );
        s.elements = net_elements(&el.dns_clients[i]);
        t.sets.push(s);
        let mut stmts = dns_client_port(fam, 53);
        stmts.push(Stmt::Redirect(cordon_ruleset::DNS_PROXY_PORT));
        rules.push(
            Rule::new(stmts)
                .with_comment("DNS of containers with names in their policy: to cordon's proxy"),
        );
    }
    t.chains.push(Chain {
        name: names::DNS_REDIRECT.into(),
        base: Some(BaseChain {
            kind: ChainType::Nat,
            hook: Hook::Prerouting,
            priority: DSTNAT_PRIORITY,
        }),
        rules,
    });
}

fn bridge_table(el: &Elements) -> Table {
    let elements = |items: &mut dyn Iterator<Item = Value>| -> Vec<Element> {
        items
            .map(|v| Element {
                key: vec![v],
                verdict: None,
            })
            .collect()
    };
    let mut ports = Set::new(
        B::PORTS,
        vec![KeyType::Ifname],
        "container ports cordon knows",
    );
    ports.elements = elements(&mut el.ports.iter().cloned().map(Value::Ifname));
    let mut port_mac = Set::new(
        B::PORT_MAC,
        vec![KeyType::Ifname, KeyType::Ether],
        "each port's own MAC",
    );
    port_mac.elements = el.port_mac.clone();
    let mut known_mac = Set::new(
        B::KNOWN_MAC,
        vec![KeyType::Ether],
        "MACs of known containers",
    );
    known_mac.elements = elements(&mut el.known_mac.iter().cloned().map(Value::Mac));
    let mut sets = vec![ports, port_mac, known_mac];
    for (i, (fam, key)) in [(4, KeyType::Ipv4), (6, KeyType::Ipv6)]
        .into_iter()
        .enumerate()
    {
        let mut b = Set::new(
            B::bind(fam),
            vec![KeyType::Ifname, KeyType::Ether, key],
            "each port's own MAC and address",
        );
        b.elements = el.bind[i].clone();
        sets.push(b);
        let mut k = Set::new(
            names::known(fam),
            vec![key],
            "addresses of known containers",
        );
        // In the bridge table a port's link-local address is its own too.
        let mut known = el.known[i].clone();
        if fam == 6 {
            known.extend(el.link_local.iter().copied());
        }
        k.elements = net_elements(&known);
        sets.push(k);
    }
    for (name, comment) in ND_SETS {
        let mut s = Set::new(name, vec![KeyType::Ifname, KeyType::Mark], comment);
        s.elements = el.nd.get(name).cloned().unwrap_or_default();
        sets.push(s);
    }

    let m = |left: Vec<Field>, negate: bool, right: Rhs| Stmt::Match {
        left,
        negate,
        right,
    };
    let set = |s: &str| Rhs::Set(s.to_string());
    let ethertype = |t: &'static str| m(vec![Field::EtherType], false, Rhs::Symbols(vec![t]));
    let accept = |mut stmts: Vec<Stmt>, comment: &str| {
        stmts.push(Stmt::Verdict(Verdict::Accept));
        Rule::new(stmts).with_comment(comment.to_string())
    };
    let drop = |mut stmts: Vec<Stmt>, what: &str, comment: &str| {
        stmts.extend([
            Stmt::Counter,
            Stmt::Log {
                prefix: LogPrefix::Spoof {
                    reason: what.to_string(),
                }
                .format(),
                group: NFLOG_GROUP,
            },
            Stmt::Verdict(Verdict::Drop),
        ]);
        Rule::new(stmts).with_comment(comment.to_string())
    };
    let v4_unspec: IpNet = "0.0.0.0/32".parse().expect("constant");
    let v6_unspec: IpNet = "::/128".parse().expect("constant");
    let icmpv6 = |types: Vec<&'static str>| {
        vec![
            ethertype("ip6"),
            m(vec![Field::L4proto], false, Rhs::Symbols(vec!["ipv6-icmp"])),
            m(vec![Field::Icmpv6Type], false, Rhs::Symbols(types)),
        ]
    };
    let udp6 = |field: Field, port: u16| {
        vec![
            ethertype("ip6"),
            m(vec![Field::L4proto], false, Rhs::Symbols(vec!["udp"])),
            m(vec![field], false, Rhs::Ports(vec![(port, port)])),
        ]
    };

    // Frames from a known port: one lookup of (port, MAC, address) accepts
    // them; whatever does not match (another MAC or address, another
    // ethertype such as a VLAN tag) is dropped. Before that, what only a
    // router or a DHCPv6 server sends is dropped (containers are neither),
    // and neighbour discovery must claim only the port's own addresses and
    // MAC (chain `nd_claim`).
    let known_port = vec![
        drop(
            icmpv6(vec![
                "nd-router-advert",
                "nd-redirect",
                "router-renumbering",
            ]),
            "router",
            "router advertisements and redirects: containers are not routers",
        ),
        drop(
            udp6(Field::ThSport, 547),
            "dhcp6",
            "DHCPv6 server and relay messages: containers are not DHCPv6 servers",
        ),
        drop(
            udp6(Field::ThDport, 546),
            "dhcp6",
            "DHCPv6 messages to clients: containers are not DHCPv6 servers",
        ),
        Rule::new({
            let mut r = icmpv6(vec![
                "nd-router-solicit",
                "nd-neighbor-solicit",
                "nd-neighbor-advert",
            ]);
            r.push(Stmt::Verdict(Verdict::Jump(B::ND_CLAIM.into())));
            r
        })
        .with_comment("neighbour discovery claims only the port's own addresses and MAC"),
        accept(
            vec![
                ethertype("ip"),
                m(
                    vec![Field::Iifname, Field::EtherSaddr, Field::IpSaddr],
                    false,
                    set(&B::bind(4)),
                ),
            ],
            "IPv4 from the port's own MAC and address",
        ),
        accept(
            vec![
                ethertype("ip6"),
                m(
                    vec![Field::Iifname, Field::EtherSaddr, Field::Ip6Saddr],
                    false,
                    set(&B::bind(6)),
                ),
            ],
            "IPv6 from the port's own MAC and address (its link-local one included)",
        ),
        accept(
            vec![
                ethertype("ip6"),
                m(vec![Field::Ip6Saddr], false, Rhs::Net(v6_unspec)),
                m(
                    vec![Field::Iifname, Field::EtherSaddr],
                    false,
                    set(B::PORT_MAC),
                ),
            ],
            "the unspecified source (duplicate address detection) from the port's own MAC",
        ),
        accept(
            vec![
                ethertype("arp"),
                m(
                    vec![Field::Iifname, Field::EtherSaddr, Field::ArpSaddrIp],
                    false,
                    set(&B::bind(4)),
                ),
                m(
                    vec![Field::Iifname, Field::ArpSaddrEther, Field::ArpSaddrIp],
                    false,
                    set(&B::bind(4)),
                ),
            ],
            "ARP announcing the port's own MAC and address",
        ),
        accept(
            vec![
                ethertype("arp"),
                m(vec![Field::ArpSaddrIp], false, Rhs::Net(v4_unspec)),
                m(
                    vec![Field::Iifname, Field::EtherSaddr],
                    false,
                    set(B::PORT_MAC),
                ),
                m(
                    vec![Field::Iifname, Field::ArpSaddrEther],
                    false,
                    set(B::PORT_MAC),
                ),
            ],
            "ARP probes (sender 0.0.0.0) from the port's own MAC",
        ),
        drop(vec![], "port", "anything else from a known port"),
    ];

    // Frames from any other port may not use a known container's identity.
    let prerouting = vec![
        Rule::new(vec![
            m(vec![Field::Iifname], false, set(B::PORTS)),
            Stmt::Verdict(Verdict::Jump(B::KNOWN_PORT.into())),
        ])
        .with_comment("a container cordon knows"),
        drop(
            vec![m(vec![Field::EtherSaddr], false, set(B::KNOWN_MAC))],
            "mac",
            "a known container's MAC from another port",
        ),
        drop(
            vec![m(vec![Field::IpSaddr], false, set(&names::known(4)))],
            "ip",
            "a known container's IPv4 address from another port",
        ),
        drop(
            vec![m(vec![Field::ArpSaddrIp], false, set(&names::known(4)))],
            "arp",
            "a known container's IPv4 address announced from another port",
        ),
        drop(
            vec![m(vec![Field::Ip6Saddr], false, set(&names::known(6)))],
            "ip6",
            "a known container's IPv6 address from another port",
        ),
    ];
    let (nd_claim, nd_target) = nd_chains();
    Table {
        family: Family::Bridge,
        name: TABLE.into(),
        sets,
        chains: vec![
            Chain {
                name: B::ND_TARGET.into(),
                base: None,
                rules: nd_target,
            },
            Chain {
                name: B::ND_CLAIM.into(),
                base: None,
                rules: nd_claim,
            },
            Chain {
                name: B::KNOWN_PORT.into(),
                base: None,
                rules: known_port,
            },
            Chain {
                name: B::PREROUTING.into(),
                base: Some(BaseChain {
                    kind: ChainType::Filter,
                    hook: Hook::Prerouting,
                    priority: BRIDGE_PRIORITY,
                }),
                rules: prerouting,
            },
        ],
    }
}

/// The bridge table's sets of address and MAC words for the neighbour
/// discovery checks, each `port . word` (`ifname . mark`): a port has one
/// MAC, one link-local and at most one global IPv6 address, so matching
/// the four words of an address (or the two overlapping words of a MAC)
/// one set at a time matches exactly that port's own.
const ND_SETS: [(&str, &str); 8] = [
    (
        B::ND_GLOBAL[0],
        "bytes 0-3 of each port's global IPv6 address",
    ),
    (
        B::ND_GLOBAL[1],
        "bytes 4-7 of each port's global IPv6 address",
    ),
    (
        B::ND_GLOBAL[2],
        "bytes 8-11 of each port's global IPv6 address",
    ),
    (
        B::ND_GLOBAL[3],
        "bytes 12-15 of each port's global IPv6 address",
    ),
    (B::ND_LL3, "bytes 8-11 of each port's link-local address"),
    (B::ND_LL4, "bytes 12-15 of each port's link-local address"),
    (B::ND_MAC1, "bytes 0-3 of each port's MAC"),
    (B::ND_MAC2, "bytes 2-5 of each port's MAC"),
];

/// Chains `nd_claim` and `nd_target` of the bridge table: a router
/// solicitation, neighbour solicitation or advertisement from a known port
/// returns from `nd_claim` only when what it claims is the port's own (its
/// source address is checked afterwards like any packet's):
///
/// - no extension header before the ICMPv6 header (`ip6 nexthdr`);
/// - an advertisement's target address (ICMPv6 bytes 8-23) is the port's
///   global or link-local address (`nd_target`);
/// - the message carries no option, or exactly one link-layer address
///   option of the right kind (source for solicitations, target for
///   advertisements) holding the port's MAC, or, for duplicate address
///   detection (source `::`), exactly one nonce option. Anything else
///   (options cordon cannot verify, a second option) drops.
///
/// nftables 1.0 has no typed expression for the target address or the
/// option, and a set of raw integers cannot be declared in its JSON, so
/// the words are copied one at a time into the packet mark and looked up
/// as `iifname . meta mark`. A frame from a container's veth arrives with
/// mark 0 (crossing network namespaces clears it), and every path that
/// returns sets it back to 0; drops end the packet.
fn nd_chains() -> (Vec<Rule>, Vec<Rule>) {
    let m = |left: Vec<Field>, right: Rhs| Stmt::Match {
        left,
        negate: false,
        right,
    };
    let ty = |t: &'static str| m(vec![Field::Icmpv6Type], Rhs::Symbols(vec![t]));
    let len = |n: u64| m(vec![Field::Ip6Length], Rhs::Ints(vec![n]));
    let raw = |offset: u16, bits: u16, v: u64| m(vec![Field::Th(offset, bits)], Rhs::Ints(vec![v]));
    // `meta mark set @th,OFFSET,32 iifname . meta mark @SET`
    let word = |offset: u16, set: &str| {
        [
            Stmt::SetMark(Some(Field::Th(offset, 32))),
            m(vec![Field::Iifname, Field::Mark], Rhs::Set(set.into())),
        ]
    };
    let back = [Stmt::SetMark(None), Stmt::Verdict(Verdict::Return)];
    // The port's MAC in a link-layer address option whose 6 octets start
    // at ICMPv6 byte `at`.
    let mac_at = |at: u16| {
        let mut v = word(at * 8, B::ND_MAC1).to_vec();
        v.extend(word(at * 8 + 16, B::ND_MAC2));
        v
    };
    let drop = |mut stmts: Vec<Stmt>, comment: &str| {
        stmts.extend([
            Stmt::Counter,
            Stmt::Log {
                prefix: LogPrefix::Spoof {
                    reason: "nd".into(),
                }
                .format(),
                group: NFLOG_GROUP,
            },
            Stmt::Verdict(Verdict::Drop),
        ]);
        Rule::new(stmts).with_comment(comment.to_string())
    };
    let rule = |parts: Vec<Vec<Stmt>>, comment: &str| {
        Rule::new(parts.into_iter().flatten().collect()).with_comment(comment.to_string())
    };

    let mut global = Vec::new();
    for (i, set) in B::ND_GLOBAL.iter().enumerate() {
        global.extend(word(64 + 32 * i as u16, set));
    }
    let nd_target = vec![
        rule(vec![global, back.to_vec()], "the port's own global address"),
        rule(
            vec![
                vec![raw(64, 32, 0xfe80_0000), raw(96, 32, 0)],
                word(128, B::ND_LL3).to_vec(),
                word(160, B::ND_LL4).to_vec(),
                back.to_vec(),
            ],
            "the port's own link-local address",
        ),
        drop(
            vec![],
            "an advertisement for an address that is not the port's",
        ),
    ];

    let nd_claim = vec![
        drop(
            vec![Stmt::Match {
                left: vec![Field::Ip6Nexthdr],
                negate: true,
                right: Rhs::Symbols(vec!["ipv6-icmp"]),
            }],
            "behind an extension header: cannot be checked",
        ),
        Rule::new(vec![
            ty("nd-neighbor-advert"),
            Stmt::Verdict(Verdict::Jump(B::ND_TARGET.into())),
        ])
        .with_comment("an advertisement is for one of the port's own addresses"),
        rule(
            vec![vec![ty("nd-router-solicit"), len(8)], back.to_vec()],
            "router solicitation without options",
        ),
        rule(
            vec![
                vec![ty("nd-router-solicit"), len(16), raw(64, 16, 0x0101)],
                mac_at(10),
                back.to_vec(),
            ],
            "router solicitation with the port's MAC as source link-layer address",
        ),
        rule(
            vec![
                vec![
                    m(
                        vec![Field::Icmpv6Type],
                        Rhs::Symbols(vec!["nd-neighbor-solicit", "nd-neighbor-advert"]),
                    ),
                    len(24),
                ],
                back.to_vec(),
            ],
            "neighbour solicitation or advertisement without options",
        ),
        rule(
            vec![
                vec![ty("nd-neighbor-solicit"), len(32), raw(192, 16, 0x0101)],
                mac_at(26),
                back.to_vec(),
            ],
            "neighbour solicitation with the port's MAC as source link-layer address",
        ),
        rule(
            vec![
                vec![ty("nd-neighbor-advert"), len(32), raw(192, 16, 0x0201)],
                mac_at(26),
                back.to_vec(),
            ],
            "neighbour advertisement with the port's MAC as target link-layer address",
        ),
        rule(
            vec![
                vec![
                    ty("nd-neighbor-solicit"),
                    m(
                        vec![Field::Ip6Saddr],
                        Rhs::Net("::/128".parse().expect("constant")),
                    ),
                    len(32),
                    raw(192, 16, 0x0e01),
                ],
                back.to_vec(),
            ],
            "duplicate address detection with a nonce",
        ),
        drop(vec![], "options cordon cannot verify"),
    ];
    (nd_claim, nd_target)
}
