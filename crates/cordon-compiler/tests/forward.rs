//! The forward, input and output hooks as the kernel runs them: a small
//! interpreter of the compiled `inet cordon` table (every filter base chain
//! of the hook in priority order, jump, goto, return, verdict maps,
//! counters and logs, `meta iif`/`meta oif` 0 when the hook's packet has no
//! such interface) walks IPv4 packets between containers, to the internet,
//! to the host and from it. It shows that one `forward` chain judges a
//! forwarded packet by the sender's egress and then by the receiver's
//! ingress (an egress allow does not skip the ingress); that the one egress
//! map per family, entered in both the forward and the input hook, still
//! judges the host by the policy's host chain (a forwarded allow does not
//! open the host, nor a host allow the forwarded destinations), and the one
//! ingress map the host's own connections by the local chain; and that the
//! evaluator (`cordon verify`, `explain`) says what the chains do.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use cordon_compiler::evaluate::{Evaluator, Facts, Flow, Proto};
use cordon_compiler::{compile, SetOverrides};
use cordon_inventory::{Container, Endpoint, Inventory, Network};
use cordon_ruleset::nft::{
    ChainType, Family, Field, Hook, Rhs, Ruleset, Stmt, Table, Value, Verdict,
};

/// A's egress allows B and C on 80/tcp and the internet (the host's
/// address [`HOST`] included) on 443/tcp, but not `host`; B's ingress
/// (`B_FROM`) decides whether A gets in; C, in audit mode, lets A in on
/// 80/tcp; H may reach the host and the host it, on 80/tcp only, and
/// nothing else.
fn policy_text(b_from: &str) -> String {
    format!(
        r#"
version: 1
policies:
  - name: a
    select: {{ label: {{ app: a }} }}
    egress:
      - to: [b, c]
        ports: [80/tcp]
      - to: [internet]
        ports: [443/tcp]
  - name: b
    select: {{ label: {{ app: b }} }}
    ingress:
      - from: [{b_from}]
        ports: [80/tcp]
    egress:
      - to: [same-network]
  - name: c
    select: {{ label: {{ app: c }} }}
    mode: audit
    ingress:
      - from: [a]
        ports: [80/tcp]
    egress: []
  - name: h
    select: {{ label: {{ app: h }} }}
    ingress:
      - from: [host]
        ports: [80/tcp]
    egress:
      - to: [host]
        ports: [80/tcp]
"#
    )
}

const BRIDGE: &str = "br-fwd";
const SUBNET: &str = "172.30.0.0/24";
/// The host's own address (on its uplink): public, so `internet` holds it.
const HOST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// A server on the internet, past the uplink.
const INET: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

fn ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(172, 30, 0, i)
}

fn container(i: u8, name: &str, app: Option<&str>) -> Container {
    Container {
        id: format!("{i:02x}{}", "f".repeat(62)),
        name: name.into(),
        image: "img".into(),
        labels: app
            .map(|a| [("app".to_string(), a.to_string())].into())
            .unwrap_or_default(),
        network_mode: "fwd".into(),
        endpoints: vec![Endpoint {
            network: "fwd".into(),
            ipv4: Some(ip(i)),
            mac: Some(format!("02:42:ac:1e:00:{i:02x}")),
            host_iface: Some(format!("veth{i}")),
            bridge: Some(BRIDGE.into()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn inventory() -> Inventory {
    Inventory {
        version: 1,
        networks: vec![Network {
            id: "f".repeat(64),
            name: "fwd".into(),
            driver: "bridge".into(),
            bridge: Some(BRIDGE.into()),
            subnets: vec![SUBNET.parse().unwrap()],
            ..Default::default()
        }],
        containers: vec![
            container(2, "a", Some("a")),
            container(3, "b", Some("b")),
            container(4, "c", Some("c")),
            container(5, "d", None),
            container(6, "h", Some("h")),
        ],
    }
}

/// A new IPv4 connection's first packet as a hook sees it. A packet to the
/// host (input hook) has no output interface, one from the host (output
/// hook) no input interface.
#[derive(Debug, Clone)]
struct Packet {
    iif: Option<String>,
    oif: Option<String>,
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
    proto: &'static str,
    dport: u16,
    ct: &'static str,
}

impl Packet {
    /// From a container of the bridge to `daddr`, forwarded: over the
    /// bridge when the address is in its subnet, else out through the
    /// uplink.
    fn new(saddr: Ipv4Addr, daddr: Ipv4Addr, proto: &'static str, dport: u16) -> Packet {
        let subnet: ipnet::Ipv4Net = SUBNET.parse().unwrap();
        Packet {
            iif: Some(BRIDGE.into()),
            oif: Some(if subnet.contains(&daddr) {
                BRIDGE.into()
            } else {
                "uplink".into()
            }),
            saddr,
            daddr,
            proto,
            dport,
            ct: "new",
        }
    }

    /// From a container to the host's own address: the input hook.
    fn to_host(saddr: Ipv4Addr, proto: &'static str, dport: u16) -> Packet {
        Packet {
            oif: None,
            ..Packet::new(saddr, HOST, proto, dport)
        }
    }

    /// From the host itself to a container: the output hook.
    fn from_host(daddr: Ipv4Addr, proto: &'static str, dport: u16) -> Packet {
        Packet {
            iif: None,
            oif: Some(BRIDGE.into()),
            ..Packet::new(HOST, daddr, proto, dport)
        }
    }

    /// From the internet to a container, forwarded in from the uplink.
    fn from_internet(daddr: Ipv4Addr, proto: &'static str, dport: u16) -> Packet {
        Packet {
            iif: Some("uplink".into()),
            oif: Some(BRIDGE.into()),
            ..Packet::new(INET, daddr, proto, dport)
        }
    }

    /// The hook that judges it.
    fn hook(&self) -> Hook {
        match (&self.iif, &self.oif) {
            (Some(_), Some(_)) => Hook::Forward,
            (Some(_), None) => Hook::Input,
            (None, _) => Hook::Output,
        }
    }
}

/// What the hook did: the verdict, the logs in order, and the rules whose
/// counters counted the packet (`chain`, comment).
#[derive(Debug, Default)]
struct Trace {
    accepted: bool,
    logs: Vec<String>,
    counted: Vec<(String, Option<String>)>,
}

fn in_set(t: &Table, name: &str, key: &[Value]) -> bool {
    let set = t
        .sets
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no set {name}"));
    set.elements.iter().any(|e| {
        e.key.len() == key.len()
            && e.key
                .iter()
                .zip(key)
                .all(|(have, want)| match (have, want) {
                    (Value::Net(n), Value::Net(a)) => n.contains(a),
                    (a, b) => a == b,
                })
    })
}

/// The value of one field, or `None` when the packet has no such field (an
/// IPv6 field of an IPv4 packet: nft's implied protocol test fails the
/// whole match, negated or not).
fn field(p: &Packet, f: Field) -> Option<Value> {
    let addr = |a: Ipv4Addr| Value::Net(IpAddr::V4(a).into());
    match f {
        // A device the packet does not have: nft's `meta iifname` breaks
        // (the rule does not match, negated or not).
        Field::Iifname => p.iif.as_deref().map(|n| Value::Ifname(n.into())),
        Field::Oifname => p.oif.as_deref().map(|n| Value::Ifname(n.into())),
        Field::IpSaddr => Some(addr(p.saddr)),
        Field::IpDaddr => Some(addr(p.daddr)),
        Field::Ip6Saddr | Field::Ip6Daddr | Field::Icmpv6Type | Field::Ip6Hoplimit => None,
        other => panic!("the interpreter does not read {other:?}"),
    }
}

fn matches(t: &Table, p: &Packet, left: &[Field], negate: bool, right: &Rhs) -> bool {
    let kind = |dev: &Option<String>| match dev.as_deref() {
        None => None,
        Some(BRIDGE) => Some("bridge"),
        Some(_) => Some("veth"),
    };
    // `meta iif`/`meta oif`: the device's index, 0 without one.
    let index = |dev: &Option<String>| u64::from(dev.is_some()) * 7;
    let hit = match (left, right) {
        ([Field::CtState], Rhs::Symbols(s)) => s.contains(&p.ct),
        // No packet here was redirected (no `ct status dnat`).
        ([Field::CtStatus], Rhs::Symbols(_)) => false,
        ([Field::Iif], Rhs::Ints(v)) => v.contains(&index(&p.iif)),
        ([Field::Oif], Rhs::Ints(v)) => v.contains(&index(&p.oif)),
        ([Field::L4proto], Rhs::Symbols(s)) => s.contains(&p.proto),
        ([Field::ThDport], Rhs::Ports(ports)) => {
            ["tcp", "udp"].contains(&p.proto)
                && ports.iter().any(|&(lo, hi)| lo <= p.dport && p.dport <= hi)
        }
        ([Field::Iifkind], Rhs::Str(k)) => match kind(&p.iif) {
            Some(have) => have == *k,
            None => return false,
        },
        ([Field::Oifkind], Rhs::Str(k)) => match kind(&p.oif) {
            Some(have) => have == *k,
            None => return false,
        },
        (fields, rhs) => {
            let Some(key) = fields
                .iter()
                .map(|f| field(p, *f))
                .collect::<Option<Vec<_>>>()
            else {
                return false;
            };
            match rhs {
                Rhs::Set(name) => in_set(t, name, &key),
                Rhs::Net(n) => matches!(&key[..], [Value::Net(a)] if n.contains(a)),
                Rhs::Nets(ns) => {
                    matches!(&key[..], [Value::Net(a)] if ns.iter().any(|n| n.contains(a)))
                }
                other => panic!("the interpreter does not compare with {other:?}"),
            }
        }
    };
    hit != negate
}

/// Runs the packet through every filter base chain of `hook`, lowest
/// priority first, as netfilter does: an accept ends one base chain (the
/// next still runs), a drop ends the packet's way.
fn run(r: &Ruleset, hook: Hook, p: &Packet) -> Trace {
    assert_eq!(hook, p.hook(), "{p:?} meets another hook");
    let t = r.table(Family::Inet).unwrap();
    let chain = |name: &str| {
        t.chains
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no chain {name}"))
    };
    let mut bases: Vec<_> = t
        .chains
        .iter()
        .filter(|c| {
            c.base
                .is_some_and(|b| b.hook == hook && b.kind == ChainType::Filter)
        })
        .collect();
    bases.sort_by_key(|c| c.base.unwrap().priority);
    let mut trace = Trace::default();
    'bases: for base in bases {
        // (chain, next rule) to come back to.
        let mut stack: Vec<(&str, usize)> = Vec::new();
        let (mut cur, mut at) = (base.name.as_str(), 0usize);
        loop {
            let Some(rule) = chain(cur).rules.get(at) else {
                // The end of a chain: back to the caller, or the base
                // chain's policy (accept).
                match stack.pop() {
                    Some((c, i)) => (cur, at) = (c, i),
                    None => continue 'bases,
                }
                continue;
            };
            at += 1;
            let mut verdict = None;
            for stmt in &rule.stmts {
                match stmt {
                    Stmt::Match {
                        left,
                        negate,
                        right,
                    } => {
                        if !matches(t, p, left, *negate, right) {
                            break;
                        }
                    }
                    Stmt::Counter => trace.counted.push((cur.to_string(), rule.comment.clone())),
                    Stmt::Log { prefix, .. } => trace.logs.push(prefix.clone()),
                    Stmt::Vmap { key, map } => {
                        let Some(key) =
                            key.iter().map(|f| field(p, *f)).collect::<Option<Vec<_>>>()
                        else {
                            break;
                        };
                        let set = t.sets.iter().find(|s| &s.name == map).unwrap();
                        match set.elements.iter().find(|e| e.key[..] == key[..]) {
                            Some(e) => verdict = e.verdict.clone(),
                            None => break,
                        }
                    }
                    Stmt::Verdict(v) => verdict = Some(v.clone()),
                    other => panic!("the interpreter does not run {other:?}"),
                }
            }
            match verdict {
                None => {}
                Some(Verdict::Accept) => continue 'bases,
                Some(Verdict::Drop) => return trace,
                Some(Verdict::Jump(c)) => {
                    stack.push((cur, at));
                    (cur, at) = (chain(&c).name.as_str(), 0);
                }
                Some(Verdict::Goto(c)) => (cur, at) = (chain(&c).name.as_str(), 0),
                Some(Verdict::Return) => match stack.pop() {
                    Some((c, i)) => (cur, at) = (c, i),
                    None => continue 'bases,
                },
            }
        }
    }
    trace.accepted = true;
    trace
}

fn compiled(b_from: &str) -> Ruleset {
    let p = cordon_policy::parse("policy.yaml", &policy_text(b_from)).unwrap();
    compile(&p, &inventory(), &SetOverrides::default()).ruleset
}

/// A's egress allows B; B's ingress does not allow A: dropped, by B's
/// ingress (after A's egress rule counted it as allowed). The positive
/// control: the same packet passes once B's ingress allows A.
#[test]
fn an_egress_allow_still_meets_the_receivers_ingress() {
    let pkt = Packet::new(ip(2), ip(3), "tcp", 80);

    let denied = run(&compiled("c"), Hook::Forward, &pkt);
    assert!(!denied.accepted, "{denied:#?}");
    assert_eq!(denied.logs, ["cordon ingress b drop "], "{denied:#?}");
    assert!(
        denied
            .counted
            .iter()
            .any(|(c, comment)| c == "eg_fwd_a" && comment.as_deref() == Some("line 7")),
        "A's egress rule still counts what it allowed: {denied:#?}"
    );

    let allowed = run(&compiled("a, c"), Hook::Forward, &pkt);
    assert!(allowed.accepted, "{allowed:#?}");
    assert!(allowed.logs.is_empty(), "{allowed:#?}");
    assert!(
        allowed
            .counted
            .iter()
            .any(|(c, comment)| c == "in_fwd_b" && comment.as_deref() == Some("line 14")),
        "{allowed:#?}"
    );
}

/// The other ways through the one chain: an egress drop is final (the
/// ingress never sees it), an audit-mode egress logs and goes on to the
/// ingress, an address no container holds fails closed, replies pass, and
/// a packet to the internet passes after its egress allow.
#[test]
fn drops_stay_drops_and_audit_goes_on_to_ingress() {
    let r = compiled("c");
    // A to B on another port: A's egress drops it.
    let t = run(&r, Hook::Forward, &Packet::new(ip(2), ip(3), "tcp", 81));
    assert!(!t.accepted);
    assert_eq!(t.logs, ["cordon egress a drop "]);
    // C (audit, no egress rule) to B: audited, then B's ingress judges:
    // it lets C in on 80/tcp, not on 81/tcp.
    let t = run(&r, Hook::Forward, &Packet::new(ip(4), ip(3), "tcp", 80));
    assert!(t.accepted);
    assert_eq!(t.logs, ["cordon egress c audit "]);
    let t = run(&r, Hook::Forward, &Packet::new(ip(4), ip(3), "tcp", 81));
    assert!(!t.accepted);
    assert_eq!(t.logs, ["cordon egress c audit ", "cordon ingress b drop "]);
    // C (audit) to the internet: audited and let through.
    let t = run(
        &r,
        Hook::Forward,
        &Packet::new(ip(4), "198.51.100.2".parse().unwrap(), "tcp", 80),
    );
    assert!(t.accepted);
    assert_eq!(t.logs, ["cordon egress c audit "]);
    // A to the internet on 443: allowed, nothing to judge on ingress.
    let t = run(
        &r,
        Hook::Forward,
        &Packet::new(ip(2), "198.51.100.2".parse().unwrap(), "tcp", 443),
    );
    assert!(t.accepted && t.logs.is_empty(), "{t:#?}");
    // A to an address of the subnet no container holds.
    let t = run(&r, Hook::Forward, &Packet::new(ip(2), ip(99), "tcp", 80));
    assert!(!t.accepted);
    // A's egress allows neither: the egress drop comes first.
    assert_eq!(t.logs, ["cordon egress a drop "]);
    // From an address no container holds.
    let t = run(&r, Hook::Forward, &Packet::new(ip(99), ip(3), "tcp", 80));
    assert!(!t.accepted);
    assert_eq!(t.logs, ["cordon egress unknown-source drop "]);
    // A reply of an allowed connection.
    let mut reply = Packet::new(ip(3), ip(2), "tcp", 40000);
    reply.ct = "established";
    assert!(run(&r, Hook::Forward, &reply).accepted);
}

/// The same ruleset without the entry chains' first rule, the hook split
/// (`meta oif 0 goto eg_host_*`, `meta iif 0 goto in_local_*`): what the
/// tests below must catch.
fn without_split(r: &Ruleset) -> Ruleset {
    let mut r = r.clone();
    let inet = r
        .tables
        .iter_mut()
        .find(|t| t.family == Family::Inet)
        .unwrap();
    let mut removed = 0;
    for c in &mut inet.chains {
        let split = c.rules.first().is_some_and(|rule| {
            matches!(&rule.stmts[0], Stmt::Match { left, .. } if left[..] == [Field::Oif] || left[..] == [Field::Iif])
        });
        if split {
            c.rules.remove(0);
            removed += 1;
        }
    }
    // Two entry chains (egress, and ingress when it has rules) per policy:
    // a, b, c, h, _default and _unknown; only a and _default lack ingress.
    assert_eq!(removed, 10);
    r
}

/// One egress map per family, looked up in the forward hook and in the
/// input hook: A's egress allows the internet on 443/tcp, the host's own
/// address included, yet A does not reach the host on 443/tcp (its host
/// chain has no `host` rule), and H, whose egress allows only `host`,
/// reaches the host but nothing forwarded. Without the hook split both
/// turn around, so the split is what decides.
#[test]
fn a_forwarded_allow_does_not_open_the_host_nor_a_host_allow_the_rest() {
    let r = compiled("c");
    // A: forwarded 443 allowed, the host on 443 not.
    let t = run(&r, Hook::Forward, &Packet::new(ip(2), INET, "tcp", 443));
    assert!(t.accepted && t.logs.is_empty(), "{t:#?}");
    let to_host = Packet::to_host(ip(2), "tcp", 443);
    let t = run(&r, Hook::Input, &to_host);
    assert!(!t.accepted, "{t:#?}");
    assert_eq!(t.logs, ["cordon egress-host a drop "]);
    // H: the host on 80 allowed, the internet on 80 not.
    let h_host = Packet::to_host(ip(6), "tcp", 80);
    let t = run(&r, Hook::Input, &h_host);
    assert!(t.accepted && t.logs.is_empty(), "{t:#?}");
    assert!(
        t.counted.iter().any(|(c, _)| c == "eg_host_h"),
        "the host chain's rule allowed it: {t:#?}"
    );
    let h_inet = Packet::new(ip(6), INET, "tcp", 80);
    let t = run(&r, Hook::Forward, &h_inet);
    assert!(!t.accepted, "{t:#?}");
    assert_eq!(t.logs, ["cordon egress h drop "]);
    // An address no container holds: dropped on the host's hook too.
    let t = run(&r, Hook::Input, &Packet::to_host(ip(99), "tcp", 80));
    assert!(!t.accepted);
    assert_eq!(t.logs, ["cordon egress unknown-source drop "]);

    // The mutation: without the split, A reaches the host through its
    // forwarded rule and H is refused it.
    let m = without_split(&r);
    assert!(run(&m, Hook::Input, &to_host).accepted, "mutation: A");
    assert!(!run(&m, Hook::Input, &h_host).accepted, "mutation: H");
}

/// One ingress map per family, looked up in the forward hook and in the
/// output hook: the host's own connections meet the receiver's local chain
/// (`from: [host]`), forwarded ones its forwarded chain; a container whose
/// policy has no ingress rules is let in by its `accept` element; an
/// address no container holds is dropped (no `known` set needed).
#[test]
fn ingress_from_the_host_follows_the_local_chain() {
    let r = compiled("c");
    // H lets the host in on 80/tcp, nothing else, and nobody forwarded.
    let t = run(&r, Hook::Output, &Packet::from_host(ip(6), "tcp", 80));
    assert!(t.accepted && t.logs.is_empty(), "{t:#?}");
    let t = run(&r, Hook::Output, &Packet::from_host(ip(6), "tcp", 81));
    assert!(!t.accepted);
    assert_eq!(t.logs, ["cordon ingress-host h drop "]);
    let from_inet = Packet::from_internet(ip(6), "tcp", 80);
    let t = run(&r, Hook::Forward, &from_inet);
    assert!(!t.accepted);
    assert_eq!(t.logs, ["cordon ingress h drop "]);
    // B lets C in, not the host.
    let b_from_host = Packet::from_host(ip(3), "tcp", 80);
    let t = run(&r, Hook::Output, &b_from_host);
    assert!(!t.accepted);
    assert_eq!(t.logs, ["cordon ingress-host b drop "]);
    // D (the default policy) has no ingress rules: anyone gets in.
    assert!(run(&r, Hook::Output, &Packet::from_host(ip(5), "tcp", 81)).accepted);
    assert!(run(&r, Hook::Forward, &Packet::from_internet(ip(5), "udp", 9)).accepted);
    // An address of the subnet no container holds.
    for p in [
        Packet::from_host(ip(99), "tcp", 80),
        Packet::from_internet(ip(99), "tcp", 80),
    ] {
        let t = run(&r, p.hook(), &p);
        assert!(!t.accepted, "{p:?}");
        assert_eq!(t.logs, ["cordon ingress unknown-destination drop "]);
    }

    // The mutation: without the split, the host's connection to H meets
    // H's forwarded chain, where `from: [host]` has no rule: refused.
    let m = without_split(&r);
    assert!(
        !run(&m, Hook::Output, &Packet::from_host(ip(6), "tcp", 80)).accepted,
        "mutation: H"
    );
}

/// For every pair of containers (and the internet, and an address no one
/// holds) and a few ports, the evaluator's answer is what the forward
/// chain does to the connection's first packet.
#[test]
fn the_evaluator_says_what_the_forward_chain_does() {
    for b_from in ["c", "a, c"] {
        let policy = cordon_policy::parse("policy.yaml", &policy_text(b_from)).unwrap();
        let inv = inventory();
        let overrides = SetOverrides::default();
        let learned = BTreeMap::new();
        let ev = Evaluator::new(Facts {
            policy: &policy,
            inventory: &inv,
            overrides: &overrides,
            learned: &learned,
            host: &[IpAddr::V4(HOST)],
        });
        let r = compile(&policy, &inv, &overrides).ruleset;
        let mut dsts: Vec<Ipv4Addr> = (2..=6).map(ip).collect();
        dsts.extend([ip(99), INET, HOST]);
        let flows = [
            ("tcp", Proto::Tcp, 80),
            ("tcp", Proto::Tcp, 81),
            ("tcp", Proto::Tcp, 443),
            ("udp", Proto::Udp, 80),
        ];
        let mut checked = 0;
        for src in 2..=6u8 {
            for &dst in &dsts {
                if dst == ip(src) {
                    continue;
                }
                for (proto, p, port) in flows {
                    let want = ev
                        .egress_of(
                            (src - 2) as usize,
                            &Flow {
                                dst: IpAddr::V4(dst),
                                proto: p,
                                port,
                            },
                        )
                        .unwrap();
                    // The host's own address is delivered locally: the
                    // input hook; anything else is forwarded.
                    let pkt = if dst == HOST {
                        Packet::to_host(ip(src), proto, port)
                    } else {
                        Packet::new(ip(src), dst, proto, port)
                    };
                    let got = run(&r, pkt.hook(), &pkt);
                    assert_eq!(
                        got.accepted,
                        want.allowed,
                        "{b_from}: {} -> {dst} {proto}/{port}: evaluator {want:?}, chains {got:#?}",
                        ip(src)
                    );
                    checked += 1;
                }
            }
            // The host's own connection to this container: the output hook.
            for (proto, p, port) in flows {
                let want = ev.ingress_from(
                    (src - 2) as usize,
                    IpAddr::V4(HOST),
                    &Flow {
                        dst: IpAddr::V4(ip(src)),
                        proto: p,
                        port,
                    },
                );
                let pkt = Packet::from_host(ip(src), proto, port);
                let got = run(&r, Hook::Output, &pkt);
                assert_eq!(
                    got.accepted,
                    want.allowed,
                    "{b_from}: host -> {} {proto}/{port}: evaluator {want:?}, chains {got:#?}",
                    ip(src)
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 5 * 7 * 4 + 5 * 4);
    }
}
