//! `cordon verify`'s costs, written to its section of docs/benchmarks.md
//! (between `<!-- verify:begin -->` and `<!-- verify:end -->`); run by
//! `scripts/bench-verify`. Every figure is a ratio against a baseline
//! measured in the same run:
//!
//! * the evaluator: preparing it and judging one flow, against compiling
//!   the same policy and inventory (what `cordon apply` does anyway);
//! * the probes (root only): blocked TCP probes run with the default bound
//!   on concurrency, against the same probes one at a time, from a
//!   throw-away network namespace whose route leads to a gateway that does
//!   not exist (every probe waits for its full timeout).

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cordon_compiler::evaluate::{Evaluator, Facts, Flow, Proto};
use cordon_compiler::{compile, SetOverrides};
use cordon_inventory::{Container, Endpoint, Inventory};
use cordon_verify::probe::{probe_all, DEFAULT_CONCURRENCY};

const POLICY: &str = r#"version: 1
sets: { office: [198.18.0.0/26] }
policies:
  - name: web
    select: { label: { app: web } }
    egress: [{ to: [db], ports: [5432/tcp] }, { to: [office] }, { to: [internet], ports: [80/tcp, 443/tcp] }]
  - { name: db, select: { label: { app: db } }, ingress: [{ from: [web], ports: [5432/tcp] }], egress: [] }
"#;

/// `n` containers on one user-defined bridge, alternately web and db.
fn inventory(n: usize) -> Inventory {
    let mut inv = Inventory::from_json(
        "bench.json",
        r#"{"networks": [{"id": "n", "name": "app", "driver": "bridge",
            "bridge": "br-app", "subnets": ["10.98.0.0/16"]}]}"#,
    )
    .expect("bench networks");
    inv.containers = (0..n)
        .map(|i| Container {
            id: format!("{i:064x}"),
            name: format!("c{i}"),
            labels: [("app".into(), ["web", "db"][i % 2].into())].into(),
            network_mode: "app".into(),
            endpoints: vec![Endpoint {
                network: "app".into(),
                ipv4: Some(container_addr(i)),
                mac: Some(format!("02:42:0a:62:{:02x}:{:02x}", i / 256 % 256, i % 256)),
                host_iface: Some(format!("veth{i:07x}")),
                bridge: Some("br-app".into()),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    inv
}

fn container_addr(i: usize) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(10, 98, (i / 250) as u8, (i % 250 + 2) as u8)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed().as_secs_f64() * 1e3, out)
}

/// One row: containers, compile ms, evaluator ms, µs per flow, ratios.
fn evaluator_row(n: usize) -> String {
    let policy = cordon_policy::parse("bench.yaml", POLICY).expect("bench policy");
    let inv = inventory(n);
    let overrides = SetOverrides::default();
    let learned = Default::default();
    let host: Vec<IpAddr> = vec!["10.98.0.1".parse().expect("addr")];
    let facts = Facts {
        policy: &policy,
        inventory: &inv,
        overrides: &overrides,
        learned: &learned,
        host: &host,
    };
    let compile_ms = median(
        (0..5)
            .map(|_| time(|| compile(&policy, &inv, &overrides)).0)
            .collect(),
    );
    let new_ms = median((0..5).map(|_| time(|| Evaluator::new(facts)).0).collect());
    let ev = Evaluator::new(facts);
    // From the last web container: to a db (its ingress too), the office,
    // the internet, a private address, the host.
    let from = (n - 1) & !1;
    let flows: Vec<Flow> = [
        (IpAddr::V4(container_addr(1)), Proto::Tcp, 5432),
        ("198.18.0.9".parse().expect("addr"), Proto::Udp, 53),
        ("198.51.100.2".parse().expect("addr"), Proto::Tcp, 443),
        ("10.1.2.3".parse().expect("addr"), Proto::Tcp, 80),
        (host[0], Proto::Tcp, 22),
    ]
    .into_iter()
    .map(|(dst, proto, port)| Flow { dst, proto, port })
    .collect();
    let rounds = 200;
    let (flows_ms, allowed) = time(|| {
        let mut allowed = 0;
        for _ in 0..rounds {
            for f in &flows {
                allowed += usize::from(ev.egress_of(from, f).expect("evaluates").allowed);
            }
        }
        allowed
    });
    assert_eq!(allowed, 3 * rounds, "db, office and internet are allowed");
    let per_flow_us = flows_ms * 1e3 / (rounds * flows.len()) as f64;
    format!(
        "| {n} | {compile_ms:.2} | {new_ms:.2} | {:.2} | {per_flow_us:.2} | {:.4} |",
        new_ms / compile_ms,
        per_flow_us / 1e3 / compile_ms
    )
}

/// Wall time (s) of `count` blocked TCP probes at `bound` concurrency,
/// from namespace `ns`.
fn probe_secs(ns: &str, count: usize, timeout: Duration, bound: usize) -> f64 {
    let flows: Vec<Flow> = (0..count)
        .map(|i| Flow {
            dst: IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 10 + i as u8)),
            proto: Proto::Tcp,
            port: 80,
        })
        .collect();
    let start = Instant::now();
    let seen = probe_all(
        Path::new(&format!("/run/netns/{ns}")),
        &flows,
        timeout,
        bound,
    )
    .expect("probes run");
    let secs = start.elapsed().as_secs_f64();
    assert!(
        seen.iter().all(|o| !o.reached() && !o.failed()),
        "every probe is blocked: {seen:?}"
    );
    secs
}

fn ip(args: &[&str]) {
    let ok = Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ip {args:?} failed");
}

/// The probe rows, or why they were skipped.
fn probe_rows() -> Result<Vec<String>, String> {
    if !cordon_dataplane::is_root() {
        return Err("not root: probe timings skipped".into());
    }
    let ns = format!("cv-bench-{}", std::process::id());
    ip(&["netns", "add", &ns]);
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _gone = Gone(ns.clone());
    // A veth pair inside the namespace; the route to 198.51.100.0/24 goes
    // through a gateway with a fixed MAC no one has: the SYNs leave, nothing
    // comes back.
    for cmd in [
        vec!["link", "add", "va", "type", "veth", "peer", "name", "vb"],
        vec!["addr", "add", "10.200.0.1/24", "dev", "va"],
        vec!["link", "set", "va", "up"],
        vec!["link", "set", "vb", "up"],
        vec![
            "neigh",
            "add",
            "10.200.0.2",
            "lladdr",
            "02:00:00:00:00:99",
            "dev",
            "va",
            "nud",
            "permanent",
        ],
        vec!["route", "add", "198.51.100.0/24", "via", "10.200.0.2"],
    ] {
        let mut args = vec!["-n", ns.as_str()];
        args.extend(cmd);
        ip(&args);
    }
    let timeout = Duration::from_millis(250);
    let mut rows = Vec::new();
    for count in [16, 64] {
        let base = probe_secs(&ns, count, timeout, 1);
        let bounded = probe_secs(&ns, count, timeout, DEFAULT_CONCURRENCY);
        rows.push(format!(
            "| {count} | {:.0} | {:.2} | {:.2} | {:.3} |",
            timeout.as_secs_f64() * 1e3,
            base,
            bounded,
            bounded / base
        ));
    }
    Ok(rows)
}

fn main() {
    // The heading stays outside the markers: other bench scripts cut
    // sections at headings.
    let mut s = String::from("<!-- verify:begin -->\n");
    s.push_str(&format!(
        "Written by `scripts/bench-verify` on {}; {} cores.\n\n",
        Command::new("date")
            .args(["-u", "+%Y-%m-%d"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    s.push_str(
        "**Evaluator.** What the policy says about a flow, against compiling the same policy and \
inventory (the baseline, median of 5). Preparing the evaluator compiles once (for the policy \
assignments); each flow is then a walk over the container's rules. Synthetic containers on one \
bridge, alternately `web` and `db` (a policy peer with ingress); 5 flows from a web container \
(a db, a set, the internet, a private address, the host), 200 rounds.\n\n",
    );
    s.push_str("| containers | compile (ms) | prepare evaluator (ms) | prepare / compile | one flow (µs) | one flow / compile |\n|---:|---:|---:|---:|---:|---:|\n");
    for n in [100, 1_000, 10_000] {
        s.push_str(&evaluator_row(n));
        s.push('\n');
    }
    s.push_str(
        "\nOne flow's cost grows with the number of containers: a policy peer (`to: [db]`) and the \
receiver's ingress are found by scanning the containers' addresses. It stays far below one \
compile, and verify judges a handful of flows per run.\n\n",
    );
    s.push_str(
        "**Probes.** Blocked TCP probes (each waits for its whole timeout) from a throw-away network \
namespace, with verify's bound of 16 at a time, against the same probes one at a time (the \
baseline), in the same run.\n\n",
    );
    match probe_rows() {
        Ok(rows) => {
            s.push_str("| probes | timeout (ms) | one at a time (s) | 16 at a time (s) | ratio |\n|---:|---:|---:|---:|---:|\n");
            for r in rows {
                s.push_str(&r);
                s.push('\n');
            }
        }
        Err(why) => s.push_str(&format!("({why})\n")),
    }
    s.push_str("<!-- verify:end -->\n");
    let out = std::env::var("BENCH_OUT").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/benchmarks.md").to_string()
    });
    let old = std::fs::read_to_string(&out).unwrap_or_default();
    let new = match (
        old.find("<!-- verify:begin -->"),
        old.find("<!-- verify:end -->"),
    ) {
        (Some(a), Some(b)) if a < b => {
            let end = b + "<!-- verify:end -->\n".len().min(old.len() - b);
            format!("{}{}{}", &old[..a], s, &old[end..])
        }
        _ => format!("{}\n\n## cordon verify\n\n{}", old.trim_end(), s),
    };
    std::fs::write(&out, new).expect("write docs/benchmarks.md");
    print!("{s}");
}
