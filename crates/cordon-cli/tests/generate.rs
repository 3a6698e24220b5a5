//! What cordon prints about itself: `cordon completions SHELL`, `cordon
//! man DIR` (for packaging) and `cordon default`.

use std::process::{Command, Output};

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

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

#[test]
fn completions_cover_the_subcommands_in_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _cordon"),
        ("zsh", "#compdef cordon"),
        ("fish", "complete -c cordon"),
    ] {
        let o = cordon(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for sub in ["apply", "daemon", "reload", "completions", "default"] {
            assert!(script.contains(sub), "{shell}: no {sub}");
        }
        // Options of subcommands too, e.g. `cordon daemon --reconcile-every`.
        assert!(script.contains("reconcile-every"), "{shell}");
    }
}

#[test]
fn an_unknown_shell_is_misuse_in_one_line() {
    let o = cordon(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("\"tcsh\"") && err.contains("bash"), "{err}");
}

#[test]
fn man_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let o = cordon(&["man", pages.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let main = std::fs::read_to_string(pages.join("cordon.1")).unwrap();
    assert!(main.contains(".TH cordon 1"), "{main}");
    // The subcommands are listed, and the page says what only it says.
    assert!(main.contains("cordon\\-daemon(1)"), "{main}");
    for section in [
        ".SH \"EXIT STATUS\"",
        ".SH FILES",
        "/etc/cordon/cordon.yaml",
    ] {
        assert!(main.contains(section), "no {section}:\n{main}");
    }
    for page in ["cordon-daemon.1", "cordon-boot.1", "cordon-set-add.1"] {
        let text = std::fs::read_to_string(pages.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
        assert!(
            text.contains("cordon 0."),
            "{page}: the footer names cordon"
        );
    }
    let daemon = std::fs::read_to_string(pages.join("cordon-daemon.1")).unwrap();
    assert!(daemon.contains("reconcile\\-every"), "{daemon}");
    assert!(!pages.join("cordon-man.1").exists(), "hidden: no page");
}

#[test]
fn man_into_an_unwritable_place_fails_in_one_line() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let o = cordon(&["man", file.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn default_prints_the_embedded_default_which_checks() {
    let o = cordon(&["default"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), cordon_policy::EMBEDDED_DEFAULT);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cordon.yaml");
    std::fs::write(&file, &o.stdout).unwrap();
    let check = cordon(&["check", "-c", file.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    // A positive control: check does reject a broken file.
    std::fs::write(&file, "version: 1\ndefault:\n  egress: [oops]\n").unwrap();
    let bad = cordon(&["check", "-c", file.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
}
