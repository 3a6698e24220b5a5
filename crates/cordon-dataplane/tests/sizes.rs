//! Declared set sizes against real nftables, in a network namespace of its
//! own: an install declares them (also when its sets are filled over
//! netlink), both readers of the kernel read them back, element updates
//! fill a set up to its size and the kernel refuses one more, and a
//! replacement declares the larger size.
//!
//! Needs root and nft; without them each test prints one `skipped:` line,
//! except under CI (CI=true), where that is a failure.

use cordon_compiler::{compile, SetOverrides};
use cordon_dataplane::Nft;
use cordon_inventory::Inventory;
use cordon_ruleset::diff::{self, SetChange, Update};
use cordon_ruleset::nft::{Element, Family, Ruleset, Value};
use cordon_ruleset::{names, size, TABLE};

#[macro_use]
mod support;

use support::Ns;

fn policy() -> cordon_policy::PolicyFile {
    cordon_policy::parse(
        "t.yaml",
        "version: 1\ndefault:\n  ingress:\n    - from: [host]\n  egress: []\n",
    )
    .expect("policy")
}

/// Containers 0..n on `br-lab` in 10.78.0.0/16.
fn inventory(n: usize) -> Inventory {
    support::lab_inventory(78, n, |_| true)
}

/// The size `nft list set` shows for `bridge cordon NAME`, if any.
fn listed_size(ns: &Ns, name: &str) -> Option<u32> {
    let out = ns.sh(&["nft", "list", "set", "bridge", TABLE, name]);
    out.lines()
        .find_map(|l| l.trim().strip_prefix("size "))
        .map(|n| n.trim().parse().expect("a size"))
}

/// `inet cordon`'s set `name` in `r`.
fn set_mut<'a>(r: &'a mut Ruleset, name: &str) -> &'a mut cordon_ruleset::nft::Set {
    r.tables
        .iter_mut()
        .find(|t| t.family == Family::Bridge)
        .and_then(|t| t.sets.iter_mut().find(|s| s.name == name))
        .expect("the set")
}

fn addr(i: u32) -> Element {
    Element {
        key: cordon_ruleset::nft::smallvec![Value::Net(
            format!("10.79.{}.{}/32", i / 250, i % 250 + 1)
                .parse()
                .unwrap(),
        )],
        verdict: None,
    }
}

/// An install filled over netlink declares every plain set's size; both
/// readers report it; element updates fill the bridge table's `known4` (one element per container
/// address) exactly up to its size
/// and the kernel refuses one element more (the cap cordon must never
/// reach); a replacement declares the larger size.
#[test]
fn sizes_are_declared_read_back_filled_up_to_and_grown_by_a_replacement() {
    need_root_nft!();
    let ns = Ns::add("csz");
    // Every set over netlink, whatever the size.
    let nft = Nft::in_netns(&ns.0).staging_from(0);
    let installed = compile(&policy(), &inventory(10), &SetOverrides::default()).ruleset;
    nft.install(&installed).expect("install");
    let known = names::known(4);
    assert_eq!(listed_size(&ns, &known), Some(384));
    for t in &installed.tables {
        for s in &t.sets {
            assert_eq!(s.size, size::sized(s).then_some(384), "{}", s.name);
        }
    }
    let seen = nft.observe(&installed).expect("observe");
    let by_nft = nft.observe_listing(&installed).expect("listing");
    let sizes = |o: &cordon_ruleset::diff::Observed| {
        o.tables
            .iter()
            .map(|(f, _, t)| (*f, t.sizes.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        sizes(&seen),
        sizes(&by_nft),
        "netlink and nft read one size"
    );
    let bridge = &seen
        .tables
        .iter()
        .find(|t| t.0 == Family::Bridge)
        .unwrap()
        .2;
    assert_eq!(bridge.sizes.get(&known), Some(&384));
    assert_eq!(diff::against_kernel(&seen, &installed), Update::None);

    // Up to the size through the element update path (netlink).
    let mut full = installed.clone();
    let have = set_mut(&mut full, &known).elements.len() as u32;
    set_mut(&mut full, &known)
        .elements
        .extend((0..384 - have).map(addr));
    let update = diff::between(&installed, &full);
    assert!(matches!(update, Update::Elements(_)), "{update:?}");
    nft.apply_update(&update, &full).expect("up to the size");
    let seen = nft.observe(&full).expect("observe");
    assert_eq!(diff::against_kernel(&seen, &full), Update::None);

    // The cap is real: one element more is refused by the kernel, and the
    // diff never asks for it.
    let one_more = Update::Elements(vec![SetChange {
        family: Family::Bridge,
        table: TABLE.into(),
        set: known.clone(),
        delete: vec![],
        add: vec![addr(1000)],
    }]);
    assert!(nft.apply_update(&one_more, &full).is_err());
    let mut over = full.clone();
    set_mut(&mut over, &known).elements.push(addr(1000));
    let Update::Replace(why) = diff::between(&full, &over) else {
        panic!("385 elements do not fit in 384");
    };
    assert!(why.contains(&known), "{why}");
    let seen = nft.observe(&over).expect("observe");
    assert!(matches!(
        diff::against_kernel(&seen, &over),
        Update::Replace(_)
    ));

    // The replacement declares it anew at its new capacity.
    size::declare(&mut over);
    nft.apply_update(&Update::Replace(why), &over)
        .expect("replacement");
    assert_eq!(listed_size(&ns, &known), Some(size::capacity(385)));
    let seen = nft.observe(&over).expect("observe");
    assert_eq!(diff::against_kernel(&seen, &over), Update::None);
}

/// The fill's kernel time with and without declared sizes, at 10,000
/// containers: installs in steps into fresh namespaces, alternating, each
/// after the previous namespace's teardown has settled (the kernel frees a
/// deleted namespace's elements in the background, and that time can land
/// on any thread). Prints the figures; asserts nothing about time. Slow:
/// run with `--ignored --nocapture`.
#[test]
#[ignore]
fn fill_kernel_time_with_and_without_sizes() {
    need_root_nft!();
    let sized = compile(&policy(), &inventory(10_000), &SetOverrides::default()).ruleset;
    let mut bare = sized.clone();
    for t in &mut bare.tables {
        for s in &mut t.sets {
            s.size = None;
        }
    }
    for round in 0..5 {
        for (what, r) in [("without sizes", &bare), ("with sizes", &sized)] {
            std::thread::sleep(std::time::Duration::from_secs(5));
            let ns = Ns::add("csf");
            let nft = Nft::in_netns(&ns.0).staging_from(0);
            let steps = nft.install_staged(r, &[]).expect("install");
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "round {round}, {what}: {} elements, fill {:.1} ms wall, {:.1} ms kernel, {:.2} µs kernel an element",
                steps.filled,
                steps.fill.as_secs_f64() * 1e3,
                steps.fill_system.as_secs_f64() * 1e3,
                steps.fill_system.as_secs_f64() * 1e6 / steps.filled.max(1) as f64
            );
        }
    }
}
