//! `cordon audit` against real containers: each known fault is found on
//! the container that has it and only there, and a hardened container
//! passes every one of those checks, as configured and as in effect.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use cordon_lab::{lab_or_skip, ContainerOpts, TestContainer};
use serde_json::Value;

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

/// The checks of the faults the lab builds.
const FAULT_CHECKS: [&str; 6] = ["5.4", "5.5", "5.10", "5.16", "5.22", "5.32"];
/// No memory limit, no pids limit, root user, writable root filesystem.
const DEFAULT_FAULTS: [&str; 4] = ["5.11", "5.29", "4.1", "5.13"];

fn policy() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cordon.yaml");
    std::fs::write(
        &path,
        "version: 1\ndefault:\n  egress:\n    - to: [internet]\n    - to: [same-network]\n",
    )
    .unwrap();
    let p = path.display().to_string();
    (dir, p)
}

fn audit(args: &[&str], names: &[&str]) -> Output {
    let (_dir, policy) = policy();
    let mut cmd = Command::new(CORDON);
    cmd.args(["audit", "-c", &policy]).args(args);
    cmd.arg("--container").args(names);
    cmd.output().expect("run cordon audit")
}

/// (check id, container name) → (status, mismatch, evidence).
fn results(report: &Value) -> BTreeMap<(String, String), (String, bool, String)> {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["object"]["kind"] == "container")
        .map(|r| {
            (
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["object"]["name"].as_str().unwrap().to_string(),
                ),
                (
                    r["status"].as_str().unwrap().to_string(),
                    r["mismatch"].as_bool().unwrap(),
                    format!(
                        "{} | configured {} | effective {}",
                        r["evidence"], r["configured"], r["effective"]
                    ),
                ),
            )
        })
        .collect()
}

/// True when this host lets a container have every capability it has
/// itself (a sandboxed host may lack some, and then Docker cannot start
/// privileged containers at all).
fn can_run_privileged() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap();
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    bnd == (1u64 << (last + 1)) - 1
}

#[test]
fn audit_finds_each_fault_on_the_right_container() {
    lab_or_skip!();
    let _lock = cordon_lab::lock();
    let privileged_opts = ContainerOpts::new("aud-priv").privileged();
    let privileged = if can_run_privileged() {
        TestContainer::run(privileged_opts)
    } else {
        eprintln!("this host's capability bounding set is not full: the privileged container is created, not started (configured values only)");
        TestContainer::create(&privileged_opts)
    };
    let sock = TestContainer::run(
        ContainerOpts::new("aud-sock").bind("/var/run/docker.sock:/var/run/docker.sock"),
    );
    let hostnet = TestContainer::run(ContainerOpts::new("aud-hostnet").network_name("host"));
    let hostpid = TestContainer::run(ContainerOpts::new("aud-hostpid").pid_mode("host"));
    let sysadmin = TestContainer::run(ContainerOpts::new("aud-sysadmin").cap_add("SYS_ADMIN"));
    let seccomp =
        TestContainer::run(ContainerOpts::new("aud-seccomp").security_opt("seccomp=unconfined"));
    let hardened = TestContainer::run(
        ContainerOpts::new("aud-hard")
            .read_only()
            .cap_drop("ALL")
            .security_opt("no-new-privileges")
            .user("1000:1000")
            .memory(64 << 20)
            .pids_limit(64)
            .network_name("none"),
    );
    let faulty: [(&TestContainer, &[&str]); 6] = [
        (&privileged, &["5.5", "5.4", "5.22"]),
        (&sock, &["5.32"]),
        (&hostnet, &["5.10"]),
        (&hostpid, &["5.16"]),
        (&sysadmin, &["5.4"]),
        (&seccomp, &["5.22"]),
    ];
    let mut names: Vec<&str> = faulty.iter().map(|(c, _)| c.name.as_str()).collect();
    names.push(&hardened.name);

    let out = audit(&["-o", "json", "--fail-on", "none"], &names);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["schema"], "cordon-audit/1");
    let r = results(&report);
    let get = |id: &str, c: &TestContainer| {
        r.get(&(id.to_string(), c.name.clone()))
            .unwrap_or_else(|| panic!("no result of {id} for {}", c.name))
            .clone()
    };

    // Positive control: the hardened container passes every check of the
    // faults and of the defaults, with configuration and kernel agreeing.
    for id in FAULT_CHECKS.iter().chain(&DEFAULT_FAULTS).chain(&["5.26"]) {
        let (status, mismatch, ev) = get(id, &hardened);
        assert_eq!(status, "pass", "{id} on the hardened container: {ev}");
        assert!(!mismatch, "{id} on the hardened container: {ev}");
    }
    for (c, expected) in &faulty {
        for id in FAULT_CHECKS {
            let (status, mismatch, ev) = get(id, c);
            let want = if expected.contains(&id) {
                "fail"
            } else {
                "pass"
            };
            assert_eq!(status, want, "{id} on {}: {ev}", c.name);
            assert!(!mismatch, "{id} on {}: {ev}", c.name);
        }
        for id in DEFAULT_FAULTS {
            let (status, _, ev) = get(id, c);
            assert_eq!(status, "fail", "{id} on {}: {ev}", c.name);
        }
    }
    // Nothing cordon can enforce reaches a container on the host's network.
    assert_eq!(get("CORDON-1", &hostnet).0, "fail");
    assert_eq!(get("CORDON-1", &hardened).0, "pass");

    // The exit code follows --fail-on: the Docker socket mount is critical.
    let fail = audit(&["-o", "sarif", "--fail-on", "critical"], &[&sock.name]);
    assert_eq!(fail.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&fail.stderr);
    assert!(msg.contains(&sock.name) && msg.contains("5.32"), "{msg}");
    let sarif: Value = serde_json::from_slice(&fail.stdout).expect("SARIF");
    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["ruleId"] == "5.32"));
    let pass = audit(&["-o", "table", "--fail-on", "critical"], &[&hardened.name]);
    assert_eq!(
        pass.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&pass.stderr)
    );
}

#[test]
fn an_unknown_container_is_named_in_the_error() {
    lab_or_skip!();
    let _lock = cordon_lab::lock();
    let out = audit(&[], &["cl-no-such-container-audit"]);
    assert_eq!(out.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        msg.contains("no container cl-no-such-container-audit"),
        "{msg}"
    );
}
