//! The engine following the nftables monitor, against real nftables in a
//! throw-away network namespace per test: a foreign element deletion is
//! repaired by reading only its set, a structural change still by the
//! whole reconcile, and a commit to another table costs no comparison.
//!
//! Needs root and nft; without them each test prints one `skipped:` line,
//! except under CI (CI=true), where that is a failure.

#[macro_use]
mod support;

use std::sync::Arc;
use std::time::Duration;

use cordon_daemon::engine::{Engine, Outcome, Stats, SAFETY_EVERY};
use cordon_daemon::watch::Watched;
use cordon_dataplane::{Nft, StateDir};
use cordon_inventory::Inventory;
use support::Ns;

fn policy() -> cordon_policy::PolicyFile {
    cordon_policy::parse(
        "t.yaml",
        r#"
version: 1
sets:
  office: [198.18.0.0/26]
policies:
  - name: sftp
    select: { label: { app: sftp } }
    ingress:
      - from: [office]
        ports: [22/tcp]
    egress: []
"#,
    )
    .expect("test policy parses")
}

fn inventory(n: usize) -> Inventory {
    support::lab_inventory(77, n)
}

/// An engine with 4 containers installed in `ns`, following the monitor
/// (subscribed before the first sync, as the daemon does), with one whole
/// reconcile behind it.
fn engine(ns: &Ns, state: &tempfile::TempDir) -> (Engine, Arc<Watched>, Nft) {
    let nft = Nft::in_netns(&ns.0);
    let (watched, wake) = cordon_daemon::watch::start(&nft).expect("monitor");
    // The wake-ups are not needed: the tests call the engine themselves.
    std::mem::forget(wake);
    let mut e = Engine::new(policy(), Nft::in_netns(&ns.0), StateDir::at(state.path()));
    e.follow(watched.clone());
    e.set_inventory(inventory(4));
    assert!(matches!(e.sync().unwrap(), Outcome::Replaced(_)));
    assert_eq!(e.reconcile().unwrap(), Outcome::Unchanged);
    // Our own commits are seen as ours: nothing waits to be repaired.
    settle(&nft, &watched);
    assert_eq!(e.repair_reported().unwrap(), Outcome::Unchanged);
    (e, watched, nft)
}

/// Waits until the monitor has processed the kernel's current generation.
fn settle(nft: &Nft, watched: &Watched) {
    let g = nft.generation().unwrap();
    assert!(
        watched.wait_for(g, Duration::from_secs(10)),
        "the monitor saw generation {g}"
    );
}

/// The counters that say which path ran.
fn paths(s: &Stats) -> (u64, u64, u64) {
    (s.targeted, s.whole, s.accounted)
}

#[test]
fn a_foreign_element_deletion_is_repaired_by_reading_only_its_set() {
    need_root_nft!();
    let ns = Ns::add("cdt");
    let state = tempfile::tempdir().unwrap();
    let (mut e, watched, nft) = engine(&ns, &state);
    assert!(ns
        .nft(&["list", "map", "inet", "cordon", "ingress4"])
        .contains("10.77.0.3"));
    ns.nft(&[
        "delete",
        "element",
        "inet",
        "cordon",
        "ingress4",
        "{ 10.77.0.3 }",
    ]);
    settle(&nft, &watched);
    // Positive control: it really is gone until the repair.
    let listed = ns.nft(&["list", "map", "inet", "cordon", "ingress4"]);
    assert!(!listed.contains("10.77.0.3"), "{listed}");
    assert!(watched.pending(), "the monitor reported the deletion");

    let (t, w, a) = paths(&e.stats);
    assert_eq!(e.repair_reported().unwrap(), Outcome::Elements(1));
    assert_eq!(
        paths(&e.stats),
        (t + 1, w, a),
        "the targeted path, not whole"
    );
    let listed = ns.nft(&["list", "map", "inet", "cordon", "ingress4"]);
    assert!(listed.contains("10.77.0.3"), "{listed}");

    // The repair was ours: the next periodic check compares nothing.
    settle(&nft, &watched);
    assert!(!watched.pending());
    assert_eq!(e.reconcile_if_committed().unwrap(), Outcome::Unchanged);
    assert_eq!(paths(&e.stats), (t + 1, w, a + 1));
}

#[test]
fn structural_foreign_changes_still_get_the_whole_reconcile() {
    need_root_nft!();
    let ns = Ns::add("cdt");
    let state = tempfile::tempdir().unwrap();
    let (mut e, watched, nft) = engine(&ns, &state);
    let chain = e
        .compiled()
        .unwrap()
        .ruleset
        .table(cordon_ruleset::nft::Family::Inet)
        .unwrap()
        .chains
        .iter()
        .find(|c| !c.rules.is_empty())
        .unwrap()
        .name
        .clone();
    let rules = |ns: &Ns| {
        ns.nft(&["-a", "list", "chain", "inet", "cordon", &chain])
            .lines()
            .filter(|l| l.contains("# handle") && !l.trim_start().starts_with("chain"))
            .count()
    };
    let before = rules(&ns);
    assert!(before > 0);

    // A flushed chain.
    ns.nft(&["flush", "chain", "inet", "cordon", &chain]);
    settle(&nft, &watched);
    assert_eq!(rules(&ns), 0, "the chain really is empty");
    let (t, w, a) = paths(&e.stats);
    assert!(matches!(e.repair_reported().unwrap(), Outcome::Replaced(_)));
    assert_eq!(paths(&e.stats), (t, w + 1, a), "the whole reconcile");
    assert_eq!(rules(&ns), before, "the chain is whole again");

    // A deleted table (its sets with it), together with an element change:
    // still structural.
    ns.nft(&["delete element inet cordon ingress4 { 10.77.0.3 }; delete table bridge cordon"]);
    settle(&nft, &watched);
    assert!(!ns.nft(&["list", "tables"]).contains("bridge cordon"));
    let (t, w, a) = paths(&e.stats);
    assert!(matches!(e.repair_reported().unwrap(), Outcome::Replaced(_)));
    assert_eq!(paths(&e.stats), (t, w + 1, a));
    assert!(ns.nft(&["list", "tables"]).contains("bridge cordon"));
    let listed = ns.nft(&["list", "map", "inet", "cordon", "ingress4"]);
    assert!(listed.contains("10.77.0.3"), "{listed}");
}

#[test]
fn a_commit_to_another_table_costs_no_comparison() {
    need_root_nft!();
    let ns = Ns::add("cdt");
    let state = tempfile::tempdir().unwrap();
    let (mut e, watched, nft) = engine(&ns, &state);
    let g0 = nft.generation().unwrap();
    ns.nft(&["add", "table", "inet", "other"]);
    settle(&nft, &watched);
    assert_ne!(nft.generation().unwrap(), g0, "the generation moved");
    assert!(!watched.pending(), "nothing of cordon's was touched");
    let (t, w, a) = paths(&e.stats);
    assert_eq!(e.reconcile_if_committed().unwrap(), Outcome::Unchanged);
    assert_eq!(paths(&e.stats), (t, w, a + 1), "nothing compared");

    // Positive control: with the monitor stopped, the same commit makes the
    // periodic check compare whole, as without a monitor.
    ns.nft(&["add", "table", "inet", "other2"]);
    settle(&nft, &watched);
    watched.stop();
    assert_eq!(e.reconcile_if_committed().unwrap(), Outcome::Unchanged);
    assert_eq!(paths(&e.stats), (t, w + 1, a + 1), "compared whole");
    ns.nft(&["add", "table", "inet", "other3"]);
    assert_eq!(e.reconcile_if_committed().unwrap(), Outcome::Unchanged);
    assert_eq!(paths(&e.stats), (t, w + 2, a + 1), "and every time after");
}

#[test]
fn the_safety_net_compares_whole_every_so_many_periods() {
    need_root_nft!();
    let ns = Ns::add("cdt");
    let state = tempfile::tempdir().unwrap();
    let (mut e, watched, nft) = engine(&ns, &state);
    let (t, w, a) = paths(&e.stats);
    for i in 0..SAFETY_EVERY {
        ns.nft(&["add", "table", "inet", &format!("other{i}")]);
        settle(&nft, &watched);
        assert_eq!(e.reconcile_if_committed().unwrap(), Outcome::Unchanged);
    }
    let n = u64::from(SAFETY_EVERY);
    assert_eq!(paths(&e.stats), (t, w, a + n));
    ns.nft(&["add", "table", "inet", "last"]);
    settle(&nft, &watched);
    assert_eq!(e.reconcile_if_committed().unwrap(), Outcome::Unchanged);
    assert_eq!(paths(&e.stats), (t, w + 1, a + n), "the safety net");
    // With no commit since, nothing is compared (the generation is the one
    // the whole comparison verified).
    assert_eq!(e.reconcile_if_committed().unwrap(), Outcome::Unchanged);
    assert_eq!(paths(&e.stats), (t, w + 1, a + n));
}
