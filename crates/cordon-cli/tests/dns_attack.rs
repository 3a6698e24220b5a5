//! The DNS proxy under attack (issue 13, points 2 and 7), in the lab:
//!
//! - DNS rebinding: names under an allowlisted `*.wild.test` answering with
//!   a LAN host, the metadata address, loopback and a neighbour
//!   container's address. The proxy must strip those from the answer, keep
//!   them out of the rule's set and log them, unless the rule also names
//!   `private`.
//! - A DNS flood: two containers' network namespaces flood the proxy at
//!   full rate while a third container's lookups are timed. The per-container
//!   rate limit and the cache must keep the neighbour answered and the
//!   upstream unflooded.
//!
//! The internet is 198.51.100.0/24 (the lab resolver and a web server on
//! 198.51.100.2), the LAN 10.213.0.0/24 (a server on 10.213.0.10).

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cordon_lab::docker::{resolve_in, ContainerOpts, TestContainer};
use cordon_lab::{lab_or_skip, nft_list, sh, within, Lab, Ns, Run};

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

/// The lab internet (resolver and web server on 198.51.100.2) and the LAN
/// host 10.213.0.10 serving `hello-lan`.
fn internet_and_lan(lab: &Lab, tag: &str) -> (Ns, Ns) {
    let inet = lab.netns(&format!("inet{tag}"), "198.51.100.1", "198.51.100.2", None);
    lab.serve(&inet, 80, "hello-inet");
    let lan = lab.netns(&format!("lan{tag}"), "10.213.0.1", "10.213.0.10", None);
    lab.serve(&lan, 80, "hello-lan");
    (inet, lan)
}

fn logs(lab: &Lab) -> String {
    lab.cordon_ok(&["logs", "-n", "200"])
}

/// A counter of the daemon's metrics.
fn metric(lab: &Lab, name: &str) -> u64 {
    // A daemon swamped by an unlimited flood may not take the connection
    // at once.
    let mut m = String::new();
    let read = within(20.0, || {
        let out = lab.cordon(&["metrics"]);
        m = String::from_utf8_lossy(&out.stdout).into_owned();
        out.status.success()
    });
    assert!(read.is_some(), "cordon metrics answers");
    m.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[test]
fn rebinding_names_cannot_open_private_addresses() {
    let lab = lab_or_skip!(CORDON);
    let (inet, _lan) = internet_and_lan(&lab, "rb");
    let policy = lab.file(
        "rebind.yaml",
        "version: 1\ndns:\n  upstream: [198.51.100.2]\npolicies:\n  - name: wild\n    select: { label: { app: wild } }\n    egress:\n      - to: [\"*.wild.test\"]\n        ports: [80/tcp]\n  - name: lanok\n    select: { label: { app: lanok } }\n    egress:\n      - to: [\"*.wild.test\", private]\n        ports: [80/tcp]\n",
    );
    let nbr = lab.run(Run::named("nbr").serve(80, "hello-nbr"));
    lab.dns_records(
        &inet,
        &[
            ("ok.wild.test", "198.51.100.2"),
            ("evil.wild.test", "10.213.0.10"),
            ("meta.wild.test", "169.254.169.254"),
            ("lo.wild.test", "127.0.0.1"),
            ("nbr.wild.test", nbr.ip4.as_str()),
        ],
    );
    let c = lab.run(Run::named("wild").label("app", "wild").dns("198.51.100.2"));
    let l = lab.run(
        Run::named("lanok")
            .label("app", "lanok")
            .dns("198.51.100.2"),
    );
    let resolve = |ctr: &cordon_lab::Ctr, name: &str| -> Vec<String> {
        resolve_in(&ctr.id, name, "198.51.100.2")
            .iter()
            .map(ToString::to_string)
            .collect()
    };

    // Positive controls, without cordon: the resolver gives the attacker's
    // addresses and the LAN host and the neighbour serve.
    assert_eq!(resolve(&c, "evil.wild.test"), ["10.213.0.10"], "control");
    assert_eq!(
        resolve(&c, "meta.wild.test"),
        ["169.254.169.254"],
        "control"
    );
    assert_eq!(resolve(&c, "lo.wild.test"), ["127.0.0.1"], "control");
    assert_eq!(resolve(&c, "nbr.wild.test"), [nbr.ip4.as_str()], "control");
    assert!(
        lab.reaches(&c, "10.213.0.10", 80, "hello-lan"),
        "control: LAN"
    );
    assert!(
        lab.reaches(&c, &nbr.ip4, 80, "hello-nbr"),
        "control: neighbour"
    );

    let _daemon = lab.start_daemon(&["-c", &policy]);
    assert!(
        within(10.0, || {
            let s = nft_list(&["set", "inet", "cordon", "dns_clients4"]);
            s.contains(&c.ip4) && s.contains(&l.ip4)
        })
        .is_some(),
        "both containers' DNS is redirected"
    );
    assert!(
        !lab.reaches(&c, "10.213.0.10", 80, "hello-lan"),
        "LAN closed"
    );
    assert!(
        !lab.reaches(&c, &nbr.ip4, 80, "hello-nbr"),
        "neighbour closed"
    );

    // The honest name works.
    assert_eq!(resolve(&c, "ok.wild.test"), ["198.51.100.2"]);
    assert!(lab.reaches(&c, "198.51.100.2", 80, "hello-inet"));
    // The rebinding names resolve to nothing and open nothing.
    for name in ["evil", "meta", "lo", "nbr"] {
        let got = resolve(&c, &format!("{name}.wild.test"));
        assert!(got.is_empty(), "{name}.wild.test gave {got:?}");
    }
    assert!(
        !lab.reaches(&c, "10.213.0.10", 80, "hello-lan"),
        "a rebinding name opened the LAN"
    );
    assert!(
        !lab.reaches(&c, &nbr.ip4, 80, "hello-nbr"),
        "a rebinding name opened the neighbour"
    );
    let set = sh("nft", &["list", "set", "inet", "cordon", "dns_wild_0_4"]);
    assert!(set.contains("198.51.100.2"), "{set}");
    for a in ["10.213.0.10", "169.254.169.254", "127.0.0.1", &nbr.ip4] {
        assert!(!set.contains(a), "{a} in the set: {set}");
    }
    // Each stripped address is logged, with why, and counted.
    assert!(
        within(5.0, || {
            let log = logs(&lab);
            [
                "evil.wild.test -> 10.213.0.10 (private)",
                "meta.wild.test -> 169.254.169.254 (metadata)",
                "lo.wild.test -> 127.0.0.1 (loopback)",
                &format!("nbr.wild.test -> {} (docker-subnet)", nbr.ip4),
            ]
            .iter()
            .all(|s| log.contains(s))
        })
        .is_some(),
        "stripped addresses logged: {}",
        logs(&lab)
    );
    assert!(metric(&lab, "cordon_dns_stripped_total") >= 4);

    // A rule that names `private` keeps the LAN answer, and it works.
    assert_eq!(resolve(&l, "evil.wild.test"), ["10.213.0.10"]);
    assert!(lab.reaches(&l, "10.213.0.10", 80, "hello-lan"));
    let set = sh("nft", &["list", "set", "inet", "cordon", "dns_lanok_0_4"]);
    assert!(set.contains("10.213.0.10"), "{set}");
}

// ---------------------------------------------------------------------------
// The flood.

/// A DNS query for the A record of `name`, id `id`, recursion desired.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend([0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend(label.bytes());
    }
    m.extend([0, 0, 1, 0, 1]);
    m
}

/// Runs `f` on a thread inside the network namespace at `netns`.
fn in_netns<T: Send>(netns: &Path, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let ns = std::fs::File::open(netns).expect("open netns");
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("netns thread")
    })
}

/// Floods `server`:53 from `netns` until `stop`: queries for `name`, or
/// for a new name below `wild.test` each time when `name` is `None`.
/// Returns the queries sent.
fn flood(netns: &Path, server: &str, name: Option<&str>, stop: &AtomicBool) -> u64 {
    in_netns(netns, || {
        let s = UdpSocket::bind("0.0.0.0:0").expect("bind");
        s.connect((server, 53)).expect("connect");
        let fixed = name.map(|n| query(0, n));
        let mut sent = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..256 {
                let q = match &fixed {
                    Some(q) => {
                        let mut q = q.clone();
                        q[..2].copy_from_slice(&(sent as u16).to_be_bytes());
                        q
                    }
                    None => query(sent as u16, &format!("r{sent}.wild.test")),
                };
                if s.send(&q).is_ok() {
                    sent += 1;
                }
            }
        }
        sent
    })
}

/// What a neighbour's timed lookups saw.
#[derive(Debug, Default, Clone)]
struct Lookups {
    /// Latencies of the answered lookups, sorted, ms.
    ms: Vec<f64>,
    /// Lookups not answered within 1 s.
    failed: usize,
}

impl Lookups {
    fn pct(&self, p: f64) -> f64 {
        if self.ms.is_empty() {
            return f64::INFINITY;
        }
        let i = ((self.ms.len() as f64 - 1.0) * p).round() as usize;
        self.ms[i]
    }
    fn total(&self) -> usize {
        self.ms.len() + self.failed
    }
    fn json(&self) -> String {
        // JSON has no infinity: null when nothing was answered.
        let ms = |p: f64| {
            let v = self.pct(p);
            if v.is_finite() {
                format!("{v:.3}")
            } else {
                "null".into()
            }
        };
        format!(
            "{{\"lookups\": {}, \"failed\": {}, \"p50_ms\": {}, \"p99_ms\": {}, \"max_ms\": {}}}",
            self.total(),
            self.failed,
            ms(0.5),
            ms(0.99),
            ms(1.0)
        )
    }
}

/// One lookup of `name` every `every` for `secs` from `netns`, each timed
/// (1 s timeout); the answer must carry the query's id and NOERROR with a
/// record.
fn lookups(netns: &Path, server: &str, name: &str, secs: f64, every: Duration) -> Lookups {
    in_netns(netns, || {
        let s = UdpSocket::bind("0.0.0.0:0").expect("bind");
        s.connect((server, 53)).expect("connect");
        let mut out = Lookups::default();
        let end = Instant::now() + Duration::from_secs_f64(secs);
        let mut id: u16 = 1;
        let mut buf = [0u8; 1500];
        while Instant::now() < end {
            id = id.wrapping_add(1);
            let t = Instant::now();
            s.send(&query(id, name)).expect("send");
            let mut ok = false;
            while let Some(left) = Duration::from_secs(1).checked_sub(t.elapsed()) {
                s.set_read_timeout(Some(left.max(Duration::from_micros(100))))
                    .expect("timeout");
                match s.recv(&mut buf) {
                    Ok(n) if n >= 12 && buf[..2] == id.to_be_bytes() => {
                        ok = buf[3] & 0x0f == 0 && buf[6..8] != [0, 0];
                        break;
                    }
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
            if ok {
                out.ms.push(t.elapsed().as_secs_f64() * 1000.0);
            } else {
                out.failed += 1;
            }
            if let Some(rest) = every.checked_sub(t.elapsed()) {
                std::thread::sleep(rest);
            }
        }
        out.ms.sort_by(f64::total_cmp);
        out
    })
}

/// The queries the lab resolver's namespace received on port 53 so far.
fn upstream_queries(ns: &Ns) -> u64 {
    let out = sh(
        "ip",
        &[
            "netns", "exec", &ns.name, "nft", "list", "chain", "inet", "count", "in",
        ],
    );
    out.split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// One flood phase's figures.
struct Phase {
    label: &'static str,
    neighbour: Lookups,
    flood_qps: f64,
    upstream: u64,
    limited: u64,
    cache_hits: u64,
}

impl Phase {
    fn json(&self) -> String {
        format!(
            "{{\"phase\": \"{}\", \"neighbour\": {}, \"flood_qps\": {:.0}, \"upstream_queries\": {}, \"rate_limited\": {}, \"cache_hits\": {}}}",
            self.label,
            self.neighbour.json(),
            self.flood_qps,
            self.upstream,
            self.limited,
            self.cache_hits
        )
    }
}

/// Two flooders (one name over and over; a new name each time) and the
/// neighbour's timed lookups, for `secs`.
fn flood_phase(
    lab: &Lab,
    inet: &Ns,
    label: &'static str,
    ctrs: (&Path, &Path, &Path),
    secs: f64,
) -> Phase {
    let (up0, lim0, hit0) = (
        upstream_queries(inet),
        metric(lab, "cordon_dns_rate_limited_total"),
        metric(lab, "cordon_dns_cache_hits_total"),
    );
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let started = Instant::now();
    let neighbour = std::thread::scope(|s| {
        let a = s.spawn(|| {
            let n = flood(ctrs.0, "198.51.100.2", Some("same.wild.test"), &stop);
            sent.fetch_add(n, Ordering::Relaxed);
        });
        let b = s.spawn(|| {
            let n = flood(ctrs.1, "198.51.100.2", None, &stop);
            sent.fetch_add(n, Ordering::Relaxed);
        });
        // The floods get going first.
        std::thread::sleep(Duration::from_millis(300));
        let n = lookups(
            ctrs.2,
            "198.51.100.2",
            "n.wild.test",
            secs,
            Duration::from_millis(20),
        );
        stop.store(true, Ordering::Relaxed);
        let _ = (a.join(), b.join());
        n
    });
    let elapsed = started.elapsed().as_secs_f64();
    // Late answers settle.
    std::thread::sleep(Duration::from_millis(500));
    Phase {
        label,
        neighbour,
        flood_qps: sent.load(Ordering::Relaxed) as f64 / elapsed,
        upstream: upstream_queries(inet) - up0,
        limited: metric(lab, "cordon_dns_rate_limited_total") - lim0,
        cache_hits: metric(lab, "cordon_dns_cache_hits_total") - hit0,
    }
}

fn flood_policy(lab: &Lab, name: &str, extra: &str) -> String {
    lab.file(
        name,
        &format!("version: 1\ndns:\n  upstream: [198.51.100.2]\n{extra}policies:\n  - name: flood\n    select: {{ label: {{ app: flood }} }}\n    egress:\n      - to: [\"*.wild.test\"]\n        ports: [80/tcp]\n"),
    )
}

/// Waits until the neighbour's lookups are answered through a (new) daemon.
fn wait_answered(netns: &Path) {
    assert!(
        within(20.0, || {
            lookups(
                netns,
                "198.51.100.2",
                "n.wild.test",
                0.2,
                Duration::from_millis(50),
            )
            .failed
                == 0
        })
        .is_some(),
        "the neighbour's lookups are answered"
    );
}

#[test]
fn a_dns_flood_does_not_starve_the_neighbours() {
    let lab = lab_or_skip!(CORDON);
    let secs: f64 = std::env::var("CORDON_DNS_FLOOD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0);
    let out = std::env::var("CORDON_DNS_FLOOD_OUT").ok();
    let inet = lab.netns("inetfl", "198.51.100.1", "198.51.100.2", None);
    // The resolver: every name below wild.test, TTL 300 (so answers can be
    // cached), and a counter of the queries it receives.
    lab.spawn(std::process::Command::new("ip").args([
        "netns",
        "exec",
        &inet.name,
        "dnsmasq",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        "--pid-file=",
        "--user=root",
        "--port=53",
        "--listen-address=198.51.100.2",
        "--local-ttl=300",
        "--address=/wild.test/198.51.100.2",
    ]));
    sh(
        "ip",
        &[
            "netns", "exec", &inet.name, "nft", "add table inet count; add chain inet count in { type filter hook input priority 0; }; add rule inet count in udp dport 53 counter",
        ],
    );
    assert!(
        within(5.0, || sh(
            "ip",
            &["netns", "exec", &inet.name, "ss", "-lnu"]
        )
        .contains("198.51.100.2:53"))
        .is_some(),
        "the lab resolver listens"
    );
    let run = |name: &str| {
        TestContainer::run(
            ContainerOpts::new(name)
                .label("app", "flood")
                .dns("198.51.100.2"),
        )
    };
    let (f1, f2, nb) = (run("flood1"), run("flood2"), run("neighbour"));
    let paths: (PathBuf, PathBuf, PathBuf) = (f1.netns_path(), f2.netns_path(), nb.netns_path());
    let ctrs = (paths.0.as_path(), paths.1.as_path(), paths.2.as_path());

    // Positive control without cordon: the neighbour resolves (from the
    // resolver itself), and the floods reach the resolver.
    let before = upstream_queries(&inet);
    assert_eq!(
        lookups(
            ctrs.2,
            "198.51.100.2",
            "n.wild.test",
            0.2,
            Duration::from_millis(20)
        )
        .failed,
        0
    );
    let s = in_netns(ctrs.0, || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.connect(("198.51.100.2", 53)).unwrap();
        for i in 0..100u16 {
            s.send(&query(i, "same.wild.test")).unwrap();
        }
        100
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        upstream_queries(&inet) - before >= s,
        "control: queries reach the resolver"
    );

    let mut phases = Vec::new();
    let configs: Vec<(&'static str, &str)> = if out.is_some() {
        vec![
            ("limit and cache (defaults)", ""),
            ("limit, no cache", "  cache: off\n"),
            ("cache, no limit", "  query_rate: off\n"),
            ("neither", "  query_rate: off\n  cache: off\n"),
        ]
    } else {
        vec![
            ("limit and cache (defaults)", ""),
            ("neither", "  query_rate: off\n  cache: off\n"),
        ]
    };
    let mut baseline = Lookups::default();
    for (i, (label, extra)) in configs.iter().enumerate() {
        let policy = flood_policy(&lab, &format!("flood{i}.yaml"), extra);
        let daemon = lab.start_daemon(&["-c", &policy]);
        wait_answered(ctrs.2);
        if i == 0 {
            // The neighbour alone, the baseline of the same run.
            baseline = lookups(
                ctrs.2,
                "198.51.100.2",
                "n.wild.test",
                secs,
                Duration::from_millis(20),
            );
        }
        let p = flood_phase(&lab, &inet, label, ctrs, secs);
        eprintln!("{}", p.json());
        phases.push(p);
        drop(daemon);
        assert!(
            within(10.0, || !lab.socket().exists()).is_some(),
            "the daemon stops"
        );
    }
    eprintln!("baseline {}", baseline.json());
    if let Some(path) = &out {
        let body = phases
            .iter()
            .map(Phase::json)
            .collect::<Vec<_>>()
            .join(",\n  ");
        std::fs::write(
            path,
            format!(
                "{{\"secs\": {secs}, \"baseline\": {},\n \"phases\": [\n  {body}\n]}}\n",
                baseline.json()
            ),
        )
        .expect("write figures");
    }

    // Alone, the neighbour is answered.
    assert_eq!(baseline.failed, 0, "baseline: {baseline:?}");
    let limited = &phases[0];
    let neither = phases.last().expect("phases");
    // Under the defaults the floods are limited and the neighbour is
    // answered, promptly. (The speed goal, p99 under 50 ms, is measured by
    // scripts/bench-dns-flood; this bound only catches starvation.)
    let n = &limited.neighbour;
    assert!(
        n.failed * 100 <= n.total(),
        "neighbour lookups failed under the limited flood: {}",
        n.json()
    );
    assert!(
        n.pct(0.99) < 500.0,
        "neighbour p99 under the limited flood: {}",
        n.json()
    );
    assert!(
        limited.flood_qps > 5_000.0,
        "the flood ran at full rate: {:.0}/s",
        limited.flood_qps
    );
    assert!(
        limited.limited as f64 > 0.9 * limited.flood_qps * secs,
        "most flood queries were dropped over the limit: {}",
        limited.json()
    );
    // At most the two flooders' bursts and rates, plus the neighbour's
    // lookups (each asked upstream at most once a TTL: never here).
    let bound = 2.0 * (200.0 + 100.0 * (secs + 1.0)) + 50.0 * (secs + 1.0);
    assert!(
        (limited.upstream as f64) < bound,
        "the upstream saw {} queries (bound {bound})",
        limited.upstream
    );
    // Positive control: without limit and cache the upstream sees the
    // flood, many times what it saw under the defaults.
    assert_eq!(neither.limited, 0);
    assert!(
        neither.upstream > 10 * limited.upstream.max(1),
        "without limit and cache the upstream saw {} queries, with them {}",
        neither.upstream,
        limited.upstream
    );
}
