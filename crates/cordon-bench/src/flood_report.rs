//! The "DNS proxy under a flood" region of docs/benchmarks.md, from the
//! figures the lab test `a_dns_flood_does_not_starve_the_neighbours`
//! writes in its measuring mode (`scripts/bench-dns-flood`).

use serde_json::Value;

use crate::facts::Results;
use crate::stats::met;

/// A count with thousands separators, rounded to a whole number.
fn thousands(x: f64) -> String {
    let t = crate::stats::thousands(x.abs().round() as u64);
    if x.round() < 0.0 {
        format!("-{t}")
    } else {
        t
    }
}

/// A latency in ms, or "none answered".
fn ms(v: &Value) -> String {
    v.as_f64()
        .map_or("none answered".into(), |x| format!("{x:.1}"))
}

fn ratio(x: &Value, base: &Value) -> String {
    match (x.as_f64(), base.as_f64()) {
        (Some(x), Some(b)) if b != 0.0 => format!("{:.1}×", x / b),
        _ => "—".into(),
    }
}

fn count(v: &Value) -> String {
    v.as_f64().map_or_else(|| v.to_string(), thousands)
}

/// `cordon-bench flood-report DIR`: DIR holds `facts` (`date`, `commit`,
/// `profile`, `machine`, `load_avg`, `secs`) and the test's `flood.json`.
pub fn command(dir: &str) -> Result<(), String> {
    print!("{}", region(&Results::open(dir)?)?);
    Ok(())
}

fn region(r: &Results) -> Result<String, String> {
    let d = r.json("flood.json")?;
    let base = &d["baseline"];
    let phases = d["phases"]
        .as_array()
        .filter(|p| !p.is_empty())
        .ok_or("flood.json: no phases")?;
    let rows: Vec<String> = phases
        .iter()
        .map(|p| {
            let n = &p["neighbour"];
            format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                p["phase"].as_str().unwrap_or(""),
                count(&p["flood_qps"]),
                n["lookups"],
                n["failed"],
                ms(&n["p50_ms"]),
                ms(&n["p99_ms"]),
                ratio(&n["p99_ms"], &base["p99_ms"]),
                count(&p["upstream_queries"]),
                count(&p["rate_limited"]),
                count(&p["cache_hits"]),
            )
        })
        .collect();
    let dflt = &phases[0]["neighbour"];
    let goal =
        dflt["failed"].as_f64() == Some(0.0) && dflt["p99_ms"].as_f64().is_some_and(|p| p < 50.0);
    Ok(format!(
        r#"<!-- dns-flood:begin -->
Written by `scripts/bench-dns-flood` on {date} at commit {commit} ({profile} build) — {machine}.
Load average when measuring began: {load} (the cores are shared with other work).

Three lab containers of one policy (`*.wild.test`) and the real `cordon daemon`; the lab
resolver (dnsmasq, TTL 300) counts the queries it receives. Two threads in the first two
containers' network namespaces flood the proxy as fast as they can (one name over and over;
a new name for every query); a thread in the third container's namespace times one lookup
every 20 ms (1 s timeout, no retry) for {secs} s per phase. The baseline is the same
neighbour with no flood, in the same run: {bl} lookups, {bf} failed,
p50 {b50} ms, p99 {b99} ms. "upstream" counts every query the resolver received
during the phase (the neighbour's included); "over the limit" and "cache hits" are the
daemon's `cordon_dns_rate_limited_total` and `cordon_dns_cache_hits_total`.

| daemon configuration | flood queries/s (both) | neighbour lookups | failed | p50 ms | p99 ms | p99 vs no flood | upstream queries | over the limit | cache hits |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{rows}

Goal (issue 13): the neighbour's p99 under 50 ms while two containers flood at full rate, with
the defaults: **{goal}** (p99 {d99} ms, {df} of {dl} lookups failed).
How the proxy sheds a flood: [docs/dns-proxy.md](dns-proxy.md#rate-limit-and-cache).
<!-- dns-flood:end -->
"#,
        date = r.fact("date")?,
        commit = r.fact("commit")?,
        profile = r.fact("profile")?,
        machine = r.fact("machine")?,
        load = r.fact("load_avg")?,
        secs = r.fact("secs")?,
        bl = base["lookups"],
        bf = base["failed"],
        b50 = ms(&base["p50_ms"]),
        b99 = ms(&base["p99_ms"]),
        rows = rows.join("\n"),
        goal = met(goal),
        d99 = ms(&dflt["p99_ms"]),
        df = dflt["failed"],
        dl = dflt["lookups"],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_the_table_shows_them() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(ms(&Value::Null), "none answered");
        assert_eq!(ratio(&Value::from(9.0), &Value::from(3.0)), "3.0×");
        assert_eq!(ratio(&Value::Null, &Value::from(3.0)), "—");
    }

    #[test]
    fn the_region_from_the_tests_figures() {
        let dir = std::env::temp_dir().join(format!("cordon-bench-fr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("facts"),
            "date=d\ncommit=c\nprofile=release\nmachine=m\nload_avg=1\nsecs=8\n",
        )
        .unwrap();
        std::fs::write(dir.join("flood.json"), r#"{"baseline":{"lookups":400,"failed":0,"p50_ms":0.4,"p99_ms":1.0},
          "phases":[{"phase":"defaults","flood_qps":45678.9,"neighbour":{"lookups":400,"failed":0,"p50_ms":0.5,"p99_ms":2.5},"upstream_queries":1234,"rate_limited":300000,"cache_hits":5},
                    {"phase":"neither","flood_qps":1000,"neighbour":{"lookups":10,"failed":10,"p50_ms":null,"p99_ms":null},"upstream_queries":1,"rate_limited":0,"cache_hits":0}]}"#).unwrap();
        let s = region(&Results::open(dir.to_str().unwrap()).unwrap()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            s.contains("| defaults | 45,679 | 400 | 0 | 0.5 | 2.5 | 2.5× | 1,234 | 300,000 | 5 |"),
            "{s}"
        );
        assert!(
            s.contains(
                "| neither | 1,000 | 10 | 10 | none answered | none answered | — | 1 | 0 | 0 |"
            ),
            "{s}"
        );
        assert!(
            s.contains("**met** (p99 2.5 ms, 0 of 400 lookups failed)"),
            "{s}"
        );
    }
}
