//! cordon's benchmarks, run by `scripts/bench`, which writes the figures
//! to docs/benchmarks.md.
//!
//! * `cordon-bench install [N...]` — the whole install (compile, check,
//!   and the install's steps: plan, prepare, netlink fill, switch) for
//!   100, 1,000, 10,000 and 100,000 synthetic containers (or the sizes
//!   given), against its baseline in the same run: the install before the
//!   steps, the whole ruleset in one `nft` transaction; then a reinstall
//!   reading the kernel, a reinstall over the last install with 1% of the
//!   containers gone, and an iptables rule-per-container ruleset (the
//!   seeds' approach) loaded with `iptables-restore`. Each install goes
//!   into a fresh network namespace: the host's ruleset is never touched.
//! * `cordon-bench compile [N [REPS]]` — compiles N (10,000) synthetic
//!   containers' ruleset REPS (10) times and prints the mean: for a
//!   profiler.
//! * `cordon-bench inventory N CLIENT_IFACE CLIENT_MAC` — a synthetic
//!   inventory of N containers whose first is the real benchmark client.
//! * `cordon-bench iptables N` — the rule-per-container ruleset as
//!   `iptables-restore` input.
//! * `cordon-bench flood ADDR PORT SECS` — sends one unreplied UDP flow as
//!   fast as it can (every packet stays conntrack NEW, so every packet is
//!   classified); prints packets sent.
//! * `cordon-bench daemon-memory [N [UPDATES]]` — the daemon's resident
//!   memory with N (default 1,000) synthetic containers in its state:
//!   builds a `cordon_daemon::engine::Engine`, syncs it against nftables in
//!   a throw-away network namespace, then applies element updates as
//!   containers leave and return (UPDATES times, default N / 5); prints
//!   this process's VmRSS (kB) before the state was built (the baseline),
//!   after the first sync, along the updates and after them, as one JSON
//!   object. Run by `scripts/bench-daemon`.
//! * `cordon-bench reload` — `cordon reload` at 10, 1,000 and 10,000
//!   synthetic containers: the daemon's engine, synced into a throw-away
//!   network namespace, puts a policy of another shape in force (one
//!   transaction, then the conntrack judgement), against the baseline of a
//!   whole first install of the same inventory in the same run. Prints a
//!   Markdown table. Run by `scripts/bench-reload`.
//!
//! * `cordon-bench daemon-scale [N [RUNS]]` — reconcile CPU, `cordon
//!   status` time and memory of the daemon's engine at N (default 10,000)
//!   synthetic containers, each against a baseline of the same run
//!   (module `scale`). Run by `scripts/bench-scale`.
//!
//! What the shell scripts measure is computed and written here, one
//! concern a module: `stats` (percentiles, `pct`), `daemonlog` (the
//! daemon's JSON log: `wait-live`), `spawn` (the `nft add element` floor:
//! `nft-add`), `churn` (`churn-sample`, `leak`), `facts` (a script's work
//! directory), `daemon_report` and `churn_report` (the daemon's sections:
//! `daemon-report`, `churn-report`), `packet_report` (`scripts/bench`:
//! `packet-report`, `iperf-gbps`), `docker_baseline` and `audit_report`
//! (`scripts/bench-audit`: `docker-baseline`, `audit-report`),
//! `dns_report` (`scripts/bench-dns`: `dns-report`), `flood_report`
//! (`scripts/bench-dns-flood`: `flood-report`),
//! `sandbox_report` (`sandbox-report`) and `sections` (rewriting one
//! section of docs/benchmarks.md: `put-section`, `put-region`).

mod audit_report;
mod churn;
mod churn_report;
mod daemon_report;
mod daemonlog;
mod dns_report;
mod docker_baseline;
mod facts;
mod flood_report;
mod packet_report;
mod sandbox_report;
mod scale;
mod sections;
mod spawn;
mod stats;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cordon_compiler::{compile, SetOverrides};
use cordon_dataplane::Nft;
use cordon_inventory::{Container, Endpoint, Inventory, Network};
use cordon_ruleset::json;

const POLICY: &str = r#"
version: 1
sets:
  office: [198.18.0.0/26, "2001:db8:77::/48"]
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
      - to: [db]
        ports: [5432/tcp]
      - to: [internet]
        ports: [80/tcp, 443/tcp]
  - name: db
    select: { label: { app: db } }
    ingress:
      - from: [web]
        ports: [5432/tcp]
    egress: []
"#;

/// The benchmark policy.
fn policy() -> cordon_policy::PolicyFile {
    cordon_policy::parse("bench.yaml", POLICY).expect("bench policy parses")
}

/// Containers that fit in 10.99.0.0/16 (250 a /24, from 10.99.1.0).
const IN_10_99: usize = 63_750;

/// The address of synthetic container `i` in 10.99.0.0/16: the benchmark
/// client (0) is 10.99.0.2, the others 10.99.1.2 onwards; past
/// [`IN_10_99`], 10.98.0.0/16.
fn addr(i: usize) -> String {
    if i == 0 {
        return "10.99.0.2".into();
    }
    if i >= IN_10_99 {
        let j = i - IN_10_99;
        return format!("10.98.{}.{}", j / 250, j % 250 + 2);
    }
    format!("10.99.{}.{}", 1 + i / 250, i % 250 + 2)
}

/// N containers on one user-defined bridge `br-bench`, spread over the
/// policies and the default; container 0 is `client` when given.
fn inventory(n: usize, client: Option<(&str, &str)>) -> Inventory {
    let mut inv = Inventory {
        version: 1,
        networks: vec![Network {
            id: "b".repeat(64),
            name: "bench".into(),
            driver: "bridge".into(),
            bridge: Some("br-bench".into()),
            subnets: if n > IN_10_99 {
                vec![
                    "10.99.0.0/16".parse().expect("subnet"),
                    "10.98.0.0/16".parse().expect("subnet"),
                ]
            } else {
                vec!["10.99.0.0/16".parse().expect("subnet")]
            },
            ..Default::default()
        }],
        containers: Vec::with_capacity(n),
    };
    for i in 0..n {
        let mut c = Container {
            id: format!("{i:064x}"),
            name: format!("c{i}"),
            image: "bench".into(),
            network_mode: "bench".into(),
            ..Default::default()
        };
        let app = ["sftp", "web", "db", ""][i % 4];
        if !app.is_empty() && i != 0 {
            c.labels.insert("app".into(), app.into());
        }
        let (iface, mac) = match (i, client) {
            (0, Some((iface, mac))) => (iface.to_string(), mac.to_string()),
            _ => (
                format!("veth{i:07x}"),
                format!(
                    "02:42:0a:{:02x}:{:02x}:{:02x}",
                    0x63 + (i >> 16),
                    (i >> 8) & 0xff,
                    i & 0xff
                ),
            ),
        };
        c.endpoints.push(Endpoint {
            network: "bench".into(),
            ipv4: Some(addr(i).parse().expect("addr")),
            ipv6: Some(
                if i + 2 > 0xffff {
                    format!("2001:db8:99::{:x}:{:x}", (i + 2) >> 16, (i + 2) & 0xffff)
                } else {
                    format!("2001:db8:99::{:x}", i + 2)
                }
                .parse()
                .expect("addr6"),
            ),
            mac: Some(mac),
            host_iface: Some(iface),
            bridge: Some("br-bench".into()),
            ..Default::default()
        });
        inv.containers.push(c);
    }
    inv
}

/// The seeds' approach: one iptables rule per container, walked in order.
fn iptables_rules(n: usize) -> String {
    let mut s =
        String::from("*filter\n:CORDON-FWD - [0:0]\n:POL-DENY - [0:0]\n:POL-OPEN - [0:0]\n");
    s.push_str("-A FORWARD -j CORDON-FWD\n-A POL-DENY -j DROP\n-A POL-OPEN -j ACCEPT\n");
    // The benchmark client (container 0) comes last, as a container started
    // last would, so its packets walk every rule.
    for i in (0..n).rev() {
        let target = if i % 4 == 0 { "POL-OPEN" } else { "POL-DENY" };
        s.push_str(&format!("-A CORDON-FWD -s {}/32 -j {target}\n", addr(i)));
    }
    s.push_str("COMMIT\n");
    s
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A network namespace deleted on drop.
struct Ns(String);

impl Ns {
    fn new(name: &str) -> Ns {
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        let ok = Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .expect("ip");
        assert!(ok.success(), "ip netns add {name}");
        Ns(name.into())
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn iptables_restore(ns: &str, rules: &str) -> Duration {
    let start = Instant::now();
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "iptables-restore"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("iptables-restore");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(rules.as_bytes())
        .expect("write rules");
    assert!(
        child.wait().expect("wait").success(),
        "iptables-restore failed"
    );
    start.elapsed()
}

fn install_bench(sizes: &[usize]) {
    let policy = policy();
    println!("| containers | compile (ms) | check (ms) | plan (ms) | prepare, nft (ms) | fill, netlink (ms) | switch, nft (ms) | whole install (ms) | baseline: one nft transaction (ms) | install / baseline | reinstall, reading the kernel (ms) | reinstall over the last install, 1% of containers gone (ms) | rules | set elements (over netlink) | iptables-restore, rule per container (ms) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in sizes {
        let inv = inventory(n, None);
        let mut fewer = inv.clone();
        fewer.containers.retain(|c| {
            c.name
                .trim_start_matches('c')
                .parse::<usize>()
                .is_ok_and(|i| i % 100 != 99)
        });
        let runs = std::env::var("BENCH_INSTALL_RUNS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(match n {
                0..=1_000 => 7,
                1_001..=10_000 => 3,
                _ => 1,
            });
        let mut t: [Vec<f64>; 11] = Default::default();
        let mut size = (0, 0, 0);
        let ipt = iptables_rules(n);
        for _ in 0..runs {
            // Baseline: the install before this change, the whole ruleset
            // in one libnftables transaction, into an empty namespace.
            let ns = Ns::new("cb-install");
            let nft = Nft::in_netns(&ns.0);
            let t0 = Instant::now();
            let c = compile(&policy, &inv, &SetOverrides::default());
            nft.run_text(json::replace_text(&c.ruleset), false)
                .expect("baseline install");
            t[7].push(ms(t0.elapsed()));
            t[10].push(ms(iptables_restore(&ns.0, &ipt)));
            drop(ns);

            // What apply, the daemon's start and a reload do, into an
            // empty namespace: compile, check, install in steps.
            let ns = Ns::new("cb-install");
            let nft = Nft::in_netns(&ns.0);
            let t0 = Instant::now();
            let c = compile(&policy, &inv, &SetOverrides::default());
            let t1 = Instant::now();
            nft.check(&c.ruleset).expect("check");
            let t2 = Instant::now();
            let steps = nft.install_staged(&c.ruleset, &[]).expect("install");
            let t3 = Instant::now();
            t[0].push(ms(t1 - t0));
            t[1].push(ms(t2 - t1));
            t[2].push(ms(steps.plan));
            t[3].push(ms(steps.prepare));
            t[4].push(ms(steps.fill));
            t[5].push(ms(steps.switch));
            t[6].push(ms(t3 - t0));
            // The same ruleset again, reading what the kernel holds
            // (apply and a repair on a host where the tables exist).
            // Skipped past 10,000: the listing alone takes minutes.
            if n <= 10_000 {
                let t0 = Instant::now();
                nft.install(&c.ruleset).expect("reinstall");
                t[8].push(ms(t0.elapsed()));
            }
            // A reload: over the ruleset installed before, elements change.
            let next = compile(&policy, &fewer, &SetOverrides::default());
            let t0 = Instant::now();
            nft.install_over(&next.ruleset, &c.ruleset)
                .expect("install over");
            t[9].push(ms(t0.elapsed()));
            let tables = &c.ruleset.tables;
            let rules: usize = tables
                .iter()
                .flat_map(|t| &t.chains)
                .map(|c| c.rules.len())
                .sum();
            let elems: usize = tables
                .iter()
                .flat_map(|t| &t.sets)
                .map(|s| s.elements.len())
                .sum();
            size = (rules, elems, steps.filled);
        }
        let m: Vec<f64> = t
            .into_iter()
            .map(|v| if v.is_empty() { f64::NAN } else { median(v) })
            .collect();
        // A step not run at this size (NaN) reads as a dash.
        let f = |v: f64| {
            if v.is_nan() {
                "—".to_string()
            } else {
                format!("{v:.1}")
            }
        };
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | **{}** | {} | {:.3} | {} | {} | {} | {} ({}) | {} |",
            f(m[0]), f(m[1]), f(m[2]), f(m[3]), f(m[4]), f(m[5]), f(m[6]), f(m[7]), m[6] / m[7], f(m[8]), f(m[9]),
            size.0, size.1, size.2, f(m[10])
        );
    }
}

/// Sends one UDP flow to `addr:port` for `secs` seconds; prints the count.
fn flood(addr: &str, port: u16, secs: f64) {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
    sock.connect((addr, port)).expect("connect");
    let payload = [0u8; 32];
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut sent: u64 = 0;
    while Instant::now() < end {
        for _ in 0..256 {
            if sock.send(&payload).is_ok() {
                sent += 1;
            }
        }
    }
    println!("{sent}");
}

/// This process's resident memory in kB (VmRSS in /proc/self/status).
fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The daemon's engine with `n` synthetic containers, synced into a
/// throw-away network namespace; prints VmRSS before, after the first sync
/// and after `updates` (default `n / 5`) departures and returns of a
/// container, each an element update.
fn daemon_memory(n: usize, updates: Option<usize>) {
    use cordon_daemon::engine::{Engine, Outcome};

    // As the daemon does at its start.
    cordon_daemon::memory::configure();
    let baseline = rss_kb();
    let ns = Ns::new("cb-daemon-mem");
    let state_root = std::env::temp_dir().join(format!("cordon-bench-mem-{}", std::process::id()));
    std::fs::create_dir_all(&state_root).expect("state dir");
    let state = cordon_dataplane::StateDir::at(&state_root);
    let mut inv = inventory(n, None);
    // In the order the daemon keeps its inventory.
    inv.containers
        .sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    let mut engine = Engine::new(policy(), Nft::in_netns(&ns.0), state);
    engine.set_inventory(inv);
    let t0 = Instant::now();
    let first = engine.sync().expect("first sync");
    let first_ms = ms(t0.elapsed());
    assert!(
        matches!(first, Outcome::Replaced(_)),
        "the first sync into an empty namespace installs whole: {first:?}"
    );
    let after_sync = rss_kb();
    // Churn: one container leaves and comes back, element updates only.
    let updates = updates.unwrap_or(n / 5).max(1);
    let mut update_t = Vec::new();
    // VmRSS after each fifth of the updates: a growth trend would show.
    let mut during = Vec::new();
    for k in 0..updates {
        if k > 0 && k % (updates / 5).max(1) == 0 {
            during.push(rss_kb());
        }
        let i = 1 + (k * 7) % (n - 1).max(1);
        let c = engine
            .inventory()
            .containers
            .iter()
            .find(|c| c.name == format!("c{i}"))
            .cloned();
        let Some(c) = c else { continue };
        let id = c.id.clone();
        engine.remove_container(&id);
        let t = Instant::now();
        let out = engine.sync().expect("sync after a departure");
        update_t.push(ms(t.elapsed()));
        assert!(matches!(out, Outcome::Elements(_)), "departure: {out:?}");
        engine.put_container(&id, Some(c));
        let t = Instant::now();
        let out = engine.sync().expect("sync after an arrival");
        update_t.push(ms(t.elapsed()));
        assert!(matches!(out, Outcome::Elements(_)), "arrival: {out:?}");
    }
    let after_updates = rss_kb();
    let containers = engine.inventory().containers.len();
    let elements: usize = engine
        .compiled()
        .map(|c| {
            c.ruleset
                .tables
                .iter()
                .flat_map(|t| &t.sets)
                .map(|s| s.elements.len())
                .sum()
        })
        .unwrap_or(0);
    drop(engine);
    let _ = std::fs::remove_dir_all(&state_root);
    let updates_done = update_t.len();
    println!(
        "{}",
        serde_json::json!({
            "containers": containers,
            "set_elements": elements,
            "rss_baseline_kb": baseline,
            "rss_after_sync_kb": after_sync,
            "rss_after_updates_kb": after_updates,
            "rss_during_updates_kb": during,
            "first_sync_ms": first_ms,
            "element_updates": updates_done,
            "element_update_median_ms": median(update_t),
        })
    );
}

/// `cordon reload` at several sizes, against a first whole install.
fn reload_bench() {
    use cordon_daemon::engine::{Engine, Outcome};
    let other = format!(
        "{POLICY}  - name: extra\n    select: {{ label: {{ app: extra }} }}\n    egress: [{{ to: [internet] }}]\n"
    );
    let policies = [
        (policy(), cordon_dataplane::InForce::new("a.yaml", POLICY)),
        (
            cordon_policy::parse("b.yaml", &other).expect("second policy parses"),
            cordon_dataplane::InForce::new("b.yaml", &other),
        ),
    ];
    println!("| containers | first install, baseline (ms) | reload (ms) | reload / install |");
    println!("|---:|---:|---:|---:|");
    for n in [10, 1_000, 10_000] {
        let runs = 5;
        let mut install_t = Vec::new();
        let mut reload_t = Vec::new();
        for _ in 0..runs {
            let ns = Ns::new("cb-reload");
            let root =
                std::env::temp_dir().join(format!("cordon-bench-reload-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(&root).expect("state dir");
            let mut inv = inventory(n, None);
            inv.containers
                .sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
            let mut engine = Engine::new(
                policies[0].0.clone(),
                Nft::in_netns(&ns.0),
                cordon_dataplane::StateDir::at(&root),
            );
            engine.set_inventory(inv);
            let t = Instant::now();
            let first = engine.sync().expect("first sync");
            install_t.push(ms(t.elapsed()));
            assert!(matches!(first, Outcome::Replaced(_)), "{first:?}");
            for (p, src) in [&policies[1], &policies[0]] {
                let t = Instant::now();
                let out = engine.reload(p.clone(), src.clone()).expect("reload");
                reload_t.push(ms(t.elapsed()));
                assert!(matches!(out, Outcome::Replaced(_)), "{out:?}");
            }
            let _ = std::fs::remove_dir_all(&root);
        }
        let (install, reload) = (median(install_t), median(reload_t));
        println!(
            "| {n} | {install:.1} | {reload:.1} | {:.2} |",
            reload / install
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match arg(1) {
        "compile" => {
            // For a profiler: compiles N containers' ruleset REPS times.
            let n: usize = arg(2).parse().unwrap_or(10_000);
            let reps: usize = arg(3).parse().unwrap_or(10);
            let (p, inv) = (policy(), inventory(n, None));
            let t = Instant::now();
            for _ in 0..reps {
                std::hint::black_box(compile(&p, &inv, &SetOverrides::default()));
            }
            println!("{:.1} ms a compile", ms(t.elapsed()) / reps as f64);
        }
        "install" => {
            let sizes: Vec<usize> = args[2..]
                .iter()
                .map(|a| a.parse().expect("a container count"))
                .collect();
            install_bench(if sizes.is_empty() {
                &[100, 1_000, 10_000, 100_000]
            } else {
                &sizes
            })
        }
        "inventory" => {
            let n: usize = arg(2).parse().expect("N");
            println!("{}", inventory(n, Some((arg(3), arg(4)))).to_json());
        }
        "policy" => print!("{POLICY}"),
        "iptables" => print!("{}", iptables_rules(arg(2).parse().expect("N"))),
        "flood" => flood(
            arg(2),
            arg(3).parse().expect("PORT"),
            arg(4).parse().expect("SECS"),
        ),
        "daemon-memory" => daemon_memory(arg(2).parse().unwrap_or(1_000), arg(3).parse().ok()),
        "reload" => reload_bench(),
        "daemon-scale" => scale::command(
            arg(2).parse().unwrap_or(10_000),
            arg(3).parse().unwrap_or(3),
        ),
        other => {
            if let Some(result) = tools(other, &args[2.min(args.len())..]) {
                if let Err(e) = result {
                    eprintln!("cordon-bench {other}: {e}");
                    std::process::exit(1);
                }
                return;
            }
            eprintln!("usage: cordon-bench install [N...] | compile [N [REPS]] | inventory N IFACE MAC | policy | iptables N | flood ADDR PORT SECS | daemon-memory [N [UPDATES]] | reload | daemon-scale [N [RUNS]]");
            eprintln!("       cordon-bench pct < NUMBERS | wait-live LOG OFFSET SECS | nft-add N FAMILY TABLE SET | churn-sample NET STOPFILE OUT | leak CORDON POLICY | daemon-report DIR | churn-report DIR | packet-report DIR | iperf-gbps < JSON | docker-baseline NAMES | audit-report DIR | dns-report DIR | flood-report DIR | sandbox-report DIR | put-section FILE SECTION.md... | put-region FILE NAME HEADING REGION.md");
            std::process::exit(2);
        }
    }
}

/// The subcommands that compute and report for the shell scripts (one
/// module each); `None` for an unknown name or the wrong number of
/// arguments.
fn tools(name: &str, a: &[String]) -> Option<Result<(), String>> {
    let s = |i: usize| a[i].as_str();
    Some(match (name, a.len()) {
        ("pct", 0) => stats::pct_command(),
        ("wait-live", 3) => daemonlog::wait_live_command(s(0), s(1), s(2)),
        ("nft-add", 4) => spawn::command(s(0), s(1), s(2), s(3)),
        ("churn-sample", 3) => churn::sample_command(s(0), s(1), s(2)),
        ("leak", 2) => churn::leak_command(s(0), s(1)),
        ("daemon-report", 1) => daemon_report::command(s(0)),
        ("churn-report", 1) => churn_report::command(s(0)),
        ("packet-report", 1) => packet_report::command(s(0)),
        ("iperf-gbps", 0) => packet_report::iperf_command(),
        ("audit-report", 1) => audit_report::command(s(0)),
        ("docker-baseline", 1) => docker_baseline::command(s(0)),
        ("dns-report", 1) => dns_report::command(s(0)),
        ("flood-report", 1) => flood_report::command(s(0)),
        ("sandbox-report", 1) => sandbox_report::command(s(0)),
        ("put-section", n) if n >= 2 => {
            sections::command(&[&["put-section".to_string()], a].concat())
        }
        ("put-region", 4) => sections::command(&[&["put-region".to_string()], a].concat()),
        _ => return None,
    })
}
