//! Seeing what cordon blocks, in the lab: the drop log (`cordon logs`,
//! following, rate limits), `status` with the last drop, metrics over the
//! admin socket and HTTP, and the audit-then-enforce workflow (`mode:
//! audit`, `cordon suggest`, `cordon check`, enforce).
//!
//! Every blocked target is first shown reachable without cordon.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;

use cordon_lab::{lab_or_skip, nft_list, within, Lab, Run};

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

/// `cordon logs -o json` as values.
fn logs(lab: &Lab, n: &str) -> Vec<serde_json::Value> {
    lab.cordon_ok(&["logs", "-o", "json", "-n", n])
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect()
}

fn metrics_http(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics port");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn drops_are_logged_by_container_followed_rate_limited_and_counted() {
    let lab = lab_or_skip!(CORDON);
    let (_inet, _lan) = lab.internet_and_lan("5", 125);
    let policy = lab.file(
        "web.yaml",
        "version: 1\npolicies:\n  - name: web\n    select: { label: { app: web } }\n    egress:\n      - to: [internet]\n        ports: [80/tcp]\n",
    );
    let c = lab.run(Run::named("web5").label("app", "web"));
    assert!(
        lab.reaches(&c, "10.125.0.2", 80, "hello-lan"),
        "control: LAN"
    );

    let port = 19464;
    let _d = lab.start_daemon(&["-c", &policy, "--metrics", &format!("127.0.0.1:{port}")]);
    assert!(
        within(10.0, || lab.reaches(&c, "198.51.100.2", 80, "hello-inet")).is_some(),
        "policy live"
    );

    // A follower, started before the drop.
    let mut follower = lab
        .command(&["logs", "-f", "-o", "json", "-n", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(300));

    assert!(
        !lab.reaches(&c, "10.125.0.2", 80, "hello-lan"),
        "LAN blocked"
    );
    let drop = within(5.0, || {
        logs(&lab, "100").iter().any(|e| {
            e["container"] == c.name.as_str() && e["dst"] == "10.125.0.2" && e["dport"] == 80
        })
    });
    assert!(drop.is_some(), "the drop is in cordon logs");
    let events = logs(&lab, "100");
    let e = events
        .iter()
        .find(|e| e["container"] == c.name.as_str() && e["dst"] == "10.125.0.2")
        .unwrap();
    assert_eq!(e["policy"], "web");
    assert_eq!(e["direction"], "egress");
    assert_eq!(e["verdict"], "drop");
    assert_eq!(e["proto"], "tcp");
    assert_eq!(e["src"], c.ip4.as_str());
    assert_eq!(e["id"], &c.id[..12]);
    // The follower saw it too, as it happened.
    let followed = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("the follower prints the new event");
    assert!(followed.contains("10.125.0.2"), "{followed}");
    let _ = follower.kill();
    let _ = follower.wait();
    // Text output names the container and the policy.
    let text = lab.cordon_ok(&["logs", "-n", "5"]);
    assert!(
        text.contains(&c.name) && text.contains("policy=web"),
        "{text}"
    );

    // A flood: 300 connection attempts at once to another LAN port. Every
    // packet is counted, few are shown, and what was held back is
    // reported: shown + suppressed = logged.
    let logged = |lab: &Lab| -> u64 {
        let m = lab.cordon_ok(&["metrics"]);
        m.lines()
            .filter(|l| {
                l.starts_with("cordon_logged_packets_total{")
                    && l.contains(&format!("container=\"{}\"", c.name))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let before = logged(&lab);
    let (_, flood) = lab.exec(
        &c,
        "i=0; while [ $i -lt 300 ]; do nc -w 1 10.125.0.2 8080 </dev/null 2>/dev/null & i=$((i+1)); done; wait; echo sent",
    );
    assert!(flood.contains("sent"), "{flood}");
    // Summaries of held-back events come out once the bucket refills.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let sent = logged(&lab) - before;
    assert!(sent >= 300, "every attempt logged: {sent}");
    let shown: Vec<serde_json::Value> = logs(&lab, "5000")
        .into_iter()
        .filter(|e| e["container"] == c.name.as_str() && e["dport"] == 8080)
        .collect();
    let suppressed: u64 = shown.iter().filter_map(|e| e["suppressed"].as_u64()).sum();
    assert!(shown.len() < 100, "rate-limited: {} shown", shown.len());
    assert!(suppressed > 0, "the held-back count is reported");
    assert_eq!(
        shown.len() as u64 + suppressed,
        sent,
        "shown + suppressed = logged"
    );

    // Status: the last drop of the container, and the logged count.
    let s: serde_json::Value =
        serde_json::from_str(&lab.cordon_ok(&["status", "-o", "json"])).unwrap();
    let me = s["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == c.name.as_str())
        .unwrap();
    assert_eq!(me["last_drop"]["dport"], 8080, "{me}");
    assert!(me["logged"].as_u64().unwrap() >= 301, "{me}");
    let text = lab.cordon_ok(&["status"]);
    assert!(text.contains("LAST DROP PER CONTAINER"), "{text}");

    // Metrics, over the socket and HTTP on loopback.
    let m = lab.cordon_ok(&["metrics"]);
    let line = m
        .lines()
        .find(|l| {
            l.starts_with("cordon_logged_packets_total{")
                && l.contains(&format!("container=\"{}\"", c.name))
        })
        .unwrap_or_else(|| panic!("{m}"));
    let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 301, "{line}");
    assert!(
        m.contains("cordon_policy_dropped_packets_total{policy=\"web\"}"),
        "{m}"
    );
    assert!(m.contains("cordon_reconcile_seconds_bucket"), "{m}");
    // The kernel's own count of the container's judged packets covers the
    // flood too.
    let judged = m
        .lines()
        .find(|l| {
            l.starts_with("cordon_container_judged_packets_total{")
                && l.contains(&format!("container=\"{}\"", c.name))
                && l.contains("direction=\"egress\"")
        })
        .unwrap_or_else(|| panic!("{m}"));
    let n: u64 = judged.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 301, "{judged}");
    let http = metrics_http(port);
    assert!(http.starts_with("HTTP/1.1 200"), "{http}");
    assert!(http.contains("cordon_event_lag_seconds"), "{http}");
    assert!(http.trim_end().ends_with("# EOF"), "{http}");
}

#[test]
fn audit_then_suggest_then_enforce() {
    let lab = lab_or_skip!(CORDON);
    let lan = lab.netns("lan6", "10.126.0.1", "10.126.0.2", None);
    lab.serve(&lan, 80, "hello-lan");
    lab.serve(&lan, 81, "hello-81");
    let audit = lab.file(
        "audit.yaml",
        "version: 1\npolicies:\n  - name: app\n    select: { label: { app: app } }\n    mode: audit\n    egress: []\n",
    );
    let c = lab.run(Run::named("app6").label("app", "app"));
    assert!(
        lab.reaches(&c, "10.126.0.2", 81, "hello-81"),
        "control: :81"
    );

    let _d = lab.start_daemon(&["-c", &audit]);
    // Audit: nothing is allowed by a rule, yet everything gets through,
    // logged as audit.
    assert!(
        within(10.0, || nft_list(&["map", "inet", "cordon", "egress4"])
            .contains(&c.ip4))
        .is_some(),
        "the container is enforced"
    );
    assert!(
        lab.reaches(&c, "10.126.0.2", 80, "hello-lan"),
        "audit lets it through"
    );
    assert!(
        within(5.0, || logs(&lab, "100").iter().any(|e| e["container"]
            == c.name.as_str()
            && e["verdict"] == "audit"))
        .is_some(),
        "and logs it as audit"
    );

    // The suggestion: the policy, enforcing, with the LAN server's port.
    let suggestion = lab.cordon_ok(&["suggest", "--since", "10m"]);
    assert!(suggestion.contains("10.126.0.2"), "{suggestion}");
    assert!(suggestion.contains("80/tcp"), "{suggestion}");
    assert!(!suggestion.contains("mode: audit"), "{suggestion}");
    let file = lab.file("suggested.yaml", &suggestion);
    lab.cordon_ok(&["check", "-c", &file]);
    // Bad --since is a one-line error.
    let bad = lab.cordon(&["suggest", "--since", "soon"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--since soon"));

    // Enforce the suggestion with a live reload (the documented workflow:
    // suggest > new.yaml && check -c new.yaml && reload -c new.yaml): what
    // was seen still works, nothing else.
    let out = lab.cordon_ok(&["reload", "-c", &file]);
    assert!(out.contains("reloaded"), "{out}");
    let status = lab.cordon_ok(&["status"]);
    assert!(
        status.contains("policy: ") && status.contains("suggested.yaml (sha256 "),
        "status shows the reloaded policy in force: {status}"
    );
    assert!(
        within(10.0, || !lab.reaches(&c, "10.126.0.2", 81, "hello-81")).is_some(),
        "enforced: an unseen port is dropped"
    );
    assert!(
        lab.reaches(&c, "10.126.0.2", 80, "hello-lan"),
        "the seen flow is allowed"
    );
}
