//! The lab image: a one-binary root filesystem from the host's static
//! busybox (Debian's busybox-static), imported through the Docker API
//! (`docker import` of a tar stream), since no registry can be reached.
//!
//! Its root filesystem: `/bin/busybox` with applet symlinks ([`APPLETS`]),
//! `/etc/passwd` (root, nobody), `/etc/group`, `/etc/services`, `/tmp`,
//! `PATH=/bin`, and the label [`VERSION_LABEL`]: an image of an older
//! layout is rebuilt.

use bollard::query_parameters::{CreateImageOptionsBuilder, RemoveImageOptionsBuilder};
use bollard::Docker;
use futures_util::StreamExt;

/// The busybox applets linked in `/bin`.
pub const APPLETS: &[&str] = &[
    "sh", "sleep", "nc", "ip", "ping", "ping6", "cat", "echo", "ls", "id", "wget", "nslookup",
    "ifconfig", "route", "arping", "timeout", "ps", "true", "false", "kill", "grep", "head",
    "printf", "hostname", "netstat", "mkdir", "rm", "env", "uname", "tr", "wc", "sed", "seq",
    "date", "test", "[", "dd",
];

/// The image label naming its layout version.
pub const VERSION_LABEL: &str = "cordon-lab.image";
const VERSION: &str = "2";

/// Imports `image` unless it exists in the current layout; says why when
/// it cannot.
pub async fn ensure(docker: &Docker, image: &str) -> Result<(), String> {
    let old = match docker.inspect_image(image).await {
        Ok(info) => {
            let current = info
                .config
                .as_ref()
                .and_then(|c| c.labels.as_ref())
                .and_then(|l| l.get(VERSION_LABEL))
                .is_some_and(|v| v == VERSION);
            if current {
                return Ok(());
            }
            info.id
        }
        Err(_) => None,
    };
    build(docker, image).await?;
    if let Some(old) = old {
        // The old layout, now untagged; still used by a container maybe.
        let opts = RemoveImageOptionsBuilder::new().noprune(false).build();
        let _ = docker.remove_image(&old, Some(opts), None).await;
    }
    Ok(())
}

/// The lab image's root filesystem as an uncompressed tar.
fn rootfs(image: &str) -> Result<Vec<u8>, String> {
    let busybox = std::fs::read("/bin/busybox").map_err(|e| {
        format!("no image {image} and no /bin/busybox to build it from ({e}); apt-get install busybox-static")
    })?;
    let mut tar = Vec::new();
    for dir in [
        "bin/", "etc/", "root/", "proc/", "sys/", "dev/", "run/", "var/",
    ] {
        entry(&mut tar, dir, b'5', 0o755, b"", "");
    }
    entry(&mut tar, "tmp/", b'5', 0o1777, b"", "");
    entry(&mut tar, "bin/busybox", b'0', 0o755, &busybox, "");
    for a in APPLETS {
        entry(&mut tar, &format!("bin/{a}"), b'2', 0o777, b"", "busybox");
    }
    entry(
        &mut tar,
        "etc/passwd",
        b'0',
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        "",
    );
    entry(
        &mut tar,
        "etc/group",
        b'0',
        0o644,
        b"root:x:0:\nnogroup:x:65534:\n",
        "",
    );
    entry(
        &mut tar,
        "etc/services",
        b'0',
        0o644,
        b"echo 7/tcp\necho 7/udp\nssh 22/tcp\ndomain 53/tcp\ndomain 53/udp\nhttp 80/tcp\nhttps 443/tcp\n",
        "",
    );
    tar.extend_from_slice(&[0; 1024]);
    Ok(tar)
}

async fn build(docker: &Docker, image: &str) -> Result<(), String> {
    let tar = rootfs(image)?;
    import(
        docker,
        image,
        tar,
        vec![
            "ENV PATH=/bin".into(),
            format!("LABEL {VERSION_LABEL}={VERSION}"),
        ],
    )
    .await
}

/// An image made by [`labelled`]: the lab image's content with labels of
/// its own, as a Dockerfile's `LABEL` gives them. Removed on drop.
pub struct TestImage {
    /// Its reference (`repo:tag`).
    pub name: String,
}

impl Drop for TestImage {
    fn drop(&mut self) {
        let opts = RemoveImageOptionsBuilder::new().force(true).build();
        let _ = crate::docker::block_on(crate::docker::client().remove_image(
            &self.name,
            Some(opts),
            None,
        ));
    }
}

/// Imports the lab image's content as `name` with `LABEL k=v` for each of
/// `labels` (values without spaces or quotes).
///
/// # Panics
/// When `/bin/busybox` is missing or Docker refuses the import.
#[track_caller]
pub fn labelled(name: &str, labels: &[(&str, &str)]) -> TestImage {
    let tar = rootfs(name).unwrap_or_else(|e| panic!("cordon-lab: {e}"));
    let mut changes = vec!["ENV PATH=/bin".to_string()];
    changes.extend(labels.iter().map(|(k, v)| format!("LABEL {k}={v}")));
    crate::docker::block_on(import(crate::docker::client(), name, tar, changes))
        .unwrap_or_else(|e| panic!("cordon-lab: {e}"));
    TestImage { name: name.into() }
}

/// Imports a root filesystem (an uncompressed tar made with [`entry`]) as
/// `image`, with Dockerfile `changes` (`ENV`, `LABEL`, …).
pub(crate) async fn import(
    docker: &Docker,
    image: &str,
    tar: Vec<u8>,
    changes: Vec<String>,
) -> Result<(), String> {
    let (repo, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .changes(changes)
        .build();
    let mut progress =
        docker.create_image(Some(options), Some(bollard::body_full(tar.into())), None);
    while let Some(item) = progress.next().await {
        item.map_err(|e| format!("cannot import {image}: {e}"))?;
    }
    Ok(())
}

/// Appends one ustar entry (directory `5`, file `0` or symlink `2`).
pub(crate) fn entry(out: &mut Vec<u8>, name: &str, kind: u8, mode: u32, data: &[u8], link: &str) {
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, value: &[u8]| {
        h[at..at + value.len()].copy_from_slice(value);
    };
    let octal = |h: &mut [u8; 512], at: usize, len: usize, value: u64| {
        let text = format!("{value:0w$o}", w = len - 1);
        h[at..at + len - 1].copy_from_slice(text.as_bytes());
    };
    put(&mut h, 0, name.as_bytes());
    octal(&mut h, 100, 8, mode.into());
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, data.len() as u64);
    octal(&mut h, 136, 12, 0);
    h[156] = kind;
    put(&mut h, 157, link.as_bytes());
    put(&mut h, 257, b"ustar\x0000");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}
