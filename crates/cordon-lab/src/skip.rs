//! Whether lab tests can run here, and the macros that skip them when not.
//!
//! A lab test that cannot run (not root, no `nft`, no Docker) prints one
//! line `skipped: <reason>` on stderr and passes, except under CI
//! (`CI=true`), where it fails with the reason: CI must run them for real.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Why tests needing root and nftables cannot run here, if so: not root, or
/// no `nft`, `ip` or `socat` (the lab's servers and probes).
pub fn require_root_nft() -> Option<String> {
    static CHECK: OnceLock<Option<String>> = OnceLock::new();
    CHECK.get_or_init(check_root_nft).clone()
}

/// Why tests needing root, nftables and Docker cannot run here, if so:
/// everything [`require_root_nft`] checks, plus a dockerd answering on the
/// local socket and either the test image or `/bin/busybox` to build it.
pub fn require_root_docker_nft() -> Option<String> {
    static CHECK: OnceLock<Option<String>> = OnceLock::new();
    CHECK
        .get_or_init(|| require_root_nft().or_else(crate::docker::unavailable))
        .clone()
}

/// The reason lab tests cannot run, with (`need_docker`) or without Docker.
pub fn skip_reason(need_docker: bool) -> Option<String> {
    if need_docker {
        require_root_docker_nft()
    } else {
        require_root_nft()
    }
}

/// True when running under CI (`CI=true` or `CI=1`), where lab tests must
/// never skip.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Reports a skipped test: one line `skipped: <reason>` on stderr (the
/// process's, which the harness does not capture); under CI a panic with
/// the reason instead.
#[track_caller]
pub fn skip(reason: &str) {
    if under_ci() {
        panic!("lab test cannot run under CI=true: {reason}");
    }
    let _ = writeln!(std::io::stderr(), "skipped: {reason}");
}

fn check_root_nft() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("lab tests need root (network namespaces, nftables)".into());
    }
    for (cmd, arg, pkg) in [
        ("nft", "--version", "nftables"),
        ("ip", "-V", "iproute2"),
        ("socat", "-V", "socat"),
    ] {
        let ok = Command::new(cmd)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Some(format!("lab tests need {cmd} (apt-get install {pkg})"));
        }
    }
    None
}

/// Skips the test (returns from it) unless root, `nft` and Docker are
/// available; see [`skip`](crate::skip::skip). Under `CI=true` it fails
/// instead.
///
/// * `lab_or_skip!()` checks and evaluates to `()`.
/// * `lab_or_skip!(cordon_binary)` also creates and evaluates to a
///   [`Lab`](crate::Lab) running that cordon binary.
///
/// ```no_run
/// #[test]
/// fn t() {
///     cordon_lab::lab_or_skip!();
///     let _lock = cordon_lab::lock();
///     // ...
/// }
/// ```
#[macro_export]
macro_rules! lab_or_skip {
    () => {
        if let Some(reason) = $crate::skip::require_root_docker_nft() {
            $crate::skip::skip(&reason);
            return;
        }
    };
    ($cordon:expr) => {{
        $crate::lab_or_skip!();
        $crate::Lab::new($cordon)
    }};
}

/// Like [`lab_or_skip!`] for tests that need only root and nftables (network
/// namespaces, no Docker).
#[macro_export]
macro_rules! nft_or_skip {
    () => {
        if let Some(reason) = $crate::skip::require_root_nft() {
            $crate::skip::skip(&reason);
            return;
        }
    };
}
