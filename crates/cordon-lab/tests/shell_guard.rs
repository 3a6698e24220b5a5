//! The shell benchmarks' lab guard, `lab_guard` in scripts/lib.sh: it
//! refuses, in one line and with status 1, a range overlapping one of the
//! host's facts, and accepts a clean one. Synthetic facts come from
//! `LAB_GUARD_FACTS`; one test uses this host's own resolver.
//!
//! Needs bash and python3; without them each test prints one `skipped:`
//! line (and fails under CI=true).

use std::path::Path;
use std::process::{Command, Output};

/// Runs `lab_guard ranges...` from scripts/lib.sh, with `facts` replacing
/// the host's when given; `None` when bash or python3 is missing.
fn lab_guard(facts: Option<&str>, ranges: &[&str]) -> Option<Output> {
    for tool in ["bash", "python3"] {
        let found = Command::new(tool).arg("--version").output().is_ok();
        if !found {
            cordon_lab::skip::skip(&format!("no {tool} for scripts/lib.sh's lab_guard"));
            return None;
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cmd = Command::new("bash");
    cmd.current_dir(&root)
        .args([
            "-c",
            ". scripts/lib.sh; lab_guard \"$@\"; echo accepted",
            "guard",
        ])
        .args(ranges)
        .env_remove("LAB_GUARD_FACTS");
    if let Some(f) = facts {
        cmd.env("LAB_GUARD_FACTS", f);
    }
    Some(cmd.output().expect("run bash"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const FACTS: &str = "10.77.77.53=the resolver;172.31.2.0/24=the subnet of eth0;\
                     100.64.113.80=what deb.debian.org resolves to (apt source)";

#[test]
fn refuses_an_overlapping_range_in_one_line() {
    let Some(out) = lab_guard(Some(FACTS), &["198.51.100.0/24", "100.64.113.0/24"]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(!text(&out.stdout).contains("accepted"), "the script stops");
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(
            "lab_guard refuses lab range 100.64.113.0/24: it overlaps 100.64.113.80, \
             what deb.debian.org resolves to (apt source);"
        ),
        "{err}"
    );
    for range in ["10.77.77.0/24", "172.31.2.128/25", "10.0.0.0/8"] {
        let out = lab_guard(Some(FACTS), &[range]).expect("ran above");
        assert_eq!(out.status.code(), Some(1), "{range}");
        assert!(text(&out.stderr).contains("refuses"), "{range}");
    }
}

#[test]
fn accepts_clean_ranges() {
    let clean = [
        "198.51.100.0/24",
        "198.18.0.0/15",
        "2001:db8::/32",
        "10.53.0.0/24",
        "198.51.100.53",
    ];
    let Some(out) = lab_guard(Some(FACTS), &clean) else {
        return;
    };
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "accepted");
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn refuses_this_hosts_resolver_with_the_real_facts() {
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let Some(resolver) = resolv
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .map(|ip| ip.trim().split('%').next().unwrap_or("").to_string())
        .find(|ip| ip.parse::<std::net::IpAddr>().is_ok())
    else {
        cordon_lab::skip::skip("no nameserver in /etc/resolv.conf");
        return;
    };
    let Some(out) = lab_guard(None, &[&resolver]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains(&format!("{resolver}, the resolver in /etc/resolv.conf")),
        "{}",
        text(&out.stderr)
    );
    // And the lab's own ranges pass on this host.
    let out =
        lab_guard(None, &["198.51.100.0/24", "198.18.0.0/15", "2001:db8::/32"]).expect("ran above");
    assert!(out.status.success(), "{}", text(&out.stderr));
}
