//! The install in steps (prepare inert sets, fill them over netlink, one
//! switch transaction) against real nftables, each test in a network
//! namespace of its own: no allowed packet is dropped on a first install
//! or a reinstall, the switch is atomic for every packet, and an install
//! refused or interrupted mid-way leaves the previous ruleset in force and
//! nothing the next install trips on.
//!
//! Needs root and nft; without them each test prints one `skipped:` line,
//! except under CI (CI=true), where that is a failure.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use cordon_compiler::{compile, SetOverrides};
use cordon_dataplane::Nft;
use cordon_inventory::Inventory;
use cordon_ruleset::inplace::{self, Present};
use cordon_ruleset::nft::{Chain, Field, Rhs, Rule, Ruleset, Stmt, Verdict};

#[macro_use]
mod support;

use support::{contents, Ns};

/// The containers the tests send to: X (container 0) and Y (container 1).
const X: &str = "10.77.0.2";
const Y: &str = "10.77.0.3";
/// Container 3: in every variant of the staged reinstalls, never `app: sftp`.
const Z: &str = "10.77.0.5";

/// A namespace with a bridge `br-lab` (10.77.255.1/16) and static
/// neighbours for the containers the tests send to.
fn lab_ns() -> Ns {
    let ns = Ns::add("cst");
    for cmd in [
        "ip link add br-lab type bridge",
        "ip addr add 10.77.255.1/16 dev br-lab",
        "ip link set br-lab up",
        "ip neigh add 10.77.0.2 lladdr 02:42:0a:4d:00:02 dev br-lab",
        "ip neigh add 10.77.0.3 lladdr 02:42:0a:4d:00:03 dev br-lab",
        "ip neigh add 10.77.0.5 lladdr 02:42:0a:4d:00:05 dev br-lab",
    ] {
        ns.sh(&cmd.split(' ').collect::<Vec<_>>());
    }
    ns
}

/// What this file does in a namespace beyond the shared [`Ns`].
trait InNs {
    /// Its nftables, installing in steps whatever the size.
    fn nft(&self) -> Nft;
    /// Moves the calling thread into this namespace.
    fn enter(&self);
}

impl InNs for Ns {
    fn nft(&self) -> Nft {
        Nft::in_netns(&self.0).staging_from(0)
    }
    fn enter(&self) {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(format!("/run/netns/{}", self.0)).unwrap();
        // SAFETY: setns on a descriptor we own; it moves only this thread.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns");
    }
}

/// The host may reach every container; containers may send nothing.
fn host_only() -> cordon_policy::PolicyFile {
    cordon_policy::parse(
        "t.yaml",
        "version: 1\ndefault:\n  ingress:\n    - from: [host]\n  egress: []\n",
    )
    .expect("policy")
}

/// [`host_only`] plus a policy with a named set and sets of its own: an
/// install of it over [`host_only`] has fresh sets to fill.
fn with_sftp() -> cordon_policy::PolicyFile {
    cordon_policy::parse(
        "t.yaml",
        r#"
version: 1
sets:
  office: [198.18.0.0/26, "2001:db8:77::/48"]
default:
  ingress:
    - from: [host]
  egress: []
policies:
  - name: sftp
    select: { label: { app: sftp } }
    ingress:
      - from: [host]
      - from: [office]
        ports: [22/tcp]
    egress: []
"#,
    )
    .expect("policy")
}

/// Containers 0..n on `br-lab` in 10.77.0.0/16, every other one `app: sftp`,
/// keeping only those `keep` accepts.
fn inventory(n: usize, keep: impl Fn(usize) -> bool) -> Inventory {
    support::lab_inventory(77, n, keep)
}

fn ruleset(p: &cordon_policy::PolicyFile, inv: &Inventory) -> Ruleset {
    compile(p, inv, &SetOverrides::default()).ruleset
}

/// Sends one UDP datagram from the namespace the thread is in: true when
/// it left, false when cordon's output hook dropped it (`EPERM`).
fn passes(sock: &std::net::UdpSocket, to: &str) -> bool {
    match sock.send_to(b"x", (to, 9999)) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => false,
        Err(e) => panic!("send: {e}"),
    }
}

/// Floods `to` from `ns` until `stop`: (sent, dropped).
fn flood(ns: &Ns, to: &str, stop: &AtomicBool) -> (u64, u64) {
    ns.enter();
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
    let (mut sent, mut dropped) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        if passes(&sock, to) {
            sent += 1;
        } else {
            dropped += 1;
        }
    }
    (sent, dropped)
}

/// Whether `to` passes from `ns` now.
fn passes_now(ns: &Ns, to: &str) -> bool {
    std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            let sock = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
            passes(&sock, to)
        })
        .join()
        .unwrap()
    })
}

/// A first install, with its sets filled over netlink before the base
/// chains exist, never drops a packet it allows: 20 first installs, each in
/// a fresh namespace under a flood to container X. The control: a ruleset
/// that lacks X (as a switch before the fill would be) drops the flood.
#[test]
fn first_installs_drop_no_allowed_packet() {
    need_root_nft!();
    let p = host_only();
    let big = ruleset(&p, &inventory(2_000, |_| true));
    let without_x = ruleset(&p, &inventory(2_000, |i| i != 0));
    let (mut total, mut installs) = (0, 0);
    for _ in 0..20 {
        let ns = lab_ns();
        let stop = AtomicBool::new(false);
        let (sent, dropped) = std::thread::scope(|s| {
            let f = s.spawn(|| flood(&ns, X, &stop));
            std::thread::sleep(std::time::Duration::from_millis(5));
            let steps = ns.nft().install_staged(&big, &[]).unwrap();
            assert!(steps.filled > 10_000, "filled over netlink: {steps:?}");
            std::thread::sleep(std::time::Duration::from_millis(5));
            stop.store(true, Ordering::Relaxed);
            f.join().unwrap()
        });
        assert_eq!(dropped, 0, "a first install dropped an allowed packet");
        assert!(passes_now(&ns, X) && !passes_now(&ns, "10.77.200.200"));
        total += sent;
        installs += 1;
    }
    eprintln!("{total} packets across {installs} first installs, none dropped");
    assert!(total > 10_000, "the flood ran: {total}");
    // Control: the same flood does see a drop when X is missing.
    let ns = lab_ns();
    ns.nft().install(&without_x).unwrap();
    assert!(!passes_now(&ns, X), "a drop shows as EPERM");
}

/// Reinstalls in steps under a flood to Z: the container elements change
/// every time (containers come and go, and the policy's own sets appear
/// and disappear, so some installs fill fresh sets over netlink), half of
/// them read the kernel and half trust the last install. None drops Z.
///
/// Z keeps its policy through every variant. A container whose policy
/// changes (X here, `app: sftp`, under `default` and `sftp` in turn) may
/// lose a packet of a new connection at the instant of the switch: a
/// packet that began in the old rules can meet its new map element, whose
/// chain's old rules are empty, and it falls to the fail-closed drop. It
/// is never passed unjudged.
#[test]
fn staged_reinstalls_drop_no_allowed_packet() {
    need_root_nft!();
    let ns = lab_ns();
    let nft = ns.nft();
    let variants = [
        ruleset(&host_only(), &inventory(300, |_| true)),
        ruleset(&with_sftp(), &inventory(300, |i| i % 3 != 1)),
        ruleset(&host_only(), &inventory(400, |i| i % 5 != 4)),
        ruleset(&with_sftp(), &inventory(200, |_| true)),
    ];
    nft.install(&variants[0]).unwrap();
    assert!(passes_now(&ns, Z) && !passes_now(&ns, "10.77.200.200"));
    let stop = AtomicBool::new(false);
    let (sent, dropped) = std::thread::scope(|s| {
        let f = s.spawn(|| flood(&ns, Z, &stop));
        for i in 1..=60 {
            let (prev, next) = (&variants[(i - 1) % 4], &variants[i % 4]);
            if i % 2 == 0 {
                nft.install(next).unwrap();
            } else {
                nft.install_over(next, prev).unwrap();
            }
        }
        stop.store(true, Ordering::Relaxed);
        f.join().unwrap()
    });
    eprintln!("{sent} packets across 60 staged reinstalls, {dropped} dropped");
    assert!(sent > 10_000, "the flood ran: {sent}");
    assert_eq!(dropped, 0, "no allowed packet dropped by a reinstall");
}

/// The switch is atomic: ruleset A lets the host reach X and not Y, B the
/// reverse (and B has fresh sets to fill). A thread probes X then Y in a
/// tight loop across 40 switches, done step by step with the inert steps
/// marked: no probe pair during the prepare transaction or the fill shows
/// anything but A's state or B's where the previous ruleset is; every
/// switch is one clean change of state. The same through `install` and
/// `install_over`. A reference in the same run: the same changes as one
/// transaction each. The control: the change made as two switches shows
/// pairs where neither passes by the hundred thousand; a pair in neither
/// state straddles a switch (see the comment at the last assertion).
#[test]
fn the_switch_is_atomic_for_every_packet() {
    static BOTH: AtomicUsize = AtomicUsize::new(0);
    // Which step the installing thread is in: INERT during the prepare
    // transaction and the netlink fill.
    static PHASE: AtomicUsize = AtomicUsize::new(0);
    static IN_INERT: AtomicUsize = AtomicUsize::new(0);
    const INERT: usize = 1;
    need_root_nft!();
    let ns = lab_ns();
    let nft = ns.nft();
    let a = ruleset(&host_only(), &inventory(500, |i| i != 1));
    let b = ruleset(&with_sftp(), &inventory(500, |i| i != 0));
    nft.install(&a).unwrap();
    assert!(passes_now(&ns, X) && !passes_now(&ns, Y), "A: X, not Y");
    nft.install_over(&b, &a).unwrap();
    assert!(!passes_now(&ns, X) && passes_now(&ns, Y), "B: Y, not X");

    // (pairs, pairs that were neither A's nor B's state, state changes).
    let probe = |switch: &dyn Fn(usize)| -> (u64, u64, u64, usize) {
        let stop = AtomicBool::new(false);
        let switches = 40;
        let (pairs, odd, changes) = std::thread::scope(|s| {
            let f = s.spawn(|| {
                ns.enter();
                let sock = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
                let (mut pairs, mut odd, mut changes, mut last) = (0, 0, 0, None);
                while !stop.load(Ordering::Relaxed) {
                    let state = (passes(&sock, X), passes(&sock, Y));
                    pairs += 1;
                    if state.0 == state.1 {
                        odd += 1;
                        if state.0 {
                            BOTH.fetch_add(1, Ordering::Relaxed);
                        }
                        // Read after the pair was sent: a pair sent during
                        // the switch never reads a step before it.
                        if PHASE.load(Ordering::Relaxed) == INERT {
                            IN_INERT.fetch_add(1, Ordering::Relaxed);
                        }
                    } else {
                        if last.is_some_and(|l| l != state) {
                            changes += 1;
                        }
                        last = Some(state);
                    }
                }
                (pairs, odd, changes)
            });
            for i in 0..switches {
                switch(i);
            }
            stop.store(true, Ordering::Relaxed);
            f.join().unwrap()
        });
        (pairs, odd, changes, switches)
    };
    // The steps of an install by hand, marking the inert ones, then the
    // product's install (over the last install, or reading the kernel).
    let by_steps = |i: usize| {
        let (prev, next) = if i.is_multiple_of(2) {
            (&b, &a)
        } else {
            (&a, &b)
        };
        let present: Vec<_> = prev
            .tables
            .iter()
            .map(|t| (t.family, t.name.clone(), Present::from_table(t)))
            .collect();
        let plan = inplace::staged(next, &present, &cordon_dataplane::elements::set_encodable);
        PHASE.store(INERT, Ordering::Relaxed);
        nft.run_text(plan.prepare.clone(), false).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                ns.enter();
                let sets: Vec<_> = plan
                    .fill
                    .iter()
                    .map(|&(ti, si)| {
                        let t = &next.tables[ti];
                        (t.family, t.name.as_str(), &t.sets[si])
                    })
                    .collect();
                cordon_dataplane::elements::fill(&sets).unwrap();
            })
            .join()
            .unwrap()
        });
        PHASE.store(0, Ordering::Relaxed);
        nft.run_text(plan.switch.clone(), false).unwrap();
    };
    let (pairs, odd, changes, switches) = probe(&by_steps);
    eprintln!(
        "by steps: {pairs} probe pairs across {switches} switches, {odd} in neither state ({} both passing, {} during the inert steps), {changes} state changes",
        BOTH.swap(0, Ordering::Relaxed),
        IN_INERT.load(Ordering::Relaxed),
    );
    assert!(pairs > 10_000, "the probes ran: {pairs}");
    assert_eq!(changes, switches as u64, "one clean change per switch");
    assert_eq!(
        IN_INERT.load(Ordering::Relaxed),
        0,
        "no packet sees anything of the next ruleset before the switch"
    );
    let (pairs, odd_p, changes, _) = probe(&|i| {
        let (prev, next) = if i.is_multiple_of(2) {
            (&b, &a)
        } else {
            (&a, &b)
        };
        if i % 4 < 2 {
            nft.install_over(next, prev).unwrap();
        } else {
            nft.install(next).unwrap();
        }
    });
    eprintln!(
        "install and install_over: {pairs} probe pairs, {odd_p} in neither state ({} both passing), {changes} state changes",
        BOTH.swap(0, Ordering::Relaxed)
    );
    assert_eq!(changes, switches as u64, "one clean change per switch");

    // Reference: the same changes as one transaction each, with every
    // element in it (the install before the steps).
    let (pairs_1, odd_1, changes_1, _) = probe(&|i| {
        let (prev, next) = if i.is_multiple_of(2) {
            (&b, &a)
        } else {
            (&a, &b)
        };
        let present: Vec<_> = prev
            .tables
            .iter()
            .map(|t| (t.family, t.name.clone(), Present::from_table(t)))
            .collect();
        nft.run_text(inplace::transaction_text(next, &present), false)
            .unwrap();
    });
    eprintln!(
        "one transaction: {pairs_1} probe pairs, {odd_1} in neither state ({} both passing), {changes_1} state changes",
        BOTH.swap(0, Ordering::Relaxed)
    );

    // Control: the same change as two switches, through a ruleset that
    // has neither X nor Y.
    let neither = ruleset(&host_only(), &inventory(500, |i| i > 1));
    let (pairs_2, odd_2, _, _) = probe(&|i| {
        let (prev, next) = if i.is_multiple_of(2) {
            (&b, &a)
        } else {
            (&a, &b)
        };
        nft.install_over(&neither, prev).unwrap();
        nft.install_over(next, &neither).unwrap();
    });
    eprintln!("two transactions: {pairs_2} probe pairs, {odd_2} in neither state");
    assert!(
        odd_2 > 1_000,
        "two transactions do show states that are neither (the test can see them): {odd_2}"
    );
    // The kernel flips rules and elements at one generation cursor, but a
    // packet reads it again at each set lookup: one whose walk straddles
    // the flip can see a mix, with one transaction too (the reference).
    // What is atomic is the switch transaction; the steps before it add no
    // window (checked above, packet by packet).
    assert!(
        odd * 100 < odd_2 && odd_p * 100 < odd_2,
        "the staged switch is atomic: {odd} and {odd_p} against {odd_1} for one transaction, {odd_2} for two"
    );
}

/// An install whose switch the kernel refuses leaves the previous ruleset
/// in force and deletes the sets and chains it had prepared; one killed
/// after its fill (no switch) leaves them inert, X still passing, and the
/// next install, over the last one or reading the kernel, ends where a
/// fresh install does.
#[test]
fn a_failed_install_leaves_the_old_ruleset_enforcing_and_is_cleaned_next_time() {
    need_root_nft!();
    let ns = lab_ns();
    let nft = ns.nft();
    let a = ruleset(&host_only(), &inventory(300, |i| i != 1));
    let b = ruleset(&with_sftp(), &inventory(300, |i| i != 0));
    nft.install(&a).unwrap();
    let before = ns.sh(&["nft", "list", "ruleset"]);

    // B with a rule the kernel refuses, last in the switch.
    let mut bad = b.clone();
    bad.tables[1].chains.push(Chain {
        name: "broken".into(),
        base: None,
        rules: vec![Rule::new(vec![
            Stmt::Match {
                left: vec![Field::IpDaddr],
                negate: false,
                right: Rhs::Set("no_such_set".into()),
            },
            Stmt::Verdict(Verdict::Drop),
        ])],
    });
    let present: Vec<_> = a
        .tables
        .iter()
        .map(|t| (t.family, t.name.clone(), Present::from_table(t)))
        .collect();
    let err = nft.install_staged(&bad, &present).unwrap_err();
    eprintln!("refused: {err}");
    assert_eq!(
        ns.sh(&["nft", "list", "ruleset"]),
        before,
        "a refused switch leaves the ruleset as it was, prepared sets deleted"
    );
    assert!(
        passes_now(&ns, X) && !passes_now(&ns, Y),
        "A still enforces"
    );

    // Killed after the fill: prepare and fill by hand, no switch.
    let plan = inplace::staged(&b, &present, &cordon_dataplane::elements::set_encodable);
    assert!(!plan.fill.is_empty(), "B has fresh sets to fill");
    nft.run_text(plan.prepare.clone(), false).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            let sets: Vec<_> = plan
                .fill
                .iter()
                .map(|&(ti, si)| {
                    let t = &b.tables[ti];
                    (t.family, t.name.as_str(), &t.sets[si])
                })
                .collect();
            cordon_dataplane::elements::fill(&sets).unwrap();
        })
        .join()
        .unwrap()
    });
    let listed = ns.sh(&["nft", "list", "ruleset"]);
    assert!(listed.contains("set pol_sftp4"), "the leftovers: {listed}");
    assert!(
        passes_now(&ns, X) && !passes_now(&ns, Y),
        "A still enforces"
    );

    // The next install over the last one: flushes and refills them.
    nft.install_over(&b, &a).unwrap();
    assert!(!passes_now(&ns, X) && passes_now(&ns, Y), "B enforces");
    let fresh = lab_ns();
    fresh.nft().install(&b).unwrap();
    assert_eq!(contents(&ns), contents(&fresh), "over the last install");

    // Leftovers of an install that never came, then an install reading the
    // kernel: they are deleted.
    let present_b: Vec<_> = b
        .tables
        .iter()
        .map(|t| (t.family, t.name.clone(), Present::from_table(t)))
        .collect();
    let c = ruleset(&with_sftp(), &inventory(50, |_| true));
    let mut c2 = c.clone();
    c2.tables[1].sets[0].name = "leftover_set".into();
    let plan = inplace::staged(&c2, &present_b, &cordon_dataplane::elements::set_encodable);
    nft.run_text(plan.prepare, false).unwrap();
    assert!(ns.sh(&["nft", "list", "ruleset"]).contains("leftover_set"));
    nft.install(&a).unwrap();
    let fresh_a = lab_ns();
    fresh_a.nft().install(&a).unwrap();
    assert_eq!(contents(&ns), contents(&fresh_a), "reading the kernel");
}
