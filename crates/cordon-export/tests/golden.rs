//! Golden files: the README's scenarios (and the embedded default, its
//! scenario 2) exported for Kubernetes and Cilium, byte for byte, with
//! their warnings. `UPDATE_GOLDEN=1 cargo test -p cordon-export --test
//! golden` rewrites the expected files after an intended change; review
//! the diff.

use std::path::{Path, PathBuf};

use cordon_export::{export, output, Flavor, Options};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The scenarios: name and policy file (`None`: the embedded default).
pub fn scenarios() -> Vec<(String, cordon_policy::PolicyFile)> {
    let mut out = vec![(
        "embedded-default".to_string(),
        cordon_policy::embedded_default(),
    )];
    for name in ["sftp", "admin-ui", "dns-names", "shop"] {
        let path = dir().join(format!("{name}.yaml"));
        let text = std::fs::read_to_string(&path).unwrap();
        let file = cordon_policy::parse(&format!("{name}.yaml"), &text).expect("valid");
        out.push((name.to_string(), file));
    }
    out
}

fn check(path: &Path, actual: &str, stale: &mut Vec<String>) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected != actual {
        stale.push(format!(
            "{} differs; got:\n{actual}",
            path.file_name().unwrap().to_string_lossy()
        ));
    }
}

#[test]
fn the_readme_scenarios_export_as_their_golden_files() {
    let mut stale = Vec::new();
    for (name, file) in scenarios() {
        for (flavor, suffix) in [
            (Flavor::Kubernetes, "kubernetes"),
            (Flavor::Cilium, "cilium"),
        ] {
            let opts = Options {
                namespace: Some("prod".into()),
                ..Options::default()
            };
            let e = export(&file, flavor, &opts);
            let base = dir().join(format!("{name}.{suffix}"));
            check(
                &base.with_extension(format!("{suffix}.yaml")),
                &output::yaml(&e.documents),
                &mut stale,
            );
            let warnings: String = e.warnings.iter().map(|w| format!("{w}\n")).collect();
            check(
                &base.with_extension(format!("{suffix}.warnings")),
                &warnings,
                &mut stale,
            );
        }
    }
    assert!(stale.is_empty(), "{}", stale.join("\n"));
}
