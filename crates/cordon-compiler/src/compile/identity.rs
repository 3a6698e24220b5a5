//! The `bridge cordon` table: each container port may use only its own
//! MAC and addresses (ARP, IPv4, IPv6, neighbour discovery), and no port
//! may use a known container's identity.

use ipnet::IpNet;

use cordon_ruleset::names::{self, bridge as B};
use cordon_ruleset::nft::*;
use cordon_ruleset::{LogPrefix, NFLOG_GROUP, TABLE};

use super::elements::{net_elements, Elements};
use cordon_ruleset::nft::smallvec;

/// Priority of the bridge table's prerouting chain: before br_netfilter.
const BRIDGE_PRIORITY: i32 = -200;

/// The bridge table, its per-port sets laid out from `el`.
pub(super) fn bridge_table(el: &Elements) -> Table {
    let elements = |items: &mut dyn Iterator<Item = Value>| -> Vec<Element> {
        items
            .map(|v| Element {
                key: smallvec![v],
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
    port_mac.elements = el.port_mac();
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
        b.elements = el.bind(i);
        sets.push(b);
        let mut k = Set::new(
            names::known(fam),
            vec![key],
            "addresses of known containers",
        );
        // In the bridge table a port's link-local address is its own too.
        let mut known = el.known[i].clone();
        if fam == 6 {
            known.extend(el.link_local());
        }
        k.elements = net_elements(&known);
        sets.push(k);
    }
    for (name, comment) in ND_SETS {
        let mut s = Set::new(name, vec![KeyType::Ifname, KeyType::Mark], comment);
        s.elements = el.nd(name);
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

    // The hot path first: a frame whose (port, MAC, address) is bound is
    // accepted by one lookup, without the port lookup and the jump. This
    // is the same verdict `known_port` reaches for it: an IPv4 frame meets
    // nothing there before its `@bind4` accept, and a TCP segment over IPv6
    // nothing before its `@bind6` accept (the router, DHCPv6 and neighbour
    // discovery checks are for ICMPv6 and UDP). A frame that does not match
    // goes on to the port lookup and is judged as before.
    let mut prerouting = fast_path(&m, &set, &ethertype);
    // Frames from any other port may not use a known container's identity.
    prerouting.extend([
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
    ]);
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

/// The first rules of `prerouting`: IPv4 frames and TCP over IPv6 from a
/// port with its own MAC and address, accepted by one lookup.
fn fast_path(
    m: &dyn Fn(Vec<Field>, bool, Rhs) -> Stmt,
    set: &dyn Fn(&str) -> Rhs,
    ethertype: &dyn Fn(&'static str) -> Stmt,
) -> Vec<Rule> {
    vec![
        Rule::new(vec![
            ethertype("ip"),
            m(
                vec![Field::Iifname, Field::EtherSaddr, Field::IpSaddr],
                false,
                set(&B::bind(4)),
            ),
            Stmt::Verdict(Verdict::Accept),
        ])
        .with_comment("IPv4 from a port's own MAC and address: one lookup"),
        Rule::new(vec![
            ethertype("ip6"),
            m(vec![Field::L4proto], false, Rhs::Symbols(vec!["tcp"])),
            m(
                vec![Field::Iifname, Field::EtherSaddr, Field::Ip6Saddr],
                false,
                set(&B::bind(6)),
            ),
            Stmt::Verdict(Verdict::Accept),
        ])
        .with_comment("TCP over IPv6 from a port's own MAC and address: one lookup"),
    ]
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
