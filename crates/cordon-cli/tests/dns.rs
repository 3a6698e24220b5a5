//! The DNS proxy in the lab: names in a policy open the firewall for the
//! addresses they resolve to, for their TTL, and nothing else resolves.
//! The lab resolver is dnsmasq in a namespace, never a real one.

use std::time::Duration;

use cordon_lab::{lab_or_skip, nft_list, sh, within, CordonDaemon, Lab, Ns, Run};

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

/// The lab internet: the resolver (answering `records`) and a web server
/// (`hello-web`) on 198.51.100.2, another server (`hello-other`) on
/// 198.18.0.2; namespaces named after `tag`.
fn world(lab: &Lab, tag: &str, records: &[(&str, &str)]) -> (Ns, Ns) {
    let inet = lab.netns(&format!("inet{tag}"), "198.51.100.1", "198.51.100.2", None);
    lab.serve(&inet, 80, "hello-web");
    lab.dns_records(&inet, records);
    let other = lab.netns(&format!("other{tag}"), "198.18.0.1", "198.18.0.2", None);
    lab.serve(&other, 80, "hello-other");
    (inet, other)
}

#[test]
fn names_open_only_their_addresses_for_their_ttl() {
    let lab = lab_or_skip!(CORDON);
    // The "internet": web.lab.test and the lab resolver on 198.51.100.2,
    // other.lab.test and x.api.test on 198.18.0.2.
    let (inet, other) = world(
        &lab,
        "",
        &[
            ("web.lab.test", "198.51.100.2"),
            ("other.lab.test", "198.18.0.2"),
            ("api.test", "198.18.0.2"),
        ],
    );
    // A DNS-over-TLS port and DNS on another port, on a resolver the
    // policy does not name.
    lab.serve(&other, 853, "hello-dot");
    lab.serve(&other, 5353, "hello-dns-5353");
    let policy = lab.file(
        "dns.yaml",
        "version: 1\ndns:\n  upstream: [198.51.100.2]\npolicies:\n  - name: named\n    select: { label: { app: named } }\n    egress:\n      - to: [web.lab.test, \"*.api.test\"]\n        ports: [80/tcp, 8080/tcp]\n",
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
        lab.reaches(&c, "198.18.0.2", 80, "hello-other"),
        "control: other"
    );
    assert!(
        lab.reaches(&c, "198.18.0.2", 853, "hello-dot"),
        "control: DoT"
    );
    assert!(
        lab.reaches(&c, "198.18.0.2", 5353, "hello-dns-5353"),
        "control: DNS on another port"
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
        !lab.reaches(&c, "198.18.0.2", 80, "hello-other"),
        "and closed"
    );
    // Every query is redirected, whatever resolver it names: 198.18.0.2
    // runs no DNS server, yet the allowed name resolves and the other is
    // still refused.
    assert!(
        lab.resolves(&c, "web.lab.test", "198.18.0.2"),
        "a query to any address reaches the proxy"
    );
    assert!(!lab.resolves(&c, "other.lab.test", "198.18.0.2"));
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
        lab.reaches(&c, "198.18.0.2", 80, "hello-other"),
        "and opens its address"
    );
    // ... on the rule's ports only: DNS over TLS and DNS on other ports to
    // that resolver stay blocked, even with its address open.
    assert!(
        !lab.reaches(&c, "198.18.0.2", 853, "hello-dot"),
        "DoT blocked"
    );
    assert!(
        !lab.reaches(&c, "198.18.0.2", 5353, "hello-dns-5353"),
        "DNS on another port blocked"
    );

    // A container without names in its policy (default: internet) uses
    // DNS as ordinary traffic, not through the proxy.
    assert!(lab.resolves(&plain, "other.lab.test", "198.51.100.2"));

    // An echo server (socat) on the same address, port 8080 (also in the
    // rule), for a connection that outlives the address's lifetime.
    lab.spawn(
        std::process::Command::new("ip")
            .args(["netns", "exec", &inet.name, "socat"])
            .args(["TCP-LISTEN:8080,fork,reuseaddr", "EXEC:cat"]),
    );
    // TTL: dnsmasq answers with TTL 0, clamped to the 5 s minimum. After
    // that a new connection needs a new lookup, but one opened before
    // lives on (conntrack): it sends "one" now and "two" after expiry.
    assert!(lab.resolves(&c, "web.lab.test", "198.51.100.2"));
    let (_, started) = lab.exec(
        &c,
        "( (echo one; sleep 8; echo two) | nc 198.51.100.2 8080 > /tmp/long 2>&1 & ) ; echo started",
    );
    assert!(started.contains("started"));
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        !lab.reaches(&c, "198.51.100.2", 80, "hello-web"),
        "expired with its TTL"
    );
    std::thread::sleep(Duration::from_secs(3));
    let (_, long) = lab.exec(&c, "cat /tmp/long");
    assert!(
        long.contains("one") && long.contains("two"),
        "a connection opened before the expiry survives it: {long:?}"
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
    lab.dns_records(
        &inet,
        &[
            ("v6.lab.test", "2001:db8:51::2"),
            ("other.lab.test", "2001:db8:51::2"),
        ],
    );
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
    assert!(
        lab.resolves(&c, "other.lab.test", "127.0.0.11"),
        "control: the embedded resolver forwards to the lab resolver"
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
    // Through Docker's embedded resolver (127.0.0.11 on a user-defined
    // network): its upstream query leaves from the container's namespace
    // and is redirected like any other, so the allowlist still decides.
    assert!(
        lab.resolves(&c, "v6.lab.test", "127.0.0.11"),
        "the embedded resolver's upstream query is answered by the proxy"
    );
    assert!(
        !lab.resolves(&c, "other.lab.test", "127.0.0.11"),
        "and a name off the list is refused through it too"
    );
    assert!(
        lab.reaches(&c, "2001:db8:51::2", 80, "hello-v6"),
        "and opens the IPv6 address"
    );
}

/// A DNS query for the A record of `name` over TCP (length-prefixed),
/// written as a `printf` format of octal escapes.
fn tcp_query_printf(name: &str) -> String {
    let mut msg: Vec<u8> = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        msg.push(label.len() as u8);
        msg.extend(label.bytes());
    }
    msg.extend([0, 0, 1, 0, 1]);
    let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
    framed.extend(msg);
    framed.iter().map(|b| format!("\\{b:03o}")).collect()
}

#[test]
fn dns_settings_cap_refusal_code_and_tcp() {
    let lab = lab_or_skip!(CORDON);
    // multi.lab.test has two addresses; the cap lets one open.
    let (_inet, _other) = world(
        &lab,
        "c",
        &[
            ("multi.lab.test", "198.51.100.2"),
            ("multi.lab.test", "198.18.0.2"),
            ("tcp.lab.test", "198.51.100.2"),
        ],
    );
    let policy = lab.file(
        "dnsconf.yaml",
        "version: 1\ndns:\n  upstream: [198.51.100.2]\n  max_addresses: 1\n  refuse_with: nxdomain\npolicies:\n  - name: capped\n    select: { label: { app: capped } }\n    egress:\n      - to: [multi.lab.test]\n        ports: [80/tcp]\n  - name: bytcp\n    select: { label: { app: bytcp } }\n    egress:\n      - to: [tcp.lab.test]\n        ports: [80/tcp]\n",
    );
    let c = lab.run(
        Run::named("capped")
            .label("app", "capped")
            .dns("198.51.100.2"),
    );
    let t = lab.run(
        Run::named("bytcp")
            .label("app", "bytcp")
            .dns("198.51.100.2"),
    );
    let tcp_lookup = format!(
        "printf '{}' | nc -w 3 198.18.0.2 53 | od -An -tx1",
        tcp_query_printf("tcp.lab.test")
    );
    // Positive controls without cordon: both addresses answer and serve;
    // 198.18.0.2 runs no DNS server, so the TCP lookup gets nothing.
    assert_eq!(
        cordon_lab::docker::resolve_in(&c.id, "multi.lab.test", "198.51.100.2").len(),
        2,
        "control: two addresses"
    );
    assert!(lab.reaches(&c, "198.51.100.2", 80, "hello-web"));
    assert!(lab.reaches(&c, "198.18.0.2", 80, "hello-other"));
    assert!(lab.reaches(&t, "198.51.100.2", 80, "hello-web"));
    assert!(
        !lab.exec(&t, &tcp_lookup).1.contains("c6 33 64 02"),
        "control: no DNS server at 198.18.0.2"
    );

    let _daemon = CordonDaemon::spawn(lab.command(&["daemon", "-c", &policy]));
    assert!(
        within(30.0, || nft_list(&[
            "set",
            "inet",
            "cordon",
            "dns_clients4"
        ])
        .contains(&t.ip4))
        .is_some(),
        "daemon up, DNS redirected"
    );
    assert!(!lab.reaches(&c, "198.51.100.2", 80, "hello-web"));
    assert!(!lab.reaches(&c, "198.18.0.2", 80, "hello-other"));

    // The answer carries both addresses; the cap opens only one.
    assert_eq!(
        cordon_lab::docker::resolve_in(&c.id, "multi.lab.test", "198.51.100.2").len(),
        2,
        "the whole answer is released"
    );
    let set = nft_list(&["set", "inet", "cordon", "dns_capped_0_4"]);
    let held = ["198.51.100.2", "198.18.0.2"]
        .iter()
        .filter(|a| set.contains(*a))
        .count();
    assert_eq!(held, 1, "{set}");
    let open = [
        lab.reaches(&c, "198.51.100.2", 80, "hello-web"),
        lab.reaches(&c, "198.18.0.2", 80, "hello-other"),
    ];
    assert_eq!(open.iter().filter(|o| **o).count(), 1, "{open:?}");

    // refuse_with: nxdomain.
    let (_, out) = lab.exec(&c, "nslookup other.lab.test 198.51.100.2");
    assert!(out.contains("NXDOMAIN"), "{out}");
    // The refusal is logged with the container, for `cordon logs`.
    let logs = lab.cordon_ok(&["logs", "-o", "json"]);
    assert!(
        logs.lines().any(|l| {
            let e: serde_json::Value = serde_json::from_str(l).unwrap();
            e["direction"] == "dns"
                && e["verdict"] == "refused"
                && e["name"] == "other.lab.test"
                && e["container"] == c.name.as_str()
                && e["policy"] == "capped"
        }),
        "{logs}"
    );

    // DNS over TCP, to an address with no DNS server: redirected to the
    // proxy, asked upstream over TCP, and the answer opens the address.
    assert!(
        !lab.reaches(&t, "198.51.100.2", 80, "hello-web"),
        "closed before"
    );
    let (_, out) = lab.exec(&t, &tcp_lookup);
    assert!(out.contains("c6 33 64 02"), "TCP answer: {out}");
    assert!(
        lab.reaches(&t, "198.51.100.2", 80, "hello-web"),
        "opened over TCP"
    );
}
