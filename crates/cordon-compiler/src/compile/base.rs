//! The base chains of `inet cordon`: replies and link-local neighbour
//! discovery pass, a managed bridge's packets go to their direction's
//! dispatch chain (the verdict maps, then the fail-closed drop), an unbound
//! Docker bridge's are dropped. The forward hook has one base chain,
//! `forward`: a packet's egress (by its source), then its ingress (by its
//! destination).

use cordon_ruleset::names::{self, Dispatch, Path};
use cordon_ruleset::nft::*;
use cordon_ruleset::prefix::{Direction, FailClosed};
use cordon_ruleset::{LogPrefix, NFLOG_GROUP};

use super::nat::dns_client_port;

/// Priority of the forward base chain and the input one.
const EGRESS_PRIORITY: i32 = -10;

/// Priority of the ingress base chain of the output hook.
const INGRESS_PRIORITY: i32 = -5;

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
    // Cheapest test first: every packet that leaves (or enters) through
    // something else than a bridge, the uplink's traffic, stops at the
    // device kind, before the hash and interval lookups.
    vec![Rule::new(vec![
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
        Stmt::Match {
            left: vec![dev],
            negate: false,
            right: Rhs::Set(names::DOCKER_BRIDGE_NAMES.into()),
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

/// In `egress_host`: connections the L7 redirect sent to the proxy pass
/// (`ct status dnat`, from a container with server-name rules); any other
/// container connection to the proxy's port drops, logged, whatever the
/// policy says about the host, so that the proxy is reached only through
/// the redirect.
fn redirected_l7() -> Vec<Rule> {
    let port = cordon_ruleset::L7_PROXY_PORT;
    let to_proxy = || {
        vec![
            Stmt::is(Field::L4proto, Rhs::Symbols(vec!["tcp"])),
            Stmt::is(Field::ThDport, Rhs::Ports(vec![(port, port)])),
        ]
    };
    let mut out: Vec<Rule> = [(4u8, Field::IpSaddr), (6, Field::Ip6Saddr)]
        .into_iter()
        .map(|(fam, field)| {
            let mut stmts = vec![Stmt::is(field, Rhs::Set(names::l7_clients(fam)))];
            stmts.extend(to_proxy());
            stmts.push(Stmt::is(Field::CtStatus, Rhs::Symbols(vec!["dnat"])));
            stmts.push(Stmt::Verdict(Verdict::Accept));
            Rule::new(stmts).with_comment("connections redirected to cordon's L7 proxy")
        })
        .collect();
    let mut stmts = vec![Stmt::is(Field::Iifname, Rhs::Set(names::BRIDGES.into()))];
    stmts.extend(to_proxy());
    stmts.extend([
        Stmt::Counter,
        Stmt::Log {
            prefix: LogPrefix::FailClosed {
                direction: Direction::EgressHost,
                rule: FailClosed::L7Direct,
            }
            .format(),
            group: NFLOG_GROUP,
        },
        Stmt::Verdict(Verdict::Drop),
    ]);
    out.push(
        Rule::new(stmts).with_comment("cordon's L7 proxy is reached only through the redirect"),
    );
    out
}

pub(super) fn base_chains(t: &mut Table) {
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

    // Each direction has one dispatch chain: the verdict-map lookups, then
    // the fail-closed drop. Its map's element enters the policy's forwarded
    // chain (`eg_fwd_*` by goto, `in_fwd_*` by jump), whose first rule sends
    // the host's own hook on to the local chain (`eg_host_*`, `in_local_*`)
    // by goto. Policy chains end with a verdict, so a dispatch never comes
    // back from a map's jump; except `eg_fwd_*`, reached by `goto`, whose
    // allowing rules `return`: to the base chain (the dispatch chain's
    // jump), which goes on with the packet's ingress.
    for dispatch in Dispatch::ALL {
        let (f4, f6) = match dispatch {
            Dispatch::Egress => (Field::IpSaddr, Field::Ip6Saddr),
            Dispatch::Ingress => (Field::IpDaddr, Field::Ip6Daddr),
        };
        let mut rules = vec![
            Rule::new(vec![Stmt::Vmap {
                key: vec![f4],
                map: dispatch.map(4),
            }]),
            Rule::new(vec![Stmt::Vmap {
                key: vec![f6],
                map: dispatch.map(6),
            }]),
        ];
        match dispatch {
            Dispatch::Egress => rules.push(
                Rule::new(drop(Direction::Egress, FailClosed::UnknownSource))
                    .with_comment("not a known container: fail closed"),
            ),
            // Every known container has an ingress element (`accept` when
            // its policy has no ingress rules): a miss in a Docker subnet
            // is an address no known container holds.
            Dispatch::Ingress => {
                for (fam, field) in [(4, f4), (6, f6)] {
                    let mut stmts = vec![Stmt::Match {
                        left: vec![field],
                        negate: false,
                        right: Rhs::Set(names::range_set(names::SUBNETS, fam)),
                    }];
                    stmts.extend(drop(Direction::Ingress, FailClosed::UnknownDestination));
                    rules.push(Rule::new(stmts).with_comment("not a known container: fail closed"));
                }
            }
        }
        t.chains.push(Chain {
            name: dispatch.chain(),
            base: None,
            rules,
        });
    }
    let mut forward = vec![established(), nd(), mld()];
    for path in Path::ALL {
        let egress = path.is_egress();
        let dev = if egress {
            Field::Iifname
        } else {
            Field::Oifname
        };
        let mut judge = vec![Rule::new(vec![
            on_bridge(dev),
            Stmt::Verdict(Verdict::Jump(path.dispatch().chain().into())),
        ])];
        judge.extend(unbound_bridges(dev, egress));
        let (hook, prio) = match path {
            // Egress, then ingress, in the one forward chain (below).
            Path::EgressFwd | Path::IngressFwd => {
                forward.extend(judge);
                continue;
            }
            Path::EgressHost => (Hook::Input, EGRESS_PRIORITY),
            Path::IngressLocal => (Hook::Output, INGRESS_PRIORITY),
        };
        let mut r = vec![established(), nd(), mld()];
        if hook == Hook::Input {
            r.extend(redirected_dns());
            r.extend(redirected_l7());
        }
        r.extend(judge);
        t.chains.push(Chain {
            name: path.base_chain().into(),
            base: Some(BaseChain {
                kind: ChainType::Filter,
                hook,
                priority: prio,
            }),
            rules: r,
        });
    }
    // A forwarded packet: replies and link-local neighbour discovery pass;
    // from a container, its egress (a drop ends here, an allow returns);
    // to a container, its ingress; then the policy's accept. One hook
    // invocation and one conntrack test where two base chains paid two.
    t.chains.push(Chain {
        name: names::FORWARD.into(),
        base: Some(BaseChain {
            kind: ChainType::Filter,
            hook: Hook::Forward,
            priority: EGRESS_PRIORITY,
        }),
        rules: forward,
    });
}
