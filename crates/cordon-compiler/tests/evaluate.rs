//! The evaluator: what the policy says about one flow, without root.

use std::collections::BTreeMap;
use std::net::IpAddr;

use cordon_compiler::evaluate::{Connection, EvalError, Evaluator, Expected, Facts, Flow, Proto};
use cordon_compiler::SetOverrides;
use cordon_inventory::{Container, Endpoint, Inventory};
use cordon_ruleset::{names, PolicyKey};
use ipnet::IpNet;
use proptest::prelude::*;

const POLICY: &str = r#"
version: 1
sets:
  office: [203.0.113.0/26]
policies:
  - name: web
    select: { label: { app: web } }
    egress:
      - to: [internet]
        ports: [80/tcp]
      - to: [db]
        ports: [5432/tcp]
      - to: [api.example.com]
        ports: [443/tcp]
      - to: [office, 10.9.0.0/16]
        ports: [53/udp, icmp]
  - name: db
    select: { label: { app: db } }
    ingress:
      - from: [web]
        ports: [5432/tcp]
    egress:
      - to: [host]
        ports: [22/tcp]
      - to: [same-network]
  - name: watch
    select: { label: { app: watch } }
    mode: audit
    egress: []
"#;

fn ctr(i: u8, name: &str, label: (&str, &str), network: &str, bridge: &str, ip: &str) -> Container {
    Container {
        id: format!("{i:02x}{}", "a".repeat(62)),
        name: name.into(),
        image: "img".into(),
        labels: [(label.0.to_string(), label.1.to_string())].into(),
        network_mode: network.into(),
        endpoints: vec![Endpoint {
            network: network.into(),
            ipv4: Some(ip.parse().unwrap()),
            mac: Some(format!("02:42:ac:14:00:{i:02x}")),
            host_iface: Some(format!("veth{i}")),
            bridge: Some(bridge.into()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The default bridge and a user-defined one, as `cordon inventory` prints
/// them.
const NETWORKS: &str = r#"{"networks": [
  {"id": "n1", "name": "bridge", "driver": "bridge", "bridge": "docker0",
   "subnets": ["172.17.0.0/16"], "default_bridge": true},
  {"id": "n2", "name": "app", "driver": "bridge", "bridge": "br-app",
   "subnets": ["172.20.0.0/16"]}
]}"#;

fn inventory() -> Inventory {
    let mut inv = Inventory::from_json("networks.json", NETWORKS).expect("networks parse");
    inv.containers = vec![
        ctr(
            1,
            "web-1",
            ("app", "web"),
            "bridge",
            "docker0",
            "172.17.0.2",
        ),
        ctr(2, "db-1", ("app", "db"), "app", "br-app", "172.20.0.2"),
        ctr(3, "other", ("x", "y"), "bridge", "docker0", "172.17.0.3"),
        ctr(
            4,
            "typo",
            ("cordon.policy", "nope"),
            "bridge",
            "docker0",
            "172.17.0.4",
        ),
        ctr(
            5,
            "watcher",
            ("app", "watch"),
            "bridge",
            "docker0",
            "172.17.0.5",
        ),
        ctr(6, "db-2", ("app", "db"), "app", "br-app", "172.20.0.3"),
    ];
    inv
}

struct Case {
    policy: cordon_policy::PolicyFile,
    inv: Inventory,
    overrides: SetOverrides,
    learned: BTreeMap<String, Vec<IpAddr>>,
    host: Vec<IpAddr>,
}

impl Case {
    fn new() -> Case {
        Case {
            policy: cordon_policy::parse("p.yaml", POLICY).expect("test policy parses"),
            inv: inventory(),
            overrides: SetOverrides::default(),
            learned: BTreeMap::new(),
            host: vec![
                "172.17.0.1".parse().unwrap(),
                "192.168.1.10".parse().unwrap(),
            ],
        }
    }

    /// The evaluator of this case's facts.
    fn evaluator(&self) -> Evaluator<'_> {
        Evaluator::new(Facts {
            policy: &self.policy,
            inventory: &self.inv,
            overrides: &self.overrides,
            learned: &self.learned,
            host: &self.host,
        })
    }

    fn eval(&self, who: &str, target: &str) -> Expected {
        let ev = self.evaluator();
        ev.egress(who, &flow(target)).expect("evaluates")
    }

    /// The verdict on an open connection from `src` to `target`
    /// (`ADDR:PORT/tcp`...); `None` when cordon governs neither end.
    fn conn(&self, src: &str, target: &str) -> Option<bool> {
        let ev = self.evaluator();
        let f = flow(target);
        ev.connection(&Connection {
            src: src.parse().unwrap(),
            dst: f.dst,
            proto: Some(f.proto),
            port: f.port,
        })
        .map(|e| e.allowed)
    }
}

/// `ADDR:PORT/tcp`, `ADDR:PORT/udp` or `ADDR/icmp`.
fn flow(s: &str) -> Flow {
    let (rest, proto) = s.rsplit_once('/').unwrap();
    let proto = match proto {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => Proto::Icmp,
    };
    let (addr, port) = match proto {
        Proto::Icmp => (rest, 0),
        _ => {
            let (a, p) = rest.rsplit_once(':').unwrap();
            (a, p.parse().unwrap())
        }
    };
    Flow {
        dst: addr.trim_matches(['[', ']']).parse().unwrap(),
        proto,
        port,
    }
}

#[test]
fn the_first_allowing_rule_decides_and_is_named() {
    let c = Case::new();
    let e = c.eval("web-1", "198.51.100.2:80/tcp");
    assert!(e.allowed && !e.audit, "{e:?}");
    assert_eq!(e.policy, "web");
    assert_eq!(
        e.reason,
        "egress rule 1 of web (line 9): to [internet] ports [80/tcp]"
    );
    let e = c.eval("web-1", "198.51.100.2:81/tcp");
    assert!(!e.allowed, "{e:?}");
    assert_eq!(e.reason, "no egress rule of web allows it");
    assert!(!c.eval("web-1", "198.51.100.2/icmp").allowed);
    assert!(!c.eval("web-1", "198.51.100.2:80/udp").allowed);
}

#[test]
fn private_metadata_and_host_stay_closed_to_an_internet_rule() {
    let c = Case::new();
    for t in [
        "10.124.0.2:80/tcp",
        "169.254.169.254:80/tcp",
        "192.168.1.10:80/tcp",
        "172.17.0.1:80/tcp",
    ] {
        assert!(!c.eval("web-1", t).allowed, "{t}");
    }
    let host = c.eval("web-1", "172.17.0.1:80/tcp");
    assert!(host.reason.contains("allows the host"), "{host:?}");
}

#[test]
fn sets_literal_cidrs_and_live_set_edits() {
    let mut c = Case::new();
    assert!(c.eval("web-1", "203.0.113.5/icmp").allowed);
    assert!(c.eval("web-1", "10.9.3.4/icmp").allowed);
    // 53/udp only (53/tcp goes to the DNS proxy: web names a DNS name).
    assert!(!c.eval("web-1", "10.9.3.4:54/udp").allowed);
    assert!(!c.eval("web-1", "203.0.113.200/icmp").allowed);
    c.overrides
        .add("office", "203.0.113.200/32".parse::<IpNet>().unwrap());
    assert!(c.eval("web-1", "203.0.113.200/icmp").allowed);
    c.overrides
        .remove("office", "203.0.113.0/26".parse::<IpNet>().unwrap());
    assert!(!c.eval("web-1", "203.0.113.5/icmp").allowed);
}

#[test]
fn dns_names_allow_what_the_proxy_learned_and_dns_is_redirected() {
    let mut c = Case::new();
    assert!(!c.eval("web-1", "203.0.113.99:443/tcp").allowed);
    c.learned.insert(
        names::dns_set(&PolicyKey::Named("web".into()), 2, 4),
        vec!["203.0.113.99".parse().unwrap()],
    );
    let e = c.eval("web-1", "203.0.113.99:443/tcp");
    assert!(e.allowed, "{e:?}");
    assert!(e.reason.starts_with("egress rule 3 of web"), "{e:?}");
    // Any port-53 traffic goes to the proxy for a policy naming DNS names.
    let e = c.eval("web-1", "198.51.100.77:53/tcp");
    assert!(e.allowed && e.reason.contains("DNS proxy"), "{e:?}");
    // Not for a policy without names.
    assert!(!c.eval("other", "10.124.0.9:53/udp").allowed);
}

#[test]
fn policies_as_peers_and_the_receivers_ingress() {
    let c = Case::new();
    let e = c.eval("web-1", "172.20.0.2:5432/tcp");
    assert!(e.allowed, "{e:?}");
    assert!(
        e.reason.ends_with(
            "; ingress rule 1 of db-1 (policy db) (line 20): from [web] ports [5432/tcp]"
        ),
        "{e:?}"
    );
    // db-2 reaches db-1 on the same network, but db-1's ingress only
    // admits web.
    let e = c.eval("db-2", "172.20.0.2:5432/tcp");
    assert!(!e.allowed, "{e:?}");
    assert!(e.reason.contains("no ingress rule of db-1"), "{e:?}");
    // An address in a Docker subnet no container holds: fail closed, even
    // for same-network.
    let e = c.eval("db-2", "172.20.0.99:80/tcp");
    assert!(!e.allowed && e.reason.contains("fail closed"), "{e:?}");
}

#[test]
fn same_network_means_a_shared_user_defined_bridge() {
    let mut c = Case::new();
    // A db without ingress rules to receive.
    c.inv.containers[1].labels = [("app".to_string(), "watch".to_string())].into();
    let e = c.eval("db-2", "172.20.0.2:8080/tcp");
    assert!(e.allowed, "{e:?}");
    assert!(e.reason.contains("same-network"), "{e:?}");
    // The default bridge is never same-network.
    assert!(!c.eval("other", "172.17.0.2:80/tcp").allowed);
}

#[test]
fn host_needs_host_or_any() {
    let c = Case::new();
    let e = c.eval("db-1", "192.168.1.10:22/tcp");
    assert!(e.allowed, "{e:?}");
    assert!(!c.eval("db-1", "192.168.1.10:23/tcp").allowed);
}

#[test]
fn audit_lets_through_unknown_labels_get_nothing() {
    let c = Case::new();
    let e = c.eval("watcher", "10.124.0.2:80/tcp");
    assert!(e.allowed && e.audit, "{e:?}");
    assert!(e.reason.contains("audit mode"), "{e:?}");
    let e = c.eval("typo", "198.51.100.2:80/tcp");
    assert!(!e.allowed, "{e:?}");
    assert_eq!(e.policy, "unknown policy nope");
    // The embedded-default body for containers no policy selects.
    let e = c.eval("other", "198.51.100.2:443/tcp");
    assert!(e.allowed && e.policy == "default", "{e:?}");
}

#[test]
fn own_addresses_and_unknown_containers() {
    let c = Case::new();
    assert!(c.eval("typo", "127.0.0.1:80/tcp").allowed);
    assert!(c.eval("typo", "172.17.0.4:80/tcp").allowed);
    // IPv4-only containers send no IPv6, whatever the policy.
    let e = c.eval("other", "[2001:db8::1]:80/tcp");
    assert!(!e.allowed && e.reason.contains("no IPv6 address"), "{e:?}");
    let ev = c.evaluator();
    assert_eq!(
        ev.egress("ghost", &flow("198.51.100.2:80/tcp")),
        Err(EvalError::UnknownContainer("ghost".into()))
    );
    assert!(ev
        .egress(
            &format!("01{}", "a".repeat(10)),
            &flow("198.51.100.2:80/tcp")
        )
        .is_ok());
}

/// A random egress rule: some CIDRs (address, prefix length) and some TCP
/// port ranges (first port, length; none = all ports).
type RandomRule = (Vec<(u32, u8)>, Vec<(u16, u16)>);

fn arb_rule() -> impl Strategy<Value = RandomRule> {
    (
        prop::collection::vec((any::<u32>(), 0u8..=32), 1..4),
        prop::collection::vec((1u16..200, 0u16..50), 0..3),
    )
}

proptest! {
    /// For random CIDR rules, the evaluator agrees with the plain reading
    /// of the policy (some rule has a CIDR holding the address and a port
    /// range holding the port), host and Docker addresses aside.
    #[test]
    fn cidr_rules_agree_with_brute_force(
        rules in prop::collection::vec(arb_rule(), 0..4),
        dst in any::<u32>(),
        port in 1u16..260,
    ) {
        let mut yaml = String::from("version: 1\npolicies:\n  - name: p\n    select: { label: { app: p } }\n    egress:\n");
        for (nets, ports) in &rules {
            let nets: Vec<String> = nets
                .iter()
                .map(|(a, l)| IpNet::new(IpAddr::from(a.to_be_bytes()), *l).unwrap().trunc().to_string())
                .collect();
            yaml.push_str(&format!("      - to: [{}]\n", nets.join(", ")));
            if !ports.is_empty() {
                let ports: Vec<String> = ports.iter().map(|(lo, n)| format!("{lo}-{}/tcp", lo + n)).collect();
                yaml.push_str(&format!("        ports: [{}]\n", ports.join(", ")));
            }
        }
        let mut c = Case::new();
        c.policy = cordon_policy::parse("p.yaml", &yaml).expect("generated policy parses");
        c.inv.networks.truncate(1);
        c.inv.containers = vec![ctr(1, "p-1", ("app", "p"), "bridge", "docker0", "172.17.0.2")];
        c.host.clear();
        let dst = IpAddr::from(dst.to_be_bytes());
        prop_assume!(!dst.is_loopback() && dst != "172.17.0.2".parse::<IpAddr>().unwrap());
        prop_assume!(!"172.17.0.0/16".parse::<IpNet>().unwrap().contains(&dst));
        let brute = rules.iter().any(|(nets, ports)| {
            nets.iter().any(|(a, l)| IpNet::new(IpAddr::from(a.to_be_bytes()), *l).unwrap().contains(&dst))
                && (ports.is_empty() || ports.iter().any(|(lo, n)| (*lo..=lo + n).contains(&port)))
        });
        let e = c.eval("p-1", &format!("{dst}:{port}/tcp"));
        prop_assert_eq!(e.allowed, brute, "{:?}", e);
    }
}

#[test]
fn an_open_connection_is_judged_as_its_first_packet_would_be() {
    let c = Case::new();
    // Opened by a container: its egress (and the receiver's ingress).
    assert_eq!(c.conn("172.17.0.2", "198.51.100.2:80/tcp"), Some(true));
    assert_eq!(c.conn("172.17.0.2", "198.51.100.2:81/tcp"), Some(false));
    assert_eq!(c.conn("172.17.0.2", "172.20.0.2:5432/tcp"), Some(true));
    assert_eq!(
        c.conn("172.17.0.3", "172.20.0.2:5432/tcp"),
        Some(false),
        "db's ingress admits only web"
    );
    // Opened from outside: the receiver's ingress.
    assert_eq!(
        c.conn("198.51.100.7", "172.20.0.2:5432/tcp"),
        Some(false),
        "db's ingress does not admit the internet"
    );
    assert_eq!(
        c.conn("198.51.100.7", "172.17.0.2:8080/tcp"),
        Some(true),
        "web has no ingress rules"
    );
    assert_eq!(
        c.conn("172.17.0.1", "172.20.0.2:5432/tcp"),
        Some(false),
        "from the host: only `host` or `any` in db's ingress admit it"
    );
    // Unknown addresses in a Docker subnet fail closed; others are not
    // cordon's.
    assert_eq!(c.conn("172.17.0.99", "198.51.100.2:80/tcp"), Some(false));
    assert_eq!(c.conn("198.51.100.7", "172.20.0.99:80/tcp"), Some(false));
    assert_eq!(c.conn("198.51.100.7", "198.51.100.2:80/tcp"), None);
    assert_eq!(c.conn("172.17.0.1", "192.168.1.10:22/tcp"), None);
    // An audit policy lets everything through.
    assert_eq!(c.conn("172.17.0.5", "10.1.2.3:22/tcp"), Some(true));
    // A protocol the evaluation does not model is not allowed.
    let ev = c.evaluator();
    let gre = Connection {
        src: "172.17.0.2".parse().unwrap(),
        dst: "198.51.100.2".parse().unwrap(),
        proto: None,
        port: 0,
    };
    assert!(!ev.connection(&gre).expect("judged").allowed);
}

#[test]
fn ingress_from_the_host_needs_host_or_any() {
    let mut c = Case::new();
    c.policy = cordon_policy::parse(
        "p.yaml",
        r#"
version: 1
policies:
  - name: db
    select: { label: { app: db } }
    ingress:
      - from: [host]
        ports: [5432/tcp]
      - from: [internet]
        ports: [443/tcp]
"#,
    )
    .expect("parses");
    assert_eq!(c.conn("172.17.0.1", "172.20.0.2:5432/tcp"), Some(true));
    assert_eq!(c.conn("172.17.0.1", "172.20.0.2:443/tcp"), Some(false));
    assert_eq!(c.conn("198.51.100.7", "172.20.0.2:443/tcp"), Some(true));
    assert_eq!(c.conn("198.51.100.7", "172.20.0.2:5432/tcp"), Some(false));
}

/// A rule with `match: server-name`: TCP to an address learned for it, on
/// its ports, goes through the L7 proxy, before and whatever the other
/// rules say; QUIC there is dropped (audited in audit mode); nothing else
/// of the rule allows by address.
#[test]
fn server_name_rules_go_through_the_l7_proxy() {
    let text = r#"
version: 1
policies:
  - name: web
    select: { label: { app: web } }
    egress:
      - to: [api.example.com]
        ports: [443/tcp]
        match: server-name
      - to: [internet]
        ports: [80/tcp, 443/udp]
  - name: watch
    select: { label: { app: watch } }
    mode: audit
    egress:
      - to: [api.example.com]
        ports: [443/tcp]
        match: server-name
"#;
    let mut c = Case::new();
    c.policy = cordon_policy::parse("p.yaml", text).expect("parses");
    // Positive control: not learned yet, so nothing of the rule applies.
    let e = c.eval("web-1", "198.51.100.9:443/tcp");
    assert!(!e.allowed, "{e:?}");
    assert!(c.eval("web-1", "198.51.100.9:443/udp").allowed);
    for (policy, addr) in [("web", "198.51.100.9"), ("watch", "2001:db8::9")] {
        let fam = if addr.contains(':') { 6 } else { 4 };
        c.learned.insert(
            names::dns_set(&PolicyKey::Named(policy.into()), 0, fam),
            vec![addr.parse().unwrap()],
        );
    }
    let e = c.eval("web-1", "198.51.100.9:443/tcp");
    assert!(e.allowed && !e.audit, "{e:?}");
    assert_eq!(
        e.reason,
        "goes through cordon's L7 proxy, server name must match: egress rule 1 of web (line 7): to [api.example.com] ports [443/tcp] match server-name"
    );
    // Another port of the address: the internet rule as usual; not a port
    // of the rule and not allowed otherwise: dropped.
    assert!(c.eval("web-1", "198.51.100.9:80/tcp").allowed);
    assert!(!c.eval("web-1", "198.51.100.9:8443/tcp").allowed);
    // QUIC to the learned address: dropped although `internet` allows
    // 443/udp; to another address the internet rule still allows it.
    let e = c.eval("web-1", "198.51.100.9:443/udp");
    assert!(
        !e.allowed && e.reason.starts_with("QUIC (443/udp)"),
        "{e:?}"
    );
    assert!(c.eval("web-1", "198.51.100.10:443/udp").allowed);
    // An open connection judged by the repair: kept.
    assert_eq!(c.conn("172.17.0.2", "198.51.100.9:443/tcp"), Some(true));

    // Audit mode: the QUIC drop is an audit; IPv6 alike.
    c.inv.containers[4].endpoints[0].ipv6 = Some("2001:db8:17::5".parse().unwrap());
    let e = c.eval("watcher", "[2001:db8::9]:443/udp");
    assert!(e.allowed && e.audit, "{e:?}");
    let e = c.eval("watcher", "[2001:db8::9]:443/tcp");
    assert!(e.allowed && e.reason.contains("L7 proxy"), "{e:?}");
}

/// Given the assignments of a compile of the same facts, the evaluator
/// judges as the one that compiles them itself; assignments of another
/// length are not taken.
#[test]
fn the_assignments_at_hand_judge_as_a_compile_would() {
    let c = Case::new();
    let facts = Facts {
        policy: &c.policy,
        inventory: &c.inv,
        overrides: &c.overrides,
        learned: &c.learned,
        host: &c.host,
    };
    let compiled = cordon_compiler::compile(&c.policy, &c.inv, &c.overrides);
    let given = Evaluator::with_assignments(facts, &compiled.assignments);
    let own = Evaluator::new(facts);
    // Too few assignments: ignored, the evaluator compiles.
    let short = Evaluator::with_assignments(facts, &compiled.assignments[..1]);
    let mut judged = 0;
    for src in ["172.17.0.2", "172.17.0.3", "172.17.0.5", "198.51.100.7"] {
        for target in [
            "198.51.100.2:80/tcp",
            "198.51.100.2:81/tcp",
            "172.20.0.2:5432/tcp",
            "172.17.0.2:8080/tcp",
        ] {
            let f = flow(target);
            let conn = Connection {
                src: src.parse().unwrap(),
                dst: f.dst,
                proto: Some(f.proto),
                port: f.port,
            };
            let want = own.connection(&conn).map(|e| e.allowed);
            assert_eq!(
                given.connection(&conn).map(|e| e.allowed),
                want,
                "{src} {target}"
            );
            assert_eq!(
                short.connection(&conn).map(|e| e.allowed),
                want,
                "{src} {target}"
            );
            judged += usize::from(want.is_some());
        }
    }
    assert!(judged > 8, "the cases are cordon's to judge");
    for i in 0..c.inv.containers.len() {
        assert_eq!(given.policy_of(i), own.policy_of(i));
    }
}
