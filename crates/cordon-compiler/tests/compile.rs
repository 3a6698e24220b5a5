//! The compiler as a pure function: policy + inventory → ruleset.

use cordon_compiler::{compile, Compiled, SetOverrides};
use cordon_inventory::{Container, Endpoint, Inventory, Network};
use cordon_ruleset::names::{self, Path};
use cordon_ruleset::nft::{
    smallvec, ChainType, Family, Hook, Rhs, Ruleset, Set, Stmt, Value, Verdict,
};
use cordon_ruleset::text;
use ipnet::IpNet;
use proptest::prelude::*;

const POLICY: &str = r#"
version: 1
sets:
  office: [203.0.113.0/26, "2001:db8:77::/48"]
policies:
  - name: sftp
    select: { label: { app: sftp } }
    ingress:
      - from: [office]
        ports: [22/tcp]
    egress: []
  - name: db
    select: { name: "db-*" }
    ingress:
      - from: [web]
        ports: [5432/tcp]
    egress: []
  - name: web
    select: { compose: { service: web } }
    mode: audit
    egress:
      - to: [db]
        ports: [5432/tcp]
      - to: ["api.example.com", "*.example.org"]
        ports: [443/tcp]
      - to: [internet]
        ports: [80/tcp, 443/tcp, 8000-8100/tcp, 8050-8200/tcp]
      - to: [host, 198.51.100.0/24, "2001:db8::1"]
        ports: [53/udp, icmp]
"#;

fn policy() -> cordon_policy::PolicyFile {
    cordon_policy::parse("policy.yaml", POLICY).expect("test policy parses")
}

fn net(name: &str, bridge: &str, subnet: &str, default: bool) -> Network {
    Network {
        id: format!("{name:0>64}"),
        name: name.into(),
        driver: "bridge".into(),
        bridge: Some(bridge.into()),
        subnets: vec![subnet.parse().unwrap()],
        default_bridge: default,
        ..Default::default()
    }
}

fn container(i: usize, name: &str, labels: &[(&str, &str)]) -> Container {
    Container {
        id: format!("{i:064x}"),
        name: name.into(),
        image: "img".into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        network_mode: "app".into(),
        endpoints: vec![Endpoint {
            network: "app".into(),
            ipv4: Some(
                format!("172.20.{}.{}", i / 200, i % 200 + 2)
                    .parse()
                    .unwrap(),
            ),
            ipv6: Some(format!("2001:db8:20::{:x}", i + 2).parse().unwrap()),
            mac: Some(format!("02:42:ac:14:{:02x}:{:02x}", i / 200, i % 200 + 2)),
            host_iface: Some(format!("veth{i:07x}")),
            bridge: Some("br-app".into()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn inventory(containers: Vec<Container>) -> Inventory {
    Inventory {
        version: 1,
        networks: vec![
            net("bridge", "docker0", "172.17.0.0/16", true),
            net("app", "br-app", "172.20.0.0/16", false),
        ],
        containers,
    }
}

fn sample() -> Inventory {
    inventory(vec![
        container(0, "sftp-1", &[("app", "sftp")]),
        container(1, "db-main", &[]),
        container(2, "shop-web-1", &[("com.docker.compose.service", "web")]),
        container(3, "other", &[]),
        container(4, "typo", &[("cordon.policy", "sftpp")]),
    ])
}

fn compiled() -> Compiled {
    compile(&policy(), &sample(), &SetOverrides::default())
}

fn set<'a>(r: &'a Ruleset, family: Family, name: &str) -> &'a Set {
    r.tables
        .iter()
        .filter(|t| t.family == family)
        .flat_map(|t| &t.sets)
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("set {name}"))
}

fn jump_of(r: &Ruleset, map: &str, addr: &str) -> Option<String> {
    let want: ipnet::IpNet = addr.parse::<std::net::IpAddr>().unwrap().into();
    set(r, Family::Inet, map).elements.iter().find_map(|e| {
        (e.key.to_vec() == vec![Value::Net(want)]).then(|| match &e.verdict {
            // The egress map enters its chains by goto (their forwarded
            // allows return to the forward chain); the ingress map jumps,
            // or accepts for a policy without ingress rules.
            Some(Verdict::Goto(c)) if map.starts_with("egress") => c.to_string(),
            Some(Verdict::Jump(c)) if map.starts_with("ingress") || map.starts_with("l7_nat") => {
                c.to_string()
            }
            Some(Verdict::Accept) if map.starts_with("ingress") => "accept".into(),
            v => panic!("unexpected verdict {v:?} in {map}"),
        })
    })
}

fn rule_count(r: &Ruleset) -> usize {
    r.tables
        .iter()
        .flat_map(|t| &t.chains)
        .map(|c| c.rules.len())
        .sum()
}

#[test]
fn containers_are_classified_to_their_policy_chains() {
    let c = compiled();
    let r = &c.ruleset;
    // One map per direction: egress enters the forwarded egress chain,
    // which hands the input hook on to the host one.
    assert_eq!(
        jump_of(r, "egress4", "172.20.0.2").as_deref(),
        Some("eg_fwd_sftp")
    );
    assert_eq!(
        jump_of(r, "ingress4", "172.20.0.2").as_deref(),
        Some("in_fwd_sftp")
    );
    assert_eq!(
        jump_of(r, "ingress6", "2001:db8:20::2").as_deref(),
        Some("in_fwd_sftp")
    );
    assert_eq!(
        jump_of(r, "egress4", "172.20.0.3").as_deref(),
        Some("eg_fwd_db")
    );
    assert_eq!(
        jump_of(r, "egress6", "2001:db8:20::4").as_deref(),
        Some("eg_fwd_web")
    );
    // web has no ingress rules: its ingress element accepts (unrestricted).
    assert_eq!(
        jump_of(r, "ingress4", "172.20.0.4").as_deref(),
        Some("accept")
    );
    assert_eq!(
        jump_of(r, "egress4", "172.20.0.5").as_deref(),
        Some("eg_fwd__default")
    );
    // Every container has one element per address in each direction.
    for map in ["egress4", "egress6", "ingress4", "ingress6"] {
        assert_eq!(set(r, Family::Inet, map).elements.len(), 5, "{map}");
    }
    let inet = r.table(Family::Inet).unwrap();
    for gone in ["known4", "known6", "egress_fwd4", "ingress_local6"] {
        assert!(inet.sets.iter().all(|s| s.name != gone), "{gone}");
    }
    // The entry chains start with the hook split.
    let first = |chain: &str| {
        text::rule_text(&inet.chains.iter().find(|c| c.name == chain).unwrap().rules[0])
    };
    assert!(first("eg_fwd_web").starts_with("meta oif 0 goto eg_host_web "));
    assert!(first("in_fwd_sftp").starts_with("meta iif 0 goto in_local_sftp "));
    let shown: Vec<(&str, String)> = c
        .assignments
        .iter()
        .map(|a| (a.container.as_str(), a.policy.to_string()))
        .collect();
    let names: Vec<(&str, &str)> = shown.iter().map(|(c, p)| (*c, p.as_str())).collect();
    assert_eq!(
        names,
        [
            ("sftp-1", "sftp"),
            ("db-main", "db"),
            ("shop-web-1", "web"),
            ("other", "default"),
            ("typo", "unknown policy sftpp")
        ]
    );
}

#[test]
fn unknown_policy_label_gets_nothing_in_either_direction() {
    let c = compiled();
    let r = &c.ruleset;
    assert_eq!(
        jump_of(r, "egress4", "172.20.0.6").as_deref(),
        Some("eg_fwd__unknown")
    );
    assert_eq!(
        jump_of(r, "ingress4", "172.20.0.6").as_deref(),
        Some("in_fwd__unknown")
    );
    let inet = r.table(Family::Inet).unwrap();
    for chain in [
        "eg_fwd__unknown",
        "eg_host__unknown",
        "in_fwd__unknown",
        "in_local__unknown",
    ] {
        let ch = inet.chains.iter().find(|c| c.name == chain).unwrap();
        // The entry chains first hand the host's hook to the local one.
        let own = if chain.contains("_fwd_") { 2 } else { 1 };
        assert_eq!(ch.rules.len(), own, "{chain} must only log and drop");
        assert_eq!(
            ch.rules[own - 1].stmts.last(),
            Some(&Stmt::Verdict(Verdict::Drop))
        );
    }
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("typo") && w.contains("sftpp")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn policy_sets_hold_their_containers_addresses() {
    let r = compiled().ruleset;
    let db4 = set(&r, Family::Inet, "pol_db4");
    assert_eq!(db4.elements.len(), 1);
    assert_eq!(
        db4.elements[0].key.to_vec(),
        vec![Value::Net("172.20.0.3/32".parse().unwrap())]
    );
    assert!(set(&r, Family::Inet, "pol_sftp6").elements.len() == 1);
}

#[test]
fn bridge_table_binds_each_port_to_its_mac_and_addresses() {
    let r = compiled().ruleset;
    let ports = set(&r, Family::Bridge, "ports");
    assert_eq!(ports.elements.len(), 5);
    let bind4 = set(&r, Family::Bridge, "bind4");
    assert!(bind4.elements.iter().any(|e| e.key.to_vec()
        == vec![
            Value::Ifname("veth0000001".into()),
            Value::Mac("02:42:ac:14:00:03".into()),
            Value::Net("172.20.0.3/32".parse().unwrap())
        ]));
    // Each port's global and link-local (EUI-64 of its MAC) address.
    let bind6 = set(&r, Family::Bridge, "bind6");
    assert_eq!(bind6.elements.len(), 10);
    assert!(bind6.elements.iter().any(|e| e.key.to_vec()
        == vec![
            Value::Ifname("veth0000001".into()),
            Value::Mac("02:42:ac:14:00:03".into()),
            Value::Net("fe80::42:acff:fe14:3/128".parse().unwrap())
        ]));
    let mac = set(&r, Family::Bridge, "port_mac");
    assert!(mac.elements.iter().any(|e| e.key.to_vec()
        == vec![
            Value::Ifname("veth0000001".into()),
            Value::Mac("02:42:ac:14:00:03".into())
        ]));
}

#[test]
fn host_is_reached_only_through_host_or_any() {
    let r = compiled().ruleset;
    let inet = r.table(Family::Inet).unwrap();
    let host = inet
        .chains
        .iter()
        .find(|c| c.name == "eg_host_web")
        .unwrap();
    let text: Vec<String> = host.rules.iter().map(text::rule_text).collect();
    // The `host` rule (udp 53 and icmp), then the final log: no internet,
    // no CIDR, no DNS set.
    assert_eq!(text.len(), 3, "{text:#?}");
    assert!(text.iter().all(|t| !t.contains("daddr")), "{text:#?}");
    let fwd = inet.chains.iter().find(|c| c.name == "eg_fwd_web").unwrap();
    let text: Vec<String> = fwd.rules.iter().map(text::rule_text).collect();
    assert!(
        text.iter().any(|t| t.contains(
            "ip daddr != @nonpublic4 meta l4proto tcp th dport { 80, 443, 8000-8200 } counter return"
        )),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t
                .contains("ip daddr 198.51.100.0/24 meta l4proto udp th dport 53 counter return")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t
                .contains("ip6 daddr 2001:db8::1 meta l4proto { icmp, ipv6-icmp } counter return")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t
                .contains("ip daddr @dns_web_1_4 meta l4proto tcp th dport 443 counter return")),
        "{text:#?}"
    );
}

#[test]
fn audit_mode_logs_and_accepts() {
    let r = compiled().ruleset;
    let inet = r.table(Family::Inet).unwrap();
    // Forwarded: logged, then back to the forward chain (on to ingress).
    let fwd = inet.chains.iter().find(|c| c.name == "eg_fwd_web").unwrap();
    let last = fwd.rules.last().unwrap();
    assert_eq!(last.stmts.last(), Some(&Stmt::Verdict(Verdict::Return)));
    assert!(
        matches!(&last.stmts[1], Stmt::Log { prefix, .. } if prefix == "cordon egress web audit ")
    );
    // To the host: logged and accepted.
    let host = inet
        .chains
        .iter()
        .find(|c| c.name == "eg_host_web")
        .unwrap();
    let last = host.rules.last().unwrap();
    assert_eq!(last.stmts.last(), Some(&Stmt::Verdict(Verdict::Accept)));
    assert!(
        matches!(&last.stmts[1], Stmt::Log { prefix, .. } if prefix == "cordon egress-host web audit ")
    );
    let sftp = inet
        .chains
        .iter()
        .find(|c| c.name == "in_fwd_sftp")
        .unwrap();
    assert!(
        matches!(&sftp.rules.last().unwrap().stmts[1], Stmt::Log { prefix, group: 100 } if prefix == "cordon ingress sftp drop ")
    );
}

#[test]
fn live_set_edits_are_kept() {
    let mut o = SetOverrides::default();
    o.add("office", "198.51.100.7/32".parse().unwrap());
    o.remove("office", "203.0.113.0/26".parse().unwrap());
    let r = compile(&policy(), &sample(), &o).ruleset;
    let s = set(&r, Family::Inet, "set_office4");
    assert_eq!(s.elements.len(), 1);
    assert_eq!(
        s.elements[0].key.to_vec(),
        vec![Value::Net("198.51.100.7/32".parse().unwrap())]
    );
    assert_eq!(set(&r, Family::Inet, "set_office6").elements.len(), 1);
}

#[test]
fn endpoints_without_interface_or_with_taken_address_are_not_let_out() {
    let mut a = container(0, "a", &[]);
    a.endpoints[0].host_iface = None;
    let b = container(1, "b", &[]);
    let mut thief = container(2, "thief", &[]);
    thief.endpoints[0].ipv4 = b.endpoints[0].ipv4;
    let c = compile(
        &policy(),
        &inventory(vec![a, b, thief]),
        &SetOverrides::default(),
    );
    assert_eq!(jump_of(&c.ruleset, "egress4", "172.20.0.2"), None);
    assert_eq!(jump_of(&c.ruleset, "ingress4", "172.20.0.2"), None);
    assert_eq!(
        jump_of(&c.ruleset, "egress4", "172.20.0.3").as_deref(),
        Some("eg_fwd__default")
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("container a: no host interface")),
        "{:?}",
        c.warnings
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("thief") && w.contains("claimed by b")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn same_network_excludes_the_default_bridge() {
    let r = compiled().ruleset;
    let s = set(&r, Family::Inet, "same_net");
    assert_eq!(
        s.elements
            .iter()
            .map(|e| e.key.to_vec())
            .collect::<Vec<_>>(),
        vec![vec![
            Value::Ifname("br-app".into()),
            Value::Ifname("br-app".into())
        ]]
    );
    let b = set(&r, Family::Inet, "bridges");
    assert_eq!(b.elements.len(), 2);
}

#[test]
fn unknown_sources_and_destinations_fail_closed() {
    let r = compiled().ruleset;
    let inet = r.table(Family::Inet).unwrap();
    let chain = |name: &str| inet.chains.iter().find(|c| c.name == name).unwrap();
    for path in Path::ALL {
        let base = path.base_chain();
        let ch = chain(base);
        assert!(ch.base.is_some());
        // Traffic of a managed bridge goes to the dispatch chain...
        let dispatch = path.dispatch().chain();
        let last = ch
            .rules
            .iter()
            .find(|r| {
                r.stmts.last() == Some(&Stmt::Verdict(Verdict::Jump(dispatch.as_str().into())))
            })
            .unwrap();
        assert!(matches!(&last.stmts[0], Stmt::Match { right: Rhs::Set(s), .. } if s == "bridges"));
        // ...which ends by dropping what no map entry claimed.
        let d = chain(&dispatch);
        assert_eq!(
            d.rules.last().unwrap().stmts.last(),
            Some(&Stmt::Verdict(Verdict::Drop)),
            "{base}"
        );
    }
}

/// With `"iptables": false` Docker masquerades nothing: cordon masquerades
/// the IPv4 subnets of the networks the inventory marks, never internal
/// ones, and the nat chain and its set exist (empty) whatever the
/// inventory, so containers and networks only ever change set elements.
#[test]
fn masquerade_set_and_nat_chain() {
    let plain = compiled();
    assert!(set(&plain.ruleset, Family::Inet, "masq4")
        .elements
        .is_empty());

    let mut inv = sample();
    let mut app = net("app", "br-app", "172.20.0.0/16", false);
    app.subnets.push("2001:db8:20::/64".parse().unwrap());
    app.masquerade = true;
    let mut internal = net("inner", "br-inner", "172.21.0.0/16", false);
    internal.masquerade = true;
    internal.internal = true;
    inv.networks = vec![
        net("bridge", "docker0", "172.17.0.0/16", true),
        app,
        internal,
    ];
    let c = compile(&policy(), &inv, &SetOverrides::default());
    let masq = set(&c.ruleset, Family::Inet, "masq4");
    assert!(masq.interval);
    assert_eq!(
        masq.elements
            .iter()
            .map(|e| e.key.to_vec())
            .collect::<Vec<_>>(),
        vec![vec![Value::Net("172.20.0.0/16".parse().unwrap())]],
        "IPv4 of the marked network only: not its IPv6, not the internal one"
    );
    assert_eq!(rule_count(&c.ruleset), rule_count(&plain.ruleset));

    let inet = c.ruleset.table(Family::Inet).unwrap();
    let chain = inet
        .chains
        .iter()
        .find(|c| c.name == "postrouting")
        .unwrap();
    let base = chain.base.unwrap();
    assert_eq!(
        (base.kind, base.hook, base.priority),
        (ChainType::Nat, Hook::Postrouting, 100)
    );
    assert_eq!(chain.rules.len(), 1);
    let text = text::render(&c.ruleset);
    assert!(
        text.contains("type nat hook postrouting priority 100; policy accept;"),
        "{text}"
    );
    assert!(
        text.contains("ip saddr @masq4 oifname != @bridges masquerade"),
        "{text}"
    );
}

/// The golden rendering of the sample: a reviewer reads this file to see
/// the whole ruleset. `UPDATE_GOLDEN=1 cargo test` rewrites it.
#[test]
fn golden_text() {
    let text = text::render(&compiled().ruleset);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/sample.nft");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &text).unwrap();
    }
    let want = std::fs::read_to_string(path).expect("golden file (UPDATE_GOLDEN=1 creates it)");
    assert_eq!(text, want, "rendering changed; review and UPDATE_GOLDEN=1");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The number of rules never depends on the number of containers:
    /// containers only add set and map elements.
    #[test]
    fn rule_count_is_independent_of_containers(kinds in proptest::collection::vec(0u8..5, 0..400)) {
        let base = rule_count(&compile(&policy(), &inventory(vec![]), &SetOverrides::default()).ruleset);
        let containers = kinds.iter().enumerate().map(|(i, k)| {
            let labels: &[(&str, &str)] = match k {
                0 => &[("app", "sftp")],
                1 => &[("com.docker.compose.service", "web")],
                2 => &[("cordon.policy", "nope")],
                3 => &[("cordon.policy", "db")],
                _ => &[],
            };
            container(i, &format!("c{i}"), labels)
        }).collect();
        let c = compile(&policy(), &inventory(containers), &SetOverrides::default());
        prop_assert_eq!(rule_count(&c.ruleset), base);
        prop_assert_eq!(set(&c.ruleset, Family::Inet, "egress4").elements.len(), kinds.len());
        prop_assert_eq!(set(&c.ruleset, Family::Inet, "ingress4").elements.len(), kinds.len());
        prop_assert_eq!(set(&c.ruleset, Family::Bridge, "ports").elements.len(), kinds.len());
    }
}

// ---- Incremental updates (cordon_ruleset::diff) ----

use cordon_ruleset::diff::{self, ObservedTable, SetChange, Update};

/// Applies element changes to a ruleset, as the kernel would.
fn apply_changes(r: &Ruleset, update: &Update) -> Ruleset {
    let mut out = r.clone();
    let Update::Elements(changes) = update else {
        return out;
    };
    for c in changes {
        let t = out
            .tables
            .iter_mut()
            .find(|t| t.family == c.family && t.name == c.table)
            .expect("table");
        let s = t.sets.iter_mut().find(|s| s.name == c.set).expect("set");
        s.elements.retain(|e| !c.delete.contains(e));
        s.elements.extend(c.add.iter().cloned());
    }
    out
}

/// Elements compared as sets: the kernel keeps no order.
fn normalised(r: &Ruleset) -> Ruleset {
    let mut r = r.clone();
    for t in &mut r.tables {
        for s in &mut t.sets {
            s.elements.sort_by_key(|e| format!("{e:?}"));
        }
    }
    r
}

fn observed(r: &Ruleset) -> diff::Observed {
    diff::Observed {
        tables: r
            .tables
            .iter()
            .map(|t| {
                (
                    t.family,
                    t.name.clone(),
                    ObservedTable {
                        chains: t
                            .chains
                            .iter()
                            .map(|c| (c.name.clone(), c.rules.len()))
                            .collect(),
                        sets: t
                            .sets
                            .iter()
                            .map(|s| (s.name.clone(), s.elements.clone()))
                            .collect(),
                        counted: t
                            .sets
                            .iter()
                            .filter(|s| s.counter)
                            .map(|s| s.name.clone())
                            .collect(),
                        ..Default::default()
                    },
                )
            })
            .collect(),
    }
}

#[test]
fn a_new_container_is_only_element_additions() {
    let p = policy();
    let before = compile(
        &p,
        &inventory(vec![container(0, "sftp-1", &[("app", "sftp")])]),
        &SetOverrides::default(),
    );
    let after = compile(&p, &sample(), &SetOverrides::default());
    let update = diff::between(&before.ruleset, &after.ruleset);
    let Update::Elements(changes) = &update else {
        panic!("expected element changes, got {update:?}");
    };
    assert!(changes.iter().all(|c| c.delete.is_empty()), "{changes:?}");
    assert!(changes.iter().any(|c| c.set == "egress4"));
    assert!(changes
        .iter()
        .any(|c| c.set == "bind4" && c.family == Family::Bridge));
    assert_eq!(
        normalised(&apply_changes(&before.ruleset, &update)),
        normalised(&after.ruleset)
    );
    // And back: only deletions.
    let back = diff::between(&after.ruleset, &before.ruleset);
    let Update::Elements(changes) = &back else {
        panic!("{back:?}")
    };
    assert!(changes.iter().all(|c| c.add.is_empty()), "{changes:?}");
    assert!(diff::between(&after.ruleset, &after.ruleset).is_none());
}

/// The daemon follows a container with the generic element diff: a
/// dual-stack container costs exactly its four verdict-map elements (one
/// per direction and family), an IPv4-only one its two, whatever its
/// policy (an `accept` ingress element when the policy has no ingress
/// rules), added when it comes and deleted when it goes.
#[test]
fn a_container_is_one_map_element_per_direction_and_address() {
    let p = policy();
    let map_changes = |from: &Ruleset, to: &Ruleset| -> (usize, usize, Vec<String>) {
        let Update::Elements(changes) = diff::between(from, to) else {
            panic!("expected element changes")
        };
        let maps: Vec<&SetChange> = changes
            .iter()
            .filter(|c| names::Dispatch::from_map(&c.set).is_some())
            .collect();
        // No other verdict map of the inet table changes for these.
        let inet = to.table(Family::Inet).unwrap();
        for c in &changes {
            let decl = inet.sets.iter().find(|s| s.name == c.set);
            if decl.is_some_and(|s| s.verdict_map && s.counter) {
                assert!(names::Dispatch::from_map(&c.set).is_some(), "{}", c.set);
            }
        }
        (
            maps.iter().map(|c| c.add.len()).sum(),
            maps.iter().map(|c| c.delete.len()).sum(),
            maps.iter().map(|c| c.set.clone()).collect(),
        )
    };
    for (labels, v6) in [
        (&[("app", "sftp")][..], true),
        (&[("com.docker.compose.service", "web")][..], true),
        (&[][..], true),
        (&[("cordon.policy", "nope")][..], true),
        (&[("app", "sftp")][..], false),
        (&[][..], false),
    ] {
        let others: Vec<Container> = (0..3)
            .map(|i| container(i, &format!("c{i}"), &[]))
            .collect();
        let mut newcomer = container(7, "new", labels);
        if !v6 {
            newcomer.endpoints[0].ipv6 = None;
        }
        let before = compile(&p, &inventory(others.clone()), &SetOverrides::default()).ruleset;
        let mut with = others;
        with.push(newcomer);
        let after = compile(&p, &inventory(with), &SetOverrides::default()).ruleset;
        let per_dir = if v6 { 2 } else { 1 };
        let (add, del, sets) = map_changes(&before, &after);
        assert_eq!((add, del), (2 * per_dir, 0), "{labels:?} v6 {v6}: {sets:?}");
        let (add, del, _) = map_changes(&after, &before);
        assert_eq!((add, del), (0, 2 * per_dir), "{labels:?} v6 {v6}");
    }
}

#[test]
fn a_policy_change_replaces_the_tables() {
    let other = cordon_policy::parse("p.yaml", "version: 1\ndefault:\n  egress: []\n").unwrap();
    let a = compile(&policy(), &sample(), &SetOverrides::default());
    let b = compile(&other, &sample(), &SetOverrides::default());
    assert!(matches!(
        diff::between(&a.ruleset, &b.ruleset),
        Update::Replace(_)
    ));
}

#[test]
fn the_kernel_is_repaired_by_elements_or_replacement() {
    let c = compiled();
    let r = &c.ruleset;
    assert!(diff::against_kernel(&observed(r), r).is_none());

    // A deleted map element comes back as an addition.
    let mut o = observed(r);
    o.tables[1].2.sets.get_mut("egress4").unwrap().pop();
    let up = diff::against_kernel(&o, r);
    let Update::Elements(ch) = &up else {
        panic!("{up:?}")
    };
    assert_eq!((ch.len(), ch[0].add.len(), ch[0].delete.len()), (1, 1, 0));

    // An element someone added is removed.
    let mut o = observed(r);
    let extra = o.tables[1].2.sets["egress4"][0].clone();
    let mut forged = extra.clone();
    forged.key = smallvec![Value::Net("172.20.9.9/32".parse().unwrap())];
    o.tables[1]
        .2
        .sets
        .get_mut("egress4")
        .unwrap()
        .push(forged.clone());
    let Update::Elements(ch) = diff::against_kernel(&o, r) else {
        panic!()
    };
    assert_eq!(ch[0].delete, vec![forged.clone()]);

    // A flushed chain, a deleted chain, a deleted table: replaced.
    let mut o = observed(r);
    *o.tables[1].2.chains.get_mut("forward").unwrap() = 0;
    assert!(matches!(diff::against_kernel(&o, r), Update::Replace(m) if m.contains("forward")));
    let mut o = observed(r);
    o.tables[0].2.chains.remove("known_port");
    assert!(matches!(diff::against_kernel(&o, r), Update::Replace(_)));
    let mut o = observed(r);
    o.tables.remove(1);
    assert!(matches!(diff::against_kernel(&o, r), Update::Replace(m) if m.contains("missing")));
    // A dispatch map without per-element counters (an older install).
    let mut o = observed(r);
    assert!(o.tables[1].2.counted.remove("egress4"));
    assert!(
        matches!(diff::against_kernel(&o, r), Update::Replace(m) if m == "set egress4 has no counters")
    );

    // DNS timeout sets are the proxy's: their elements are never touched.
    let mut o = observed(r);
    let dns = o.tables[1]
        .2
        .sets
        .keys()
        .find(|k| k.starts_with("dns_web_"))
        .unwrap()
        .clone();
    o.tables[1]
        .2
        .sets
        .get_mut(&dns)
        .unwrap()
        .push(forged.clone());
    assert!(diff::against_kernel(&o, r).is_none());
}

#[test]
fn element_transaction_deletes_before_it_adds() {
    let p = policy();
    let a = compile(
        &p,
        &inventory(vec![container(0, "sftp-1", &[("app", "sftp")])]),
        &SetOverrides::default(),
    );
    let b = compile(
        &p,
        &inventory(vec![container(0, "db-1", &[])]),
        &SetOverrides::default(),
    );
    let Update::Elements(ch) = diff::between(&a.ruleset, &b.ruleset) else {
        panic!()
    };
    let doc = diff::transaction(&ch);
    let cmds = doc["nftables"].as_array().unwrap();
    let first_add = cmds.iter().position(|c| c.get("add").is_some()).unwrap();
    assert!(cmds[..first_add].iter().all(|c| c.get("delete").is_some()));
    assert!(cmds[first_add..].iter().all(|c| c.get("add").is_some()));
    // The same address now jumps to db's chain: deleted and added.
    let text = doc.to_string();
    assert!(
        text.contains("eg_fwd_db") && text.contains("eg_fwd_sftp"),
        "{text}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// From any set of containers to any other, the element changes bring
    /// the first ruleset exactly to the second.
    #[test]
    fn element_changes_reach_the_target(a in proptest::collection::btree_set(0usize..40, 0..20),
                                        b in proptest::collection::btree_set(0usize..40, 0..20)) {
        let p = policy();
        let mk = |ids: &std::collections::BTreeSet<usize>| inventory(ids.iter().map(|&i| {
            let labels: &[(&str, &str)] = match i % 3 { 0 => &[("app", "sftp")], 1 => &[], _ => &[("com.docker.compose.service", "web")] };
            container(i, &format!("c{i}"), labels)
        }).collect());
        let ra = compile(&p, &mk(&a), &SetOverrides::default()).ruleset;
        let rb = compile(&p, &mk(&b), &SetOverrides::default()).ruleset;
        let up = diff::between(&ra, &rb);
        prop_assert!(!matches!(up, Update::Replace(_)));
        prop_assert_eq!(normalised(&apply_changes(&ra, &up)), normalised(&rb));
        prop_assert!(diff::against_kernel(&observed(&rb), &rb).is_none());
    }
}

#[test]
fn an_image_s_policy_label_gets_the_default_and_a_warning() {
    let mut from_image = container(5, "imaged", &[("cordon.policy", "sftp")]);
    from_image.image_labels = ["cordon.policy".to_string()].into();
    let by_hand = container(6, "by-hand", &[("cordon.policy", "sftp")]);
    let c = compile(
        &policy(),
        &inventory(vec![from_image, by_hand]),
        &SetOverrides::default(),
    );
    let policy_of = |name: &str| {
        c.assignments
            .iter()
            .find(|a| a.container == name)
            .map(|a| a.policy.to_string())
    };
    assert_eq!(policy_of("imaged").as_deref(), Some("default"));
    assert_eq!(policy_of("by-hand").as_deref(), Some("sftp"));
    assert_eq!(
        c.warnings
            .iter()
            .filter(|w| w.contains("its image's label cordon.policy=sftp is ignored"))
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["container imaged: its image's label cordon.policy=sftp is ignored (image labels select no policy unless the policy file sets trust_image_labels: true)"]
    );
}

#[test]
fn warnings_show_docker_values_escaped() {
    let c = compile(
        &policy(),
        &inventory(vec![container(7, "x", &[("cordon.policy", "a\nforged")])]),
        &SetOverrides::default(),
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("label cordon.policy=a\\nforged names no policy")),
        "{:?}",
        c.warnings
    );
    assert!(c.warnings.iter().all(|w| !w.contains('\n')));
}

/// The words of the neighbour discovery sets are the packet's bytes as
/// `meta mark` holds them after `meta mark set @th,…,32`: host byte order
/// of the big-endian bytes.
#[test]
fn neighbour_discovery_sets_hold_each_ports_own_words() {
    let r = compiled().ruleset;
    let word = |set_name: &str, port: &str| -> Vec<u8> {
        let s = set(&r, Family::Bridge, set_name);
        let e = s
            .elements
            .iter()
            .find(|e| e.key[0] == Value::Ifname(port.into()))
            .unwrap_or_else(|| panic!("{port} in {set_name}"));
        match e.key[1] {
            Value::Mark(m) => m.to_ne_bytes().to_vec(),
            ref v => panic!("not a mark: {v:?}"),
        }
    };
    let p = "veth0000001";
    let g: Vec<u8> = ["nd_g1", "nd_g2", "nd_g3", "nd_g4"]
        .iter()
        .flat_map(|s| word(s, p))
        .collect();
    let want: std::net::Ipv6Addr = "2001:db8:20::3".parse().unwrap();
    assert_eq!(g, want.octets());
    let ll: Vec<u8> = ["nd_ll3", "nd_ll4"]
        .iter()
        .flat_map(|s| word(s, p))
        .collect();
    assert_eq!(ll, [0x00, 0x42, 0xac, 0xff, 0xfe, 0x14, 0x00, 0x03]);
    assert_eq!(word("nd_mac1", p), [0x02, 0x42, 0xac, 0x14]);
    assert_eq!(word("nd_mac2", p), [0xac, 0x14, 0x00, 0x03]);
    // The link-local address is a known address of the bridge table (no
    // other port may use it), not of the inet table's maps.
    let ll6: IpNet = "fe80::42:acff:fe14:3/128".parse().unwrap();
    assert!(set(&r, Family::Bridge, "known6")
        .elements
        .iter()
        .any(|e| e.key.to_vec() == vec![Value::Net(ll6)]));
    for map in ["egress6", "ingress6"] {
        assert!(!set(&r, Family::Inet, map)
            .elements
            .iter()
            .any(|e| e.key.to_vec() == vec![Value::Net(ll6)]));
    }
}

/// From a known port, router advertisements, redirects and DHCPv6 server
/// messages drop before anything accepts; solicitations and advertisements
/// go through `nd_claim` first; a link-local source must be the port's
/// own (only `::` is accepted on the MAC alone).
#[test]
fn known_ports_send_no_router_messages_and_claim_only_their_own() {
    let r = compiled().ruleset;
    let bridge = r.table(Family::Bridge).unwrap();
    let chain = |name: &str| bridge.chains.iter().find(|c| c.name == name).unwrap();
    let texts: Vec<String> = chain("known_port")
        .rules
        .iter()
        .map(cordon_ruleset::text::rule_text)
        .collect();
    let first_accept = texts.iter().position(|t| t.contains(" accept")).unwrap();
    let before = &texts[..first_accept];
    for needle in [
        "nd-router-advert, nd-redirect, router-renumbering",
        "th sport 547",
        "th dport 546",
        "jump nd_claim",
    ] {
        assert!(
            before.iter().any(|t| t.contains(needle)),
            "{needle} before the first accept: {before:#?}"
        );
    }
    assert!(!texts.iter().any(|t| t.contains("fe80::/10")), "{texts:#?}");
    // Every way out of the ND chains but a drop puts the mark back to 0.
    for name in ["nd_claim", "nd_target"] {
        for rule in &chain(name).rules {
            match rule.stmts.last() {
                Some(Stmt::Verdict(Verdict::Return)) => assert_eq!(
                    rule.stmts[rule.stmts.len() - 2],
                    Stmt::SetMark(None),
                    "{name}: {}",
                    cordon_ruleset::text::rule_text(rule)
                ),
                Some(Stmt::Verdict(Verdict::Drop | Verdict::Jump(_))) => {}
                other => panic!("{name}: unexpected end {other:?}"),
            }
        }
        assert!(matches!(
            chain(name).rules.last().unwrap().stmts.last(),
            Some(Stmt::Verdict(Verdict::Drop))
        ));
    }
}

/// `prerouting` accepts an IPv4 frame, and a TCP segment over IPv6, from
/// a port's own MAC and address by one lookup before the port lookup; it
/// is the verdict `known_port` would reach: every rule of `known_port`
/// before its `@bind4` accept is for IPv6 (or ARP), and every one before
/// its `@bind6` accept is for IPv4, ICMPv6 or UDP. A frame that does not match
/// still meets the port lookup.
#[test]
fn the_bridge_fast_path_accepts_only_what_known_port_accepts() {
    let r = compiled().ruleset;
    let bridge = r.table(Family::Bridge).unwrap();
    let texts = |name: &str| -> Vec<String> {
        bridge
            .chains
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .rules
            .iter()
            .map(cordon_ruleset::text::rule_text)
            .collect()
    };
    let pre = texts("prerouting");
    assert!(
        pre[0].starts_with("ether type ip iifname . ether saddr . ip saddr @bind4 accept"),
        "{pre:#?}"
    );
    assert!(
        pre[1].starts_with(
            "ether type ip6 meta l4proto tcp iifname . ether saddr . ip6 saddr @bind6 accept"
        ),
        "{pre:#?}"
    );
    assert!(
        pre[2].starts_with("iifname @ports jump known_port"),
        "{pre:#?}"
    );
    let known = texts("known_port");
    let at = |needle: &str| known.iter().position(|t| t.contains(needle)).unwrap();
    for t in &known[..at("@bind4 accept")] {
        assert!(t.starts_with("ether type ip6 "), "before @bind4: {t}");
    }
    for t in &known[..at("@bind6 accept")] {
        assert!(
            t.starts_with("ether type ip ")
                || t.contains("meta l4proto ipv6-icmp")
                || t.contains("meta l4proto udp"),
            "before @bind6: {t}"
        );
    }
}

/// ND passes the inet chains only with hop limit 255 and MLD only with hop
/// limit 1 to a multicast group: nothing else of those types is accepted
/// before the policy. Bridges named as Docker names them that cordon has
/// not bound are dropped, from and to.
#[test]
fn nd_and_mld_only_on_the_link_and_unbound_bridges_closed() {
    let r = compiled().ruleset;
    let inet = r.table(Family::Inet).unwrap();
    for (base, dirs) in [
        ("forward", &["egress", "ingress"][..]),
        ("egress_host", &["egress"]),
        ("ingress_local", &["ingress"]),
    ] {
        let ch = inet.chains.iter().find(|c| c.name == base).unwrap();
        let texts: Vec<String> = ch
            .rules
            .iter()
            .map(cordon_ruleset::text::rule_text)
            .collect();
        let icmp: Vec<&String> = texts.iter().filter(|t| t.contains("icmpv6 type")).collect();
        assert_eq!(icmp.len(), 2, "{base}: {texts:#?}");
        assert!(icmp[0].contains("nd-neighbor-advert") && icmp[0].contains("ip6 hoplimit 255"));
        assert!(
            icmp[1].contains("mld2-listener-report")
                && icmp[1].contains("ip6 hoplimit 1 ")
                && icmp[1].contains("ip6 daddr ff00::/8")
        );
        for dir in dirs {
            let dev = if *dir == "egress" {
                "iifname"
            } else {
                "oifname"
            };
            let want = format!("meta {}ifkind \"bridge\" {dev} != @bridges {dev} @docker_bridge_names counter log prefix \"cordon {dir} unbound-bridge drop \" group 100 drop", &dev[..1]);
            assert!(
                texts.iter().any(|t| t.starts_with(&want)),
                "{base}: {want} in {texts:#?}"
            );
        }
    }
    // The forward hook has one cordon chain: no second hook invocation.
    let forward: Vec<&str> = inet
        .chains
        .iter()
        .filter(|c| c.base.as_ref().is_some_and(|b| b.hook == Hook::Forward))
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(forward, ["forward"]);
}

/// Docker's bridge names: `br-` and two lowercase hex digits as a prefix
/// (256 of them), and `docker0`; not `br-lan` or `br-mgmt`.
#[test]
fn docker_bridge_names_are_prefixes_of_two_hex_digits() {
    let r = compiled().ruleset;
    let s = set(&r, Family::Inet, "docker_bridge_names");
    assert!(s.interval);
    let names: Vec<String> = s
        .elements
        .iter()
        .map(|e| match &e.key[0] {
            Value::Ifname(n) => n.to_string(),
            v => panic!("{v:?}"),
        })
        .collect();
    assert_eq!(names.len(), 257);
    for n in ["br-00*", "br-9f*", "br-a0*", "br-ff*", "docker0"] {
        assert!(names.iter().any(|x| x == n), "{n}");
    }
    let covers = |ifname: &str| {
        names.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => ifname.starts_with(prefix),
            None => ifname == p,
        })
    };
    assert!(covers("br-0a1b2c3d4e5f") && covers("docker0"));
    for other in ["br-lan", "br-mgmt", "br-ex", "br-int", "docker1", "virbr0"] {
        assert!(!covers(other), "{other}");
    }
}

/// Every nflog prefix the compiler writes is one `cordon_ruleset::LogPrefix`
/// reads back to itself, and every policy chain's prefix names its chain's
/// path and policy: the drop log and `cordon status` read what is written.
#[test]
fn every_log_prefix_reads_back_as_what_its_chain_is() {
    use cordon_ruleset::LogPrefix;
    let c = compiled();
    let mut seen = std::collections::BTreeSet::new();
    for t in &c.ruleset.tables {
        for chain in &t.chains {
            for rule in &chain.rules {
                for stmt in &rule.stmts {
                    let Stmt::Log { prefix, .. } = stmt else {
                        continue;
                    };
                    let read = LogPrefix::parse(prefix)
                        .unwrap_or_else(|| panic!("{prefix:?} in {} does not read", chain.name));
                    assert_eq!(&read.format(), prefix);
                    if let Some((path, key)) = Path::from_policy_chain(&chain.name) {
                        let LogPrefix::Policy {
                            direction, policy, ..
                        } = &read
                        else {
                            panic!("{prefix:?} ends policy chain {}", chain.name);
                        };
                        assert_eq!((*direction, policy), (path.direction(), &key));
                    }
                    seen.insert(read.subject().to_string());
                }
            }
        }
    }
    for subject in [
        "sftp",
        "default",
        "unknown",
        "unknown-source",
        "unknown-destination",
        "unbound-bridge",
        "spoof",
    ] {
        assert!(seen.contains(subject), "{subject} not logged: {seen:?}");
    }
}

const L7_POLICY: &str = r#"
version: 1
policies:
  - name: web
    select: { compose: { service: web } }
    egress:
      - to: [db.example.net]
        ports: [5432/tcp]
      - to: ["api.example.com", "*.example.org"]
        ports: [443/tcp, 80/tcp]
        match: server-name
      - to: [internet]
        ports: [443/udp]
"#;

fn l7_compiled(inv: &Inventory) -> Compiled {
    let p = cordon_policy::parse("l7.yaml", L7_POLICY).expect("l7 policy parses");
    compile(&p, inv, &SetOverrides::default())
}

fn chain_text(r: &Ruleset, name: &str) -> Vec<String> {
    r.tables
        .iter()
        .filter(|t| t.family == Family::Inet)
        .flat_map(|t| &t.chains)
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("chain {name}"))
        .rules
        .iter()
        .map(text::rule_text)
        .collect()
}

/// A server-name rule's connections are redirected to the L7 proxy (both
/// families), reach it only redirected, are never accepted by `eg_fwd`
/// itself, and its QUIC is dropped before any other rule; other rules and
/// other policies' containers are untouched.
#[test]
fn server_name_rules_redirect_to_the_l7_proxy() {
    let c = l7_compiled(&sample());
    let r = &c.ruleset;
    let nat = chain_text(r, "dns_redirect");
    assert!(
        nat.iter().any(|t| t.starts_with("ip saddr vmap @l7_nat4 "))
            && nat
                .iter()
                .any(|t| t.starts_with("ip6 saddr vmap @l7_nat6 ")),
        "{nat:#?}"
    );
    assert_eq!(
        chain_text(r, "l7_web"),
        vec![
            "ip daddr @dns_web_1_4 meta l4proto tcp th dport { 80, 443 } redirect to :15380 comment \"line 9: to cordon's L7 proxy, server name must match\"",
            "ip6 daddr @dns_web_1_6 meta l4proto tcp th dport { 80, 443 } redirect to :15380 comment \"line 9: to cordon's L7 proxy, server name must match\"",
        ]
    );
    // Only the web container (compose service web, index 2) is redirected.
    assert_eq!(
        jump_of(r, "l7_nat4", "172.20.0.4").as_deref(),
        Some("l7_web")
    );
    assert_eq!(
        jump_of(r, "l7_nat6", "2001:db8:20::4").as_deref(),
        Some("l7_web")
    );
    assert_eq!(jump_of(r, "l7_nat4", "172.20.0.5"), None);
    assert_eq!(set(r, Family::Inet, "l7_clients4").elements.len(), 1);
    assert_eq!(set(r, Family::Inet, "l7_clients6").elements.len(), 1);

    let fwd = chain_text(r, "eg_fwd_web");
    // QUIC to the rule's addresses first (after the hook split), logged
    // and dropped.
    assert!(
        fwd[0].starts_with("meta oif 0 goto eg_host_web"),
        "{fwd:#?}"
    );
    assert!(fwd[1].starts_with("ip daddr @dns_web_1_4 meta l4proto udp th dport 443 counter log prefix \"cordon egress web drop \" group 100 drop"), "{fwd:#?}");
    assert!(fwd[2].starts_with("ip6 daddr @dns_web_1_6 meta l4proto udp th dport 443 counter log prefix \"cordon egress web drop \" group 100 drop"), "{fwd:#?}");
    // No accept of the server-name rule's set: a missed redirect drops.
    assert!(
        !fwd.iter()
            .any(|t| t.contains("@dns_web_1_") && (t.contains("accept") || t.contains("return"))),
        "{fwd:#?}"
    );
    // The plain DNS-name rule keeps its meaning.
    assert!(
        fwd.iter()
            .any(|t| t
                .contains("ip daddr @dns_web_0_4 meta l4proto tcp th dport 5432 counter return")),
        "{fwd:#?}"
    );

    let host = chain_text(r, "egress_host");
    let accept4 = host
        .iter()
        .position(|t| {
            t.starts_with(
                "ip saddr @l7_clients4 meta l4proto tcp th dport 15380 ct status dnat accept",
            )
        })
        .unwrap_or_else(|| panic!("{host:#?}"));
    assert!(host[accept4 + 1].starts_with(
        "ip6 saddr @l7_clients6 meta l4proto tcp th dport 15380 ct status dnat accept"
    ));
    assert!(
        host[accept4 + 2].starts_with("iifname @bridges meta l4proto tcp th dport 15380 counter log prefix \"cordon egress-host l7-direct drop \" group 100 drop"),
        "{host:#?}"
    );
    let dispatch = host
        .iter()
        .position(|t| t.contains("jump egress_dispatch"))
        .unwrap();
    assert!(accept4 + 2 < dispatch, "before any policy: {host:#?}");
}

/// The L7 redirect's shape does not depend on the containers, and a
/// policy without server-name rules gets no L7 chain; its containers are
/// never redirected.
#[test]
fn l7_shape_is_independent_of_the_inventory() {
    let empty = l7_compiled(&inventory(vec![]));
    let full = l7_compiled(&sample());
    assert_eq!(rule_count(&empty.ruleset), rule_count(&full.ruleset));
    let plain = compiled();
    let inet = plain.ruleset.table(Family::Inet).unwrap();
    assert!(!inet.chains.iter().any(|c| c.name.starts_with("l7_")));
    assert!(set(&plain.ruleset, Family::Inet, "l7_nat4")
        .elements
        .is_empty());
}

/// A policy may not be named like a word the logs use for a built-in rule:
/// the policy language's reserved names cover every fail-closed word and
/// the unknown-policy label, so no prefix of a named policy reads as one.
#[test]
fn policy_names_cannot_shadow_the_built_in_log_words() {
    use cordon_ruleset::prefix::FailClosed;
    let label = cordon_ruleset::PolicyKey::Unknown("x".into())
        .label()
        .to_string();
    let mut built_in: Vec<String> = FailClosed::ALL
        .iter()
        .map(|f| f.word().to_string())
        .collect();
    built_in.push(label);
    for word in &built_in {
        assert!(
            cordon_policy::RESERVED_NAMES.contains(&word.as_str())
                || cordon_policy::RESERVED.contains(&word.as_str()),
            "`{word}` is a built-in log word but a policy may be named so"
        );
    }
    assert!(cordon_policy::RESERVED.contains(&"default"));
}
