//! One policy's chains: per judged path, an accept rule per policy rule and
//! destination, then the logged drop (or audit); and the timeout sets its
//! DNS names fill. The forwarded egress chains (`eg_fwd_*`) allow with
//! `return` instead of `accept`: the dispatch reaches them by `goto`, so the
//! return goes back to the `forward` base chain, which judges the packet's
//! ingress next.
//!
//! The forwarded chains are also where a direction's verdict map enters
//! (one map per direction, not per path): their first rule sends the
//! packets of the host's own hook to the local chain, `meta oif 0 goto
//! eg_host_*` (the input hook: a packet to the host has no output
//! interface; in the forward hook it always has one) and `meta iif 0 goto
//! in_local_*` (the output hook: the host's own packet has no input
//! interface).

use cordon_policy::{Body, Mode, Peer, PortSpec, Rule as PRule};
use ipnet::IpNet;

use cordon_ruleset::names::{self, Dispatch, Path};
use cordon_ruleset::nft::*;
use cordon_ruleset::prefix::LogVerdict;
use cordon_ruleset::{LogPrefix, PolicyKey, NFLOG_GROUP};

use super::sets::addr_set;
use crate::words;

pub(super) fn policy_chains(t: &mut Table, key: &PolicyKey, body: &Body) {
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
        let verdict = match body.mode {
            Mode::Enforce => LogVerdict::Drop,
            Mode::Audit => LogVerdict::Audit,
        };
        let prefix = LogPrefix::Policy {
            direction: dir.direction(),
            policy: key.clone(),
            verdict,
        };
        let allow = allow_verdict(dir);
        let end = || {
            vec![
                Stmt::Counter,
                Stmt::Log {
                    prefix: prefix.format(),
                    group: NFLOG_GROUP,
                },
                Stmt::Verdict(match body.mode {
                    Mode::Enforce => Verdict::Drop,
                    Mode::Audit => allow.clone(),
                }),
            ]
        };
        if let Some(split) = hook_split(dir, key) {
            chain.rules.push(split);
        }
        if dir == Path::EgressFwd {
            chain.rules.extend(quic_drops(key, rules, &end));
        }
        for (idx, rule) in rules.iter().enumerate() {
            rule_matches(&mut chain.rules, key, idx, rule, dir);
        }
        chain.rules.push(Rule::new(end()));
        t.chains.push(chain);
    }
}

/// The first rule of a direction's entry chain ([`Dispatch::entry`]): the
/// host's own hook goes on to the local path's chain. `None` for the other
/// paths.
fn hook_split(dir: Path, key: &PolicyKey) -> Option<Rule> {
    let dispatch = dir.dispatch();
    if dispatch.entry() != dir {
        return None;
    }
    let (field, comment) = match dispatch {
        Dispatch::Egress => (Field::Oif, "to the host (input hook: no output interface)"),
        Dispatch::Ingress => (
            Field::Iif,
            "from the host (output hook: no input interface)",
        ),
    };
    Some(
        Rule::new(vec![
            Stmt::is(field, Rhs::Ints(vec![0])),
            Stmt::Verdict(Verdict::Goto(dispatch.local().policy_chain(key).into())),
        ])
        .with_comment(comment),
    )
}

/// How a rule of path `dir` lets a packet through: `return` in `eg_fwd`
/// (on to the packet's ingress in the `forward` chain), `accept` elsewhere.
fn allow_verdict(dir: Path) -> Verdict {
    if dir == Path::EgressFwd {
        Verdict::Return
    } else {
        Verdict::Accept
    }
}

/// First in `eg_fwd`: QUIC (UDP 443) to an address learned for a rule with
/// `match: server-name` is dropped (or audited), whatever later rules say,
/// so that clients fall back to TCP, where the L7 proxy reads the name.
fn quic_drops(key: &PolicyKey, rules: &[PRule], end: &dyn Fn() -> Vec<Stmt>) -> Vec<Rule> {
    let mut out = Vec::new();
    for (idx, rule) in rules.iter().enumerate() {
        if !rule.server_name {
            continue;
        }
        for (fam, field) in [(4, Field::IpDaddr), (6, Field::Ip6Daddr)] {
            let mut stmts = vec![
                Stmt::is(field, Rhs::Set(names::dns_set(key, idx, fam))),
                Stmt::is(Field::L4proto, Rhs::Symbols(vec!["udp"])),
                Stmt::is(Field::ThDport, Rhs::Ports(vec![(443, 443)])),
            ];
            stmts.extend(end());
            out.push(Rule::new(stmts).with_comment(format!(
                "line {}: QUIC to a server-name rule's addresses; clients fall back to TCP",
                rule.loc.line
            )));
        }
    }
    out
}

/// The TCP port ranges of `ports`, merged.
pub(super) fn tcp_ports(ports: &[PortSpec]) -> Vec<(u16, u16)> {
    let mut list: Vec<(u16, u16)> = ports
        .iter()
        .filter_map(|p| match *p {
            PortSpec::Tcp(lo, hi) => Some((lo, hi)),
            _ => None,
        })
        .collect();
    list.sort_unstable();
    list.dedup();
    merge_ranges(list)
}

/// Declares the (empty) timeout sets the DNS proxy fills for each egress
/// rule naming DNS names; until it does, such rules match nothing.
pub(super) fn dns_sets(t: &mut Table, key: &PolicyKey, body: &Body) {
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

/// Appends the accept rules for one policy rule. A rule with `match:
/// server-name` has none: its connections are redirected to the L7 proxy
/// (`nat::l7_redirect`), and one the redirect missed meets no accept.
fn rule_matches(out: &mut Vec<Rule>, key: &PolicyKey, idx: usize, rule: &PRule, dir: Path) {
    if rule.server_name {
        return;
    }
    let ingress = !dir.is_egress();
    let (f4, f6) = if ingress {
        (Field::IpSaddr, Field::Ip6Saddr)
    } else {
        (Field::IpDaddr, Field::Ip6Daddr)
    };
    let ports = port_matches(&rule.ports);
    let comment = format!("line {}", rule.loc.line);
    let allow = allow_verdict(dir);
    let mut emit = |m: Vec<Stmt>| {
        for p in &ports {
            let mut stmts = m.clone();
            stmts.extend(p.iter().cloned());
            // Counted for `cordon status`: connections this rule allowed.
            stmts.push(Stmt::Counter);
            stmts.push(Stmt::Verdict(allow.clone()));
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
