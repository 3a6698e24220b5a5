//! The nat chains of `inet cordon`: the masquerading cordon provides when
//! Docker does not, and the redirect of DNS to cordon's proxy.

use cordon_inventory::Inventory;
use cordon_policy::Body;
use ipnet::IpNet;

use cordon_ruleset::names;
use cordon_ruleset::nft::*;
use cordon_ruleset::PolicyKey;

use super::elements::{net_elements, Elements};
use super::policy::tcp_ports;
use super::sets::{addr_set, interval_set};
use crate::words;

/// Priority of the nat chain that masquerades for Docker: `srcnat`.
const SRCNAT_PRIORITY: i32 = 100;

/// Priority of the DNS redirect's nat chain: just before `dstnat` (-100),
/// where Docker's own DNAT runs, so cordon's redirect is decided first.
const DSTNAT_PRIORITY: i32 = -110;

/// `ip(6) saddr @dns_clients<fam> meta l4proto { tcp, udp } th dport PORT`.
pub(super) fn dns_client_port(fam: u8, port: u16) -> Vec<Stmt> {
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

/// The IPv4 masquerading cordon provides when Docker does not (dockerd
/// with `"iptables": false`): set `masq4` holds the subnets of the networks
/// marked [`masquerade`](cordon_inventory::Network::masquerade), and nat
/// chain `postrouting` masquerades what leaves them for anything but a
/// Docker bridge. Both always exist, empty when no network needs them, so
/// the ruleset's shape does not depend on the inventory. Only the first
/// packet of a connection meets a nat chain; the filter chains have judged
/// it already (forward runs before postrouting).
pub(super) fn masquerade(t: &mut Table, inv: &Inventory) {
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

/// The DNS redirect: containers whose policy names DNS names
/// (`@dns_clients4/6`) have every DNS query (port 53, UDP and TCP, to any
/// address) redirected to cordon's proxy on the host, which answers only
/// the allowlisted names and opens the firewall for their addresses.
/// Queries of other containers are ordinary traffic, judged by their
/// policy. The nat chain and the sets always exist (the shape does not
/// depend on the inventory); `egress_host` lets the redirected queries in.
pub(super) fn dns_redirect(t: &mut Table, el: &Elements) {
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

/// The L7 redirect (rules with `match: server-name`): a new TCP connection
/// of a container whose policy has such rules, to an address the DNS proxy
/// learned for one of them and one of its ports, is redirected to cordon's
/// L7 proxy on the host ([`cordon_ruleset::L7_PROXY_PORT`]), which passes
/// it only if its TLS server name or HTTP Host is one of the rule's names.
///
/// The `dns_redirect` chain looks the source up in `@l7_nat4/6`, whose
/// elements jump to the policy's chain `l7_<policy>` (one per policy with
/// such rules, whether or not a container uses it); that chain holds one
/// redirect per rule and family. `@l7_clients4/6` (the same addresses) is
/// what `egress_host` lets reach the proxy, and only when redirected. The
/// policy's `eg_fwd` chain never accepts these connections itself, so a
/// connection the redirect missed is dropped, not let through.
pub(super) fn l7_redirect<'a>(
    t: &mut Table,
    el: &Elements,
    bodies: impl Iterator<Item = (&'a PolicyKey, &'a Body)>,
) {
    let mut jumps = Vec::new();
    for (i, fam) in [4u8, 6].into_iter().enumerate() {
        let mut clients = addr_set(
            names::l7_clients(fam),
            fam,
            "containers with server-name rules: may reach cordon's L7 proxy when redirected",
        );
        clients.elements = net_elements(&el.l7_clients[i]);
        t.sets.push(clients);
        let mut map = addr_set(
            names::l7_nat(fam),
            fam,
            "container address → its policy's L7 redirect chain",
        );
        map.verdict_map = true;
        map.elements = el.l7_nat[i].clone();
        t.sets.push(map);
        jumps.push(
            Rule::new(vec![Stmt::Vmap {
                key: vec![if fam == 4 {
                    Field::IpSaddr
                } else {
                    Field::Ip6Saddr
                }],
                map: names::l7_nat(fam),
            }])
            .with_comment("containers with server-name rules: their policy's L7 redirect"),
        );
    }
    for (key, body) in bodies {
        let mut rules = Vec::new();
        for (idx, rule) in body.egress.iter().enumerate() {
            if !rule.server_name {
                continue;
            }
            let ports = tcp_ports(&rule.ports);
            if ports.is_empty() {
                continue;
            }
            for fam in [4u8, 6] {
                let field = if fam == 4 {
                    Field::IpDaddr
                } else {
                    Field::Ip6Daddr
                };
                rules.push(
                    Rule::new(vec![
                        Stmt::is(field, Rhs::Set(names::dns_set(key, idx, fam))),
                        Stmt::is(Field::L4proto, Rhs::Symbols(vec!["tcp"])),
                        Stmt::is(Field::ThDport, Rhs::Ports(ports.clone())),
                        Stmt::Redirect(cordon_ruleset::L7_PROXY_PORT),
                    ])
                    .with_comment(format!(
                        "line {}: to cordon's L7 proxy, server name must match",
                        rule.loc.line
                    )),
                );
            }
        }
        if !body.egress.iter().any(|r| r.server_name) {
            continue;
        }
        t.chains.push(Chain {
            name: names::l7_chain(key),
            base: None,
            rules,
        });
    }
    let chain = t
        .chains
        .iter_mut()
        .find(|c| c.name == names::DNS_REDIRECT)
        .expect("dns_redirect is declared first");
    chain.rules.extend(jumps);
}
