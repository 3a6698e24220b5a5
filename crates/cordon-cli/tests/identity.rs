//! Attacks on who a container is and on what cordon shows of it, in the
//! lab:
//!
//! - an image that names its own policy (`LABEL cordon.policy=open`) gets
//!   the default instead, unless the policy file opts in;
//! - a label value with a newline cannot forge a line in the daemon's log
//!   or a row in `cordon status`;
//! - the metrics are root's: the admin socket is 0600, and the HTTP
//!   listener asks for a bearer token when given one.
//!
//! Every blocked target is first shown reachable (a positive control).

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};

use cordon_lab::{lab_or_skip, within, Lab, Run};

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

/// The LAN server of [`Lab::internet_and_lan`] with LAN number 217.
const LAN: &str = "10.217.0.2";
const INET: &str = "198.51.100.2";

/// `open` allows everything; the default only the internet.
const POLICY: &str = "\
version: 1
default:
  egress:
    - to: [internet]
policies:
  - name: open
    egress:
      - to: [any]
  - name: web
    egress:
      - to: [internet]
        ports: [80/tcp]
";

fn log_text(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// The policy `cordon status -o json` shows for container `name`.
fn policy_of(lab: &Lab, name: &str) -> Option<String> {
    let s: serde_json::Value =
        serde_json::from_str(&lab.cordon_ok(&["status", "-o", "json"])).expect("status JSON");
    s["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
        .and_then(|c| c["policy"].as_str().map(String::from))
}

#[test]
fn an_image_label_does_not_choose_the_policy_unless_the_file_trusts_it() {
    let lab = lab_or_skip!(CORDON);
    let (_inet, _lan) = lab.internet_and_lan("id", 217);
    let image = lab.labelled_image(&[("cordon.policy", "open")]);
    let runtime = lab.run(Run::named("idrun").label("cordon.policy", "open"));
    let imaged = lab.run(Run::named("idimg").image(&image));
    // The image's label overridden at run time with another value.
    let overridden = lab.run(
        Run::named("idover")
            .image(&image)
            .label("cordon.policy", "web"),
    );
    // Control: without cordon both reach the LAN server.
    assert!(lab.reaches(&runtime, LAN, 80, "hello-lan"), "control: LAN");
    assert!(lab.reaches(&imaged, LAN, 80, "hello-lan"), "control: LAN");

    let policy = lab.file("open.yaml", POLICY);
    let log = lab.state_dir().join("daemon-image.log");
    let daemon = lab.start_daemon_logged(&["-c", &policy], &log, &[]);
    // The run-time label selects `open`: the LAN stays reachable (the
    // positive control with cordon enforcing).
    assert!(
        within(10.0, || policy_of(&lab, &runtime.name).as_deref()
            == Some("open"))
        .is_some(),
        "the run-time label selects open"
    );
    assert!(
        lab.reaches(&runtime, LAN, 80, "hello-lan"),
        "open reaches the LAN"
    );
    // The image's label does not: the default, internet only.
    assert_eq!(policy_of(&lab, &imaged.name).as_deref(), Some("default"));
    assert_eq!(policy_of(&lab, &overridden.name).as_deref(), Some("web"));
    // The inventory says which labels came from the image.
    let inv: serde_json::Value =
        serde_json::from_str(&lab.cordon_ok(&["inventory", "-o", "json"])).expect("JSON");
    let policy_from_image = |name: &str| {
        let c = inv["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .expect("in the inventory");
        c["image_labels"]
            .as_array()
            .is_some_and(|keys| keys.iter().any(|k| k == "cordon.policy"))
    };
    assert!(policy_from_image(&imaged.name));
    assert!(!policy_from_image(&overridden.name));
    assert!(!policy_from_image(&runtime.name));
    assert!(
        within(10.0, || lab.reaches(&imaged, INET, 80, "hello-inet")).is_some(),
        "the default lets the image's container out to the internet"
    );
    assert!(
        !lab.reaches(&imaged, LAN, 80, "hello-lan"),
        "the image's own label opened the LAN"
    );
    let text = log_text(&log);
    assert!(
        text.lines().any(|l| l.contains("WARN")
            && l.contains(&format!("container {}", imaged.name))
            && l.contains("its image's label cordon.policy=open is ignored")),
        "the daemon warns about the image's label:\n{text}"
    );
    assert!(
        !text.contains(&format!("container {}: its image", runtime.name)),
        "no warning for a run-time label:\n{text}"
    );
    drop(daemon);

    // The policy file opts in: the image's label selects `open`.
    let trusting = lab.file(
        "trusting.yaml",
        &format!("trust_image_labels: true\n{POLICY}"),
    );
    let _daemon = lab.start_daemon(&["-c", &trusting]);
    assert!(
        within(10.0, || policy_of(&lab, &imaged.name).as_deref()
            == Some("open"))
        .is_some(),
        "trust_image_labels: the image's label selects open"
    );
    assert!(
        within(10.0, || lab.reaches(&imaged, LAN, 80, "hello-lan")).is_some(),
        "trusted, the image's label opens the LAN"
    );
}

#[test]
fn a_newline_in_a_label_forges_no_log_line_and_no_status_row() {
    let lab = lab_or_skip!(CORDON);
    // A status row and a log line, after a newline.
    let forged =
        "nope\nforged-row               0123456789ab  open                      0          0";
    let forged_log = "nope\r\n2026-01-01T00:00:00Z  INFO cordon: forged-log all is well";
    let a = lab.run(Run::named("idforge").label("cordon.policy", forged));
    let b = lab.run(Run::named("idforgelog").label("cordon.policy", forged_log));
    let policy = lab.file("open.yaml", POLICY);
    let log = lab.state_dir().join("daemon-forge.log");
    let daemon = lab.start_daemon_logged(&["-c", &policy], &log, &[]);
    let want = format!("unknown policy {forged}");
    assert!(
        within(10.0, || policy_of(&lab, &a.name).as_deref()
            == Some(want.as_str()))
        .is_some(),
        "JSON status carries the raw label value"
    );
    assert_eq!(
        policy_of(&lab, &b.name),
        Some(format!("unknown policy {forged_log}"))
    );

    // Text status: one row per container, the newline shown as `\n`.
    let status = lab.cordon_ok(&["status"]);
    let row_of = |name: &str| -> Vec<String> {
        status
            .lines()
            .filter(|l| l.starts_with(&format!("{name} ")))
            .map(String::from)
            .collect()
    };
    let rows = row_of(&a.name);
    assert_eq!(rows.len(), 1, "{status}");
    assert!(
        rows[0].contains("unknown policy nope\\nforged-row"),
        "{status}"
    );
    assert!(
        !status.lines().any(|l| l.starts_with("forged-row")),
        "a forged row:\n{status}"
    );
    let rows = row_of(&b.name);
    assert_eq!(rows.len(), 1, "{status}");
    assert!(rows[0].contains("nope\\r\\n2026-01-01"), "{status}");

    // The daemon's log: the warning with the value escaped, no forged line.
    let text = log_text(&log);
    assert!(
        text.contains(&format!(
            "container {}: label cordon.policy=nope\\nforged-row",
            a.name
        )),
        "the warning names the label, escaped:\n{text}"
    );
    assert!(
        text.contains("cordon.policy=nope\\r\\n2026-01-01T00:00:00Z"),
        "{text}"
    );
    for line in text.lines() {
        assert!(
            !line.starts_with("forged-row") && !line.starts_with("2026-01-01T00:00:00Z"),
            "a forged log line: {line:?}\n{text}"
        );
    }

    // JSON: the inventory keeps the raw value.
    let inv: serde_json::Value =
        serde_json::from_str(&lab.cordon_ok(&["inventory", "-o", "json"])).expect("JSON");
    let c = inv["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == a.name.as_str())
        .expect("in the inventory");
    assert_eq!(c["labels"]["cordon.policy"], forged);
    drop(daemon);

    // JSON logs: every line is one JSON object; the raw value is inside.
    let json_log = lab.state_dir().join("daemon-forge.json");
    let _daemon = lab.start_daemon_logged(
        &["-c", &policy],
        &json_log,
        &[("CORDON_LOG_FORMAT", "json")],
    );
    let found = within(10.0, || {
        log_text(&json_log)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|v| {
                v["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("label cordon.policy=nope\\nforged-row"))
            })
    });
    assert!(
        found.is_some(),
        "the warning in the JSON log:\n{}",
        log_text(&json_log)
    );
    for line in log_text(&json_log).lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line:?}"));
    }
}

/// `GET /metrics` with these extra request headers; the whole response.
fn get_metrics(port: u16, headers: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics port");
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n{headers}\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Runs cordon as `nobody` through setpriv.
fn as_nobody(lab: &Lab, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", CORDON])
        .args(args)
        .env("CORDON_SOCKET", lab.socket())
        .output()
        .expect("setpriv")
}

#[test]
fn metrics_are_root_s_on_the_socket_and_need_the_token_over_http() {
    use std::os::unix::fs::PermissionsExt;
    let lab = lab_or_skip!(CORDON);
    let token = lab.file("metrics.token", "s3cret-token-value\n");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let policy = lab.file("open.yaml", POLICY);
    let c = lab.run(Run::named("idmetrics").label("cordon.policy", "open"));
    let port = 19471;
    let _d = lab.start_daemon(&[
        "-c",
        &policy,
        "--metrics",
        &format!("127.0.0.1:{port}"),
        "--metrics-token-file",
        &token,
    ]);
    let named = format!("container=\"{}\"", c.name);

    // Positive control: the right token gets the metrics.
    let ok = within(10.0, || {
        get_metrics(port, "Authorization: Bearer s3cret-token-value\r\n").contains(&named)
    });
    assert!(ok.is_some(), "the token reads the metrics");
    let r = get_metrics(port, "Authorization: Bearer s3cret-token-value\r\n");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    for (what, headers) in [
        ("no token", ""),
        (
            "a wrong token",
            "Authorization: Bearer s3cret-token-valuX\r\n",
        ),
        ("a prefix of it", "Authorization: Bearer s3cret\r\n"),
        (
            "another scheme",
            "Authorization: Basic s3cret-token-value\r\n",
        ),
    ] {
        let r = get_metrics(port, headers);
        assert!(
            r.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
            "{what}: {r}"
        );
        assert!(!r.contains(&named), "{what}: {r}");
    }

    // The admin socket: root reads the metrics.
    let m = lab.cordon_ok(&["metrics"]);
    assert!(m.contains(&named), "{m}");
    // Another user cannot. Control: that user reaches the socket's path.
    std::fs::set_permissions(lab.state_dir(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let sock = lab.socket();
    let seen = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "test",
            "-S",
        ])
        .arg(&sock)
        .status()
        .unwrap();
    assert!(seen.success(), "control: nobody sees the socket");
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the admin socket's mode");
    let refused = as_nobody(&lab, &["metrics"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("ermission denied"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!String::from_utf8_lossy(&refused.stdout).contains(&named));
    // With the mode opened up, the daemon still refuses by the peer's
    // credentials.
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let refused = as_nobody(&lab, &["metrics"]);
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(!refused.status.success());
    assert!(
        !String::from_utf8_lossy(&refused.stdout).contains(&named),
        "nobody read the metrics"
    );
}

#[test]
fn a_token_file_others_can_read_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    if !cordon_dataplane::is_root() {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: needs root (the file must be root's)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = Command::new(CORDON)
        .args([
            "daemon",
            "--metrics",
            "127.0.0.1:19472",
            "--metrics-token-file",
        ])
        .arg(&token)
        .env("CORDON_STATE_DIR", dir.path())
        .env("CORDON_SOCKET", dir.path().join("admin.sock"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("--metrics-token-file") && err.contains("mode 644"),
        "{err}"
    );
    assert!(!dir.path().join("admin.sock").exists(), "nothing started");
    // Without --metrics the token file makes no sense.
    let o = Command::new(CORDON)
        .args(["daemon", "--metrics-token-file"])
        .arg(&token)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
