//! What the Debian package installs: the systemd units in packaging/ (the
//! boot unit runs `cordon boot` before Docker, the daemon after it, both
//! from /usr/bin, and systemd accepts them) and the conffile
//! /etc/cordon/cordon.yaml, which is the embedded default itself.
//! `scripts/package-check` checks the built package as installed.

use std::process::Command;

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

/// The units the package installs.
const UNITS: [&str; 3] = [
    "cordon.service",
    "cordon-boot.service",
    "cordon-authz.service",
];

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
    assert_eq!(values(&boot, "ExecStart"), ["/usr/bin/cordon", "boot"]);
    assert_eq!(values(&boot, "DefaultDependencies"), ["no"]);
    let daemon = unit("cordon.service");
    assert!(values(&daemon, "After").contains(&"docker.service"));
    assert!(values(&daemon, "Requires").contains(&"cordon-boot.service"));
    assert_eq!(values(&daemon, "ExecStart"), ["/usr/bin/cordon", "daemon"]);
    assert_eq!(values(&daemon, "Restart"), ["always"]);
    assert_eq!(values(&daemon, "Type"), ["notify"]);
    assert_eq!(values(&daemon, "ExecReload"), ["/usr/bin/cordon", "reload"]);
    // The authorization plugin must be up before dockerd asks it.
    let authz = unit("cordon-authz.service");
    assert!(values(&authz, "Before").contains(&"docker.service"));
    assert_eq!(values(&authz, "ExecStart"), ["/usr/bin/cordon", "authz"]);
    assert_eq!(values(&authz, "Restart"), ["always"]);
}

#[test]
fn every_command_of_the_units_runs_the_packaged_binary() {
    for name in UNITS {
        let text = unit(name);
        let mut cordon_commands = 0;
        for line in text.lines().filter(|l| l.starts_with("Exec")) {
            let (_, command) = line.split_once('=').expect("Exec...=");
            // Exec prefixes: - @ : + ! (systemd.service(5)).
            let program = command
                .trim_start_matches(['-', '@', ':', '+', '!'])
                .split_whitespace()
                .next()
                .unwrap_or_default();
            if program.ends_with("/cordon") {
                assert_eq!(program, "/usr/bin/cordon", "{name}: {line}");
                cordon_commands += 1;
            }
        }
        assert!(cordon_commands > 0, "{name} runs no cordon");
    }
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
        let text = unit(name).replace("/usr/bin/cordon", CORDON);
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    // --man=no: the man pages of Documentation= are not installed here
    // (scripts/package-check verifies the installed units with them).
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
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

#[test]
fn the_units_document_themselves_with_generated_man_pages() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(CORDON)
        .arg("man")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for name in UNITS {
        let docs = values(&unit(name), "Documentation")
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        assert!(!docs.is_empty(), "{name} has no Documentation=");
        for doc in docs {
            // man:cordon-daemon(1) -> cordon-daemon.1
            let page = doc
                .strip_prefix("man:")
                .and_then(|p| p.strip_suffix(')'))
                .map(|p| p.replace('(', "."))
                .unwrap_or_else(|| panic!("{name}: {doc} is not a man page"));
            assert!(dir.path().join(&page).is_file(), "{name}: no {page}");
        }
    }
}

/// The source of the package asset installed at `dest`, from this crate's
/// `[package.metadata.deb]` (relative to the crate).
fn deb_asset_source(dest: &str) -> String {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("Cargo.toml");
    let quoted = format!("\"{dest}\"");
    let line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with('[') && l.contains(&quoted))
        .unwrap_or_else(|| panic!("no deb asset installed at {dest}"));
    line.split('"').nth(1).expect("a quoted source").to_string()
}

#[test]
fn the_conffile_is_the_embedded_default() {
    let source = deb_asset_source("etc/cordon/cordon.yaml");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(&source);
    let conffile = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{source}: {e}"));
    assert_eq!(conffile, cordon_policy::EMBEDDED_DEFAULT);
    // The binary, and so the package's /usr/bin/cordon, prints the same.
    let out = Command::new(CORDON).arg("default").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), conffile);
}

#[test]
fn the_conffiles_examples_are_valid_policy() {
    // Lines of `#` directly followed by YAML (no space, or two spaces of
    // indentation) are examples an operator enables by deleting the `#`.
    let text = cordon_policy::EMBEDDED_DEFAULT;
    let enabled: String = text
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.starts_with("  ") || rest.starts_with(|c: char| c != ' ') => rest,
            _ => l,
        })
        .flat_map(|l| [l, "\n"])
        .collect();
    let shipped = cordon_policy::parse("default.yaml", text).expect("the default parses");
    assert!(shipped.sets.is_empty() && shipped.policies.is_empty());
    let all = cordon_policy::parse("examples", &enabled)
        .unwrap_or_else(|e| panic!("the examples, enabled, do not parse: {e:?}\n{enabled}"));
    // The examples are there and do something once enabled.
    assert!(!all.sets.is_empty(), "{enabled}");
    assert!(!all.policies.is_empty(), "{enabled}");
    assert!(!all.dns.upstream.is_empty(), "{enabled}");
    assert_ne!(all.default.mode, shipped.default.mode, "{enabled}");
}
