//! The compiler proper: policy file + inventory + live set edits → ruleset.
//!
//! The ruleset's *shape* (chains, rules, set declarations) depends only on
//! the policy file; containers only ever add set and map *elements*. That is
//! what lets the daemon follow containers with element updates, and what
//! keeps the per-packet cost independent of the number of containers.
//!
//! [`compile`] decides each container's policy and gathers the elements
//! (`elements`), then lays out the tables by concern: the shared set
//! declarations (`sets`), each policy's chains (`policy`), the base and
//! dispatch chains (`base`), the nat chains (`nat`), and the bridge table
//! that pins each port to its identity (`identity`).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use cordon_inventory::{Container, Inventory, Shown};
use cordon_policy::{Body, Mode, Peer, PolicyFile, Selection};

use cordon_ruleset::names::{self, Dispatch};
use cordon_ruleset::nft::*;
use cordon_ruleset::{PolicyKey, TABLE};

use crate::{Assignment, Compiled, SetOverrides};

mod base;
mod elements;
mod identity;
mod nat;
mod policy;
mod sets;

use base::base_chains;
use elements::Elements;
use identity::bridge_table;
use nat::{dns_redirect, l7_redirect, masquerade};
use policy::{dns_sets, policy_chains};
use sets::{addr_set, constant_sets, named_sets};

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
    let names_l7: HashMap<&str, bool> = bodies
        .iter()
        .map(|b| {
            (
                b.key.chain_part(),
                b.body.egress.iter().any(|r| r.server_name),
            )
        })
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
        if names_l7[key.chain_part()] {
            for a in &enforced {
                el.l7_client(*a, &key);
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
    for b in &bodies {
        dns_sets(&mut inet, &b.key, &b.body);
        policy_chains(&mut inet, &b.key, &b.body);
    }
    base_chains(&mut inet);
    masquerade(&mut inet, inv);
    dns_redirect(&mut inet, &el);
    l7_redirect(
        &mut inet,
        &el,
        bodies.iter().map(|b| (&b.key, b.body.as_ref())),
    );

    let bridge = bridge_table(&el);
    let mut tables = vec![bridge, inet];
    // The daemon keeps the compiled ruleset for as long as it is in force:
    // sets grown by pushing hold up to twice their elements' room.
    for s in tables.iter_mut().flat_map(|t| t.sets.iter_mut()) {
        s.elements.shrink_to_fit();
    }
    Compiled {
        ruleset: Ruleset { tables },
        assignments,
        warnings,
    }
}

/// The verdict maps: (name, family).
fn maps() -> impl Iterator<Item = (String, u8)> {
    Dispatch::ALL
        .into_iter()
        .flat_map(|d| names::FAMILIES.map(|fam| (d.map(fam), fam)))
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

/// True when a body's egress names a DNS name.
fn body_names_dns(body: &Body) -> bool {
    body.egress.iter().any(|r| {
        r.peers
            .iter()
            .any(|p| matches!(p, Peer::Dns(_) | Peer::DnsWildcard(_)))
    })
}
