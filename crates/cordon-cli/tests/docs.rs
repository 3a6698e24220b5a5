//! The reference in docs/policy.md shows only valid policy: every ```yaml
//! block in it is a complete policy file that cordon's parser accepts, and
//! the error example shows the messages `cordon check` really prints.

use std::process::Command;

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

/// docs/policy.md, read at test time so an edit is checked without a
/// rebuild of the crate.
fn policy_md() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/policy.md");
    std::fs::read_to_string(path).expect("docs/policy.md")
}

/// The fenced blocks of `markdown` whose info string is `lang`, with the
/// line each starts on (1-based, the fence line).
fn blocks(markdown: &str, lang: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut open: Option<(usize, bool, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(info)) => open = Some((i + 1, info.trim() == lang, String::new())),
            (Some((start, wanted, text)), Some(_)) => {
                if *wanted {
                    out.push((*start, std::mem::take(text)));
                }
                open = None;
            }
            (Some((_, _, text)), None) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "docs/policy.md ends inside a code block");
    out
}

#[test]
fn every_yaml_example_in_the_policy_reference_parses() {
    let md = policy_md();
    let yaml = blocks(&md, "yaml");
    assert!(
        yaml.len() >= 8,
        "expected the reference's examples, found {}",
        yaml.len()
    );
    for (line, text) in &yaml {
        let name = format!("docs/policy.md:{line}");
        if let Err(diags) = cordon_policy::parse(&name, text) {
            let shown: Vec<String> = diags.iter().map(ToString::to_string).collect();
            panic!(
                "the example at {name} is not valid policy:\n{}\n{text}",
                shown.join("\n")
            );
        }
    }
}

#[test]
fn the_reference_shows_the_embedded_default_as_it_is() {
    // The first example is the embedded default, without its comments.
    let md = policy_md();
    let (line, first) = &blocks(&md, "yaml")[0];
    let shown = cordon_policy::parse("doc", first).unwrap();
    let embedded = cordon_policy::embedded_default();
    // Rules carry their location in the file; compare what they say.
    let said = |b: &cordon_policy::Body| {
        let rules = |r: &[cordon_policy::Rule]| -> Vec<_> {
            r.iter()
                .map(|r| (r.peers.clone(), r.ports.clone()))
                .collect()
        };
        (b.mode, b.ingress.as_deref().map(rules), rules(&b.egress))
    };
    assert_eq!(
        said(&shown.default),
        said(&embedded.default),
        "docs/policy.md:{line}"
    );
    assert!(shown.policies.is_empty() && shown.sets.is_empty());
}

#[test]
fn the_error_example_prints_what_cordon_check_prints() {
    // The invalid file and the output below it are the two ```text blocks
    // of the "Errors" section; run the real binary on the file.
    let md = policy_md();
    let errors = md.split("\n## Errors\n").nth(1).expect("an Errors section");
    let texts = blocks(errors, "text");
    let (file, expected) = (&texts[0].1, &texts[1].1);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), file).unwrap();
    let out = Command::new(CORDON)
        .args(["check", "-c", "bad.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let printed = String::from_utf8(out.stderr).unwrap() + &String::from_utf8(out.stdout).unwrap();
    let mut printed: Vec<&str> = printed.lines().collect();
    let mut expected: Vec<&str> = expected.lines().collect();
    printed.sort_unstable();
    expected.sort_unstable();
    assert_eq!(printed, expected);
}
