//! The engine and declared set sizes, against real nftables in a network
//! namespace of its own: containers arriving past a set's size cause one
//! replacement with larger sizes and no error; containers leaving and
//! coming back within the installed size are element updates that keep it;
//! the engine's idea of the installed sizes is always the kernel's.
//!
//! Needs root and nft; without them the test prints one `skipped:` line,
//! except under CI (CI=true), where that is a failure.

#[macro_use]
mod support;

use cordon_daemon::engine::{Engine, Outcome};
use cordon_dataplane::{Nft, StateDir};
use cordon_inventory::{Container, Inventory};
use cordon_ruleset::{names, size, TABLE};
use support::Ns;

/// The size `nft list map` shows for `inet cordon NAME`.
fn listed_size(ns: &Ns, name: &str) -> Option<u32> {
    ns.nft(&["list", "map", "inet", TABLE, name])
        .lines()
        .find_map(|l| l.trim().strip_prefix("size ").map(|n| n.parse().unwrap()))
}

fn container(i: usize) -> Container {
    support::lab_container(76, i)
}

fn inventory(n: usize) -> Inventory {
    support::lab_inventory(76, n)
}

/// The sizes the engine holds as installed equal what the kernel reports.
fn assert_engine_knows_the_kernels_sizes(engine: &Engine, nft: &Nft) {
    let installed = &engine.compiled().expect("compiled").ruleset;
    let seen = nft.observe(installed).expect("observe");
    for t in &installed.tables {
        let (_, _, o) = seen
            .tables
            .iter()
            .find(|(f, n, _)| *f == t.family && *n == t.name)
            .expect("table");
        for s in &t.sets {
            assert_eq!(s.size, o.sizes.get(&s.name).copied(), "set {}", s.name);
        }
    }
}

#[test]
fn growth_past_the_size_replaces_once_and_churn_within_it_does_not() {
    need_root_nft!();
    let ns = Ns::add("cds");
    let state = tempfile::tempdir().expect("state dir");
    let policy = cordon_policy::parse(
        "t.yaml",
        "version: 1\ndefault:\n  ingress:\n    - from: [host]\n  egress: []\n",
    )
    .expect("policy");
    let mut engine = Engine::new(policy, Nft::in_netns(&ns.0), StateDir::at(state.path()));
    let nft = Nft::in_netns(&ns.0);
    // One element per container (every known container has one).
    let known = names::Dispatch::Ingress.map(4);

    engine.set_inventory(inventory(10));
    assert!(matches!(
        engine.sync().expect("first sync"),
        Outcome::Replaced(_)
    ));
    assert_eq!(listed_size(&ns, &known), Some(384));

    // Containers arrive 25 at a time, from 10 to 410: ingress4 (one element
    // per container) outgrows 384 at 385 containers.
    let mut replaced = Vec::new();
    for n in (35..=410).step_by(25) {
        for i in n - 25..n {
            engine.put_container(&format!("{i:064x}"), Some(container(i)));
        }
        match engine
            .sync()
            .unwrap_or_else(|e| panic!("{n} containers: {e}"))
        {
            Outcome::Replaced(why) => replaced.push((n, why)),
            Outcome::Elements(_) => {}
            Outcome::Unchanged => panic!("{n} containers: nothing changed"),
        }
        assert_engine_knows_the_kernels_sizes(&engine, &nft);
    }
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    assert_eq!(replaced[0].0, 385, "{replaced:?}");
    assert!(
        replaced[0].1.contains("grows past its size"),
        "{replaced:?}"
    );
    assert_eq!(listed_size(&ns, &known), Some(size::capacity(385)));
    assert_eq!(engine.stats.replacements, 2);

    // Down to 250 containers (compiled alone: size 384) and back up to
    // 300, around the boundary: element updates only, the size installed
    // stays.
    for n in [250usize, 300, 250, 300] {
        let have = engine.inventory().containers.len();
        if n < have {
            for i in n..have {
                engine.remove_container(&format!("{i:064x}"));
            }
        } else {
            for i in have..n {
                engine.put_container(&format!("{i:064x}"), Some(container(i)));
            }
        }
        let outcome = engine.sync().expect("sync");
        assert!(matches!(outcome, Outcome::Elements(_)), "{n}: {outcome:?}");
        assert_eq!(listed_size(&ns, &known), Some(768));
        assert_engine_knows_the_kernels_sizes(&engine, &nft);
    }
    assert_eq!(engine.stats.replacements, 2);
    assert!(
        engine.stats.last_error.is_none(),
        "{:?}",
        engine.stats.last_error
    );

    // A restarted daemon compares with the kernel: 200 containers would be
    // compiled at 384, but the kernel's 768 holds them, and the engine
    // keeps 768 as installed, so growing to 700 needs no replacement.
    drop(engine);
    let mut engine = Engine::new(
        cordon_policy::parse(
            "t.yaml",
            "version: 1\ndefault:\n  ingress:\n    - from: [host]\n  egress: []\n",
        )
        .expect("policy"),
        Nft::in_netns(&ns.0),
        StateDir::at(state.path()),
    );
    engine.set_inventory(inventory(200));
    let outcome = engine.sync().expect("restart");
    assert!(matches!(outcome, Outcome::Elements(_)), "{outcome:?}");
    assert_engine_knows_the_kernels_sizes(&engine, &nft);
    engine.set_inventory(inventory(700));
    let outcome = engine.sync().expect("growth within 768");
    assert!(matches!(outcome, Outcome::Elements(_)), "{outcome:?}");
    assert_eq!(listed_size(&ns, &known), Some(768));
    assert_engine_knows_the_kernels_sizes(&engine, &nft);
    assert_eq!(engine.stats.replacements, 0);
}
