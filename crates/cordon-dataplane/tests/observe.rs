//! The netlink reader of cordon's tables ([`cordon_dataplane::dump`])
//! against its reference, `nft -j list table`: on realistic rulesets
//! (interval sets, DNS sets with timeouts, concatenated keys, counted
//! verdict maps, IPv6) both read the same chains, rules, counters, log
//! prefixes and elements, and a hand edit is seen by both.
//!
//! Needs root and nft; without them each test prints one `skipped:` line,
//! except under CI (CI=true), where that is a failure.

use std::time::Duration;

use cordon_compiler::{compile, SetOverrides};
use cordon_dataplane::kernel::{desired_keys, KernelTable};
use cordon_dataplane::Nft;
use cordon_inventory::{Container, Endpoint, Inventory, Network};
use cordon_ruleset::diff::{against_kernel, Observed, SetChange, Update};
use cordon_ruleset::names::Dispatch;
use cordon_ruleset::nft::{Element, Family, KeyType, Ruleset, Value};
use cordon_ruleset::PolicyKey;

#[macro_use]
mod support;

use cordon_ruleset::nft::smallvec;
use support::Ns;

const POLICY: &str = r#"
version: 1
sets:
  office: [198.18.0.0/26, 198.18.1.0/24, "2001:db8:77::/48"]
policies:
  - name: sftp
    select: { label: { app: sftp } }
    ingress:
      - from: [office]
        ports: [22/tcp]
    egress: []
  - name: web
    select: { label: { app: web } }
    egress:
      - to: ["api.example.com", "*.example.org"]
        ports: [443/tcp]
      - to: [internet]
        ports: [80/tcp, 8000-8100/tcp]
      - to: [host, 198.51.100.0/24, "2001:db8::1"]
        ports: [53/udp, icmp]
"#;

fn network(name: &str, bridge: &str, subnets: &[&str], default: bool) -> Network {
    Network {
        id: format!("{name:0>64}"),
        name: name.into(),
        driver: "bridge".into(),
        bridge: Some(bridge.into()),
        subnets: subnets.iter().map(|s| s.parse().unwrap()).collect(),
        default_bridge: default,
        ..Default::default()
    }
}

/// `n` containers with IPv4 and IPv6 addresses, MACs and host interfaces,
/// a third of them sftp, a third web, the rest without a policy.
fn inventory(n: usize) -> Inventory {
    let mut inv = Inventory {
        version: 1,
        networks: vec![
            network("bridge", "docker0", &["172.17.0.0/16"], true),
            network(
                "app",
                "br-app",
                &["10.78.0.0/16", "2001:db8:20::/64"],
                false,
            ),
        ],
        containers: vec![],
    };
    for i in 0..n {
        let mut c = Container {
            id: format!("{i:064x}"),
            name: format!("c{i}"),
            image: "busybox".into(),
            network_mode: "app".into(),
            ..Default::default()
        };
        match i % 3 {
            0 => drop(c.labels.insert("app".into(), "sftp".into())),
            1 => drop(c.labels.insert("app".into(), "web".into())),
            _ => {}
        }
        c.endpoints.push(Endpoint {
            network: "app".into(),
            ipv4: Some(
                format!("10.78.{}.{}", i / 250, i % 250 + 2)
                    .parse()
                    .unwrap(),
            ),
            ipv6: Some(format!("2001:db8:20::{:x}", i + 2).parse().unwrap()),
            mac: Some(format!("02:42:0a:4e:{:02x}:{:02x}", i / 250, i % 250 + 2)),
            host_iface: Some(format!("veth{i:07x}")),
            bridge: Some("br-app".into()),
            ..Default::default()
        });
        inv.containers.push(c);
    }
    inv
}

fn ruleset(n: usize) -> Ruleset {
    let policy = cordon_policy::parse("t.yaml", POLICY).expect("test policy parses");
    compile(&policy, &inventory(n), &SetOverrides::default()).ruleset
}

/// The elements of each set in one order (the kernel's dump order need
/// not be the listing's).
fn sorted_observed(mut o: Observed) -> Observed {
    for (_, _, t) in &mut o.tables {
        for elems in t.sets.values_mut() {
            elems.sort_by_cached_key(|e| format!("{e:?}"));
        }
    }
    o
}

fn sorted_table(mut t: KernelTable) -> KernelTable {
    for s in &mut t.sets {
        s.elements.sort_by_cached_key(|e| format!("{e:?}"));
    }
    t
}

/// The dispatch maps' key types, as `cordon status` reads them.
fn status_keys(set: &str) -> Option<Vec<KeyType>> {
    let (_, fam) = Dispatch::from_map(set)?;
    Some(vec![if fam == 4 {
        KeyType::Ipv4
    } else {
        KeyType::Ipv6
    }])
}

/// Both readings of one table agree: with the desired ruleset's key types
/// (what a reconcile reads) and with the status's.
fn assert_tables_agree(nft: &Nft, desired: &Ruleset, family: Family) {
    let listing = nft.list_table(family, "cordon").unwrap().expect("listed");
    let keys = desired_keys(desired, family);
    let by_netlink = nft
        .read_table(family, "cordon", &keys)
        .unwrap()
        .expect("read");
    let by_nft = KernelTable::from_listing(&listing, &keys).unwrap();
    assert_eq!(sorted_table(by_netlink), sorted_table(by_nft), "{family:?}");
    let by_netlink = nft
        .read_table(family, "cordon", &status_keys)
        .unwrap()
        .unwrap();
    let by_nft = KernelTable::from_listing(&listing, &status_keys).unwrap();
    assert_eq!(sorted_table(by_netlink), sorted_table(by_nft), "{family:?}");
}

fn assert_readings_agree(nft: &Nft, desired: &Ruleset) -> Observed {
    let by_netlink = sorted_observed(nft.observe(desired).unwrap());
    let by_nft = sorted_observed(nft.observe_listing(desired).unwrap());
    assert_eq!(by_netlink, by_nft);
    for family in [Family::Inet, Family::Bridge] {
        assert_tables_agree(nft, desired, family);
    }
    by_netlink
}

/// Adds elements with a lifetime to the DNS sets of the web policy's
/// first rule, as the DNS proxy does.
fn resolve(nft: &Nft, addrs: &[&str]) {
    let key = PolicyKey::Named("web".into());
    let changes: Vec<SetChange> = addrs
        .iter()
        .map(|a| {
            let net: ipnet::IpNet = a.parse().unwrap();
            let fam = if net.addr().is_ipv4() { 4 } else { 6 };
            SetChange {
                family: Family::Inet,
                table: "cordon".into(),
                set: cordon_ruleset::names::dns_set(&key, 0, fam),
                delete: vec![],
                add: vec![Element {
                    key: smallvec![Value::Net(net)],
                    verdict: None,
                }],
            }
        })
        .collect();
    nft.add_with_timeout(&changes, Duration::from_secs(600))
        .unwrap();
}

#[test]
fn netlink_reads_what_the_nft_listing_shows() {
    need_root_nft!();
    let ns = Ns::add("cdo");
    let nft = Nft::in_netns(&ns.0);
    assert_eq!(
        nft.read_table(Family::Inet, "cordon", &|_| None).unwrap(),
        None
    );
    let desired = ruleset(600);
    nft.install(&desired).unwrap();
    resolve(
        &nft,
        &["198.51.100.7/32", "198.51.100.8/32", "2001:db8:5::9/128"],
    );
    // Some packets through the ruleset, so counters are not all zero.
    ns.sh(&["ip", "link", "set", "lo", "up"]);
    let _ = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            "ping",
            "-c",
            "2",
            "-W",
            "1",
            "127.0.0.1",
        ])
        .output();

    let seen = assert_readings_agree(&nft, &desired);
    assert_eq!(against_kernel(&seen, &desired), Update::None);

    // What the comparison covered: every kind of set cordon declares.
    let inet = desired.table(Family::Inet).unwrap();
    let bridge = desired.table(Family::Bridge).unwrap();
    let observed = |f: Family, set: &str| {
        seen.tables
            .iter()
            .find(|(fam, _, _)| *fam == f)
            .and_then(|(_, _, t)| t.sets.get(set))
            .map_or(0, Vec::len)
    };
    let kinds = [
        (
            "interval",
            inet.sets
                .iter()
                .find(|s| s.interval && !s.elements.is_empty()),
        ),
        (
            "timeout",
            inet.sets
                .iter()
                .find(|s| s.timeout && s.key == [KeyType::Ipv6]),
        ),
        (
            "counted map",
            inet.sets.iter().find(|s| s.counter && s.verdict_map),
        ),
        (
            "ipv6",
            inet.sets
                .iter()
                .find(|s| s.key == [KeyType::Ipv6] && !s.elements.is_empty()),
        ),
    ];
    for (what, set) in kinds {
        let set = set.unwrap_or_else(|| panic!("no {what} set in the ruleset"));
        assert!(
            observed(Family::Inet, &set.name) > 0,
            "{what} set {} read empty",
            set.name
        );
    }
    let concat = bridge
        .sets
        .iter()
        .chain(&inet.sets)
        .find(|s| s.key.len() > 1 && !s.elements.is_empty())
        .expect("a concatenated set");
    let fam = if bridge.sets.iter().any(|s| s.name == concat.name) {
        Family::Bridge
    } else {
        Family::Inet
    };
    assert_eq!(
        observed(fam, &concat.name),
        concat.elements.len(),
        "{}",
        concat.name
    );
}

#[test]
fn hand_edits_are_seen_by_both_readings() {
    need_root_nft!();
    let ns = Ns::add("cdo");
    let nft = Nft::in_netns(&ns.0);
    let desired = ruleset(40);
    nft.install(&desired).unwrap();
    // Positive control: untouched, both readings agree and nothing differs.
    let seen = assert_readings_agree(&nft, &desired);
    assert_eq!(against_kernel(&seen, &desired), Update::None);

    let inet = desired.table(Family::Inet).unwrap();
    let map = inet
        .sets
        .iter()
        .find(|s| s.counter && s.key == [KeyType::Ipv4] && !s.elements.is_empty())
        .expect("a counted map");
    let Value::Net(addr) = &map.elements[0].key[0] else {
        panic!("{:?}", map.elements[0])
    };
    let elem = format!("{{ {} }}", addr.addr());
    ns.sh(&[
        "nft", "delete", "element", "inet", "cordon", &map.name, &elem,
    ]);
    let seen = assert_readings_agree(&nft, &desired);
    match against_kernel(&seen, &desired) {
        Update::Elements(c) => {
            assert_eq!(c.len(), 1, "{c:?}");
            assert_eq!(c[0].set, map.name);
            assert_eq!(c[0].add, vec![map.elements[0].clone()]);
            assert!(c[0].delete.is_empty());
        }
        other => panic!("the deleted element is not seen: {other:?}"),
    }

    let chain = inet
        .chains
        .iter()
        .find(|c| c.base.is_none() && !c.rules.is_empty())
        .expect("a regular chain with rules");
    ns.sh(&["nft", "flush", "chain", "inet", "cordon", &chain.name]);
    let seen = assert_readings_agree(&nft, &desired);
    assert_eq!(
        against_kernel(&seen, &desired),
        Update::Replace(format!(
            "chain {} has 0 rules, not {}",
            chain.name,
            chain.rules.len()
        ))
    );
}

/// The update from comparing bytes while reading
/// ([`Nft::observe_compared`]) and from comparing decoded elements
/// ([`Nft::observe`], the reference): the same.
fn same_update(nft: &Nft, desired: &Ruleset) -> Update {
    let decoded = against_kernel(&nft.observe(desired).unwrap(), desired);
    let compared = against_kernel(&nft.observe_compared(desired).unwrap(), desired);
    assert_eq!(compared, decoded);
    compared
}

/// `nft ARGS` in `ns`, whether it succeeded.
fn try_nft(ns: &support::Ns, args: &[&str]) -> bool {
    std::process::Command::new("ip")
        .args(["netns", "exec", &ns.0, "nft"])
        .args(args)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn comparing_bytes_gives_the_decoded_comparisons_update() {
    need_root_nft!();
    let ns = Ns::add("cdb");
    let nft = Nft::in_netns(&ns.0);
    let desired = ruleset(40);
    nft.install(&desired).unwrap();
    // Untouched: no change either way.
    assert_eq!(same_update(&nft, &desired), Update::None);
    // Every plain set was compared as bytes (none fell back to decoding).
    let seen = nft.observe_compared(&desired).unwrap();
    for t in &desired.tables {
        let (_, _, o) = seen
            .tables
            .iter()
            .find(|(f, n, _)| *f == t.family && *n == t.name)
            .unwrap();
        for s in t.sets.iter().filter(|s| !s.interval && !s.timeout) {
            assert_eq!(
                o.unmatched.get(&s.name),
                Some(&(vec![], vec![])),
                "{}",
                s.name
            );
        }
    }

    let inet = desired.table(Family::Inet).unwrap();
    let map = inet
        .sets
        .iter()
        .find(|s| s.counter && s.key == [KeyType::Ipv4] && s.elements.len() > 1)
        .expect("a counted map");
    let (first, second) = (&map.elements[0], &map.elements[1]);
    let addr = |e: &Element| match &e.key[0] {
        Value::Net(n) => n.addr().to_string(),
        v => panic!("{v:?}"),
    };
    let verdict = |e: &Element| match e.verdict.as_ref().expect("a verdict") {
        cordon_ruleset::nft::Verdict::Jump(c) => format!("jump {c}"),
        cordon_ruleset::nft::Verdict::Goto(c) => format!("goto {c}"),
        v => panic!("{v:?}"),
    };
    // One element deleted by hand: added back (the positive control:
    // the comparison sees a difference).
    let gone = format!("{{ {} }}", addr(first));
    ns.sh(&[
        "nft", "delete", "element", "inet", "cordon", &map.name, &gone,
    ]);
    match same_update(&nft, &desired) {
        Update::Elements(c) => {
            assert_eq!(c.len(), 1, "{c:?}");
            assert_eq!(c[0].add, vec![first.clone()]);
            assert!(c[0].delete.is_empty());
        }
        other => panic!("the deleted element is not seen: {other:?}"),
    }
    // One element added by hand: deleted.
    let extra = format!("{{ 10.78.222.9 : {} }}", verdict(first));
    ns.sh(&["nft", "add", "element", "inet", "cordon", &map.name, &extra]);
    // One element pointed elsewhere by hand: deleted and added back.
    let other = map
        .elements
        .iter()
        .find(|e| e.verdict != second.verdict)
        .map(verdict)
        .unwrap_or_else(|| "accept".into());
    let moved = format!("{{ {} }}", addr(second));
    ns.sh(&[
        "nft", "delete", "element", "inet", "cordon", &map.name, &moved,
    ]);
    let moved = format!("{{ {} : {other} }}", addr(second));
    ns.sh(&["nft", "add", "element", "inet", "cordon", &map.name, &moved]);
    match same_update(&nft, &desired) {
        Update::Elements(c) => {
            assert_eq!(c.len(), 1, "{c:?}");
            assert_eq!(c[0].add.len(), 2, "{c:?}");
            assert_eq!(c[0].delete.len(), 2, "{c:?}");
        }
        other => panic!("the edits are not seen: {other:?}"),
    }
    // A deleted set (one no rule refers to) and a flushed chain: the
    // tables are replaced, for the same reason either way.
    let deleted = desired.tables.iter().find_map(|t| {
        t.sets
            .iter()
            .find(|s| try_nft(&ns, &["delete", "set", t.family.as_str(), &t.name, &s.name]))
            .map(|s| s.name.clone())
    });
    let name = deleted.expect("a set no rule refers to");
    match same_update(&nft, &desired) {
        Update::Replace(why) => assert!(why.contains("sets, not"), "{name}: {why}"),
        other => panic!("the deleted set {name} is not seen: {other:?}"),
    }
    nft.install(&desired).unwrap();
    assert_eq!(same_update(&nft, &desired), Update::None);
    let chain = inet
        .chains
        .iter()
        .find(|c| c.base.is_none() && !c.rules.is_empty())
        .expect("a regular chain with rules");
    ns.sh(&["nft", "flush", "chain", "inet", "cordon", &chain.name]);
    assert_eq!(
        same_update(&nft, &desired),
        Update::Replace(format!(
            "chain {} has 0 rules, not {}",
            chain.name,
            chain.rules.len()
        ))
    );
}

/// The CPU (user, system; all threads) `f` took, and its result.
fn cpu<T>(f: impl FnOnce() -> T) -> ((Duration, Duration), T) {
    let now = || {
        // SAFETY: rusage is plain integers, valid all zero.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `u` is a valid rusage to fill.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
        let t = |v: libc::timeval| {
            Duration::from_secs(v.tv_sec as u64) + Duration::from_micros(v.tv_usec as u64)
        };
        (t(u.ru_utime), t(u.ru_stime))
    };
    let start = now();
    let out = f();
    let end = now();
    ((end.0 - start.0, end.1 - start.1), out)
}

/// The whole comparison at 10,000 containers, decoded and by bytes: the
/// CPU of each (user, system; the best of 3 by their sum). Slow in a debug
/// build; run with `--ignored --nocapture`.
#[test]
#[ignore]
fn whole_comparison_cpu_at_10000_containers() {
    need_root_nft!();
    let ns = Ns::add("cdt");
    let nft = Nft::in_netns(&ns.0);
    let desired = ruleset(10_000);
    let elements: usize = desired
        .tables
        .iter()
        .flat_map(|t| &t.sets)
        .map(|s| s.elements.len())
        .sum();
    nft.install(&desired).unwrap();
    let best = |f: &dyn Fn() -> Update| {
        (0..3)
            .map(|_| {
                let (t, u) = cpu(f);
                assert_eq!(u, Update::None);
                t
            })
            .min_by_key(|(u, s)| *u + *s)
            .unwrap()
    };
    let decoded = best(&|| against_kernel(&nft.observe(&desired).unwrap(), &desired));
    let compared = best(&|| against_kernel(&nft.observe_compared(&desired).unwrap(), &desired));
    eprintln!("{elements} elements (user, system): decoded {decoded:?}, by bytes {compared:?}");
}
