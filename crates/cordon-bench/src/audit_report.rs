//! The "Audit" region of docs/benchmarks.md: `cordon audit` of N idle
//! containers against the bare Engine API work of any audit, from what
//! `scripts/bench-audit` measured.

use std::collections::BTreeSet;

use crate::facts::Results;
use crate::stats::{lower_median, met};

/// `cordon-bench audit-report DIR`: DIR holds `facts` (`date`, `machine`,
/// `n`, `runs`), `audit_us.txt` (µs) and `base_ms.txt` (ms; one run a line) and the
/// last run's `report.json`. Fails when the report did not cover the N
/// containers.
pub fn command(dir: &str) -> Result<(), String> {
    print!("{}", region(&Results::open(dir)?)?);
    Ok(())
}

fn region(r: &Results) -> Result<String, String> {
    let n = r.num("n")? as usize;
    let report = r.json("report.json")?;
    let results = report["results"]
        .as_array()
        .ok_or("report.json: no `results`")?;
    let audited: BTreeSet<&str> = results
        .iter()
        .filter(|x| x["object"]["kind"] == "container")
        .filter_map(|x| x["object"]["name"].as_str())
        .collect();
    if audited.len() != n {
        return Err(format!(
            "the audit covered {} containers, not {n}",
            audited.len()
        ));
    }
    let audit_us = r.column("audit_us.txt", 0)?;
    let am = lower_median(&audit_us).ok_or("no audit runs")? / 1000.0;
    let bm = lower_median(&r.column("base_ms.txt", 0)?).ok_or("no baseline runs")?;
    Ok(format!(
        r#"<!-- audit:begin -->
Written by `scripts/bench-audit` on {date} — {machine}.
{n} idle containers (busybox `sleep`, no network); median of {runs} runs.
`cordon audit` is the whole command as an operator runs it (process start,
policy load, every Engine API call: /info, /version, the default bridge,
{n} container inspects, image inspect and history; the daemon lookup
through SO_PEERCRED, host files, each container's /proc, every check,
JSON rendering of {nres} results). Baseline: the bare Engine API work
of any audit, listing the containers and inspecting each one, over the
same socket from one already-running process.

| containers | cordon audit (ms) | baseline: list + inspects (ms) | audit / baseline |
|---:|---:|---:|---:|
| {n} | {am:.1} | {bm:.1} | {ratio:.2} |

Goal, {n} containers audited in under 1 s: **{goal}** ({am:.1} ms).
<!-- audit:end -->
"#,
        date = r.fact("date")?,
        machine = r.fact("machine")?,
        runs = r.fact("runs")?,
        nres = results.len(),
        ratio = am / bm,
        goal = met(am < 1000.0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_and_its_control() {
        let dir = std::env::temp_dir().join(format!("cordon-bench-ar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let w = |n: &str, t: &str| std::fs::write(dir.join(n), t).unwrap();
        w("facts", "date=d\nmachine=2 cores\nn=2\nruns=3\n");
        w("audit_us.txt", "900000\n1200500\n800250\n");
        w("base_ms.txt", "100\n90\n110\n");
        w(
            "report.json",
            r#"{"results":[{"object":{"kind":"container","name":"a"}},{"object":{"kind":"container","name":"b"}},{"object":{"kind":"host","name":"h"}}]}"#,
        );
        let r = Results::open(dir.to_str().unwrap()).unwrap();
        let s = region(&r).unwrap();
        assert!(s.contains("| 2 | 900.0 | 100.0 | 9.00 |"), "{s}");
        assert!(s.contains("JSON rendering of 3 results"), "{s}");
        assert!(s.contains("**met** (900.0 ms)"), "{s}");
        w("facts", "date=d\nmachine=m\nn=3\nruns=3\n");
        let r = Results::open(dir.to_str().unwrap()).unwrap();
        assert!(region(&r)
            .unwrap_err()
            .contains("covered 2 containers, not 3"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
