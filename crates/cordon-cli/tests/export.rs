//! `cordon export kubernetes|cilium`: manifests on stdout, warnings on
//! stderr as `FILE:LINE:COL: warning: ...`, exit codes as `cordon check`
//! (0 exported, 1 an invalid policy, 2 misuse or an unreadable file).
//! Needs neither root nor Docker nor a cluster.

use std::process::{Command, Output};

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

fn cordon(args: &[&str]) -> Output {
    Command::new(CORDON)
        .args(args)
        .env_remove("CORDON_LOG")
        .output()
        .expect("run cordon")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const POLICY: &str = "version: 1
policies:
  - name: web
    select: { name: \"web-*\", label: { app: web } }
    egress:
      - to: [api.example.com]
        ports: [443/tcp]
      - to: [internet]
        ports: [443/tcp]
";

#[test]
fn export_prints_manifests_and_located_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(&file, POLICY).unwrap();
    let f = file.to_str().unwrap();
    let out = cordon(&["export", "kubernetes", "-c", f, "--namespace", "prod"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("---\n"), "{stdout}");
    assert!(stdout.contains("kind: NetworkPolicy\n"), "{stdout}");
    assert!(stdout.contains("  namespace: prod\n"), "{stdout}");
    assert!(stdout.contains("  name: cordon-web\n"), "{stdout}");
    assert!(
        !stdout.contains("api.example.com\n"),
        "no rule for a DNS name: {stdout}"
    );
    assert!(
        stdout.contains("# cordon: not exported: DNS name `api.example.com`"),
        "{stdout}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{f}:3:11: warning: policy `web`: `select: {{name: \"web-*\"}}` has no pod-selector equivalent")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{f}:6:9: warning: DNS name `api.example.com` cannot be expressed in a NetworkPolicy"
        )),
        "{stderr}"
    );

    let out = cordon(&["export", "cilium", "-c", f, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["kind"], "List");
    let items = v["items"].as_array().unwrap();
    assert!(items.iter().all(|i| i["kind"] == "CiliumNetworkPolicy"));
    let web = items
        .iter()
        .find(|i| i["metadata"]["name"] == "cordon-web")
        .unwrap();
    assert_eq!(
        web["spec"]["egress"][0]["toFQDNs"][0]["matchName"],
        "api.example.com"
    );
    assert!(
        !text(&out.stderr).contains("DNS name"),
        "Cilium keeps DNS names"
    );
}

#[test]
fn export_without_a_file_exports_the_embedded_default_or_the_default_path() {
    let out = cordon(&["export", "kubernetes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("name: cordon-default\n"));
}

#[test]
fn export_fails_like_check() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "version: 1\npolicies:\n  - name: web\n    egress:\n      - to: [offcie]\n",
    )
    .unwrap();
    let b = bad.to_str().unwrap();
    let out = cordon(&["export", "kubernetes", "-c", b]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(&format!("{b}:5:14: unknown set or policy `offcie`")),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "nothing exported from a bad file");

    let missing = dir.path().join("missing.yaml");
    let out = cordon(&["export", "cilium", "-c", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));

    let out = cordon(&["export", "kubernetes", "--namespace", "Not_A_Namespace"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--namespace Not_A_Namespace: not a namespace name"));

    let out = cordon(&["export", "openshift"]);
    assert_eq!(out.status.code(), Some(2));
}
