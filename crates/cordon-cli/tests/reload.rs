//! Day 2 in the lab: the policy in force, and changing it live.
//!
//! - `cordon apply -c FILE` then `cordon set` (no `-c`) acts on FILE's sets;
//! - `cordon verify` compares with the daemon's policy, not the embedded
//!   default;
//! - `cordon reload` of a broken file changes nothing in the kernel;
//! - a flood of new flows across a reload loses no allowed packet;
//! - a tightened policy ends an established connection; live set edits
//!   survive; SIGHUP re-reads the daemon's file.
//!
//! Needs root, nft and Docker; without them each test prints one
//! `skipped:` line (and fails under CI=true).

use std::time::{Duration, Instant};

use cordon_lab::{lab_or_skip, nft_list, sh, within, Lab, Run, Transport};

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

/// The internet on port 80, and the LAN's port 80 (the embedded default
/// forbids the LAN: a check that reads the wrong policy disagrees).
fn policy(extra: &str) -> String {
    format!(
        "version: 1
sets:
  office: [198.18.0.10]
default:
  egress:
    - to: [internet]
    - to: [private]
      ports: [80/tcp]
{extra}"
    )
}

/// The same, with one more policy: a different shape, so a reload to it
/// replaces the tables whole.
const MORE: &str = "policies:
  - name: other
    select: { label: { app: other } }
    egress: [{ to: [office] }]
";

/// Locked down: the default may initiate nothing.
const TIGHT: &str = "version: 1
sets:
  office: [198.18.0.10]
default:
  egress: []
";

/// `nft list table inet cordon` without counters and with handles: equal
/// listings mean the kernel's ruleset did not change.
fn ruleset_shape() -> String {
    let text = sh("nft", &["-a", "list", "table", "inet", "cordon"]);
    text.lines()
        .map(|l| match l.find("counter packets") {
            Some(i) => {
                let rest = &l[i..];
                let end = rest.find(" bytes ").map_or(rest.len(), |b| {
                    b + 7 + rest[b + 7..].find(' ').unwrap_or(rest.len() - b - 7)
                });
                format!("{}counter{}", &l[..i], &rest[end..])
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn replacements(lab: &Lab) -> u64 {
    let out = lab.cordon_ok(&["status", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("status is JSON");
    v["daemon"]["replacements"]
        .as_u64()
        .expect("daemon counters")
}

/// The kernel's handles of cordon's tables: equal handles, same tables.
fn table_handles() -> Vec<u64> {
    let v: serde_json::Value =
        serde_json::from_str(&sh("nft", &["-j", "list", "tables"])).expect("JSON");
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["table"]["name"] == "cordon")
        .filter_map(|o| o["table"]["handle"].as_u64())
        .collect()
}

#[test]
fn apply_then_set_status_and_verify_act_on_the_policy_in_force() {
    let lab = lab_or_skip!(CORDON);
    let (_inet, _lan) = lab.internet_and_lan("", 132);
    let file = lab.file("p.yaml", &policy(""));
    let web = lab.run(Run::named("web"));
    lab.cordon_ok(&["apply", "-c", &file]);

    // `set` without -c: the applied file's set, not the embedded default's.
    let out = lab.cordon_ok(&["set", "add", "office", "198.18.0.199"]);
    assert!(out.contains("set office: 2 member(s)"), "{out}");
    assert!(nft_list(&["set", "inet", "cordon", "set_office4"]).contains("198.18.0.199"));

    // status names the policy in force.
    let status = lab.cordon_ok(&["status"]);
    assert!(
        status.contains(&format!("policy: {file} (sha256 ")),
        "{status}"
    );

    // verify without -c: the policy in force allows the LAN's port 80 (the
    // embedded default does not), and the kernel agrees. ADDR:PORT is TCP.
    assert!(lab.reaches(&web, "10.132.0.2", 80, "hello-lan"), "control");
    let v = lab.cordon(&["verify", &web.name, "10.132.0.2:80"]);
    assert!(
        v.status.success(),
        "verify agrees with the policy in force: {}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    // The same against the embedded default disagrees: the check can fail.
    let embedded = lab.file("embedded.yaml", cordon_policy::EMBEDDED_DEFAULT);
    let v = lab.cordon(&["verify", &web.name, "10.132.0.2:80", "-c", &embedded]);
    assert_eq!(v.status.code(), Some(1), "the embedded default disagrees");
    assert!(
        String::from_utf8_lossy(&v.stderr).contains("differs from the policy in force"),
        "a -c FILE other than the policy in force is named: {}",
        String::from_utf8_lossy(&v.stderr)
    );
    lab.cordon_ok(&["down"]);
}

#[test]
fn reload_keeps_broken_files_out_loses_no_allowed_packet_and_ends_what_it_forbids() {
    let lab = lab_or_skip!(CORDON);
    let (inet, _lan) = lab.internet_and_lan("", 133);
    let flood_rec = lab.record(&inet, 7002);
    let stream_rec = lab.record(&inet, 7001);
    let p1 = lab.file("p1.yaml", &policy(""));
    let d = lab.start_daemon(&["-c", &p1]);
    let web = lab.run(
        Run::named("web")
            .sh("(while :; do echo web; sleep 0.02; done) | nc 198.51.100.2 7001; sleep 3600"),
    );
    within(10.0, || stream_rec.last(Transport::Tcp).is_some())
        .expect("control: the stream flows under the first policy");
    let v = lab.cordon(&["verify", &web.name, "10.133.0.2:80/tcp"]);
    assert!(
        v.status.success(),
        "verify compares with the daemon's policy"
    );
    lab.cordon_ok(&["set", "add", "office", "198.18.0.199"]);

    // A broken file: every located error, exit 1, the kernel untouched.
    let before = ruleset_shape();
    let bad = lab.file(
        "bad.yaml",
        "version: 1\ndefault:\n  egress:\n    - to: [internet, nowhere]\n      ports: [99999/tcp]\n",
    );
    let out = lab.cordon(&["reload", "-c", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{bad}:4:")) && err.contains(&format!("{bad}:5:")),
        "{err}"
    );
    assert_eq!(before, ruleset_shape(), "a broken reload changes nothing");
    assert!(lab
        .cordon_ok(&["status"])
        .contains(&format!("policy: {p1} ")));

    // A flood of new flows (a fresh UDP socket per packet) across a reload
    // that replaces the tables: every packet arrives.
    let p2 = lab.file("p2.yaml", &policy(MORE));
    let replaced = replacements(&lab);
    let handles = table_handles();
    let ns = std::fs::File::open(lab.netns_of(&web)).expect("container netns");
    let (sent, reload_at) = std::thread::scope(|s| {
        let flood = s.spawn(move || {
            use std::os::fd::AsRawFd;
            // SAFETY: setns on a descriptor we own, for this thread only.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns");
            let dst: std::net::SocketAddr = "198.51.100.2:7002".parse().unwrap();
            let end = Instant::now() + Duration::from_secs(3);
            let mut at = Vec::new();
            while Instant::now() < end {
                let sock = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
                let n = at.len() as u32;
                at.push((Instant::now(), sock.local_addr().expect("port").port()));
                sock.send_to(&n.to_be_bytes(), dst).expect("send");
                std::thread::sleep(Duration::from_micros(500));
            }
            at
        });
        std::thread::sleep(Duration::from_secs(1));
        let started = Instant::now();
        let out = lab.cordon_ok(&["reload", "-c", &p2]);
        let ended = Instant::now();
        eprintln!("{}", out.trim());
        (flood.join().expect("flood"), (started, ended))
    });
    std::thread::sleep(Duration::from_millis(500));
    let got: std::collections::BTreeSet<u32> = flood_rec
        .udp_payloads()
        .iter()
        .filter_map(|(_, p)| Some(u32::from_be_bytes(p.get(..4)?.try_into().ok()?)))
        .collect();
    let lost: Vec<String> = (0..sent.len() as u32)
        .filter(|n| !got.contains(n))
        .map(|n| {
            let (at, port) = sent[n as usize];
            let rel = |t: Instant| {
                if at >= t {
                    format!("+{:.1} ms", (at - t).as_secs_f64() * 1e3)
                } else {
                    format!("-{:.1} ms", (t - at).as_secs_f64() * 1e3)
                }
            };
            format!(
                "#{n} from port {port}, sent {} from the reload's start, {} from its end",
                rel(reload_at.0),
                rel(reload_at.1)
            )
        })
        .collect();
    eprintln!(
        "flood across the reload: {} sent, {} received",
        sent.len(),
        got.len()
    );
    assert_eq!(
        replacements(&lab),
        replaced + 1,
        "the reload replaced the tables"
    );
    assert_eq!(
        table_handles(),
        handles,
        "in place: the same tables, never deleted"
    );
    if !lost.is_empty() {
        eprintln!("the drop log:\n{}", lab.cordon_ok(&["logs", "-n", "20"]));
    }
    assert!(
        lost.is_empty(),
        "no allowed packet lost across the reload: {lost:?}"
    );
    assert!(
        nft_list(&["set", "inet", "cordon", "set_office4"]).contains("198.18.0.199"),
        "live set edits survive the reload"
    );

    // Tightening ends the established stream.
    let p3 = lab.file("p3.yaml", TIGHT);
    lab.cordon_ok(&["reload", "-c", &p3]);
    let reloaded = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        stream_rec.count_since(Transport::Tcp, reloaded + Duration::from_secs(1)),
        0,
        "the tightened policy ended the established connection"
    );
    assert!(!lab.reaches(&web, "198.51.100.2", 80, "hello-inet"));

    // `cordon apply` while the daemon runs is a reload, not an install
    // behind its back.
    let p4 = lab.file("p4.yaml", &policy(""));
    let out = lab.cordon(&["apply", "-c", &p4]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("handing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(lab
        .cordon_ok(&["status"])
        .contains(&format!("policy: {p4} ")));
    assert!(
        within(5.0, || lab.reaches(&web, "198.51.100.2", 80, "hello-inet")).is_some(),
        "the applied file is in force"
    );
    lab.cordon_ok(&["reload", "-c", &p3]);
    assert!(!lab.reaches(&web, "198.51.100.2", 80, "hello-inet"));

    // SIGHUP re-reads the daemon's file (now p3's path).
    std::fs::write(&p3, policy("")).expect("rewrite");
    // SAFETY: kill(2) of the daemon this test started.
    let rc = unsafe { libc::kill(d.pid() as i32, libc::SIGHUP) };
    assert_eq!(rc, 0, "setns");
    assert!(
        within(5.0, || lab.reaches(&web, "198.51.100.2", 80, "hello-inet")).is_some(),
        "SIGHUP put the rewritten file in force"
    );
}

/// Runs the daemon with systemd's notification socket and returns the
/// notifications it sent (until SIGTERM) and its stderr.
fn daemon_under_systemd(lab: &Lab, journal: bool) -> (Vec<String>, String) {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut cmd = lab.command(&["daemon"]);
    cmd.env("NOTIFY_SOCKET", &path)
        .env("CORDON_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    if journal {
        cmd.env("JOURNAL_STREAM", "8:4242");
    } else {
        cmd.env_remove("JOURNAL_STREAM");
    }
    let child = cmd.spawn().expect("start the daemon");
    let mut buf = [0u8; 512];
    let mut got = Vec::new();
    let n = sock
        .recv(&mut buf)
        .expect("a notification before the timeout");
    got.push(String::from_utf8_lossy(&buf[..n]).trim().to_string());
    assert!(
        cordon_lab::tables_installed(),
        "READY=1 comes only once the ruleset is installed"
    );
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).trim().to_string());
        if got.last().is_some_and(|m| m.contains("STOPPING=1")) {
            break;
        }
    }
    let out = child.wait_with_output().expect("the daemon stops");
    (got, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_daemon_tells_systemd_it_is_ready_and_logs_for_the_journal() {
    let lab = lab_or_skip!(CORDON);
    // Outside the journal (a pipe): time stamps, but no colour.
    let (sent, logs) = daemon_under_systemd(&lab, false);
    assert_eq!(
        sent.first().map(String::as_str),
        Some("READY=1"),
        "{sent:?}"
    );
    assert!(sent.iter().any(|m| m.contains("STOPPING=1")), "{sent:?}");
    let first = logs.lines().next().expect("the daemon logs");
    assert!(first.starts_with("20"), "a time stamp leads: {first}");
    assert!(
        !logs.contains('\u{1b}'),
        "no ANSI colour into a pipe: {logs}"
    );
    // Under the journal ($JOURNAL_STREAM): no time stamps of its own.
    let (sent, logs) = daemon_under_systemd(&lab, true);
    assert_eq!(sent.first().map(String::as_str), Some("READY=1"));
    assert!(!logs.is_empty());
    for line in logs.lines() {
        assert!(
            !line.trim_start().starts_with("20"),
            "no time stamp: {line}"
        );
    }
    assert!(!logs.contains('\u{1b}'));
}

/// A policy that lets the default reach `name` (resolved through cordon's
/// DNS proxy from the lab resolver) on port 80.
fn dns_policy(name: &str) -> String {
    format!(
        "version: 1\ndns:\n  upstream: [198.51.100.2]\ndefault:\n  egress:\n    - to: [{name}]\n      ports: [80/tcp]\n"
    )
}

#[test]
fn the_dns_proxy_follows_a_reload() {
    let lab = lab_or_skip!(CORDON);
    let inet = lab.netns("inet", "198.51.100.1", "198.51.100.2", None);
    lab.serve(&inet, 80, "hello-web");
    lab.dns_records(
        &inet,
        &[
            ("a.lab.test", "198.51.100.2"),
            ("b.lab.test", "198.51.100.2"),
        ],
    );
    let c = lab.run(Run::named("dnsr").dns("198.51.100.2"));
    assert!(
        lab.resolves(&c, "b.lab.test", "198.51.100.2"),
        "control: the resolver"
    );

    let a = lab.file("a.yaml", &dns_policy("a.lab.test"));
    let _d = lab.start_daemon(&["-c", &a]);
    assert!(
        within(10.0, || lab.resolves(&c, "a.lab.test", "198.51.100.2")).is_some(),
        "the first policy's name resolves through the proxy"
    );
    assert!(
        !lab.resolves(&c, "b.lab.test", "198.51.100.2"),
        "b is refused"
    );

    // Another name: the proxy serves the new allowlist at once.
    let b = lab.file("b.yaml", &dns_policy("b.lab.test"));
    lab.cordon_ok(&["reload", "-c", &b]);
    assert!(
        lab.resolves(&c, "b.lab.test", "198.51.100.2"),
        "the reloaded policy's name resolves"
    );
    assert!(
        lab.reaches(&c, "198.51.100.2", 80, "hello-web"),
        "and opens its address"
    );
    assert!(
        !lab.resolves(&c, "a.lab.test", "198.51.100.2"),
        "the old policy's name is refused now"
    );

    // No DNS names any more: nothing is redirected, the proxy stops, and
    // DNS to the resolver is judged like any other traffic (allowed here).
    let open = lab.file(
        "open.yaml",
        "version: 1\ndefault:\n  egress:\n    - to: [internet]\n",
    );
    lab.cordon_ok(&["reload", "-c", &open]);
    assert!(
        lab.resolves(&c, "a.lab.test", "198.51.100.2"),
        "straight to the resolver"
    );
}
