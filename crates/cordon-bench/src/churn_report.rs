//! The "Daemon under churn" section of docs/benchmarks.md, from what
//! `scripts/bench-daemon --churn` left in its work directory: the
//! sampler's and the leak check's JSON (see `churn`), the daemon's RSS
//! series and its JSON log.

use serde_json::Value;

use crate::daemonlog;
use crate::facts::{mb, Results};
use crate::stats::Summary;

/// `cordon-bench churn-report DIR`: prints the section. DIR holds `facts`,
/// `workers.txt` (each churn worker's `starts stops`),
/// `sample.json`, `leak_running.json`, `leak_empty.json`, `status.json`
/// (`cordon status -o json` while the last containers ran), `rss.txt`
/// (`seconds kB` lines) and `daemon.log`.
pub fn command(dir: &str) -> Result<(), String> {
    print!("{}", section(&Results::open(dir)?)?);
    Ok(())
}

fn n(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if v.is_f64() => format!("{f:.2}"),
        _ => v.to_string(),
    }
}

fn section(r: &Results) -> Result<String, String> {
    let sj = r.json("sample.json")?;
    let lr = r.json("leak_running.json")?;
    let le = r.json("leak_empty.json")?;
    let log = r.text("daemon.log")?;
    let rss = r.column("rss.txt", 1)?;
    let secs = r.num("churn_secs")?.max(1.0);
    // Each worker's `starts stops`.
    let starts: f64 = r.column("workers.txt", 0)?.iter().sum();
    let stops: f64 = r.column("workers.txt", 1)?.iter().sum();
    let zero = |v: &Value| v.as_f64() == Some(0.0);
    let wrong = &sj["wrong"];
    let stale1 = sj["stale_over_1s"].as_array().map_or(0, Vec::len);
    let ok_policy = zero(wrong) && stale1 == 0;
    let ok_leak = zero(&lr["extra"]) && zero(&le["extra"]);
    let samples = sj["samples"].as_f64().unwrap_or(0.0).max(1.0);

    let wrong_lines: String = sj["wrong_list"]
        .as_array()
        .into_iter()
        .flatten()
        .take(5)
        .map(|w| {
            let ports: Vec<&str> = w[4]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "  - at {}: {} ({}) mapped to {}, bound port(s) {}\n",
                w[0],
                w[2].as_str().unwrap_or(""),
                w[1].as_str().unwrap_or(""),
                w[3].as_str().unwrap_or(""),
                ports.join(", ")
            )
        })
        .collect();
    let diffs: String = [&lr, &le]
        .iter()
        .flat_map(|j| j["diffs"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .map(|d| format!("- {d}\n"))
        .collect();

    let batches = daemonlog::all_batches(&log);
    let lag = Summary::of(
        &batches
            .iter()
            .map(|b| b.lag_us as f64 / 1000.0)
            .collect::<Vec<_>>(),
    )
    .ok_or("daemon.log: no batch changed elements during the churn")?;
    let handled = Summary::of(
        &batches
            .iter()
            .map(|b| b.handled_us as f64 / 1000.0)
            .collect::<Vec<_>>(),
    )
    .ok_or("daemon.log: no batch")?;
    let ev_max = batches.iter().map(|b| b.events).max().unwrap_or(0);
    let warns = daemonlog::warnings(&log);
    let first_warns: String = if warns.is_empty() {
        String::new()
    } else {
        let lines: String = warns.iter().take(5).map(|w| format!("    {w}\n")).collect();
        format!("\nFirst warnings:\n\n{lines}")
    };
    let rss_first = rss.first().copied().ok_or("rss.txt is empty")?;
    let rss_last = rss.last().copied().unwrap_or(rss_first);
    let rss_max = rss.iter().copied().fold(rss_first, f64::max);
    let series = rss.iter().map(|v| mb(*v)).collect::<Vec<_>>().join(", ");
    let running_after = r.fact("running_after")?;

    Ok(format!(
        r#"## Daemon under churn

Written by `scripts/bench-daemon --churn` on {date} at commit {commit} — {machine}.
Command: `CHURN_SECS={cfg_secs} scripts/bench-daemon --churn` (as root; takes the lab lock).

`cordon daemon -c churn.yaml` with two policies selected by label (`red`:
no egress; `blue`: 443/tcp to the internet; the kernel chains `eg_fwd_red`,
`eg_fwd_blue`). {workers} workers churned a pool of {pool} container
slots on one user-defined network for {secs} s: a free slot starts a
container of a random colour (so addresses Docker reuses change policy), a
busy one is removed (`docker rm -f`). {starts} starts and {stops} removals
({rate:.1} per second); {running_after} containers were running at the end.

**At no moment a container outside its policy.** A sampler read Docker's
view of the network, then the kernel's `egress4` map, then Docker again;
a container running in both Docker readings must map to its own colour's
chain (or, while it waits for its elements, be cut off by the bridge table,
which passes a frame only from the port bound to its address), and an
element whose address no running container holds must not last more than a
second. {samples} samples, {checked} container checks:

- running containers mapped to the wrong policy with their port bound in
  `bridge cordon` (their packets would be judged by the wrong policy): **{wrong}**
- running containers whose address still mapped to the policy of a departed
  container that had the same address, while their own port was not bound
  yet (the bridge table drops their frames: a known address from an unknown
  port, fail closed): {wrong_cut} checks, longest {max_cut} s
- elements of stopped containers older than 1 s: **{stale1}** (longest seen: {max_stale} s)
- longest a running container waited for its elements (dropped meanwhile, fail closed): {max_missing} s

{wrong_lines}
Goal: **{ok_policy}**. The sampler's resolution is its period (one `docker
network inspect`, one `nft -j list ruleset`, another inspect: about
{period:.2} s per sample). Control: the last sample, after the churn,
parsed {bindings} port bindings from `bind4` for {running_after} running containers.

**No leaked elements.** Every set and map of `inet cordon` and `bridge
cordon`, element by element, against `cordon plan` for the containers
running at that moment: with the {running_after} still running, {x1} extra and {m1}
missing ({k1} elements in the kernel; `cordon status` listed {status_n} containers);
after removing them all, {x2} extra and {m2} missing. Goal: **{ok_leak}**.
{diffs}
**Daemon memory**, VmRSS every 10 s ({rss_n} samples): first {rss_first} MB, last
{rss_last} MB, max {rss_max} MB; after removing every container
{rss_end} MB. Series (MB): {series}.

**Lag under churn**, the {nb} batches that changed elements (up to {ev_max} events
each): logged `lag_us` p50 {l50:.1} ms, p99 {l99:.1} ms, max {lmax:.1} ms;
`handled_us` p50 {h50:.1} ms, p99 {h99:.1} ms (the daemon handles one batch at a
time, so an event also waits for the batches before it). Warnings or errors
in the daemon's log: {nwarn}.
{first_warns}"#,
        date = r.fact("date")?,
        commit = r.fact("commit")?,
        machine = r.fact("machine")?,
        cfg_secs = r.fact("churn_secs_cfg")?,
        workers = r.fact("workers")?,
        pool = r.fact("pool")?,
        secs = r.fact("churn_secs")?,
        starts = starts,
        stops = stops,
        rate = (starts + stops) / secs,
        samples = sj["samples"],
        checked = sj["checked"],
        wrong = wrong,
        wrong_cut = sj["wrong_cut"],
        max_cut = n(&sj["max_wrong_cut_s"]),
        stale1 = stale1,
        max_stale = n(&sj["max_stale_s"]),
        max_missing = n(&sj["max_missing_s"]),
        ok_policy = if ok_policy { "met" } else { "not met" },
        period = secs / samples,
        bindings = sj["bindings_last_sample"],
        x1 = lr["extra"],
        m1 = lr["missing"],
        k1 = lr["kernel_elements"],
        status_n = r.json("status.json")?["containers"]
            .as_array()
            .map_or(0, Vec::len),
        x2 = le["extra"],
        m2 = le["missing"],
        ok_leak = if ok_leak { "met" } else { "not met" },
        rss_n = rss.len(),
        rss_first = mb(rss_first),
        rss_last = mb(rss_last),
        rss_max = mb(rss_max),
        rss_end = mb(r.num("rss_end_kb")?),
        nb = batches.len(),
        l50 = lag.p50,
        l99 = lag.p99,
        lmax = lag.max,
        h50 = handled.p50,
        h99 = handled.p99,
        nwarn = warns.len(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_churn_section_from_a_work_directory() {
        let dir = std::env::temp_dir().join(format!("cordon-bench-cr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let w = |n: &str, t: &str| std::fs::write(dir.join(n), t).unwrap();
        w("facts", "date=d\ncommit=c\nmachine=m\nchurn_secs_cfg=180\nworkers=3\npool=200\nchurn_secs=100\nrunning_after=50\nrss_end_kb=20480\n");
        w("workers.txt", "100 50\n200 150\n");
        w(
            "sample.json",
            r#"{"samples":50,"checked":2000,"wrong":0,"wrong_list":[],"wrong_cut":3,"max_wrong_cut_s":0.25,"bindings_last_sample":50,"max_missing_s":0.5,"max_stale_s":0.75,"stale_over_1s":[]}"#,
        );
        w(
            "leak_running.json",
            r#"{"kernel_elements":900,"extra":0,"missing":0,"diffs":[]}"#,
        );
        w(
            "leak_empty.json",
            r#"{"kernel_elements":10,"extra":1,"missing":0,"diffs":["inet pol_red4: 1 extra, 0 missing (kernel 1, plan 0)"]}"#,
        );
        w(
            "status.json",
            r#"{"containers":[{"name":"a"},{"name":"b"}]}"#,
        );
        w("rss.txt", "0 10240\n10 12288\n20 11264\n");
        w(
            "daemon.log",
            concat!(
                r#"{"timestamp":"2026-11-30T10:00:00Z","level":"INFO","fields":{"message":"policy live","lag_us":3000,"handled_us":2000,"events":4}}"#,
                "\n",
                r#"{"timestamp":"2026-11-30T10:00:00Z","level":"DEBUG","fields":{"message":"event: 9 element(s) changed"}}"#,
                "\n",
                r#"{"timestamp":"2026-11-30T10:00:01Z","level":"WARN","fields":{"message":"careful"}}"#,
                "\n"
            ),
        );
        let s = section(&Results::open(dir.to_str().unwrap()).unwrap()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(s.starts_with("## Daemon under churn\n"));
        assert!(
            s.contains("300 starts and 200 removals\n(5.0 per second)"),
            "{s}"
        );
        assert!(s.contains("policy): **0**"), "{s}");
        assert!(s.contains("3 checks, longest 0.25 s"), "{s}");
        assert!(s.contains("Goal: **met**. "), "{s}");
        assert!(s.contains("about\n2.00 s per sample"), "{s}");
        // One extra element after removing everything: the leak goal fails.
        assert!(
            s.contains("1 extra and 0 missing. Goal: **not met**."),
            "{s}"
        );
        assert!(s.contains("- inet pol_red4: 1 extra"), "{s}");
        assert!(s.contains("`cordon status` listed 2 containers"), "{s}");
        assert!(
            s.contains("first 10.0 MB, last\n11.0 MB, max 12.0 MB"),
            "{s}"
        );
        assert!(
            s.contains("the 1 batches that changed elements (up to 4 events"),
            "{s}"
        );
        assert!(s.contains("p50 3.0 ms"), "{s}");
        assert!(s.contains("daemon's log: 1.\n\nFirst warnings:"), "{s}");
    }
}
