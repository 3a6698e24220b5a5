//! A distroless-like image for tests that must not rely on anything inside
//! the container: its root filesystem holds a single static binary (the
//! host's busybox, named `/sleep`, so that it runs only the `sleep` applet)
//! and nothing else: no shell, no tools, no `/bin`.

use std::sync::OnceLock;

use crate::docker::{block_on, client};
use crate::image::{entry, import};

/// The image's reference.
pub const DISTROLESS_IMAGE: &str = "cordon-test-distroless:latest";

/// The command a container of [`DISTROLESS_IMAGE`] runs: it sleeps.
pub const DISTROLESS_CMD: &[&str] = &["/sleep", "3600"];

/// Imports [`DISTROLESS_IMAGE`] (once per process) from `/bin/busybox`.
///
/// # Panics
/// When `/bin/busybox` is missing or Docker refuses the import.
#[track_caller]
pub fn ensure_distroless_image() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        let busybox = std::fs::read("/bin/busybox")
            .map_err(|e| format!("no /bin/busybox ({e}); apt-get install busybox-static"))?;
        let mut tar = Vec::new();
        entry(&mut tar, "sleep", b'0', 0o755, &busybox, "");
        tar.extend_from_slice(&[0; 1024]);
        block_on(import(client(), DISTROLESS_IMAGE, tar, Vec::new()))
    });
    if let Err(e) = result {
        panic!("cordon-lab: {e}");
    }
}
