//! `cordon verify` against a real dockerd and the real kernel, in the lab.
//!
//! A lab internet (198.51.100.2: TCP 80, a UDP echo on 7, ping) and a lab
//! LAN (10.126.0.2: TCP 80); a container whose policy allows `internet`
//! 80/tcp only. Controls first: without cordon the container reaches
//! everything, and verify itself sees it (and disagrees with the policy).
//! Then with cordon applied verify agrees (exit 0); then the enforcement is
//! broken behind cordon's back and verify names the disagreement (exit 1).
//! Needs root, nft and Docker; without them each test prints one
//! `skipped:` line (and fails under CI=true).

use cordon_lab::{
    ensure_distroless_image, lab_or_skip, ContainerOpts, Dnsmasq, Lab, Netns, Run, TcpServer,
    TestContainer, UdpEcho, Uplink, DISTROLESS_CMD, DISTROLESS_IMAGE,
};
use serde_json::Value;

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

const POLICY: &str = "version: 1\npolicies:\n  - name: vweb\n    select: { label: { app: vweb } }\n    egress:\n      - to: [internet]\n        ports: [80/tcp]\n";

/// The probes, in order: allowed, then four the policy denies.
const TARGETS: [&str; 5] = [
    "198.51.100.2:80/tcp",
    "198.51.100.2:81/tcp",
    "10.126.0.2:80/tcp",
    "198.51.100.2/icmp",
    "198.51.100.2:7/udp",
];

/// The lab internet (198.51.100.2 and 2001:db8:51::2: TCP 80, UDP echo on
/// 7, ping; the host is 198.51.100.1 on its link) and LAN (10.126.0.2: TCP
/// 80), removed on drop.
struct World {
    _guards: (Uplink, TcpServer, UdpEcho, Uplink, TcpServer),
    inet: Netns,
    _lan: Netns,
}

fn world() -> World {
    let inet = Netns::new("inet");
    let up = Uplink::to_host(&inet, "198.51.100.1/24", "198.51.100.2/24")
        .with("2001:db8:51::1/64", "2001:db8:51::2/64");
    let web = TcpServer::banner(&inet, 80, "hello-inet");
    let echo = UdpEcho::start(&inet, 7);
    let lan = Netns::new("lan");
    let lan_up = Uplink::to_host(&lan, "10.126.0.1/24", "10.126.0.2/24");
    let lan_web = TcpServer::banner(&lan, 80, "hello-lan");
    World {
        _guards: (up, web, echo, lan_up, lan_web),
        inet,
        _lan: lan,
    }
}

/// What one `cordon verify -o json` run said.
struct Verdict {
    code: i32,
    report: Value,
    stderr: String,
}

impl Verdict {
    fn row(&self, i: usize) -> &Value {
        &self.report["rows"][i]
    }
    fn outcome(&self, i: usize) -> &str {
        self.row(i)["observed"]["outcome"].as_str().unwrap_or("?")
    }
    fn agree(&self, i: usize) -> bool {
        self.row(i)["agree"] == true
    }
}

fn verify(lab: &Lab, policy: &str, container: &str, targets: &[&str]) -> Verdict {
    let mut args = vec![
        "verify",
        "-c",
        policy,
        "-o",
        "json",
        "--timeout",
        "1",
        container,
    ];
    args.extend_from_slice(targets);
    let out = lab.cordon(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    Verdict {
        code: out.status.code().unwrap_or(-1),
        report,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every probe reached its target (cordon not enforcing): the policy's
/// denials all disagree.
fn assert_everything_reached(v: &Verdict) {
    assert_eq!(v.code, 1, "{}\n{}", v.report, v.stderr);
    assert_eq!(
        (0..5).map(|i| v.outcome(i)).collect::<Vec<_>>(),
        ["connected", "refused", "connected", "echo-reply", "reply"],
        "{}",
        v.report
    );
    assert!(v.agree(0), "{}", v.report);
    for i in 1..5 {
        assert!(!v.agree(i), "row {i}: {}", v.report);
    }
}

/// With cordon enforcing: 80/tcp through, the rest blocked, all agreeing.
fn assert_enforced(v: &Verdict) {
    assert_eq!(v.code, 0, "{}\n{}", v.report, v.stderr);
    assert_eq!(
        (0..5).map(|i| v.outcome(i)).collect::<Vec<_>>(),
        [
            "connected",
            "timed-out",
            "timed-out",
            "no-reply",
            "no-reply"
        ],
        "{}",
        v.report
    );
    assert_eq!(v.row(0)["expected"], "allow");
    assert!(
        v.row(0)["rule"]
            .as_str()
            .unwrap_or("")
            .starts_with("egress rule 1 of vweb"),
        "{}",
        v.report
    );
    for i in 1..5 {
        assert_eq!(v.row(i)["expected"], "deny", "{}", v.report);
        assert_eq!(
            v.row(i)["rule"],
            "no egress rule of vweb allows it",
            "{}",
            v.report
        );
    }
    assert_eq!(v.report["policy"], "vweb");
    assert_eq!(v.report["agree"], true);
}

#[test]
fn verify_agrees_with_enforcement_and_names_what_breaks_it() {
    let lab = lab_or_skip!(CORDON);
    let _w = world();
    let ctr = lab.run(Run::named("vweb").label("app", "vweb"));
    let policy = lab.file("vweb.yaml", POLICY);

    // Positive controls: the container reaches everything without cordon.
    assert!(lab.reaches(&ctr, "198.51.100.2", 80, "hello-inet"));
    assert!(lab.reaches(&ctr, "10.126.0.2", 80, "hello-lan"));
    assert_eq!(lab.exec(&ctr, "ping -c 1 -W 2 198.51.100.2").0, 0, "ping");
    assert!(cordon_lab::host_udp_echo("198.51.100.2", 7), "UDP echo");
    assert_everything_reached(&verify(&lab, &policy, &ctr.name, &TARGETS));

    lab.cordon_ok(&["apply", "-c", &policy]);
    assert_enforced(&verify(&lab, &policy, &ctr.name, &TARGETS));
    // By id, and as a table.
    assert_enforced(&verify(&lab, &policy, &ctr.id, &TARGETS));
    let mut args = vec!["verify", "-c", &policy, "--timeout", "1", &ctr.name];
    args.extend_from_slice(&TARGETS);
    let table = lab.cordon_ok(&args);
    eprintln!("{table}");
    assert!(
        table.contains("TARGET") && table.contains("10.126.0.2:80/tcp"),
        "{table}"
    );

    // Broken behind cordon's back: the policy chain lets everything out.
    cordon_lab::sh(
        "nft",
        &["insert", "rule", "inet", "cordon", "eg_fwd_vweb", "accept"],
    );
    let broken = verify(&lab, &policy, &ctr.name, &TARGETS);
    eprintln!("{}", broken.stderr);
    assert_everything_reached(&broken);
    assert!(
        broken.stderr.contains("4 of 5 probes")
            && broken.stderr.contains("198.51.100.2:81/tcp expected deny"),
        "{}",
        broken.stderr
    );

    // cordon down: the same, with a note saying nothing is installed.
    lab.cordon_ok(&["down"]);
    let down = verify(&lab, &policy, &ctr.name, &TARGETS);
    assert_everything_reached(&down);
    assert!(
        down.report["notes"].to_string().contains("not installed"),
        "{}",
        down.report
    );
}

#[test]
fn verify_needs_nothing_inside_the_container() {
    let lab = lab_or_skip!(CORDON);
    let _w = world();
    ensure_distroless_image();
    let dl = TestContainer::run(
        ContainerOpts::new("dl")
            .image(DISTROLESS_IMAGE)
            .cmd(DISTROLESS_CMD)
            .label("app", "vweb"),
    );
    let policy = lab.file("vweb.yaml", POLICY);
    // No shell, no tools in it.
    assert!(!dl.exec(&["sh", "-c", "true"]).success(), "a shell ran");

    // Control: without cordon its probes reach everything.
    assert_everything_reached(&verify(&lab, &policy, &dl.name, &TARGETS));
    lab.cordon_ok(&["apply", "-c", &policy]);
    assert_enforced(&verify(&lab, &policy, &dl.name, &TARGETS));
}

#[test]
fn verify_refuses_unknown_containers() {
    let lab = lab_or_skip!(CORDON);
    let policy = lab.file("vweb.yaml", POLICY);
    let out = lab.cordon(&[
        "verify",
        "-c",
        &policy,
        "cl-no-such-ctr",
        "198.51.100.2:80/tcp",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no running container cl-no-such-ctr") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn verify_refuses_malformed_targets_before_anything_else() {
    // No root, Docker or lab needed: the target is checked first.
    for bad in ["198.51.100.2", "example.com:80/tcp", "2001:db8::1:80/tcp"] {
        let out = std::process::Command::new(CORDON)
            .args(["verify", "some-container", "198.51.100.2:80/tcp", bad])
            .output()
            .expect("run cordon");
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{bad:?}")) && err.lines().count() == 1,
            "{bad}: {err}"
        );
    }
}

const PEERS: &str = r#"version: 1
sets:
  lanset: [10.126.0.0/24]
default:
  egress:
    - to: [internet]
    - to: [same-network]
policies:
  - name: pa
    select: { label: { app: pa } }
    egress:
      - to: [pb]
        ports: [80/tcp]
      - to: [host]
        ports: [8081/tcp]
      - to: [lanset]
        ports: [80/tcp]
      - to: ["2001:db8:51::/64"]
        ports: [icmp, 80/tcp]
  - name: pb
    select: { label: { app: pb } }
    ingress:
      - from: [pa]
        ports: [80/tcp]
    egress: []
  - name: pw
    select: { label: { app: pw } }
    mode: audit
    egress: []
"#;

/// Verifies `(target, expected, observed outcome)` rows from `ctr` and
/// insists that all agree (exit 0).
#[track_caller]
fn assert_rows(lab: &Lab, policy: &str, ctr: &str, rows: &[(&str, &str, &str)]) {
    let targets: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let v = verify(lab, policy, ctr, &targets);
    assert_eq!(v.code, 0, "{ctr}: {}\n{}", v.report, v.stderr);
    for (i, (target, expected, outcome)) in rows.iter().enumerate() {
        assert_eq!(
            (v.row(i)["expected"].as_str(), v.outcome(i)),
            (Some(*expected), *outcome),
            "{ctr} -> {target}: {}",
            v.row(i)
        );
    }
}

#[test]
fn the_evaluator_agrees_with_the_kernel_across_peer_kinds() {
    let lab = lab_or_skip!(CORDON);
    lab.ipv6_forwarding();
    let _w = world();
    lab.serve_host("198.51.100.1", 8081, "hello-host");
    let net = lab.network("vpeers", "10.127.8.0/24", Some("2001:db8:208::/64"));
    let a = lab.run(Run::named("pa").on(&net).label("app", "pa"));
    let b = lab.run(
        Run::named("pb")
            .on(&net)
            .label("app", "pb")
            .serve(80, "hello-b"),
    );
    let d = lab.run(Run::named("pd").on(&net).serve(80, "hello-d"));
    let w = lab.run(Run::named("pw").label("app", "pw"));
    let policy = lab.file("peers.yaml", PEERS);

    // Controls: what the policy will deny is reachable without cordon.
    assert!(lab.reaches(&a, &d.ip4, 80, "hello-d"));
    assert!(lab.reaches(&a, "198.51.100.2", 80, "hello-inet"));
    assert!(lab.reaches(&d, &b.ip4, 80, "hello-b"));
    assert!(lab.reaches(&d, "198.51.100.1", 8081, "hello-host"));
    assert!(lab.reaches(&a, "10.126.0.2", 80, "hello-lan"));
    assert_eq!(lab.exec(&a, "ping -c 1 -W 2 198.51.100.2").0, 0, "ping");

    lab.cordon_ok(&["apply", "-c", &policy]);
    let b80 = format!("{}:80/tcp", b.ip4);
    let d80 = format!("{}:80/tcp", d.ip4);
    let a80 = format!("{}:80/tcp", a.ip4);
    assert_rows(
        &lab,
        &policy,
        &a.name,
        &[
            (&b80, "allow", "connected"),
            (&d80, "deny", "timed-out"),
            ("198.51.100.1:8081/tcp", "allow", "connected"),
            ("198.51.100.2:80/tcp", "deny", "timed-out"),
            ("10.126.0.2:80/tcp", "allow", "connected"),
            ("[2001:db8:51::2]:80/tcp", "allow", "connected"),
            ("2001:db8:51::2/icmp", "allow", "echo-reply"),
            ("198.51.100.2/icmp", "deny", "no-reply"),
        ],
    );
    assert_rows(
        &lab,
        &policy,
        &d.name,
        &[
            (&b80, "deny", "timed-out"),
            (&a80, "allow", "refused"),
            ("198.51.100.2:80/tcp", "allow", "connected"),
            ("198.51.100.1:8081/tcp", "deny", "timed-out"),
        ],
    );
    assert_rows(
        &lab,
        &policy,
        &w.name,
        &[
            ("10.126.0.2:80/tcp", "allow (audit)", "connected"),
            ("198.51.100.1:8081/tcp", "allow (audit)", "connected"),
        ],
    );

    // A live set edit: verify reads it from cordon's state, the kernel has it.
    lab.cordon_ok(&["set", "-c", &policy, "del", "lanset", "10.126.0.0/24"]);
    assert_rows(
        &lab,
        &policy,
        &a.name,
        &[("10.126.0.2:80/tcp", "deny", "timed-out")],
    );
}

#[test]
fn dns_names_are_judged_by_what_the_proxy_learned() {
    let lab = lab_or_skip!(CORDON);
    let w = world();
    let _dns = Dnsmasq::start(&w.inet, "198.51.100.2", &[("web.lab.test", "198.51.100.2")]);
    let policy = lab.file(
        "dns.yaml",
        "version: 1\ndns:\n  upstream: [198.51.100.2]\n  min_ttl: 120s\npolicies:\n  - name: named\n    select: { label: { app: named } }\n    egress:\n      - to: [web.lab.test]\n        ports: [80/tcp]\n",
    );
    let c = lab.run(
        Run::named("named")
            .label("app", "named")
            .dns("198.51.100.2"),
    );
    assert!(lab.reaches(&c, "198.51.100.2", 80, "hello-inet"), "control");

    let _daemon = cordon_lab::CordonDaemon::spawn(lab.command(&["daemon", "-c", &policy]));
    assert!(
        cordon_lab::within(30.0, || !lab.reaches(&c, "198.51.100.2", 80, "hello-inet")).is_some(),
        "the daemon closes the way until a lookup"
    );
    // Before a lookup the kernel's set is empty: denied, and DNS itself
    // goes to cordon's proxy (which refuses the probe's name, an answer).
    assert_rows(
        &lab,
        &policy,
        &c.name,
        &[
            ("198.51.100.2:80/tcp", "deny", "timed-out"),
            ("198.51.100.2:53/udp", "allow", "reply"),
        ],
    );
    assert!(lab.resolves(&c, "web.lab.test", "198.51.100.2"));
    let v = verify(&lab, &policy, &c.name, &["198.51.100.2:80/tcp"]);
    assert_eq!(v.code, 0, "{}\n{}", v.report, v.stderr);
    assert_eq!(v.outcome(0), "connected", "{}", v.report);
    assert!(
        v.row(0)["rule"]
            .as_str()
            .unwrap_or("")
            .starts_with("egress rule 1 of named (line 9): to [web.lab.test]"),
        "{}",
        v.report
    );
}
