//! The "DNS proxy against dnsmasq" region of docs/benchmarks.md, from the
//! runs `scripts/bench-dns` made with `cordon-dnsbench load`: one JSON
//! line per run in `runs.jsonl`, `{"config", "rep", "kind": "lat"|"sat",
//! "result": {qps, p50_us, p99_us, lost, bad}}`; a saturation run may
//! also carry `"cpu_us"`, the CPU time its serving process spent in it.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::facts::Results;
use crate::stats::{lower_median, met};

/// The configurations in table order, with their labels.
const CONFIGS: [(&str, &str); 5] = [
    ("direct", "client → upstream directly (baseline)"),
    ("cordon", "cordon's proxy (firewall opened per answer)"),
    (
        "cordon_noopen",
        "cordon's proxy opening nothing (diagnostic only)",
    ),
    ("dnsmasq", "dnsmasq forwarder, --cache-size=0"),
    (
        "dnsmasq_cache",
        "dnsmasq forwarder, default cache (answers from cache)",
    ),
];

/// A number as the table shows it: whole numbers without decimals.
fn num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// Per configuration: saturation qps, latency p50 and p99 per repetition,
/// lost and bad answers summed.
#[derive(Default)]
struct Runs {
    qps: BTreeMap<u64, f64>,
    /// CPU µs per answered query at saturation, per repetition.
    cpu: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    lost: f64,
    bad: f64,
}

/// The runs of `jsonl`, each saturation run `secs` long.
fn collect(jsonl: &str, secs: f64) -> Result<BTreeMap<String, Runs>, String> {
    let mut by: BTreeMap<String, Runs> = BTreeMap::new();
    for l in jsonl.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(l).map_err(|e| format!("runs.jsonl: {e}: {l}"))?;
        let f = |k: &str| {
            v["result"][k]
                .as_f64()
                .ok_or_else(|| format!("runs.jsonl: no `{k}` in {l}"))
        };
        let r = by
            .entry(v["config"].as_str().unwrap_or("").to_string())
            .or_default();
        r.lost += f("lost")?;
        r.bad += f("bad")?;
        match v["kind"].as_str() {
            Some("lat") => {
                r.p50.push(f("p50_us")?);
                r.p99.push(f("p99_us")?);
            }
            _ => {
                let q = f("qps")?;
                r.qps.insert(v["rep"].as_u64().unwrap_or(0), q);
                if let Some(cpu) = v["cpu_us"].as_f64() {
                    r.cpu.push(cpu / (q * secs).max(1.0));
                }
            }
        }
    }
    Ok(by)
}

/// `cordon-bench dns-report DIR`: DIR holds `facts` (`date`, `commit`,
/// `machine`, `load_avg`, `names`, `conc`, `reps`, `secs`, `elements`,
/// `proxy_rss_kb`) and `runs.jsonl`.
pub fn command(dir: &str) -> Result<(), String> {
    print!("{}", region(&Results::open(dir)?)?);
    Ok(())
}

fn region(r: &Results) -> Result<String, String> {
    let secs: f64 = r
        .fact("secs")?
        .parse()
        .map_err(|e| format!("facts: secs: {e}"))?;
    let by = collect(&r.text("runs.jsonl")?, secs)?;
    let get = |c: &str| {
        by.get(c)
            .ok_or_else(|| format!("runs.jsonl: no runs of `{c}`"))
    };
    let med = |v: &[f64]| lower_median(v).unwrap_or(f64::NAN);
    let mq = |c: &str| get(c).map(|r| med(&r.qps.values().copied().collect::<Vec<_>>()));
    let (direct, dnsmasq) = (get("direct")?, get("dnsmasq")?);
    let (d50, d99) = (med(&direct.p50), med(&direct.p99));
    let mut rows = String::new();
    for (c, label) in CONFIGS {
        let run = get(c)?;
        let q = mq(c)?;
        // Each repetition's own ratio to dnsmasq: runs close in time share
        // the machine's other load, so these vary less.
        let paired: Vec<f64> = run
            .qps
            .iter()
            .filter_map(|(rep, q)| {
                dnsmasq
                    .qps
                    .get(rep)
                    .map(|d| (q / d * 100.0).round() / 100.0)
            })
            .collect();
        let (lo, hi) = paired
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
        let (m50, m99) = (med(&run.p50), med(&run.p99));
        let cpu = lower_median(&run.cpu).map_or("–".to_string(), |c| format!("{c:.1}"));
        rows += &format!(
            "| {label} | {} | {:.2} | {:.2} ({lo:.2}–{hi:.2}) | {:.2} | {cpu} | {} | {} | {} | {} |\n",
            num(q),
            q / mq("dnsmasq")?,
            med(&paired),
            q / mq("direct")?,
            num(m50),
            num(m99),
            num(m50 - d50),
            num(m99 - d99),
        );
    }
    let list = |f: &dyn Fn(&Runs) -> f64| {
        CONFIGS
            .iter()
            .filter_map(|(c, _)| by.get(*c).map(|r| format!("{c} {}", num(f(r)))))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let add99 = med(&get("cordon")?.p99) - d99;
    let qps_ratio = mq("cordon")? / mq("dnsmasq")?;
    Ok(format!(
        r#"<!-- dns:begin -->
Written by `scripts/bench-dns` on {date} at commit {commit} — {machine}.
Load average when measuring began: {load} (the 2 cores are shared with other work).

Three network namespaces: the client, a forwarder namespace routing to the
lab upstream (dnsmasq authoritative for {names} names `nN.bench.test`, A and AAAA, TTL 300).
In the forwarder namespace, side by side: **cordon's proxy** as the daemon runs it
(`cordon_daemon::dns::start`, policy `*.bench.test`; each answer's addresses are
added to `inet cordon`'s timeout sets over netlink before it is released: the sets held
{elements} IPv4 elements at the end) and **dnsmasq as a forwarder** to the same upstream, without
cache (`--cache-size=0`, the fair comparison) and, labelled, with its default cache.
Baseline for added latency: the client asking the upstream directly, routed through
the forwarder namespace (same links). Load: `cordon-dnsbench load`, closed loop over UDP,
A and AAAA in turn over all names; latency with 1 query outstanding, throughput with {conc};
a row for the same proxy code with a context that opens nothing (`cordon-dnsbench
proxy-no-opening`, not a product path) shows what opening the firewall costs;
{reps} alternating repetitions of {secs} s each after 0.5 s warm-up, medians.
CPU per query: the CPU time (user and system, from `/proc`) the serving
process spent during a saturation run, over the queries answered in it
(for the baseline, the upstream's); it varies less than queries/s when
other work shares the cores.
Controls in the same run: every configuration answers an allowlisted name, cordon
refuses a name off its list, and its answer opened the set.
Lost queries (1 s): {lost};
answers that were not NOERROR with a record: {bad}.

| path | queries/s ({conc} outstanding) | vs dnsmasq (no cache) | same, per repetition: median (range) | vs direct | CPU µs per query | p50 µs (1 outstanding) | p99 µs | added p50 µs | added p99 µs |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{rows}
Goals (issue 4): queries/s at least dnsmasq's: **{goal_qps}** ({qps_ratio:.2}×); added p99 under 1 ms: **{goal_p99}** ({add99} µs).
cordon's proxy peak resident memory during the run: {rss} kB.
Where the proxy's time goes and what would speed it up: [docs/dns-proxy.md](dns-proxy.md#benchmark).
<!-- dns:end -->
"#,
        date = r.fact("date")?,
        commit = r.fact("commit")?,
        machine = r.fact("machine")?,
        load = r.fact("load_avg")?,
        names = r.fact("names")?,
        elements = r.fact("elements")?,
        conc = r.fact("conc")?,
        reps = r.fact("reps")?,
        secs = r.fact("secs")?,
        lost = list(&|r| r.lost),
        bad = list(&|r| r.bad),
        goal_qps = met(qps_ratio >= 1.0),
        goal_p99 = met(add99 < 1000.0),
        add99 = num(add99),
        rss = r.fact("proxy_rss_kb")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_from_runs() {
        let mut jsonl = String::new();
        for rep in 1..=2 {
            for (c, q, p50, p99) in [
                ("direct", 40000.0, 50.0, 80.0),
                ("cordon", 30000.0 + f64::from(rep) * 1000.0, 68.0, 105.0),
                ("cordon_noopen", 35000.0, 60.0, 90.0),
                ("dnsmasq", 20000.0, 90.0, 150.0),
                ("dnsmasq_cache", 60000.0, 40.0, 60.0),
            ] {
                jsonl += &format!("{{\"config\":\"{c}\",\"rep\":{rep},\"kind\":\"lat\",\"result\":{{\"qps\":1,\"p50_us\":{p50},\"p99_us\":{p99},\"lost\":0,\"bad\":0}}}}\n");
                // CPU: 1 s of it per 3 s run (secs=3), but none recorded for direct.
                let cpu = if c == "direct" {
                    String::new()
                } else {
                    "\"cpu_us\":1000000,".to_string()
                };
                jsonl += &format!("{{\"config\":\"{c}\",\"rep\":{rep},\"kind\":\"sat\",{cpu}\"result\":{{\"qps\":{q},\"p50_us\":1,\"p99_us\":1,\"lost\":1,\"bad\":0}}}}\n");
            }
        }
        let dir = std::env::temp_dir().join(format!("cordon-bench-dr2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("runs.jsonl"), jsonl).unwrap();
        std::fs::write(dir.join("facts"), "date=d\ncommit=c\nmachine=m\nload_avg=1\nnames=1000\nconc=32\nreps=2\nsecs=3\nelements=7\nproxy_rss_kb=9000\n").unwrap();
        let s = region(&Results::open(dir.to_str().unwrap()).unwrap()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        // cordon: qps 31000 and 32000, lower median 31000; paired 1.55, 1.60.
        // cordon's CPU: 1e6 µs over 31000×3 and 32000×3 queries: 10.8 and
        // 10.4 µs, lower median 10.4.
        assert!(s.contains("| cordon's proxy (firewall opened per answer) | 31000 | 1.55 | 1.55 (1.55–1.60) | 0.78 | 10.4 | 68 | 105 | 18 | 25 |"), "{s}");
        assert!(s.contains("| client → upstream directly (baseline) | 40000 | 2.00 | 2.00 (2.00–2.00) | 1.00 | – |"), "{s}");
        assert!(
            s.contains("**met** (1.55×); added p99 under 1 ms: **met** (25 µs)"),
            "{s}"
        );
        assert!(s.contains("Lost queries (1 s): direct 2, cordon 2,"), "{s}");
        assert!(s.starts_with("<!-- dns:begin -->\n") && s.ends_with("<!-- dns:end -->\n"));
    }
}
