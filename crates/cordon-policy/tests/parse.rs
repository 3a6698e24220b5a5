//! The parser on whole files: every error located, never a panic.

use cordon_policy::{parse, Peer, PortSpec};
use proptest::prelude::*;

const SPEC: &str = include_str!("../../cordon-cli/tests/fixtures/spec.yaml");

#[test]
fn spec_example_parses_to_what_it_says() {
    let p = parse("spec.yaml", SPEC).unwrap();
    assert_eq!(p.sets[0].name, "office");
    assert_eq!(p.sets[0].addrs.len(), 2);
    assert_eq!(
        p.dns.upstream,
        vec!["203.0.113.53".parse::<std::net::IpAddr>().unwrap()]
    );
    let web = p.policy("web").unwrap();
    assert_eq!(web.select.compose_service.as_deref(), Some("web"));
    assert_eq!(web.body.egress[0].peers, vec![Peer::Policy("db".into())]);
    assert_eq!(web.body.egress[0].ports, vec![PortSpec::Tcp(5432, 5432)]);
    assert_eq!(
        web.body.egress[1].peers,
        vec![
            Peer::Dns("api.example.com".into()),
            Peer::DnsWildcard("example.org".into())
        ]
    );
    let sftp = p.policy("sftp").unwrap();
    assert_eq!(
        sftp.body.ingress.as_ref().unwrap()[0].peers,
        vec![Peer::Set("office".into())]
    );
    assert!(sftp.body.egress.is_empty());
}

#[test]
fn absent_default_is_the_embedded_one_and_absent_egress_is_nothing() {
    let p = parse(
        "f.yaml",
        "version: 1\npolicies:\n  - name: quiet\n    select: { name: q }\n",
    )
    .unwrap();
    assert_eq!(p.default, cordon_policy::embedded_default().default);
    assert!(p.policy("quiet").unwrap().body.egress.is_empty());
    assert!(p.policy("quiet").unwrap().body.ingress.is_none());
}

#[test]
fn empty_ports_list_is_refused() {
    let e = parse(
        "f.yaml",
        "version: 1\ndefault:\n  egress:\n    - to: [internet]\n      ports: []\n",
    )
    .unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].to_string(),
        "f.yaml:5:14: `ports: []` would allow nothing; leave `ports` out to allow every port, or remove the rule"
    );
}

#[test]
fn dns_settings_parse_with_defaults_and_units() {
    use std::time::Duration;
    let d = parse("f.yaml", "version: 1\n").unwrap().dns;
    assert_eq!(d.min_ttl, Duration::from_secs(5));
    assert_eq!(d.max_ttl, Duration::from_secs(3600));
    assert_eq!(d.max_addresses, 32);
    assert!(!d.nxdomain);
    let d = parse(
        "f.yaml",
        "version: 1\ndns:\n  min_ttl: 30\n  max_ttl: 2h\n  max_addresses: 8\n  refuse_with: nxdomain\n",
    )
    .unwrap()
    .dns;
    assert_eq!(d.min_ttl, Duration::from_secs(30));
    assert_eq!(d.max_ttl, Duration::from_secs(7200));
    assert_eq!(d.max_addresses, 8);
    assert!(d.nxdomain);
    assert_eq!(
        (d.query_rate, d.query_burst, d.cache),
        (Some(100), 200, 10_000)
    );
    let d = parse(
        "f.yaml",
        "version: 1\ndns:\n  query_rate: 20\n  query_burst: 40\n  cache: 500\n",
    )
    .unwrap()
    .dns;
    assert_eq!((d.query_rate, d.query_burst, d.cache), (Some(20), 40, 500));
    let d = parse(
        "f.yaml",
        "version: 1\ndns:\n  query_rate: off\n  cache: off\n",
    )
    .unwrap()
    .dns;
    assert_eq!((d.query_rate, d.cache), (None, 0));
    let d = parse(
        "f.yaml",
        "version: 1\ndns:\n  min_ttl: 1m30s\n  max_ttl: 1h30m\n",
    )
    .unwrap()
    .dns;
    assert_eq!(d.min_ttl, Duration::from_secs(90));
    assert_eq!(d.max_ttl, Duration::from_secs(5400));
}

#[test]
fn bad_dns_settings_are_located() {
    let cases = [
        ("min_ttl: 0", "f.yaml:3:12: dns.min_ttl must be between 1s and 7d, not `0`"),
        ("max_ttl: 8d", "f.yaml:3:12: dns.max_ttl must be between 1s and 7d, not `8d`"),
        (
            "max_ttl: soon",
            "f.yaml:3:12: dns.max_ttl: `soon` is not a duration; write e.g. `30s`, `5m`, `1h30m` or `1d`",
        ),
        (
            "min_ttl: 2h",
            "f.yaml:3:12: dns.min_ttl (7200s) is longer than dns.max_ttl (3600s)",
        ),
        (
            "max_addresses: 0",
            "f.yaml:3:18: dns.max_addresses must be a whole number from 1 to 4096, not `0`",
        ),
        (
            "refuse_with: drop",
            "f.yaml:3:16: dns.refuse_with must be `refused` or `nxdomain`, not `drop`",
        ),
        (
            "query_rate: 0",
            "f.yaml:3:15: dns.query_rate must be a whole number from 1 to 1000000 or `off`, not `0`",
        ),
        (
            "query_burst: off",
            "f.yaml:3:16: dns.query_burst must be a whole number from 1 to 1000000, not `off`",
        ),
        (
            "cache: lots",
            "f.yaml:3:10: dns.cache must be a whole number from 0 to 1000000 or `off`, not `lots`",
        ),
        (
            "ttl: 5",
            "f.yaml:3:3: unknown key `ttl` in `dns`; expected one of: upstream, min_ttl, max_ttl, max_addresses, refuse_with, query_rate, query_burst, cache",
        ),
    ];
    for (line, want) in cases {
        let e = parse("f.yaml", &format!("version: 1\ndns:\n  {line}\n")).unwrap_err();
        assert_eq!(e.len(), 1, "{line}: {e:?}");
        assert_eq!(e[0].to_string(), want);
    }
}

#[test]
fn empty_file_and_wrong_top_level() {
    assert_eq!(
        parse("f.yaml", "").unwrap_err()[0].to_string(),
        "f.yaml:1:1: the file is empty; a policy file starts with `version: 1`"
    );
    assert_eq!(
        parse("f.yaml", "- a\n").unwrap_err()[0].to_string(),
        "f.yaml:1:1: the policy file must be a mapping, not a list"
    );
    assert!(parse("f.yaml", "sets: {}\n").unwrap_err()[0]
        .to_string()
        .contains("missing `version: 1`"));
}

#[test]
fn server_name_rules_and_the_l7_section_parse() {
    let p = parse(
        "f.yaml",
        "version: 1\nl7:\n  max_connections_per_container: 16\ndefault:\n  egress:\n    - to: [api.example.com, \"*.example.org\"]\n      ports: [443/tcp, 80/tcp]\n      match: server-name\n    - to: [api.example.com]\n      ports: [443/tcp]\n",
    )
    .unwrap();
    assert_eq!(p.l7.max_connections_per_container, 16);
    assert!(p.default.egress[0].server_name);
    assert!(!p.default.egress[1].server_name);
    let plain = parse("f.yaml", "version: 1\n").unwrap();
    assert_eq!(
        plain.l7.max_connections_per_container,
        cordon_policy::L7Config::DEFAULT_PER_CONTAINER
    );
}

#[test]
fn bad_server_name_rules_are_located() {
    let rule = |body: &str| format!("version: 1\ndefault:\n  egress:\n    - {body}\n");
    let cases = [
        (
            rule("to: [a.example.com]\n      ports: [443/tcp]\n      match: sni"),
            vec!["f.yaml:6:14: `match` is `server-name` (the only kind so far), not `sni`"],
        ),
        (
            rule("to: [a.example.com, 198.51.100.7]\n      ports: [443/tcp]\n      match: server-name"),
            vec!["f.yaml:4:27: `198.51.100.7` is not a DNS name: a rule with `match: server-name` names only DNS names (an address has no server name to check); put `198.51.100.7` in a rule of its own"],
        ),
        (
            rule("to: [internet]\n      ports: [443/tcp]\n      match: server-name"),
            vec!["f.yaml:4:12: `internet` is not a DNS name: a rule with `match: server-name` names only DNS names (an address has no server name to check); put `internet` in a rule of its own"],
        ),
        (
            rule("to: [a.example.com]\n      match: server-name"),
            vec!["f.yaml:5:7: `match: server-name` needs `ports:` with TCP ports, e.g. `ports: [443/tcp, 80/tcp]`"],
        ),
        (
            rule("to: [a.example.com]\n      ports: [443/tcp, 443/udp, icmp]\n      match: server-name"),
            vec![
                "f.yaml:5:24: `443/udp`: a rule with `match: server-name` takes TCP ports only (the name is read from a TCP connection's first bytes; QUIC, 443/udp, to its addresses is dropped so that clients fall back to TCP)",
                "f.yaml:5:33: `icmp`: a rule with `match: server-name` takes TCP ports only (the name is read from a TCP connection's first bytes; QUIC, 443/udp, to its addresses is dropped so that clients fall back to TCP)",
            ],
        ),
        (
            "version: 1\ndefault:\n  ingress:\n    - from: [private]\n      match: server-name\n".to_string(),
            vec!["f.yaml:5:7: `match` applies to egress rules only: a server name is what a container asks for, not where a connection comes from"],
        ),
        (
            "version: 1\nl7:\n  max_connections_per_container: 0\n".to_string(),
            vec!["f.yaml:3:34: l7.max_connections_per_container must be a whole number from 1 to 65535, not `0`"],
        ),
        (
            "version: 1\nl7:\n  per_container: 5\n".to_string(),
            vec!["f.yaml:3:3: unknown key `per_container` in `l7`; expected one of: max_connections_per_container"],
        ),
    ];
    for (text, want) in cases {
        let e = parse("f.yaml", &text).unwrap_err();
        let got: Vec<String> = e.iter().map(|d| d.to_string()).collect();
        assert_eq!(got, want, "{text}");
    }
}

#[test]
fn duplicate_keys_are_yaml_errors() {
    let e = parse("f.yaml", "version: 1\nversion: 1\n").unwrap_err();
    assert!(e[0].to_string().starts_with("f.yaml:2:"), "{e:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary text never panics the parser; errors are always located.
    #[test]
    fn never_panics(text in "\\PC{0,200}") {
        if let Err(diags) = parse("f.yaml", &text) {
            prop_assert!(!diags.is_empty());
            for d in diags {
                prop_assert!(d.loc.line >= 1 && d.loc.col >= 1);
            }
        }
    }

    /// The spec example with one byte replaced never panics either.
    #[test]
    fn mutated_spec_never_panics(pos in 0usize..SPEC.len(), byte in proptest::sample::select(b":-[]{}, \n#*/.\"'0a".to_vec())) {
        let mut bytes = SPEC.as_bytes().to_vec();
        bytes[pos] = byte;
        if let Ok(text) = String::from_utf8(bytes) {
            let _ = parse("f.yaml", &text);
        }
    }

    /// Every valid port range is accepted as written.
    #[test]
    fn port_ranges(lo in 1u16.., span in 0u16..1000, udp in any::<bool>()) {
        let hi = lo.saturating_add(span);
        let proto = if udp { "udp" } else { "tcp" };
        let text = format!("version: 1\ndefault:\n  egress:\n    - to: [any]\n      ports: [\"{lo}-{hi}/{proto}\"]\n");
        let p = parse("f.yaml", &text).unwrap();
        let want = if udp { PortSpec::Udp(lo, hi) } else { PortSpec::Tcp(lo, hi) };
        prop_assert_eq!(&p.default.egress[0].ports, &vec![want]);
    }
}

#[test]
fn names_of_the_fail_closed_rules_are_refused() {
    // Positive control: an ordinary name of the same shape parses.
    let ok = "version: 1\npolicies:\n  - name: unknown-sources\n    select: { name: x }\n";
    assert!(parse("f.yaml", ok).is_ok());
    for name in cordon_policy::RESERVED_NAMES {
        let policy =
            format!("version: 1\npolicies:\n  - name: {name}\n    select: {{ name: x }}\n");
        let e = parse("f.yaml", &policy).unwrap_err()[0].to_string();
        assert_eq!(
            e,
            format!("f.yaml:3:11: `{name}` is reserved for cordon's fail-closed rules (its logs would read as theirs) and cannot name a policy")
        );
        let set = format!("version: 1\nsets:\n  {name}: [198.51.100.0/24]\n");
        assert!(
            parse("f.yaml", &set).unwrap_err()[0]
                .to_string()
                .contains(&format!("`{name}` is reserved")),
            "set {name}"
        );
    }
}
