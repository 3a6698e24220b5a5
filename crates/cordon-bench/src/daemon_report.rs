//! The "Daemon" section of docs/benchmarks.md: policy live after a start,
//! against the floor of a bare `nft add element`, and the daemon's memory.
//! `scripts/bench-daemon` measures; this computes and writes.

use std::collections::HashMap;

use crate::facts::{mb, Results};
use crate::stats::{met, thousands, Summary};

/// The goal for a container's policy to be live, p99, in µs.
const LIVE_GOAL_US: f64 = 20_000.0;
/// The goal for the daemon's memory with 1,000 containers, in kB.
const MEMORY_GOAL_KB: f64 = 30.0 * 1024.0;

fn summary(v: &[f64], what: &str) -> Result<Summary, String> {
    Summary::of(v).ok_or_else(|| format!("no samples of {what}"))
}

/// Docker's start event of each container → `policy live`, µs; from
/// `starts.txt` (`id lag handled events live_ns run_us`) and
/// `start_events.txt` (`id time_nano`, first one counts).
fn from_start_event(starts: &str, events: &str) -> Vec<f64> {
    let mut ev: HashMap<&str, i64> = HashMap::new();
    for l in events.lines() {
        let mut w = l.split_whitespace();
        if let (Some(id), Some(t)) = (w.next(), w.next().and_then(|t| t.parse().ok())) {
            ev.entry(id).or_insert(t);
        }
    }
    starts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let live: i64 = f.get(4)?.parse().ok()?;
            Some((live - ev.get(f.first()?)?) as f64 / 1000.0)
        })
        .collect()
}

/// `cordon-bench daemon-report DIR`: the "Daemon" section, from DIR's
/// `facts`, `starts.txt`, `start_events.txt`, `nft.txt` and `memory.json`.
pub fn command(dir: &str) -> Result<(), String> {
    print!("{}", section(&Results::open(dir)?)?);
    Ok(())
}

fn section(r: &Results) -> Result<String, String> {
    let lag = summary(&r.column("starts.txt", 1)?, "lag_us")?;
    let handled = summary(&r.column("starts.txt", 2)?, "handled_us")?;
    let events = r.column("starts.txt", 3)?;
    let run = summary(&r.column("starts.txt", 5)?, "docker run")?;
    let fs = summary(
        &from_start_event(&r.text("starts.txt")?, &r.text("start_events.txt")?),
        "start events",
    )?;
    let nft = summary(&r.column("nft.txt", 0)?, "nft add element")?;
    let n = lag.n;
    let multi = events.iter().filter(|e| **e > 1.0).count();
    let missing = r.num("missing")?;
    let mem = r.json("memory.json")?;
    let kb = |k: &str| {
        mem[k]
            .as_f64()
            .ok_or_else(|| format!("memory.json: no `{k}`"))
    };
    let during: Vec<f64> = mem["rss_during_updates_kb"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    let (m_sync, m_upd) = (kb("rss_after_sync_kb")?, kb("rss_after_updates_kb")?);
    let first_fifth = during.first().copied().unwrap_or(m_sync);
    let growth = m_upd - first_fifth;
    let trend = if growth <= 0.1 * first_fifth {
        format!(
            "flat after the first fifth ({:+.1} MB from there to the end)",
            growth / 1024.0
        )
    } else {
        format!(
            "still growing after the first fifth ({:+.1} MB from there to the end)",
            growth / 1024.0
        )
    };
    let m_max = during.iter().copied().fold(m_sync.max(m_upd), f64::max);
    let during_mb = during.iter().map(|v| mb(*v)).collect::<Vec<_>>().join(", ");
    let control = if missing == 0.0 {
        format!("Control: all {n} addresses were in `egress4` afterwards.")
    } else {
        format!("Control failed: {missing} of {n} addresses were missing from `egress4`.")
    };
    let ms = |s: Summary| s.scaled(1000.0);
    let mem_n: u64 = r.fact("mem_n").unwrap_or("1000").parse().unwrap_or(1000);
    Ok(format!(
        r#"## Daemon

Written by `scripts/bench-daemon` on {date} at commit {commit} — {machine}.
Command: `scripts/bench-daemon` (as root; takes the lab lock). {build}
Load average when the starts began: {load} (other work on the host shares the 2 cores).

**Policy live after a start.** `cordon daemon` on the embedded default; {n}
containers of the lab image started one at a time on a user-defined network
(`docker run -d`), each waited for until the daemon logged the batch that
installed its elements. Figures in ms, p50 / p99 / max over the {n} starts:

| measure | p50 | p99 | max |
|---|---:|---:|---:|
| `lag_us` as the daemon logs it (Docker's `timeNano` of the batch's first event → installed) | {lag_row} |
| `handled_us` (event received → installed) | {hd_row} |
| Docker's `start` event → installed (negative: before it) | {fs_row} |
| baseline: one bare `nft add element` (process spawn, one set element, {nft_n} runs) | {nft_row} |
| for scale: `docker run -d` wall time | {run_row} |

Goal, p99 < 20 ms: **{goal_lat}** on the logged `lag_us` ({lag99:.1} ms);
from Docker's `start` event: **{goal_fs}** ({fs99:.1} ms).
p99 against the bare `nft add element` p99: {ratio:.1}× (logged lag), {ratio_fs:.1}× (from `start`).
The baseline is the floor of any daemon that hands the kernel one
element through the `nft` binary; cordon changes about 9 elements per
container in one transaction, after inspecting the container through the
Docker API and finding its veth. The logged lag runs from the
first event of the batch that installed the container; when that is
Docker's network `connect`, which Docker emits before it starts the
container, it includes part of Docker's own start, which the row from the
`start` event leaves out. {multi} of the {n} installing batches held more
than one event.
{control}

**Memory.** VmRSS of the daemon (the real one, above): {idle} MB idle, {after} MB
with {n} containers. With {mem_n_words} containers (`cordon-bench daemon-memory {mem_n} {mem_upd}`:
the daemon's `Engine` with a synthetic inventory of {mem_n_words} dual-stack
containers over three policies, {elems} set elements, synced into nftables in a
throw-away network namespace, then {nupd} element updates as containers
leave and return, each one synced on its own):

| | VmRSS (MB) |
|---|---:|
| baseline: the same process before building the state | {m_base} |
| after the first sync (installed whole in {first_ms:.1} ms) | {m_sync} |
| after {nupd} element updates (median {upd_ms:.1} ms each) | {m_upd} |

Goal, < 30 MB with 1,000 containers: **{goal_mem}** ({m_max} MB at most{mem_caveat}).
VmRSS after each fifth of the updates (MB): {during_mb}, then {m_upd}:
{trend}. The bench
process holds no tokio runtime, Docker client or admin socket; the real
daemon's idle figure above is their cost.
"#,
        date = r.fact("date")?,
        commit = r.fact("commit")?,
        machine = r.fact("machine")?,
        load = r.fact("load_start")?,
        build = match r.fact("build") {
            Ok("debug") => "Debug build (`BENCH_BUILD=debug`, a smoke run: the figures are not representative).",
            _ => "Release build.",
        },
        lag_row = ms(lag).row(),
        hd_row = ms(handled).row(),
        fs_row = ms(fs).row(),
        nft_n = nft.n,
        nft_row = ms(nft).row(),
        run_row = ms(run).row(),
        goal_lat = met(lag.p99 < LIVE_GOAL_US),
        goal_fs = met(fs.p99 < LIVE_GOAL_US),
        lag99 = lag.p99 / 1000.0,
        fs99 = fs.p99 / 1000.0,
        ratio = lag.p99 / nft.p99,
        ratio_fs = fs.p99 / nft.p99,
        idle = mb(r.num("rss_idle_kb")?),
        after = mb(r.num("rss_after_kb")?),
        elems = mem["set_elements"],
        nupd = mem["element_updates"],
        m_base = mb(kb("rss_baseline_kb")?),
        first_ms = kb("first_sync_ms")?,
        m_sync = mb(m_sync),
        upd_ms = kb("element_update_median_ms")?,
        m_upd = mb(m_upd),
        goal_mem = met(m_max < MEMORY_GOAL_KB),
        mem_upd = r.fact("mem_updates").unwrap_or("2000"),
        mem_n_words = thousands(mem_n),
        mem_caveat = if mem_n == 1000 {
            String::new()
        } else {
            format!(", measured with {} containers", thousands(mem_n))
        },
        m_max = mb(m_max),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_events_pair_with_the_live_batches() {
        let starts =
            "aa 5000 4000 1 1000500000 300000\nbb 7000 6000 2 2000000000 310000\ncc 1 1 1 5 5\n";
        let events = "aa 1000000000\nbb 2000100000\nbb 1\n";
        // aa: live 500 µs after start; bb: 100 µs before; cc: no event.
        assert_eq!(from_start_event(starts, events), vec![500.0, -100.0]);
    }

    #[test]
    fn writes_the_section_from_a_work_directory() {
        let dir = std::env::temp_dir().join(format!("cordon-bench-dr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let w = |n: &str, t: &str| std::fs::write(dir.join(n), t).unwrap();
        w("facts", "date=2026-11-30\ncommit=abc\nmachine=2 cores\nload_start=0.1 0.2 0.3\nmissing=0\nrss_idle_kb=10240\nrss_after_kb=12288\n");
        w(
            "starts.txt",
            "aa 5000 4000 1 1000500000 300000\nbb 25000 6000 2 2000000000 310000\n",
        );
        w("start_events.txt", "aa 1000000000\nbb 2000100000\n");
        w("nft.txt", "2000\n3000\n");
        w(
            "memory.json",
            r#"{"rss_baseline_kb":4096,"rss_after_sync_kb":8192,"rss_after_updates_kb":8300,"rss_during_updates_kb":[8200,8250],"set_elements":9000,"element_updates":2000,"first_sync_ms":123.45,"element_update_median_ms":1.26}"#,
        );
        let s = section(&Results::open(dir.to_str().unwrap()).unwrap()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(s.starts_with("## Daemon\n"), "{s}");
        assert!(s.contains("| 5.0 | 25.0 | 25.0 |"), "lag row: {s}");
        assert!(
            s.contains("**not met** on the logged `lag_us` (25.0 ms)"),
            "{s}"
        );
        assert!(
            s.contains("from Docker's `start` event: **met** (0.5 ms)"),
            "{s}"
        );
        assert!(s.contains("8.3× (logged lag)"), "{s}");
        assert!(s.contains("1 of the 2 installing batches"), "{s}");
        assert!(s.contains("Control: all 2 addresses"), "{s}");
        assert!(s.contains("10.0 MB idle, 12.0 MB"), "{s}");
        assert!(s.contains("in 123.5 ms"), "{s}");
        assert!(s.contains("**met** (8.1 MB at most)"), "{s}");
        assert!(
            s.contains("With 1,000 containers (`cordon-bench daemon-memory 1000 2000`"),
            "{s}"
        );
        assert!(
            s.contains("8.0, 8.1, then 8.1:\nflat after the first fifth (+0.1 MB"),
            "{s}"
        );
    }
}
