//! `cordon scan` against images built here: a Debian-like root filesystem
//! (os-release of bookworm, a dpkg status file and a distroless-style
//! status.d entry) imported through the Docker API, then a second layer
//! committed from a container that deletes the status.d entry (a real
//! whiteout); an Alpine-like one with a synthesised apk database. Synthetic OSV records: one matches (the positive control),
//! one matches only the first image (the whiteout's control), and three
//! must not (fixed below the installed version, another release, another
//! ecosystem).

use std::path::Path;
use std::process::{Command, Output};

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CommitContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
};
use cordon_lab::docker::{block_on, client};
use cordon_lab::{lab_or_skip, ContainerOpts, TestContainer};
use futures_util::StreamExt;
use serde_json::Value;

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

const STATUS: &str = "\
Package: libssl3
Status: install ok installed
Source: openssl (3.0.11-1~deb12u2)
Version: 3.0.11-1~deb12u2

Package: bash
Status: install ok installed
Version: 5.2.15-2+b2

Package: curl
Status: install ok installed
Version: 7.88.1-10+deb12u5

Package: removed
Status: deinstall ok config-files
Version: 1.0
";

/// (file, record): the first and the last must match the first image.
const RECORDS: [(&str, &str); 5] = [
    (
        "DSA-9001-1.json",
        r#"{"id":"DSA-9001-1","aliases":["CVE-2099-0001"],"summary":"openssl test",
        "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},
        "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.13-1~deb12u1"}]}]}]}"#,
    ),
    (
        "DSA-9002-1.json",
        r#"{"id":"DSA-9002-1","affected":[{"package":{"ecosystem":"Debian:12","name":"bash"},
        "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"5.2.15-2"}]}]}]}"#,
    ),
    (
        "DSA-9003-1.json",
        r#"{"id":"DSA-9003-1","affected":[{"package":{"ecosystem":"Debian:11","name":"curl"},
        "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"7.88.1-10+deb12u99"}]}]}]}"#,
    ),
    (
        "ALPINE-9004.json",
        r#"{"id":"ALPINE-9004","affected":[{"package":{"ecosystem":"Alpine:v3.19","name":"curl"},
        "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"99.0-r0"}]}]}]}"#,
    ),
    (
        "DSA-9005-1.json",
        r#"{"id":"DSA-9005-1","database_specific":{"severity":"low"},
        "affected":[{"package":{"ecosystem":"Debian:12","name":"zlib"},
        "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1:1.3.dfsg-1"}]}]}]}"#,
    ),
];

fn rootfs() -> Vec<u8> {
    rootfs_with(STATUS)
}

/// The test root filesystem with this dpkg status.
fn rootfs_with(status: &str) -> Vec<u8> {
    rootfs_files(&[
        (
            "usr/lib/os-release",
            b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
        ),
        ("var/lib/dpkg/status", status.as_bytes()),
        (
            "var/lib/dpkg/status.d/zlib1g",
            b"Package: zlib1g\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n",
        ),
    ])
}

/// busybox, /etc/os-release linked to /usr/lib/os-release, and `files`.
fn rootfs_files(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut file = |path: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        b.append_data(&mut h, path, data).unwrap();
    };
    let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
    file("bin/busybox", &busybox, 0o755);
    for (path, data) in files {
        file(path, data, 0o644);
    }
    for (path, target) in [
        ("etc/os-release", "../usr/lib/os-release"),
        ("bin/sh", "busybox"),
        ("bin/sleep", "busybox"),
        ("bin/rm", "busybox"),
        ("bin/dd", "busybox"),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, path, target).unwrap();
    }
    b.into_inner().unwrap()
}

/// Images removed on drop.
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        for i in &self.0 {
            let opts = RemoveImageOptionsBuilder::new().force(true).build();
            let _ = block_on(client().remove_image(i, Some(opts), None));
        }
    }
}

fn import(name: &str) {
    import_tar(name, rootfs());
}

fn import_tar(name: &str, tar: Vec<u8>) {
    let (repo, tag) = name.rsplit_once(':').unwrap();
    let opts = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .changes(vec!["ENV PATH=/bin".to_string()])
        .build();
    block_on(async {
        let mut s = client().create_image(Some(opts), Some(bollard::body_full(tar.into())), None);
        while let Some(r) = s.next().await {
            r.expect("docker import");
        }
    });
}

/// Runs `rm PATH` in a container of `base` and commits it as `name`.
fn commit_without(base: &str, path: &str, name: &str) {
    commit_after(base, &["/bin/rm", path], name);
}

/// Runs `cmd` in a container of `base` and commits it as `name`.
fn commit_after(base: &str, cmd: &[&str], name: &str) {
    let (repo, tag) = name.rsplit_once(':').unwrap();
    let d = client();
    block_on(async {
        let opts = CreateContainerOptionsBuilder::new().build();
        let body = ContainerCreateBody {
            image: Some(base.into()),
            cmd: Some(cmd.iter().map(|a| a.to_string()).collect()),
            ..Default::default()
        };
        let id = d
            .create_container(Some(opts), body)
            .await
            .expect("create")
            .id;
        d.start_container(&id, None).await.expect("start");
        let mut wait = d.wait_container(&id, None);
        while let Some(r) = wait.next().await {
            r.expect("rm in the container");
        }
        let opts = CommitContainerOptionsBuilder::new()
            .container(&id)
            .repo(repo)
            .tag(tag)
            .build();
        d.commit_container(opts, bollard::models::ContainerConfig::default())
            .await
            .expect("commit");
        let opts = RemoveContainerOptionsBuilder::new().force(true).build();
        let _ = d.remove_container(&id, Some(opts)).await;
    });
}

fn scan(args: &[&str]) -> Output {
    Command::new(CORDON)
        .arg("scan")
        .args(args)
        .output()
        .expect("run cordon scan")
}

fn ids(out: &Output) -> Vec<String> {
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let mut ids: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn write_db(dir: &Path) {
    for (file, record) in RECORDS {
        std::fs::write(dir.join(file), record).unwrap();
    }
}

#[test]
fn scan_finds_what_the_image_has_and_nothing_else() {
    lab_or_skip!();
    let _lock = cordon_lab::lock();
    let tag = std::process::id();
    let base = format!("cordon-scan-base:{tag}");
    let top = format!("cordon-scan-top:{tag}");
    let _images = Images(vec![top.clone(), base.clone()]);
    import(&base);
    commit_without(&base, "/var/lib/dpkg/status.d/zlib1g", &top);
    let db = tempfile::tempdir().unwrap();
    write_db(db.path());
    let db_path = db.path().to_str().unwrap();

    // The base image: openssl (positive control) and zlib from status.d;
    // not bash (fixed below), not curl (Debian 11's, Alpine's records).
    let out = scan(&[&base, "--db", db_path, "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ids(&out), ["DSA-9001-1", "DSA-9005-1"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let openssl = &v["findings"][0];
    assert_eq!(openssl["id"], "DSA-9001-1", "critical first");
    assert_eq!(openssl["aliases"][0], "CVE-2099-0001");
    assert_eq!(openssl["installed"], "3.0.11-1~deb12u2");
    assert_eq!(openssl["fixed"], "3.0.13-1~deb12u1");
    assert_eq!(openssl["severity"], "critical");
    assert_eq!(openssl["packages"][0], "libssl3");
    assert_eq!(v["images"][0]["os"]["codename"], "bookworm");
    // The inventory as a CycloneDX SBOM: status and status.d packages,
    // not the removed one.
    let out = scan(&[&base, "--db", db_path, "-o", "cyclonedx"]);
    let sbom: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sbom["specVersion"], "1.5");
    let mut names: Vec<&str> = sbom["components"][0]["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "library")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["bash", "curl", "libssl3", "zlib1g"]);

    // The committed layer's whiteout removes zlib; a running container of
    // it is named in the finding.
    let ctr = TestContainer::run(ContainerOpts::new("scan").image(&top));
    let out = scan(&[&top, "--db", db_path, "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(ids(&out), ["DSA-9001-1"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"][0]["containers"][0], ctr.name.as_str());
    // --running finds the same through the container.
    let out = scan(&[
        "--running",
        "--db",
        db_path,
        "-o",
        "json",
        "--fail-on",
        "none",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_container: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["containers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == ctr.name.as_str())
        })
        .collect();
    assert_eq!(by_container.len(), 1, "{v}");
    assert_eq!(by_container[0]["id"], "DSA-9001-1");

    // --fail-on: low-only findings pass a gate at high; the table too.
    let out = scan(&[&top, "--db", db_path, "--fail-on", "critical"]);
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("DSA-9001-1") && table.contains("CVE-2099-0001"),
        "{table}"
    );
    std::fs::remove_file(db.path().join("DSA-9001-1.json")).unwrap();
    let out = scan(&[&base, "--db", db_path, "--fail-on", "high", "-o", "sarif"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sarif["runs"][0]["results"][0]["ruleId"], "DSA-9005-1");
    let out = scan(&[&top, "--db", db_path]);
    assert_eq!(out.status.code(), Some(0), "no finding left: exit 0");

    // An Alpine image with a synthesised apk database: the v3.19 record
    // about the origin matches, Debian's record about the same name not.
    let alpine = format!("cordon-scan-alpine:{tag}");
    let _alpine = Images(vec![alpine.clone()]);
    import_tar(
        &alpine,
        rootfs_files(&[
            (
                "usr/lib/os-release",
                b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n",
            ),
            (
                "lib/apk/db/installed",
                b"P:libcurl\nV:8.5.0-r0\no:curl\n\nP:musl\nV:1.2.4_git20230717-r4\n",
            ),
        ]),
    );
    let out = scan(&[&alpine, "--db", db_path, "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ids(&out), ["ALPINE-9004"]);

    // A missing image: one line, exit 2.
    let out = scan(&["cordon-scan-missing:nope", "--db", db_path]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("no such image: cordon-scan-missing:nope"),
        "{err}"
    );

    // A malformed record: located, exit 2.
    std::fs::write(
        db.path().join("bad.json"),
        "{\n  \"id\": \"X\",\n  \"affected\": [,]\n}",
    )
    .unwrap();
    let out = scan(&[&base, "--db", db_path]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json:3:16: malformed OSV record"), "{err}");
}

/// Issue 19's figures, in one run: a 100 MB image scanned against 50 000
/// synthetic Debian records (5 000 source packages, 10 records each,
/// both releases), timed next to a plain export of the same image (what
/// `docker save` reads) drained to nowhere; the scan's peak RSS stays
/// under 200 MB because the export is streamed.
#[test]
fn a_100mb_image_against_50k_records_streams_in_bounded_memory() {
    lab_or_skip!();
    let _lock = cordon_lab::lock();
    const RECORDS: usize = 50_000;
    const SOURCES: usize = 5_000;
    let db = tempfile::tempdir().unwrap();
    for i in 0..RECORDS {
        let (eco, fixed) = if i % 2 == 0 {
            ("Debian:12", "2.0-1")
        } else {
            ("Debian:11", "9.0-1")
        };
        let record = format!(
            r#"{{"id":"DSA-{i}-1","aliases":["CVE-2099-{i}"],"affected":[{{"package":{{"ecosystem":"{eco}","name":"src{}"}},"ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"{fixed}"}}]}}]}}]}}"#,
            i % SOURCES
        );
        std::fs::write(db.path().join(format!("DSA-{i}-1.json")), record).unwrap();
    }
    // 500 installed packages of sources src0..src499, at 1.0-1: every
    // Debian:12 record about them (fixed 2.0-1) matches, no Debian:11 one.
    let status: String = (0..500)
        .map(|i| {
            format!(
                "Package: bin{i}\nStatus: install ok installed\nSource: src{i}\nVersion: 1.0-1\n\n"
            )
        })
        .collect();
    // The 100 MB are written by a container (from /dev/urandom: not
    // compressible), so this process stays small: a child's peak RSS, as
    // getrusage reports it, starts from its parent's.
    let base = format!("cordon-scan-small:{}", std::process::id());
    let image = format!("cordon-scan-big:{}", std::process::id());
    let _images = Images(vec![image.clone(), base.clone()]);
    import_tar(&base, rootfs_with(&status));
    commit_after(
        &base,
        &[
            "/bin/dd",
            "if=/dev/urandom",
            "of=/usr/filler",
            "bs=1048576",
            "count=100",
        ],
        &image,
    );

    let t = std::time::Instant::now();
    let bytes = block_on(async {
        let mut n = 0usize;
        let mut s = client().export_image(&image);
        while let Some(c) = s.next().await {
            n += c.expect("export").len();
        }
        n
    });
    let export_s = t.elapsed().as_secs_f64();

    let t = std::time::Instant::now();
    let out = scan(&[
        &image,
        "--db",
        db.path().to_str().unwrap(),
        "-o",
        "json",
        "--fail-on",
        "none",
    ]);
    let scan_s = t.elapsed().as_secs_f64();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut u), 0);
        u
    };
    // The largest child so far: cordon scan, the only child this test runs
    // that could weigh 200 MB.
    let rss_mb = usage.ru_maxrss as f64 / 1024.0;
    let found = ids(&out).len();
    eprintln!(
        "export of {:.0} MB: {export_s:.2} s; cordon scan against {RECORDS} records: {scan_s:.2} s, peak RSS {rss_mb:.0} MB, {found} findings",
        bytes as f64 / 1e6
    );
    // 500 sources × 5 Debian:12 records each.
    assert_eq!(found, 500 * (RECORDS / SOURCES) / 2);
    assert!(bytes > 100 << 20, "the image is 100 MB");
    assert!(rss_mb < 200.0, "peak RSS {rss_mb:.0} MB");
}
