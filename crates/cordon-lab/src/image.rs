//! The lab image: a one-binary root filesystem from the host's static
//! busybox (Debian's busybox-static), imported through the Docker API,
//! since no registry can be reached.

use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;

const APPLETS: &[&str] = &[
    "sh", "sleep", "nc", "ip", "ping", "ping6", "cat", "echo", "ls", "id", "wget", "nslookup",
    "ifconfig", "route", "arping", "timeout", "ps", "true", "false",
];

/// Imports `image` unless it exists; says why when it cannot.
pub async fn ensure(docker: &Docker, image: &str) -> Result<(), String> {
    if docker.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    let busybox = std::fs::read("/bin/busybox").map_err(|e| {
        format!("no image {image} and no /bin/busybox to build it from ({e}); apt-get install busybox-static")
    })?;
    let mut tar = Vec::new();
    for dir in ["bin/", "etc/", "tmp/", "root/"] {
        entry(&mut tar, dir, b'5', 0o755, b"", "");
    }
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
        b"ssh 22/tcp\nhttp 80/tcp\n",
        "",
    );
    tar.extend_from_slice(&[0; 1024]);
    let (repo, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .changes(vec!["ENV PATH=/bin".into()])
        .build();
    let mut progress =
        docker.create_image(Some(options), Some(bollard::body_full(tar.into())), None);
    while let Some(item) = progress.next().await {
        item.map_err(|e| format!("cannot import {image}: {e}"))?;
    }
    Ok(())
}

/// Appends one ustar entry (directory `5`, file `0` or symlink `2`).
fn entry(out: &mut Vec<u8>, name: &str, kind: u8, mode: u32, data: &[u8], link: &str) {
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
