//! `cordon scan` against images built here: a minimal Debian made by
//! debootstrap (cached under /var/cache/cordon-lab) with records about
//! its real packages; a Rocky-Linux-like image whose rpm database rpm
//! itself wrote, and one with an old BerkeleyDB one; a Debian-like root filesystem
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

/// The cordon binary: this build's, or `CORDON_SCAN_BIN` (the release
/// build, for the figures of docs/scan.md).
fn cordon() -> String {
    std::env::var("CORDON_SCAN_BIN").unwrap_or_else(|_| CORDON.to_string())
}

fn scan(args: &[&str]) -> Output {
    Command::new(cordon())
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

/// Where the debootstrapped Debian is kept between runs.
const DEBOOTSTRAP_CACHE: &str = "/var/cache/cordon-lab/bookworm-minbase";

/// The apt mirror this machine is configured with (deb822 `URIs:` or a
/// one-line `deb URL` entry), else Debian's default.
fn apt_mirror() -> String {
    let mut files = vec![std::path::PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<_> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for line in text.lines().map(str::trim) {
            let url = if let Some(u) = line.strip_prefix("URIs:") {
                u.split_whitespace().next()
            } else if let Some(rest) = line.strip_prefix("deb ") {
                rest.split_whitespace().find(|w| w.contains("://"))
            } else {
                None
            };
            if let Some(u) = url.filter(|u| !u.contains("security")) {
                return u.to_string();
            }
        }
    }
    "http://deb.debian.org/debian".to_string()
}

/// A minimal Debian bookworm made by debootstrap, cached under
/// /var/cache/cordon-lab so later runs reuse it; None (after a skip line,
/// a failure under CI) when debootstrap is missing.
fn debootstrapped() -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(DEBOOTSTRAP_CACHE);
    if dir.join("var/lib/dpkg/status").exists() {
        return Some(dir);
    }
    if Command::new("debootstrap")
        .arg("--version")
        .output()
        .is_err()
    {
        cordon_lab::skip::skip(
            "the debootstrap test needs debootstrap (apt-get install debootstrap)",
        );
        return None;
    }
    let tmp = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    let t = std::time::Instant::now();
    let out = Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&tmp)
        .arg(apt_mirror())
        .output()
        .expect("run debootstrap");
    assert!(
        out.status.success(),
        "debootstrap: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "debootstrap --variant=minbase bookworm: {:.0} s",
        t.elapsed().as_secs_f64()
    );
    std::fs::rename(&tmp, &dir).unwrap();
    Some(dir)
}

/// Appends the tree under `root` to `b` (directories, regular files,
/// symlinks; device nodes and sockets are left out, Docker provides /dev).
fn append_tree(b: &mut tar::Builder<std::fs::File>, root: &Path, rel: &Path) {
    let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let rel = rel.join(e.file_name());
        let path = root.join(&rel);
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let ft = meta.file_type();
        if ft.is_symlink() {
            let mut h = tar::Header::new_gnu();
            h.set_metadata(&meta);
            h.set_size(0);
            b.append_link(&mut h, &rel, std::fs::read_link(&path).unwrap())
                .unwrap();
        } else if ft.is_dir() {
            b.append_dir(&rel, &path).unwrap();
            append_tree(b, root, &rel);
        } else if ft.is_file() {
            b.append_path_with_name(&path, &rel).unwrap();
        }
    }
}

/// Imports the directory `root` as image `name`, streaming its tar from a
/// temporary file (a minimal Debian is 200 MB).
fn import_dir(name: &str, root: &Path) {
    let file = tempfile::tempfile().unwrap();
    let mut b = tar::Builder::new(file);
    append_tree(&mut b, root, Path::new(""));
    let mut file = b.into_inner().unwrap();
    use std::io::{Read, Seek};
    file.seek(std::io::SeekFrom::Start(0)).unwrap();
    let chunks = std::iter::from_fn(move || {
        let mut buf = vec![0u8; 1 << 20];
        match file.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some(Ok(bytes::Bytes::from(buf)))
            }
            Err(e) => Some(Err(e)),
        }
    });
    let (repo, tag) = name.rsplit_once(':').unwrap();
    let opts = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .build();
    block_on(async {
        let body = bollard::body_try_stream(futures_util::stream::iter(chunks));
        let mut s = client().create_image(Some(opts), Some(body), None);
        while let Some(r) = s.next().await {
            r.expect("docker import");
        }
    });
}

/// The dpkg status paragraph of `package`: (Version, Source name).
fn installed(status: &str, package: &str) -> (String, String) {
    let para = status
        .split("\n\n")
        .find(|p| p.lines().any(|l| l == format!("Package: {package}")))
        .unwrap_or_else(|| panic!("{package} is installed"));
    let field = |k: &str| {
        para.lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
    };
    let version = field("Version:").unwrap();
    let source = field("Source:")
        .map(|s| s.split(' ').next().unwrap().to_string())
        .unwrap_or_else(|| package.to_string());
    (version, source)
}

/// A minimal Debian from debootstrap (cached), imported through the
/// Docker API and scanned: records of its real glibc (libc6's source)
/// and dpkg above their installed versions match, in Debian:12 and in
/// Debian without a release; records fixed below, of Debian 11, of
/// Alpine, or naming the binary `libc6`, do not.
#[test]
fn a_debootstrapped_debian_matches_its_real_sources() {
    lab_or_skip!();
    let Some(root) = debootstrapped() else {
        return;
    };
    let _lock = cordon_lab::lock();
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    let (glibc_v, glibc) = installed(&status, "libc6");
    assert_eq!(glibc, "glibc");
    let (dpkg_v, _) = installed(&status, "dpkg");
    let count = status
        .split("\n\n")
        .filter(|p| p.contains("Status: install ok installed"))
        .count();
    let rec = |id: &str, eco: &str, name: &str, fixed: &str| {
        format!(
            r#"{{"id":"{id}","affected":[{{"package":{{"ecosystem":"{eco}","name":"{name}"}},
            "ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"{fixed}"}}]}}]}}]}}"#
        )
    };
    let above = format!("{glibc_v}+cordon1");
    let db = tempfile::tempdir().unwrap();
    for (id, eco, name, fixed) in [
        ("DSA-9101-1", "Debian:12", "glibc", above.as_str()),
        ("DSA-9102-1", "Debian:12", "glibc", "2.0-1"),
        ("DSA-9103-1", "Debian:11", "glibc", above.as_str()),
        ("ALPINE-9104", "Alpine:v3.19", "glibc", "99.0-r0"),
        ("DSA-9105-1", "Debian:12", "libc6", above.as_str()),
        ("DSA-9106-1", "Debian", "dpkg", &format!("{dpkg_v}.1")),
        ("DSA-9107-1", "Debian:12", "glibc", &glibc_v),
    ] {
        std::fs::write(
            db.path().join(format!("{id}.json")),
            rec(id, eco, name, fixed),
        )
        .unwrap();
    }
    let image = format!("cordon-scan-debootstrap:{}", std::process::id());
    let _images = Images(vec![image.clone()]);
    let t = std::time::Instant::now();
    import_dir(&image, &root);
    eprintln!("import: {:.1} s", t.elapsed().as_secs_f64());
    let out = scan(&[&image, "--db", db.path().to_str().unwrap(), "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ids(&out), ["DSA-9101-1", "DSA-9106-1"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["images"][0]["os"]["version_id"], "12");
    assert_eq!(v["images"][0]["os"]["codename"], "bookworm");
    assert_eq!(v["images"][0]["packages"], count);
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "DSA-9101-1")
        .unwrap();
    assert_eq!(f["source"], "glibc");
    assert_eq!(f["installed"], glibc_v.as_str());
    assert_eq!(f["fixed"], above.as_str());
    let bins: Vec<&str> = f["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        bins.contains(&"libc6") && bins.contains(&"libc-bin"),
        "{bins:?}"
    );
}

const RPM_SPEC: &str = "\
Name: cordon-demo
Version: 1.2.3
Release: 4.el9
Epoch: 2
Summary: cordon test package
License: MIT
BuildArch: noarch
%description
test
%package libs
Summary: its library
%description libs
test
%files
%files libs
";

/// An rpmdb.sqlite written by rpm itself: the two packages of
/// [`RPM_SPEC`] built by rpmbuild and installed with `--justdb`.
fn rpmdb_by_rpm(dir: &Path) -> Vec<u8> {
    let run = |c: &mut Command| {
        let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
        assert!(
            out.status.success(),
            "{c:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(dir.join("demo.spec"), RPM_SPEC).unwrap();
    let top = dir.join("top");
    run(Command::new("rpmbuild")
        .arg("--quiet")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("-bb")
        .arg(dir.join("demo.spec")));
    let rpms: Vec<_> = std::fs::read_dir(top.join("RPMS/noarch"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let db = dir.join("db");
    let rpm = || {
        let mut c = Command::new("rpm");
        c.arg("--dbpath")
            .arg(&db)
            .args(["--define", "_db_backend sqlite"]);
        c
    };
    run(rpm().arg("--initdb"));
    run(rpm()
        .args(["-i", "--justdb", "--nodeps", "--ignorearch", "--ignoreos"])
        .args(&rpms));
    std::fs::read(db.join("rpmdb.sqlite")).unwrap()
}

/// A Rocky-Linux-like image whose rpmdb.sqlite rpm wrote: the Rocky 9
/// record about a binary package above its installed epoch:version
/// matches; one fixed below (no epoch), one of Rocky 8 do not. An image
/// with a BerkeleyDB `Packages` gets a one-line warning, never silence;
/// a malformed rpmdb a located error, exit 2.
#[test]
fn an_rpm_image_is_read_through_its_sqlite_rpmdb() {
    lab_or_skip!();
    if Command::new("rpmbuild").arg("--version").output().is_err() {
        cordon_lab::skip::skip("the rpm scan test needs rpmbuild (apt-get install rpm)");
        return;
    }
    let _lock = cordon_lab::lock();
    let work = tempfile::tempdir().unwrap();
    let rpmdb = rpmdb_by_rpm(work.path());
    let rocky_release: &[u8] = b"NAME=\"Rocky Linux\"\nID=\"rocky\"\nVERSION_ID=\"9.3\"\n";
    let tag = std::process::id();
    let rocky = format!("cordon-scan-rocky:{tag}");
    let bdb = format!("cordon-scan-bdb:{tag}");
    let broken = format!("cordon-scan-badrpm:{tag}");
    let _images = Images(vec![rocky.clone(), bdb.clone(), broken.clone()]);
    import_tar(
        &rocky,
        rootfs_files(&[
            ("usr/lib/os-release", rocky_release),
            ("var/lib/rpm/rpmdb.sqlite", &rpmdb),
        ]),
    );
    let db = tempfile::tempdir().unwrap();
    for (id, eco, name, fixed) in [
        (
            "RLSA-9201",
            "Rocky Linux:9",
            "cordon-demo-libs",
            "2:1.2.3-5.el9",
        ),
        ("RLSA-9202", "Rocky Linux:9", "cordon-demo", "1.2.4-1.el9"),
        ("RLSA-9203", "Rocky Linux:8", "cordon-demo", "2:9.0-1.el8"),
    ] {
        let r = format!(
            r#"{{"id":"{id}","affected":[{{"package":{{"ecosystem":"{eco}","name":"{name}"}},
            "ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"{fixed}"}}]}}]}}]}}"#
        );
        std::fs::write(db.path().join(format!("{id}.json")), r).unwrap();
    }
    let db_path = db.path().to_str().unwrap();
    let out = scan(&[&rocky, "--db", db_path, "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ids(&out), ["RLSA-9201"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"][0]["installed"], "2:1.2.3-4.el9");
    assert_eq!(v["images"][0]["packages"], 2);
    let out = scan(&[&rocky, "--db", db_path, "-o", "cyclonedx"]);
    let sbom = String::from_utf8_lossy(&out.stdout);
    assert!(
        sbom.contains("pkg:rpm/rocky/cordon-demo-libs@1.2.3-4.el9?distro=rocky-9.3&epoch=2&upstream=cordon-demo"),
        "{sbom}"
    );

    // BerkeleyDB: not read, said so on stderr in one line.
    import_tar(
        &bdb,
        rootfs_files(&[
            ("usr/lib/os-release", b"ID=\"centos\"\nVERSION_ID=\"7\"\n"),
            ("var/lib/rpm/Packages", &[0x61u8; 4096]),
        ]),
    );
    let out = scan(&[&bdb, "--db", db_path, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        format!("cordon scan: warning: {bdb}: /var/lib/rpm/Packages: unsupported rpm database format (BerkeleyDB; cordon reads rpmdb.sqlite only): its packages are not scanned")
    );

    // A truncated rpmdb: a located error.
    import_tar(
        &broken,
        rootfs_files(&[
            ("usr/lib/os-release", rocky_release),
            ("var/lib/rpm/rpmdb.sqlite", &rpmdb[..rpmdb.len() / 3]),
        ]),
    );
    let out = scan(&[&broken, "--db", db_path]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "cordon scan: image {broken}: /var/lib/rpm/rpmdb.sqlite: "
        )),
        "{err}"
    );
}
