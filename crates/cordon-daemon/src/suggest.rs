//! `cordon suggest`: a policy file for the observed containers from what
//! the drop log saw them try (audited or dropped), ready for `cordon
//! check`. The audit-then-enforce workflow: run a policy in `mode: audit`,
//! let the containers work, then take the suggestion.
//!
//! A pure function of the policy in force, the inventory, the flows and
//! the names the DNS proxy learned:
//!
//! - A policy whose containers were seen keeps its name, selector and
//!   rules, switches to `mode: enforce`, and gains rules for what was
//!   seen. Containers on `default` each get a policy of their own,
//!   selected by name, starting from the default's rules.
//! - Destinations (sources, for ingress) become, in this order: the policy
//!   of the container that has the address; the DNS name an answer gave
//!   it; `host` for traffic to the Docker host; else addresses, grouped
//!   into a /24 (IPv4) or /64 (IPv6) where two or more share one, and
//!   adjacent blocks merged.
//! - Ports are the destination ports seen (TCP, UDP) and `icmp`; rules
//!   with the same peers are merged. Other protocols are listed in a
//!   comment, never allowed wholesale.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use cordon_inventory::Inventory;
use cordon_policy::{Loc, Mode, Peer, Policy, PolicyFile, PortSpec, Rule, Selector};
use ipnet::IpNet;

use crate::droplog::{FlowKey, FlowStat};

/// The suggestion as the text of a policy file.
pub fn suggest(
    policy: &PolicyFile,
    inventory: &Inventory,
    flows: &[(FlowKey, FlowStat)],
    names: &HashMap<IpAddr, String>,
) -> String {
    let mut out = policy.clone();
    out.source = String::new();
    let mut header = vec![format!(
        "# cordon suggest: {} distinct flow(s) seen, from {} to {}",
        flows.len(),
        time(flows.iter().map(|(_, s)| s.first_ms).min()),
        time(flows.iter().map(|(_, s)| s.last_ms).max()),
    )];
    // Which policy each known address belongs to (named policies only).
    let owners: HashMap<IpAddr, String> = inventory
        .containers
        .iter()
        .filter_map(|c| {
            let sel = match policy.select(&c.candidate()) {
                cordon_policy::Selection::Policy(p) => p.name.clone(),
                _ => return None,
            };
            Some(c.endpoints.iter().flat_map(move |e| {
                let sel = sel.clone();
                e.ipv4
                    .map(IpAddr::from)
                    .into_iter()
                    .chain(e.ipv6.map(IpAddr::from))
                    .map(move |a| (a, sel.clone()))
            }))
        })
        .flatten()
        .collect();

    // Flows per target policy: an existing one, or one per default container.
    let mut per: BTreeMap<String, Vec<&(FlowKey, FlowStat)>> = BTreeMap::new();
    let mut new_policies: BTreeMap<String, String> = BTreeMap::new();
    for f in flows {
        let k = &f.0;
        let target = if policy.policy(&k.policy).is_some() {
            k.policy.clone()
        } else if k.policy == "default" {
            if !new_policies.contains_key(&k.container) {
                let taken: BTreeSet<String> = new_policies.values().cloned().collect();
                let name = fresh_name(policy, &k.container, &taken);
                new_policies.insert(k.container.clone(), name);
            }
            new_policies[&k.container].clone()
        } else {
            // unknown-policy containers and fail-closed drops: nothing to
            // suggest from (the container has no policy to extend).
            continue;
        };
        per.entry(target).or_default().push(f);
    }
    for (container, name) in &new_policies {
        out.policies.push(Policy {
            name: name.clone(),
            select: Selector {
                name: Some(container.clone()),
                ..Default::default()
            },
            body: policy.default.clone(),
            loc: Loc::default(),
        });
    }
    for (target, seen) in per {
        let Some(p) = out.policies.iter_mut().find(|p| p.name == target) else {
            continue;
        };
        let was_audit = p.body.mode == Mode::Audit;
        p.body.mode = Mode::Enforce;
        let (egress, ingress, odd) = rules_for(&seen, &owners, names);
        for (dir, rules) in [("egress", &egress), ("ingress", &ingress)] {
            for r in rules.iter() {
                header.push(format!(
                    "#   {target}: + {dir} {} ports {}",
                    words(&r.peers),
                    if r.ports.is_empty() {
                        "all".to_string()
                    } else {
                        words(&r.ports)
                    }
                ));
            }
        }
        for o in odd {
            header.push(format!("#   {target}: seen but not suggested: {o}"));
        }
        if was_audit {
            header.push(format!("#   {target}: mode audit -> enforce"));
        }
        p.body.egress.extend(egress);
        if !ingress.is_empty() {
            p.body.ingress.get_or_insert_with(Vec::new).extend(ingress);
        }
    }
    // A comment is one line: a name from Docker or DNS is escaped, so it
    // cannot end the comment and write policy.
    let header: Vec<String> = header
        .iter()
        .map(|h| cordon_inventory::escape(h).into_owned())
        .collect();
    let mut text = header.join("\n");
    text.push_str("\n\n");
    text.push_str(&cordon_policy::to_yaml(&out));
    text
}

/// A valid policy name for `container` that no set or policy uses.
fn fresh_name(policy: &PolicyFile, container: &str, taken: &BTreeSet<String>) -> String {
    let mut base: String = container
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !base.starts_with(|c: char| c.is_ascii_lowercase()) {
        base = format!("c-{base}");
    }
    base.truncate(28);
    let free = |n: &str| {
        cordon_policy::valid_name(n)
            && !cordon_policy::RESERVED.contains(&n)
            && !cordon_policy::RESERVED_NAMES.contains(&n)
            && policy.policy(n).is_none()
            && policy.set(n).is_none()
            && !taken.contains(n)
    };
    if free(&base) {
        return base;
    }
    (2..)
        .map(|i| format!("{base}-{i}"))
        .find(|n| free(n))
        .expect("some suffix is free")
}

/// Peers by word, and addresses still to group.
type Peers = (BTreeSet<Peer>, Vec<IpAddr>);

/// The rules for `seen`: (egress, ingress, what was not suggested).
fn rules_for(
    seen: &[&(FlowKey, FlowStat)],
    owners: &HashMap<IpAddr, String>,
    names: &HashMap<IpAddr, String>,
) -> (Vec<Rule>, Vec<Rule>, Vec<String>) {
    let mut odd = BTreeSet::new();
    // (ingress?, port) → peers (named) and addresses (to group).
    let mut by_port: BTreeMap<(bool, Option<PortSpec>), Peers> = BTreeMap::new();
    for (k, _) in seen {
        let ingress = k.direction.starts_with("ingress");
        let port = match (k.proto.as_str(), k.port) {
            ("tcp", Some(p)) => Some(PortSpec::Tcp(p, p)),
            ("udp", Some(p)) => Some(PortSpec::Udp(p, p)),
            ("icmp" | "icmpv6", _) => Some(PortSpec::Icmp),
            (proto, _) => {
                odd.insert(format!("{proto} {} {}", k.direction, k.peer));
                continue;
            }
        };
        let entry = by_port.entry((ingress, port)).or_default();
        if k.direction == "egress-host" {
            entry.0.insert(Peer::Host);
        } else if let Some(p) = owners.get(&k.peer) {
            entry.0.insert(Peer::Policy(p.clone()));
        } else if let (false, Some(n)) = (ingress, names.get(&k.peer)) {
            entry.0.insert(dns_peer(n));
        } else {
            entry.1.push(k.peer);
        }
    }
    // Group addresses, then merge ports of rules with the same peers.
    let mut by_peers: BTreeMap<(bool, Vec<Peer>), BTreeSet<PortSpec>> = BTreeMap::new();
    for ((ingress, port), (mut peers, addrs)) in by_port {
        peers.extend(group(&addrs).into_iter().map(Peer::Net));
        let ports = by_peers
            .entry((ingress, peers.into_iter().collect()))
            .or_default();
        if let Some(p) = port {
            ports.insert(p);
        }
    }
    let mut egress = Vec::new();
    let mut ingress = Vec::new();
    for ((is_in, peers), ports) in by_peers {
        let r = Rule {
            peers,
            ports: ports.into_iter().collect(),
            server_name: false,
            loc: Loc::default(),
        };
        if is_in {
            ingress.push(r);
        } else {
            egress.push(r);
        }
    }
    (egress, ingress, odd.into_iter().collect())
}

/// An allowlisted pattern as a peer: `*.x` or a name.
fn dns_peer(n: &str) -> Peer {
    match n.strip_prefix("*.") {
        Some(suffix) => Peer::DnsWildcard(suffix.to_string()),
        None => Peer::Dns(n.to_string()),
    }
}

/// Addresses as CIDRs: a /24 (IPv4) or /64 (IPv6) where two or more
/// share one, single addresses otherwise; adjacent blocks merged.
pub fn group(addrs: &[IpAddr]) -> Vec<IpNet> {
    let mut blocks: BTreeMap<IpNet, BTreeSet<IpAddr>> = BTreeMap::new();
    for a in addrs {
        let len = if a.is_ipv4() { 24 } else { 64 };
        let block = IpNet::new(*a, len).expect("valid prefix").trunc();
        blocks.entry(block).or_default().insert(*a);
    }
    let mut nets = Vec::new();
    for (block, members) in blocks {
        if members.len() >= 2 {
            nets.push(block);
        } else {
            nets.extend(members.into_iter().map(IpNet::from));
        }
    }
    IpNet::aggregate(&nets)
}

fn words<T: std::fmt::Display>(items: &[T]) -> String {
    let w: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("[{}]", w.join(", "))
}

fn time(ms: Option<u64>) -> String {
    match ms {
        Some(ms) => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
        )
        .to_string(),
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(
        container: &str,
        policy: &str,
        dir: &str,
        proto: &str,
        peer: &str,
        port: Option<u16>,
    ) -> (FlowKey, FlowStat) {
        (
            FlowKey {
                container: container.into(),
                policy: policy.into(),
                direction: dir.into(),
                proto: proto.into(),
                peer: peer.parse().unwrap(),
                port,
            },
            FlowStat {
                packets: 1,
                first_ms: 1_700_000_000_000,
                last_ms: 1_700_000_060_000,
                verdict: "audit".into(),
            },
        )
    }

    #[test]
    fn fresh_names_avoid_reserved_words() {
        let policy = cordon_policy::parse("t.yaml", "version: 1\n").unwrap();
        let taken = BTreeSet::new();
        // Positive control: an ordinary container keeps its name.
        assert_eq!(fresh_name(&policy, "web", &taken), "web");
        for name in ["unknown-source", "unknown", "any", "default"] {
            let n = fresh_name(&policy, name, &taken);
            assert_eq!(n, format!("{name}-2"));
            assert!(cordon_policy::parse(
                "t.yaml",
                &format!("version: 1\npolicies:\n  - name: {n}\n    select: {{ name: x }}\n")
            )
            .is_ok());
        }
    }

    #[test]
    fn addresses_group_into_blocks() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        let g = group(&[
            a("203.0.113.5"),
            a("203.0.113.9"),
            a("198.51.100.7"),
            a("2001:db8:1::1"),
            a("2001:db8:1::2"),
        ]);
        let shown: Vec<String> = g.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["198.51.100.7/32", "203.0.113.0/24", "2001:db8:1::/64"]
        );
    }

    #[test]
    fn suggestion_amends_audited_policies_and_parses() {
        let policy = cordon_policy::parse(
            "p.yaml",
            "version: 1\npolicies:\n  - name: web\n    select: { name: web }\n    mode: audit\n    egress:\n      - to: [internet]\n        ports: [443/tcp]\n",
        )
        .unwrap();
        let names: HashMap<IpAddr, String> = [(
            "198.51.100.20".parse().unwrap(),
            "api.example.com".to_string(),
        )]
        .into();
        let flows = vec![
            flow("web", "web", "egress", "tcp", "10.9.0.5", Some(5432)),
            flow("web", "web", "egress", "tcp", "10.9.0.6", Some(5432)),
            flow("web", "web", "egress", "udp", "10.9.1.1", Some(53)),
            flow("web", "web", "egress", "tcp", "198.51.100.20", Some(8443)),
            flow("web", "web", "egress", "47", "10.9.9.9", None),
            flow("worker", "default", "egress", "tcp", "10.9.0.5", Some(6379)),
            flow("x", "unknown-source", "egress", "tcp", "10.9.0.5", Some(1)),
        ];
        let text = suggest(&policy, &Inventory::default(), &flows, &names);
        let back = cordon_policy::parse("suggested.yaml", &text)
            .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        let web = back.policy("web").unwrap();
        assert_eq!(web.body.mode, Mode::Enforce);
        let shown: Vec<String> = web
            .body
            .egress
            .iter()
            .map(|r| format!("{} {}", words(&r.peers), words(&r.ports)))
            .collect();
        assert_eq!(
            shown,
            [
                "[internet] [443/tcp]",
                "[10.9.0.0/24] [5432/tcp]",
                "[10.9.1.1] [53/udp]",
                "[api.example.com] [8443/tcp]",
            ]
        );
        assert!(
            text.contains("seen but not suggested: 47 egress 10.9.9.9"),
            "{text}"
        );
        // A default container gets a policy of its own, selected by name,
        // starting from the default's rules.
        let worker = back.policy("worker").unwrap();
        assert_eq!(worker.select.name.as_deref(), Some("worker"));
        assert_eq!(worker.body.egress.len(), back.default.egress.len() + 1);
        // Fail-closed drops suggest nothing.
        assert!(back.policy("x").is_none());
    }
}
