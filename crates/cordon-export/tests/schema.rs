//! Every exported NetworkPolicy (the golden scenarios and a policy using
//! every word) validates against the official Kubernetes JSON schema of
//! Kubernetes 1.37, with `kubernetes-validate --strict` (the PyPI package
//! carries the schemas offline; `scripts/test` installs it). Without the
//! tool the test skips with one line, except under `CI=true`, where it
//! fails. The positive control: a NetworkPolicy with an unknown field is
//! rejected by the same command, so a passing run means validation ran.
//! The YAML output, read back by a real YAML parser (PyYAML), equals the
//! JSON output.

use std::path::PathBuf;
use std::process::Command;

use cordon_export::{export, output, Flavor, Options};

#[path = "golden.rs"]
#[allow(dead_code)]
mod golden;

const TOOL: &str = "kubernetes-validate";
const VERSION: &str = "1.37.0";

/// A policy that uses every word, port form, mode and selection.
const EVERYTHING: &str = "version: 1
sets:
  office: [198.51.100.0/26, \"2001:db8:77::/48\"]
  none: []
default:
  mode: audit
  egress:
    - to: [internet, same-network]
    - to: [host, any]
      ports: [53/udp, 53/tcp]
policies:
  - name: web
    select: { compose: { project: shop, service: web }, name: \"web-*\" }
    ingress:
      - from: [office, same-network, db, host]
        ports: [8000-8100/tcp, icmp]
    egress:
      - to: [api.example.com, \"*.example.org\", private, metadata, 198.51.100.7]
        ports: [443/tcp]
      - to: [none]
  - name: db
    select: { label: { tier: db } }
    ingress: []
  - name: batch
";

fn validate(paths: &[PathBuf]) -> std::process::Output {
    Command::new(TOOL)
        .args(["-k", VERSION, "--strict", "--quiet"])
        .args(paths)
        .output()
        .expect("run kubernetes-validate")
}

fn available() -> bool {
    Command::new(TOOL)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn every_exported_networkpolicy_is_valid_for_kubernetes_1_37() {
    if !available() {
        cordon_lab::skip::skip(&format!(
            "{TOOL} is not installed (pip install kubernetes-validate; scripts/test does)"
        ));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Positive control: the validator rejects what the schema forbids.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: x\nspec:\n  podSelector: {}\n  egress:\n  - to:\n    - ipBlock: {cidr: 10.0.0.0/8}\n      bogus: 1\n",
    )
    .unwrap();
    assert!(
        !validate(&[bad]).status.success(),
        "the control must be rejected"
    );

    let mut files = golden::scenarios();
    files.push((
        "everything".into(),
        cordon_policy::parse("everything.yaml", EVERYTHING).expect("valid"),
    ));
    let mut paths = Vec::new();
    for (name, file) in files {
        for namespace in [None, Some("prod".to_string())] {
            let ns = namespace.clone().unwrap_or_default();
            let opts = Options {
                namespace,
                ..Options::default()
            };
            let e = export(&file, Flavor::Kubernetes, &opts);
            for d in &e.documents {
                let path = dir.path().join(format!("{name}-{ns}-{}.yaml", d.name));
                std::fs::write(&path, output::yaml(std::slice::from_ref(d))).unwrap();
                paths.push(path);
            }
        }
    }
    assert!(paths.len() >= 20, "only {} objects", paths.len());
    let out = validate(&paths);
    assert!(
        out.status.success(),
        "not valid NetworkPolicies:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

/// Reads YAML with PyYAML (a dependency of kubernetes-validate) and
/// prints it as JSON.
const YAML_TO_JSON: &str = "import json, sys, yaml\nprint(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))";

#[test]
fn the_yaml_output_reads_back_as_the_json_output() {
    let python = Command::new("python3")
        .args(["-c", "import yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !python {
        cordon_lab::skip::skip(
            "python3 with PyYAML is not installed (kubernetes-validate brings it)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = golden::scenarios();
    files.push((
        "everything".into(),
        cordon_policy::parse("everything.yaml", EVERYTHING).expect("valid"),
    ));
    for (name, file) in files {
        for flavor in [Flavor::Kubernetes, Flavor::Cilium] {
            let e = export(&file, flavor, &Options::default());
            let path = dir.path().join(format!("{name}.yaml"));
            std::fs::write(&path, output::yaml(&e.documents)).unwrap();
            let out = Command::new("python3")
                .args(["-c", YAML_TO_JSON])
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let json: serde_json::Value =
                serde_json::from_str(&output::json(&e.documents)).unwrap();
            assert_eq!(read, json["items"], "{name} {flavor:?}");
        }
    }
}
