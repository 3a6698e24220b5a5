//! `cordon-bench daemon-scale [N [RUNS]]`: the daemon's engine at N
//! synthetic containers (default 10,000), synced into a throw-away network
//! namespace, then, each against a baseline measured in the same process:
//!
//! * **reconcile CPU**: the periodic reconcile when nothing was committed
//!   since the last one (`Engine::reconcile_if_committed`), and a whole
//!   reconcile (`Engine::reconcile`: the kernel's tables read over netlink
//!   and compared, what runs after any commit); CPU time of this process
//!   and of the children it waited for (`getrusage`, `RUSAGE_SELF` +
//!   `RUSAGE_CHILDREN`), the kernel's work for the dumps included. Baseline: one `nft list tables`
//!   in the same namespace, the floor of any check that asks `nft`.
//! * **after a foreign commit**: the targeted repair of one element
//!   deleted by someone else (`nft delete element`; only its set is read,
//!   `Engine::repair_reported`), and the periodic reconcile after a commit
//!   to another table (`nft add table inet otherN`; the nftables monitor
//!   accounts for it, nothing is compared); CPU as above, the `nft`
//!   process that made the commit not included. The targeted repair
//!   includes ending the tracked connections the policy does not allow,
//!   as every repair does; that step alone is measured too.
//! * **status wall time**: what the daemon does for `cordon status` (both
//!   tables read over netlink, the status built, serialised as the admin socket sends
//!   it, read back and rendered as the CLI does). Baseline: the same
//!   `nft list tables`.
//! * **memory**: this process's VmRSS and VmHWM before the state was built
//!   (the baseline) and after the first sync and the measurements.
//!
//! Prints one JSON object; medians over RUNS (default 3) repetitions.

use std::time::{Duration, Instant};

use cordon_daemon::engine::{Engine, Outcome};
use cordon_dataplane::Nft;
use cordon_ruleset::nft::Family;
use cordon_ruleset::TABLE;

use crate::{inventory, median, ms, policy, Ns};

/// CPU time (user + system) of this process and its waited-for children.
fn cpu() -> Duration {
    let get = |who| {
        // SAFETY: rusage is plain data (all zeroes is a valid value), and
        // getrusage writes into the one we own.
        let u = unsafe {
            let mut u: libc::rusage = std::mem::zeroed();
            libc::getrusage(who, &mut u);
            u
        };
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        tv(u.ru_utime) + tv(u.ru_stime)
    };
    get(libc::RUSAGE_SELF) + get(libc::RUSAGE_CHILDREN)
}

/// VmRSS and VmHWM of this process, in kB.
fn mem_kb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU and wall time of `f`, in ms.
fn measure<T>(f: impl FnOnce() -> T) -> (f64, f64, T) {
    let (c0, w0) = (cpu(), Instant::now());
    let out = f();
    (ms(cpu() - c0), ms(w0.elapsed()), out)
}

/// What the daemon answers `cordon status` with, and what the CLI does
/// with it.
fn status(engine: &Engine, nft: &Nft) -> usize {
    let keys = cordon_daemon::status::keys;
    let inet = nft.read_table(Family::Inet, TABLE, &keys).ok().flatten();
    let bridge = nft.read_table(Family::Bridge, TABLE, &keys).ok().flatten();
    let assignments = engine
        .compiled()
        .map(|c| c.assignments.clone())
        .unwrap_or_default();
    let mut s =
        cordon_daemon::status::build("daemon", &assignments, inet.as_ref(), bridge.as_ref());
    s.daemon = Some(engine.stats.clone());
    let wire = serde_json::to_vec(&s).expect("status serialises");
    let back: cordon_daemon::status::Status =
        serde_json::from_slice(&wire).expect("status reads back");
    cordon_daemon::status::render_text(&back).len()
}

/// `cordon-bench daemon-scale [N [RUNS]]`.
pub fn command(n: usize, runs: usize) {
    // As the daemon does at its start.
    cordon_daemon::memory::configure();
    let (rss0, hwm0) = mem_kb();
    let ns = Ns::new("cb-scale");
    let nft = Nft::in_netns(&ns.0);
    let root = std::env::temp_dir().join(format!("cordon-bench-scale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("state dir");
    let mut inv = inventory(n, None);
    inv.containers
        .sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    let mut engine = Engine::new(
        policy(),
        Nft::in_netns(&ns.0),
        cordon_dataplane::StateDir::at(&root),
    );
    // The nftables monitor, subscribed before the first sync as in the
    // daemon.
    let (watched, _wake) = cordon_daemon::watch::start(&nft).expect("nftables monitor");
    engine.follow(watched.clone());
    engine.set_inventory(inv);
    let (_, first_ms, first) = measure(|| engine.sync().expect("first sync"));
    assert!(matches!(first, Outcome::Replaced(_)), "{first:?}");
    let (rss1, _) = mem_kb();
    let list_tables = || {
        let ok = std::process::Command::new("ip")
            .args(["netns", "exec", &ns.0, "nft", "list", "tables"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("nft")
            .success();
        assert!(ok, "nft list tables");
    };
    let (mut base_cpu, mut base_wall) = (Vec::new(), Vec::new());
    let (mut quiet_cpu, mut full_cpu, mut full_wall) = (Vec::new(), Vec::new(), Vec::new());
    let mut status_wall = Vec::new();
    let mut rendered = 0;
    // The first whole reconcile records the generation the quiet ones check.
    let first_full = engine.reconcile().expect("reconcile");
    assert_eq!(
        first_full,
        Outcome::Unchanged,
        "the kernel holds the install"
    );
    for _ in 0..runs {
        let (c, w, ()) = measure(list_tables);
        base_cpu.push(c);
        base_wall.push(w);
        let (c, _, out) = measure(|| engine.reconcile_if_committed().expect("reconcile"));
        assert_eq!(out, Outcome::Unchanged);
        quiet_cpu.push(c);
        let (c, w, out) = measure(|| engine.reconcile().expect("reconcile"));
        assert_eq!(out, Outcome::Unchanged);
        full_cpu.push(c);
        full_wall.push(w);
        let (_, w, len) = measure(|| status(&engine, &nft));
        status_wall.push(w);
        rendered = len;
    }
    // A foreign commit seen by the monitor: `nft` in the namespace, then
    // the monitor caught up with the generation it made.
    let foreign = |args: &[&str]| {
        let ok = std::process::Command::new("ip")
            .args(["netns", "exec", &ns.0, "nft"])
            .args(args)
            .status()
            .expect("nft")
            .success();
        assert!(ok, "nft {args:?}");
        let g = nft.generation().expect("generation");
        assert!(
            watched.wait_for(g, Duration::from_secs(10)),
            "the monitor saw generation {g}"
        );
    };
    let (mut targeted_cpu, mut other_cpu) = (Vec::new(), Vec::new());
    for i in 0..runs {
        // One element deleted by someone else: only its set is read.
        let addr = format!("{{ 10.99.1.{} }}", 3 + i);
        foreign(&["delete", "element", "inet", TABLE, "ingress4", &addr]);
        let before = engine.stats.clone();
        let (c, _, out) = measure(|| engine.repair_reported().expect("targeted repair"));
        assert_eq!(out, Outcome::Elements(1), "the deleted element is back");
        assert_eq!(engine.stats.targeted, before.targeted + 1, "targeted");
        assert_eq!(engine.stats.whole, before.whole, "nothing read whole");
        targeted_cpu.push(c);
        // A commit to another table: the periodic check compares nothing.
        foreign(&["add", "table", "inet", &format!("other{i}")]);
        let before = engine.stats.clone();
        let (c, _, out) = measure(|| engine.reconcile_if_committed().expect("reconcile"));
        assert_eq!(out, Outcome::Unchanged);
        assert_eq!(engine.stats.accounted, before.accounted + 1, "accounted");
        assert_eq!(engine.stats.whole, before.whole, "nothing read whole");
        other_cpu.push(c);
    }
    // Of the targeted repair, what ending the disallowed connections
    // costs alone (every repair does it; design.md, "Ending what a repair
    // finds open").
    let mut end_cpu = Vec::new();
    for _ in 0..runs {
        let (c, _, r) = measure(|| {
            cordon_daemon::repair::end_disallowed_assigned(
                engine.policy(),
                engine.inventory(),
                &Default::default(),
                engine.compiled().map(|c| c.assignments.as_slice()),
                &nft,
            )
        });
        r.expect("end_disallowed");
        end_cpu.push(c);
    }
    // Control: a foreign commit is noticed by the periodic reconcile and
    // repaired (an element deleted by hand).
    foreign(&[
        "delete",
        "element",
        "inet",
        TABLE,
        "ingress4",
        "{ 10.99.1.3 }",
    ]);
    let repaired = engine.reconcile_if_committed().expect("reconcile");
    assert!(
        matches!(repaired, Outcome::Elements(1)),
        "a deleted element is repaired: {repaired:?}"
    );
    let (rss2, hwm2) = mem_kb();
    drop(engine);
    let _ = std::fs::remove_dir_all(&root);
    println!(
        "{}",
        serde_json::json!({
            "containers": n,
            "runs": runs,
            "first_sync_ms": first_ms,
            "baseline_nft_list_tables_cpu_ms": median(base_cpu),
            "baseline_nft_list_tables_wall_ms": median(base_wall),
            "reconcile_quiet_cpu_ms": median(quiet_cpu),
            "reconcile_full_cpu_ms": median(full_cpu),
            "reconcile_full_wall_ms": median(full_wall),
            "reconcile_targeted_cpu_ms": median(targeted_cpu),
            "reconcile_targeted_end_disallowed_cpu_ms": median(end_cpu),
            "reconcile_other_table_cpu_ms": median(other_cpu),
            "status_wall_ms": median(status_wall),
            "status_text_bytes": rendered,
            "control_repaired": format!("{repaired:?}"),
            "rss_baseline_kb": rss0,
            "hwm_baseline_kb": hwm0,
            "rss_after_sync_kb": rss1,
            "rss_end_kb": rss2,
            "hwm_end_kb": hwm2,
        })
    );
}
