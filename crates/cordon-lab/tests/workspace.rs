//! The workspace keeps itself tidy, checked by `cargo test` so it cannot
//! drift back:
//!
//! - every crate inherits the workspace's `rust-version` and `[lints]`
//!   (missing docs and undocumented `unsafe` blocks are warnings, which
//!   `cargo clippy -- -D warnings` turns into errors);
//! - every dependency a crate declares is named in the code that may use it
//!   (what `cargo machete` checks): `[dependencies]` in `src/` and
//!   `build.rs`, `[dev-dependencies]` there or in `tests/`, `benches/` and
//!   `examples/`. A dependency needed without being named (only to turn on
//!   a feature) is listed under `[package.metadata.cargo-machete] ignored`.

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn manifest(path: &Path) -> DocumentMut {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every crate directory with a manifest: `crates/*/Cargo.toml`.
fn crates() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .expect("crates/")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    out.sort();
    out
}

/// The Rust sources under `dirs` of `krate` (recursively), and `build.rs`.
fn sources(krate: &Path, dirs: &[&str]) -> String {
    fn walk(dir: &Path, out: &mut String) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
                out.push('\n');
            }
        }
    }
    let mut out = std::fs::read_to_string(krate.join("build.rs")).unwrap_or_default();
    for d in dirs {
        walk(&krate.join(d), &mut out);
    }
    out
}

/// True when `word` occurs in `text` as a whole identifier.
fn names(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

fn is_workspace_inherited(item: Option<&Item>) -> bool {
    item.and_then(|i| i.get("workspace"))
        .and_then(Item::as_bool)
        .unwrap_or(false)
}

#[test]
fn the_workspace_declares_its_lints() {
    let ws = manifest(&root().join("Cargo.toml"));
    let lints = &ws["workspace"]["lints"];
    assert!(
        lints["rust"]["missing_docs"].is_value(),
        "Cargo.toml: [workspace.lints.rust] sets missing_docs"
    );
    assert!(
        lints["clippy"]["undocumented_unsafe_blocks"].is_value(),
        "Cargo.toml: [workspace.lints.clippy] sets undocumented_unsafe_blocks"
    );
}

#[test]
fn every_crate_inherits_rust_version_and_lints() {
    let mut wrong = Vec::new();
    for krate in crates() {
        let m = manifest(&krate.join("Cargo.toml"));
        let name = krate.file_name().unwrap().to_string_lossy().into_owned();
        if !is_workspace_inherited(m["package"].get("rust-version")) {
            wrong.push(format!(
                "crates/{name}/Cargo.toml: [package] lacks rust-version.workspace = true"
            ));
        }
        if !is_workspace_inherited(m.get("lints")) {
            wrong.push(format!(
                "crates/{name}/Cargo.toml: lacks [lints] workspace = true"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_dependency_is_used() {
    let mut unused = Vec::new();
    for krate in crates() {
        let m = manifest(&krate.join("Cargo.toml"));
        let name = krate.file_name().unwrap().to_string_lossy().into_owned();
        let ignored: Vec<String> = m
            .get("package")
            .and_then(|p| p.get("metadata"))
            .and_then(|p| p.get("cargo-machete"))
            .and_then(|p| p.get("ignored"))
            .and_then(Item::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let code = sources(&krate, &["src"]);
        let all = sources(&krate, &["src", "tests", "benches", "examples"]);
        for (table, text) in [
            ("dependencies", &code),
            ("dev-dependencies", &all),
            ("build-dependencies", &code),
        ] {
            let Some(deps) = m.get(table).and_then(Item::as_table_like) else {
                continue;
            };
            for (dep, _) in deps.iter() {
                if ignored.iter().any(|i| i == dep) {
                    continue;
                }
                if !names(text, &dep.replace('-', "_")) {
                    unused.push(format!(
                        "crates/{name}/Cargo.toml: [{table}] {dep} is never named in its code"
                    ));
                }
            }
        }
    }
    assert!(unused.is_empty(), "{}", unused.join("\n"));
}

#[test]
fn the_word_check_finds_whole_identifiers_only() {
    assert!(names("use serde::Deserialize;", "serde"));
    assert!(!names("use serde_json::Value;", "serde"));
    assert!(!names("let x = my_serde;", "serde"));
    assert!(names("#[derive(thiserror::Error)]", "thiserror"));
}
