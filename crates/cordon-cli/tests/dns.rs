//! The DNS proxy in the lab: names in a policy open the firewall for the
//! addresses they resolve to, for their TTL, and nothing else resolves.
//! The lab resolver is dnsmasq in a namespace, never a real one.

use std::time::Duration;

use cordon_lab::{lab_or_skip, sh, within, CordonDaemon, Run};

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

/// `nft list ARGS`, or nothing when it fails (the table is not there yet).
fn nft_list(args: &[&str]) -> String {
    std::process::Command::new("nft")
        .arg("list")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[test]
fn names_open_only_their_addresses_for_their_ttl() {
    let lab = lab_or_skip!(CORDON);
    // The "internet": web.lab.test and the lab resolver on 198.51.100.2,
    // other.lab.test and x.api.test on 203.0.113.2.
    let inet = lab.netns("inet", "198.51.100.1", "198.51.100.2", None);
    lab.serve(&inet, 80, "hello-web");
    lab.dns_records(
        &inet,
        &[
            ("web.lab.test", "198.51.100.2"),
            ("other.lab.test", "203.0.113.2"),
            ("api.test", "203.0.113.2"),
        ],
    );
    let other = lab.netns("other", "203.0.113.1", "203.0.113.2", None);
    lab.serve(&other, 80, "hello-other");
    let policy = lab.file(
        "dns.yaml",
        "version: 1\ndns:\n  upstream: [198.51.100.2]\npolicies:\n  - name: named\n    select: { label: { app: named } }\n    egress:\n      - to: [web.lab.test, \"*.api.test\"]\n        ports: [80/tcp]\n",
    );
    let c = lab.run(
        Run::named("named")
            .label("app", "named")
            .dns("198.51.100.2"),
    );
    let plain = lab.run(Run::named("plain").dns("198.51.100.2"));

    // Positive controls, without cordon.
    assert!(
        lab.resolves(&c, "web.lab.test", "198.51.100.2"),
        "control: resolver"
    );
    assert!(
        lab.resolves(&c, "other.lab.test", "198.51.100.2"),
        "control: other name"
    );
    assert!(
        lab.reaches(&c, "198.51.100.2", 80, "hello-web"),
        "control: web"
    );
    assert!(
        lab.reaches(&c, "203.0.113.2", 80, "hello-other"),
        "control: other"
    );

    let _daemon = CordonDaemon::spawn(lab.command(&["daemon", "-c", &policy]));
    assert!(
        within(30.0, || lab.socket().exists()).is_some(),
        "daemon up"
    );
    assert!(
        within(10.0, || nft_list(&[
            "set",
            "inet",
            "cordon",
            "dns_clients4"
        ])
        .contains(&c.ip4))
        .is_some(),
        "the named container's DNS is redirected"
    );

    // Before a lookup the address is closed.
    assert!(
        !lab.reaches(&c, "198.51.100.2", 80, "hello-web"),
        "closed before the lookup"
    );
    // An allowlisted name resolves and opens exactly its address.
    assert!(
        lab.resolves(&c, "web.lab.test", "198.51.100.2"),
        "allowlisted name resolves"
    );
    assert!(
        lab.reaches(&c, "198.51.100.2", 80, "hello-web"),
        "and opens"
    );
    let set = sh("nft", &["list", "set", "inet", "cordon", "dns_named_0_4"]);
    assert!(
        set.contains("198.51.100.2") && set.contains("expires"),
        "{set}"
    );
    // Another name neither resolves nor connects.
    assert!(
        !lab.resolves(&c, "other.lab.test", "198.51.100.2"),
        "other name refused"
    );
    assert!(
        !lab.reaches(&c, "203.0.113.2", 80, "hello-other"),
        "and closed"
    );
    // Every query is redirected, whatever resolver it names: 203.0.113.2
    // runs no DNS server, yet the allowed name resolves and the other is
    // still refused.
    assert!(
        lab.resolves(&c, "web.lab.test", "203.0.113.2"),
        "a query to any address reaches the proxy"
    );
    assert!(!lab.resolves(&c, "other.lab.test", "203.0.113.2"));
    // A wildcard: names below api.test.
    assert!(
        !lab.resolves(&c, "api.test", "198.51.100.2"),
        "the wildcard is below the suffix"
    );
    assert!(
        lab.resolves(&c, "x.api.test", "198.51.100.2"),
        "wildcard name resolves"
    );
    assert!(
        lab.reaches(&c, "203.0.113.2", 80, "hello-other"),
        "and opens its address"
    );

    // A container without names in its policy (default: internet) uses
    // DNS as ordinary traffic, not through the proxy.
    assert!(lab.resolves(&plain, "other.lab.test", "198.51.100.2"));

    // TTL: dnsmasq answers with TTL 0, clamped to the 5 s minimum. After
    // that a new connection needs a new lookup.
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        !lab.reaches(&c, "198.51.100.2", 80, "hello-web"),
        "expired with its TTL"
    );
    assert!(lab.resolves(&c, "web.lab.test", "198.51.100.2"));
    assert!(
        lab.reaches(&c, "198.51.100.2", 80, "hello-web"),
        "a fresh lookup opens it again"
    );
}

#[test]
fn aaaa_answers_open_ipv6_addresses() {
    let lab = lab_or_skip!(CORDON);
    lab.ipv6_forwarding();
    let inet = lab.netns(
        "inet6",
        "198.51.100.1",
        "198.51.100.2",
        Some(("2001:db8:51::1", "2001:db8:51::2")),
    );
    lab.serve(&inet, 80, "hello-v6");
    lab.dns_records(&inet, &[("v6.lab.test", "2001:db8:51::2")]);
    let net = lab.network("dns6", "10.127.4.0/24", Some("2001:db8:204::/64"));
    let policy = lab.file(
        "dns6.yaml",
        "version: 1\ndns:\n  upstream: [198.51.100.2]\npolicies:\n  - name: named\n    select: { label: { app: named } }\n    egress:\n      - to: [v6.lab.test]\n        ports: [80/tcp]\n",
    );
    let c = lab.run(
        Run::named("named6")
            .on(&net)
            .label("app", "named")
            .dns("198.51.100.2"),
    );
    let ip6 = c.ip6.clone().expect("an IPv6 address");
    assert!(
        lab.reaches(&c, "2001:db8:51::2", 80, "hello-v6"),
        "control: IPv6 target"
    );
    assert!(
        lab.resolves(&c, "v6.lab.test", "198.51.100.2"),
        "control: AAAA"
    );

    let _daemon = CordonDaemon::spawn(lab.command(&["daemon", "-c", &policy]));
    assert!(
        within(30.0, || nft_list(&[
            "set",
            "inet",
            "cordon",
            "dns_clients6"
        ])
        .contains(&ip6))
        .is_some(),
        "the container's IPv6 address is a DNS client"
    );
    assert!(
        !lab.reaches(&c, "2001:db8:51::2", 80, "hello-v6"),
        "closed before the lookup"
    );
    assert!(
        lab.resolves(&c, "v6.lab.test", "198.51.100.2"),
        "the AAAA answer comes back"
    );
    let set = sh("nft", &["list", "set", "inet", "cordon", "dns_named_0_6"]);
    assert!(set.contains("2001:db8:51::2"), "{set}");
    assert!(
        lab.reaches(&c, "2001:db8:51::2", 80, "hello-v6"),
        "and opens the IPv6 address"
    );
}
