//! The systemd units in packaging/: the boot unit runs `cordon boot`
//! before Docker, the daemon after it, and systemd accepts both.

use std::process::Command;

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

fn unit(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../packaging/");
    std::fs::read_to_string(format!("{path}{name}")).expect("unit file")
}

fn values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .flat_map(str::split_whitespace)
        .collect()
}

#[test]
fn boot_unit_runs_before_docker_and_the_daemon_after_it() {
    let boot = unit("cordon-boot.service");
    assert!(values(&boot, "Before").contains(&"docker.service"));
    assert!(values(&boot, "RequiredBy").contains(&"docker.service"));
    assert_eq!(
        values(&boot, "ExecStart"),
        ["/usr/local/bin/cordon", "boot"]
    );
    assert_eq!(values(&boot, "DefaultDependencies"), ["no"]);
    let daemon = unit("cordon.service");
    assert!(values(&daemon, "After").contains(&"docker.service"));
    assert!(values(&daemon, "Requires").contains(&"cordon-boot.service"));
    assert_eq!(
        values(&daemon, "ExecStart"),
        ["/usr/local/bin/cordon", "daemon"]
    );
    assert_eq!(values(&daemon, "Restart"), ["always"]);
    assert_eq!(values(&daemon, "Type"), ["notify"]);
    assert_eq!(
        values(&daemon, "ExecReload"),
        ["/usr/local/bin/cordon", "reload"]
    );
    // The authorization plugin must be up before dockerd asks it.
    let authz = unit("cordon-authz.service");
    assert!(values(&authz, "Before").contains(&"docker.service"));
    assert_eq!(
        values(&authz, "ExecStart"),
        ["/usr/local/bin/cordon", "authz"]
    );
    assert_eq!(values(&authz, "Restart"), ["always"]);
}

#[test]
fn systemd_accepts_the_units() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        if std::env::var("CI").as_deref() == Ok("true") {
            // Debian always has it; a CI without it is not Debian.
            panic!("systemd-analyze is missing");
        }
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: systemd-analyze is not installed"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "cordon.service",
        "cordon-boot.service",
        "cordon-authz.service",
    ] {
        let text = unit(name).replace("/usr/local/bin/cordon", CORDON);
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("cordon.service"))
        .arg(dir.path().join("cordon-boot.service"))
        .arg(dir.path().join("cordon-authz.service"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Outside a booted systemd, verify may only warn about the manager.
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("cordon")).collect();
    assert!(out.status.success() && ours.is_empty(), "{err}");
}
