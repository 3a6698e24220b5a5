//! The `cordon` command without root: validation, planning from a saved
//! inventory, exit codes and messages.

use std::process::{Command, Output};

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn cordon(args: &[&str]) -> Output {
    Command::new(CORDON)
        .args(args)
        .env("CORDON_STATE_DIR", "/nonexistent/cordon-test-state")
        .output()
        .expect("run cordon")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let p = path.display().to_string();
    (dir, p)
}

#[test]
fn check_accepts_the_spec_example() {
    let o = cordon(&["check", "-c", &fixture("spec.yaml")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("ok (3 policies, 1 sets)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn check_reports_every_error_located_and_exits_1() {
    let (_d, bad) = temp_file(
        "bad.yaml",
        "version: 1\nsets:\n  office: [203.0.113.1/26]\npolicies:\n  - name: web\n    egres: []\n    egress:\n      - to: [offce]\n        ports: [22, 0/tcp]\n",
    );
    let o = cordon(&["check", "-c", &bad]);
    assert_eq!(o.status.code(), Some(1));
    let lines: Vec<String> = stderr(&o).lines().map(|l| l.replace(&bad, "F")).collect();
    assert_eq!(
        lines,
        [
            "F:3:12: `203.0.113.1/26` has host bits set; did you mean `203.0.113.0/26`?",
            "F:6:5: unknown key `egres` in a policy; expected one of: name, select, mode, ingress, egress",
            "F:8:14: unknown set or policy `offce` (words: internet, private, metadata, host, same-network, any)",
            "F:9:17: port `22` needs a protocol, e.g. `22/tcp` or `22/udp`",
            "F:9:21: port `0` in `0/tcp` is out of range 1-65535",
        ]
    );
}

#[test]
fn yaml_syntax_errors_are_located() {
    let (_d, bad) = temp_file("syntax.yaml", "version: 1\npolicies: [\n");
    let o = cordon(&["check", "-c", &bad]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(&format!("{bad}:3:1: YAML syntax error")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unreadable_policy_is_an_environment_error() {
    let o = cordon(&["check", "-c", "/nonexistent/cordon.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim(),
        "cannot read /nonexistent/cordon.yaml: No such file or directory (os error 2)"
    );
}

#[test]
fn plan_from_a_saved_inventory() {
    let o = cordon(&[
        "plan",
        "-c",
        &fixture("spec.yaml"),
        "--inventory",
        &fixture("inventory.json"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("# container sftp-1 -> policy sftp [172.17.0.2]"),
        "{out}"
    );
    assert!(
        out.contains("# container shop-web-1 -> policy web [172.20.0.2, 2001:db8:20::2]"),
        "{out}"
    );
    assert!(out.contains("# container db-main -> policy db"), "{out}");
    assert!(out.contains("table inet cordon {"), "{out}");
    assert!(out.contains("172.17.0.2 : goto eg_fwd_sftp"), "{out}");
    assert!(out.contains("\"veth5d6e7f8\" . 02:42:ac:14:00:02"), "{out}");
}

#[test]
fn plan_json_is_one_nft_transaction() {
    let o = cordon(&[
        "plan",
        "-o",
        "json",
        "--inventory",
        &fixture("inventory.json"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let cmds = doc["nftables"].as_array().expect("nftables array");
    // It starts by replacing cordon's two tables.
    assert_eq!(cmds[0]["add"]["table"]["family"], "bridge");
    assert_eq!(cmds[1]["delete"]["table"]["name"], "cordon");
    assert!(cmds.iter().any(|c| c["add"]["map"]["name"] == "egress4"));
}

#[test]
fn bad_inventory_names_the_file() {
    let (_d, inv) = temp_file("inv.json", "{\"containerz\": []}");
    let o = cordon(&["plan", "--inventory", &inv]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(&format!("{inv}: line 1 column")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn set_on_an_unknown_set_is_refused_before_touching_anything() {
    let o = cordon(&[
        "set",
        "-c",
        &fixture("spec.yaml"),
        "add",
        "ofice",
        "203.0.113.9",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("defines no set `ofice` (sets: office)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn misuse_exits_2() {
    let o = cordon(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    let o = cordon(&["set", "add", "office"]);
    assert_eq!(o.status.code(), Some(2), "addresses are required");
}

/// Runs cordon as `nobody` (through setpriv) when we are root, else as we are.
fn cordon_unprivileged(args: &[&str]) -> Output {
    if cordon_dataplane::is_root() {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", CORDON])
            .args(args)
            .output()
            .expect("setpriv")
    } else {
        cordon(args)
    }
}

#[test]
fn not_root_is_one_line_and_exit_2() {
    let o = cordon_unprivileged(&["apply", "--inventory", &fixture("inventory.json")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim(),
        "cordon must run as root: it edits the kernel's firewall (try sudo)"
    );
    let o = cordon_unprivileged(&["down"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn missing_nft_is_one_line_and_exit_2() {
    if !cordon_dataplane::is_root() {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: needs root to get past the root check"
        );
        return;
    }
    let o = Command::new(CORDON)
        .args(["apply", "--inventory", &fixture("inventory.json")])
        .env("PATH", "/nonexistent")
        .env("CORDON_STATE_DIR", "/nonexistent/cordon-test-state")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim(),
        "the nft command is missing: install nftables (apt-get install nftables)"
    );
}

#[test]
fn check_json_lists_every_located_error() {
    let o = cordon(&["check", "-c", &fixture("spec.yaml"), "-o", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["ok"], true);
    assert_eq!(v["errors"].as_array().map(Vec::len), Some(0));
    let (_d, bad) = temp_file(
        "bad.yaml",
        "version: 1\ndefault:\n  egress:\n    - to: [nowhere]\n      ports: [99999/tcp]\n",
    );
    let o = cordon(&["check", "-c", &bad, "-o", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["ok"], false);
    let errors = v["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 2, "{v}");
    assert_eq!(errors[0]["file"], bad.as_str());
    assert_eq!(errors[0]["line"], 4);
    assert_eq!(errors[1]["line"], 5);
    assert!(stderr(&o).contains("2 error(s)"), "{}", stderr(&o));
}

#[test]
fn durations_are_humantime_and_a_bad_one_is_one_line() {
    let o = cordon(&["daemon", "--reconcile-every", "soon"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("--reconcile-every soon"), "{e}");
    let o = cordon(&["daemon", "--reconcile-every", "0s"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn audit_takes_text_and_keeps_table_as_an_alias() {
    for fmt in ["text", "table"] {
        let o = cordon(&["audit", "-o", fmt, "--help"]);
        assert_eq!(o.status.code(), Some(0), "{fmt}: {}", stderr(&o));
    }
    let o = cordon(&["audit", "-o", "html"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("text"), "{}", stderr(&o));
}
