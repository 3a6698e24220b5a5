//! The "cordon sandbox" region of docs/benchmarks.md: a run's latency
//! against `docker run --rm` of the same command, from the samples
//! `scripts/bench-sandbox` took (µs, one a line).

use crate::facts::Results;
use crate::stats::{mean, median, met};

/// p50 and mean in ms, and runs per second, of µs samples.
fn timing(v: &[f64]) -> Result<(f64, f64, f64), String> {
    let m = mean(v).ok_or("no samples")?;
    Ok((median(v).unwrap_or(0.0) / 1000.0, m / 1000.0, 1e6 / m))
}

/// `cordon-bench sandbox-report DIR`: DIR holds `facts` (`date`,
/// `machine`, `runs`, `misses`) and the samples `docker`, `cordon`,
/// `cold` and `pool`.
pub fn command(dir: &str) -> Result<(), String> {
    print!("{}", region(&Results::open(dir)?)?);
    Ok(())
}

fn region(r: &Results) -> Result<String, String> {
    let t = |name: &str| -> Result<(f64, f64, f64), String> {
        timing(&r.column(name, 0)?).map_err(|e| format!("{name}: {e}"))
    };
    let (d, c, s, p) = (t("docker")?, t("cordon")?, t("cold")?, t("pool")?);
    let row =
        |x: (f64, f64, f64)| format!("{:.1} | {:.1} | {:.2} | {:.2}", x.0, x.1, x.2, x.0 / d.0);
    let cold_ratio = c.0 / d.0;
    Ok(format!(
        r#"<!-- sandbox:begin -->
Written by `scripts/bench-sandbox` on {date} — {machine}.
`true` in the busybox lab image, {runs} runs of each, one at a time; the
baseline is the docker CLI's `docker run --rm IMAGE true`, interleaved with
`cordon sandbox run` in the same loop. Times are client-side, from the
request to the verdict (the container removed; a pooled container is
removed just after its verdict is sent). Most of the cold profile's lead
over `docker run --rm` is having no network: Docker creates no veth pair,
bridge port or iptables rules for it.

| path | p50 (ms) | mean (ms) | runs/s | p50 / docker run --rm |
|---|---:|---:|---:|---:|
| `docker run --rm` (baseline) | {drow} |
| `cordon sandbox run` (default profile, cold) | {crow} |
| `cordon sandbox serve`, cold (no CLI start) | {srow} |
| `cordon sandbox serve --pool` (warm container) | {prow} |

Goal, default profile at most 0.8× `docker run --rm`: **{g1}** ({cold_ratio:.2}×).
Goal, warm-pool p50 under 100 ms: **{g2}** ({p50:.1} ms; {misses} of {runs} pooled requests found the pool empty and are not counted).
<!-- sandbox:end -->
"#,
        date = r.fact("date")?,
        machine = r.fact("machine")?,
        runs = r.fact("runs")?,
        misses = r.fact("misses")?,
        drow = row(d),
        crow = row(c),
        srow = row(s),
        prow = row(p),
        g1 = met(cold_ratio <= 0.8),
        g2 = met(p.0 <= 100.0),
        p50 = p.0,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_from_samples() {
        let dir = std::env::temp_dir().join(format!("cordon-bench-sr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let w = |n: &str, t: &str| std::fs::write(dir.join(n), t).unwrap();
        w("facts", "date=d\nmachine=m\nruns=2\nmisses=0\n");
        w("docker", "1000000\n1000000\n");
        w("cordon", "600000\n700000\n");
        w("cold", "500000\n500000\n");
        w("pool", "50000\n70000\n");
        let s = region(&Results::open(dir.to_str().unwrap()).unwrap()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            s.contains("| `docker run --rm` (baseline) | 1000.0 | 1000.0 | 1.00 | 1.00 |"),
            "{s}"
        );
        assert!(
            s.contains("(default profile, cold) | 650.0 | 650.0 | 1.54 | 0.65 |"),
            "{s}"
        );
        assert!(
            s.contains("(warm container) | 60.0 | 60.0 | 16.67 | 0.06 |"),
            "{s}"
        );
        assert!(s.contains("**met** (0.65×)"), "{s}");
        assert!(s.contains("**met** (60.0 ms; 0 of 2"), "{s}");
    }
}
