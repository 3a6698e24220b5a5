//! The L7 allowlist in the lab (rules with `match: server-name`, issue 17):
//! a real TLS server (`openssl s_server`, with a certificate the test makes)
//! and a real client (`openssl s_client`, the host's, run in the
//! container's network namespace with `nsenter`), HTTP through busybox
//! `nc`, the lab resolver (dnsmasq) answering lab names with lab
//! addresses, and cordon's daemon in between. Every refusal is shown to be
//! one by a positive control: the same connection succeeds without cordon,
//! and the allowed one succeeds with it.

use std::process::Command;

use cordon_lab::{lab_or_skip, nft_list, sh, within, CordonDaemon, Ctr, Lab, Ns, Run};

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

/// The policy under test: `named` may reach api.lab.test (and names
/// below cdn.lab.test) on 443 and 80, and other.lab.test on 443, only by
/// those names; plain.lab.test on 8081 by address as ever; QUIC's port is
/// open to the internet; the host is open. `watch` has the same first rule
/// in audit mode.
const POLICY: &str = r#"version: 1
dns:
  upstream: [198.51.100.2]
  # The lab resolver answers with TTL 0: keep what is learned for the
  # whole test.
  min_ttl: 10m
policies:
  - name: named
    select: { label: { app: named } }
    egress:
      - to: [api.lab.test, "*.cdn.lab.test"]
        ports: [443/tcp, 80/tcp]
        match: server-name
      - to: [other.lab.test]
        ports: [443/tcp]
        match: server-name
      - to: [plain.lab.test]
        ports: [8081/tcp]
      - to: [internet]
        ports: [443/udp, 4443/udp]
      - to: [host]
  - name: watch
    select: { label: { app: watch } }
    mode: audit
    egress:
      - to: [api.lab.test]
        ports: [443/tcp]
        match: server-name
"#;

/// A self-signed certificate and key made now, in the lab's directory.
fn certificate(lab: &Lab) -> (String, String) {
    let key = lab.file("l7-key.pem", "");
    let cert = lab.file("l7-cert.pem", "");
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=api.lab.test", "-keyout", &key, "-out", &cert])
        .output()
        .expect("run openssl req");
    assert!(out.status.success(), "openssl req: {out:?}");
    (cert, key)
}

/// `openssl s_server -www` on port 443 (IPv4 and IPv6) in `ns`.
fn tls_server(lab: &Lab, ns: &Ns, cert: &str, key: &str) {
    lab.spawn(
        Command::new("ip")
            .args(["netns", "exec", &ns.name, "openssl", "s_server"])
            .args(["-accept", "443", "-cert", cert, "-key", key, "-www"])
            .stdin(std::process::Stdio::null()),
    );
}

/// A small HTTP server (socat) on port 80 of `ns`: reads the request's
/// head to its blank line, then answers `hello-web` and closes (so no
/// unread byte turns the close into a reset).
fn http_server(lab: &Lab, ns: &Ns) {
    let script = lab.file(
        "l7-http.sh",
        "while read -r l; do [ \"$l\" = \"$(printf '\\r')\" ] && break; [ -z \"$l\" ] && break; done\nprintf 'HTTP/1.0 200 OK\\r\\n\\r\\nhello-web\\n'\n",
    );
    lab.spawn(
        Command::new("ip")
            .args(["netns", "exec", &ns.name, "socat"])
            .args([
                "TCP6-LISTEN:80,fork,reuseaddr,ipv6only=0",
                &format!("EXEC:sh {script}"),
            ]),
    );
}

/// A UDP echo server (socat) on `port` of `ns`.
fn udp_echo(lab: &Lab, ns: &Ns, port: u16) {
    lab.spawn(
        Command::new("ip")
            .args(["netns", "exec", &ns.name, "socat"])
            .args([&format!("UDP-RECVFROM:{port},fork"), "EXEC:cat"]),
    );
}

/// Runs `script` on the host inside `c`'s network namespace (so with the
/// host's openssl and socat); returns its output.
fn in_container(lab: &Lab, c: &Ctr, script: &str) -> String {
    let netns = lab.netns_of(c);
    let out = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(["sh", "-c", script])
        .output()
        .expect("run nsenter");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// True when a TLS handshake from `c` to `addr`:443 with server name `sni`
/// (none when `None`) completes and the server's page arrives.
fn tls(lab: &Lab, c: &Ctr, addr: &str, sni: Option<&str>) -> bool {
    let target = if addr.contains(':') {
        format!("[{addr}]:443")
    } else {
        format!("{addr}:443")
    };
    let name = match sni {
        Some(n) => format!("-servername {n}"),
        None => "-noservername".into(),
    };
    let out = in_container(
        lab,
        c,
        &format!(
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout -s KILL 8 openssl s_client -connect {target} {name} -quiet"
        ),
    );
    let ok = out.contains("200 ok");
    eprintln!("tls {} -> {target} sni {sni:?}: {ok}", c.name);
    ok
}

/// What an HTTP/1.1 request with `Host: host` from `c` to `addr`:`port`
/// gets back (busybox nc in the container).
fn http(lab: &Lab, c: &Ctr, addr: &str, port: u16, host: &str) -> String {
    lab.exec(
        c,
        &format!(
            "printf 'GET / HTTP/1.1\\r\\nHost: {host}\\r\\n\\r\\n' | timeout -s KILL 5 nc -w 3 {addr} {port}"
        ),
    )
    .1
}

/// True when a datagram from `c` to `addr`:`port` comes back.
fn udp(lab: &Lab, c: &Ctr, addr: &str, port: u16) -> bool {
    in_container(
        lab,
        c,
        &format!("echo quic-ping | timeout -s KILL 4 socat -T2 - UDP:{addr}:{port}"),
    )
    .contains("quic-ping")
}

/// `cordon logs -o json` events of direction `l7`.
fn l7_events(lab: &Lab) -> Vec<serde_json::Value> {
    lab.cordon_ok(&["logs", "-o", "json", "-n", "200"])
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["direction"] == "l7")
        .collect()
}

/// The value of one sample of `cordon metrics`, 0 when absent.
fn metric(lab: &Lab, sample: &str) -> u64 {
    lab.cordon_ok(&["metrics"])
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or(0)
}

/// The packets counted by the `egress_host` rule that drops direct
/// connections to the L7 proxy.
fn direct_drops() -> u64 {
    let chain = nft_list(&["chain", "inet", "cordon", "egress_host"]);
    chain
        .lines()
        .find(|l| l.contains("l7-direct"))
        .and_then(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let i = w.iter().position(|x| *x == "packets")?;
            w.get(i + 1)?.parse().ok()
        })
        .unwrap_or(0)
}

#[test]
fn server_names_decide_at_addresses_learned_for_them() {
    let lab = lab_or_skip!(CORDON);
    lab.ipv6_forwarding();
    let inet = lab.netns(
        "l7inet",
        "198.51.100.1",
        "198.51.100.2",
        Some(("2001:db8:51::1", "2001:db8:51::2")),
    );
    let other = lab.netns("l7other", "198.18.0.1", "198.18.0.2", None);
    lab.dns_records(
        &inet,
        &[
            ("api.lab.test", "198.51.100.2"),
            ("api.lab.test", "2001:db8:51::2"),
            ("plain.lab.test", "198.51.100.2"),
            ("other.lab.test", "198.18.0.2"),
        ],
    );
    let (cert, key) = certificate(&lab);
    tls_server(&lab, &inet, &cert, &key);
    tls_server(&lab, &other, &cert, &key);
    http_server(&lab, &inet);
    lab.serve(&inet, 8081, "hello-plain");
    udp_echo(&lab, &inet, 443);
    udp_echo(&lab, &inet, 4443);
    let net = lab.network("l7", "10.127.17.0/24", Some("2001:db8:217::/64"));
    lab.serve_host("10.127.17.1", 8082, "hello-host");
    let policy = lab.file("l7.yaml", POLICY);
    let c = lab.run(
        Run::named("l7named")
            .on(&net)
            .label("app", "named")
            .dns("198.51.100.2"),
    );
    let w = lab.run(
        Run::named("l7watch")
            .on(&net)
            .label("app", "watch")
            .dns("198.51.100.2"),
    );
    let v6 = "2001:db8:51::2";
    // Let the servers come up.
    assert!(
        within(10.0, || tls(&lab, &c, "198.51.100.2", Some("api.lab.test"))).is_some(),
        "control: the TLS server answers"
    );

    // Positive controls, without cordon: every connection the policy will
    // refuse works.
    assert!(tls(&lab, &c, "198.51.100.2", Some("evil.lab.test")));
    assert!(tls(&lab, &c, "198.51.100.2", None));
    assert!(tls(&lab, &c, v6, Some("evil.lab.test")));
    assert!(tls(&lab, &c, "198.18.0.2", Some("api.lab.test")));
    assert!(tls(&lab, &w, "198.51.100.2", Some("evil.lab.test")));
    assert!(http(&lab, &c, "198.51.100.2", 80, "evil.lab.test").contains("hello-web"));
    assert!(udp(&lab, &c, "198.51.100.2", 443), "control: UDP 443");
    assert!(lab.reaches(&c, "198.51.100.2", 8081, "hello-plain"));
    assert!(lab.reaches(&c, "10.127.17.1", 8082, "hello-host"));

    let log = lab.file("l7-daemon.log", "");
    let _daemon = CordonDaemon::spawn_logged(
        lab.command(&["daemon", "-c", &policy]),
        std::path::Path::new(&log),
    );
    assert!(
        within(30.0, || nft_list(&["map", "inet", "cordon", "l7_nat4"])
            .contains(&c.ip4))
        .is_some(),
        "the named container's connections go through the L7 redirect"
    );
    let ruleset = lab.ruleset();
    assert!(ruleset.contains("redirect to :15380"), "{ruleset}");

    // Before a lookup nothing is learned: closed.
    assert!(!tls(&lab, &c, "198.51.100.2", Some("api.lab.test")));
    for name in ["api.lab.test", "other.lab.test", "plain.lab.test"] {
        assert!(lab.resolves(&c, name, "198.51.100.2"), "{name} resolves");
    }
    assert!(lab.resolves(&w, "api.lab.test", "198.51.100.2"));
    let set = sh("nft", &["list", "set", "inet", "cordon", "dns_named_0_6"]);
    assert!(set.contains(v6), "the AAAA answer is learned: {set}");

    // The allowed name at an address learned for it: passes, both
    // families; a name below the wildcard too.
    assert!(tls(&lab, &c, "198.51.100.2", Some("api.lab.test")));
    assert!(tls(&lab, &c, v6, Some("api.lab.test")));
    assert!(tls(&lab, &c, "198.51.100.2", Some("x.cdn.lab.test")));
    assert!(tls(&lab, &c, "198.18.0.2", Some("other.lab.test")));
    // Another server name to the same address: refused, both families.
    assert!(!tls(&lab, &c, "198.51.100.2", Some("evil.lab.test")));
    assert!(!tls(&lab, &c, v6, Some("evil.lab.test")));
    // The allowed name sent to an address learned for another name.
    assert!(!tls(&lab, &c, "198.18.0.2", Some("api.lab.test")));
    // No server name.
    assert!(!tls(&lab, &c, "198.51.100.2", None));
    // HTTP: the Host decides the same way.
    let ok = http(&lab, &c, "198.51.100.2", 80, "api.lab.test");
    assert!(ok.contains("hello-web"), "allowed Host: {ok:?}");
    let bad = http(&lab, &c, "198.51.100.2", 80, "evil.lab.test");
    assert!(!bad.contains("hello-web"), "other Host: {bad:?}");

    // Logged with the name seen, and counted.
    let events = l7_events(&lab);
    let refused = |name: &str| {
        events.iter().any(|e| {
            e["verdict"] == "refused"
                && e["name"] == name
                && e["container"] == c.name.as_str()
                && e["policy"] == "named"
        })
    };
    assert!(refused("evil.lab.test"), "{events:#?}");
    assert!(
        events.iter().any(|e| e["verdict"] == "refused"
            && e["dst"] == "198.18.0.2"
            && e["reason"].as_str().unwrap_or("").starts_with("address:")),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|e| e["verdict"] == "refused"
            && e["reason"].as_str().unwrap_or("").starts_with("no-name:")),
        "{events:#?}"
    );
    assert!(metric(&lab, "cordon_l7_refused_total{reason=\"name\"}") >= 3);
    assert!(metric(&lab, "cordon_l7_refused_total{reason=\"address\"}") >= 1);
    let passed = metric(&lab, "cordon_l7_passed_total");
    assert!(passed >= 4, "passed {passed}");

    // A plain DNS-name rule is untouched: reachable, not proxied.
    assert!(lab.reaches(&c, "198.51.100.2", 8081, "hello-plain"));
    assert_eq!(metric(&lab, "cordon_l7_passed_total"), passed);

    // QUIC to the rule's address is dropped although `internet` allows
    // 443/udp; another UDP port there still works.
    assert!(udp(&lab, &c, "198.51.100.2", 4443), "control: UDP 4443");
    assert!(!udp(&lab, &c, "198.51.100.2", 443), "QUIC dropped");

    // The proxy is reached only through the redirect, though the policy
    // allows the host.
    assert!(lab.reaches(&c, "10.127.17.1", 8082, "hello-host"));
    let before = direct_drops();
    let _ = lab.exec(
        &c,
        "printf 'GET / HTTP/1.1\\r\\nHost: api.lab.test\\r\\n\\r\\n' | timeout -s KILL 4 nc -w 2 10.127.17.1 15380",
    );
    assert!(direct_drops() > before, "a direct connection is dropped");

    // Audit mode: the wrong name passes and is logged as audit.
    assert!(
        nft_list(&["set", "inet", "cordon", "dns_watch_0_4"]).contains("198.51.100.2"),
        "learned for the audited rule"
    );
    assert!(tls(&lab, &w, "198.51.100.2", Some("evil.lab.test")));
    let events = l7_events(&lab);
    assert!(
        events.iter().any(|e| e["verdict"] == "audit"
            && e["name"] == "evil.lab.test"
            && e["container"] == w.name.as_str()),
        "{events:#?}"
    );

    // The per-container cap, lowered to 1 by a reload (which restarts the
    // listeners): while one connection of the container is open, a second
    // is reset; once it ends, the next one passes again.
    let capped = lab.file(
        "l7-cap.yaml",
        &POLICY.replace(
            "policies:",
            "l7:\n  max_connections_per_container: 1\npolicies:",
        ),
    );
    lab.cordon_ok(&["reload", "-c", &capped]);
    assert!(
        within(10.0, || tls(&lab, &c, "198.51.100.2", Some("api.lab.test"))).is_some(),
        "serving again after the reload; the daemon's log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let over = metric(&lab, "cordon_l7_over_cap_total");
    in_container(
        &lab,
        &c,
        "( (sleep 6 | timeout -s KILL 8 openssl s_client -connect 198.51.100.2:443 -servername api.lab.test -quiet) </dev/null >/dev/null 2>&1 & )",
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        !tls(&lab, &c, "198.51.100.2", Some("api.lab.test")),
        "a second connection over the cap"
    );
    assert!(metric(&lab, "cordon_l7_over_cap_total") > over);
    assert!(
        within(12.0, || tls(&lab, &c, "198.51.100.2", Some("api.lab.test"))).is_some(),
        "below the cap again"
    );
}
