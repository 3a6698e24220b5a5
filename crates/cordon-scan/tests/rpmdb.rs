//! rpm databases: one made by rpm itself (Debian's `rpm` and `rpmbuild`:
//! two packages of one source, installed with `--justdb` into a fresh
//! SQLite rpmdb) read by cordon and compared with what `rpm -qa` says of
//! it; one synthesised with rusqlite, with a malformed header whose row is
//! named in the error; and the inventory of a Rocky-like root filesystem
//! matched against AlmaLinux/Rocky records.

use std::path::Path;
use std::process::Command;

use cordon_scan::layers::{Node, Rootfs};
use cordon_scan::osv::Db;
use cordon_scan::pkgdb::rpm;

const SPEC: &str = "\
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

/// A skipped test: one line on stderr; under CI (`CI=true`) a failure.
fn skip(reason: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    assert!(!ci, "cannot run under CI: {reason}");
    eprintln!("skipped: {reason}");
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds the two packages of [`SPEC`] and installs them (`--justdb`) in
/// a new SQLite rpmdb under `dir`; returns the database's path.
pub fn make_rpmdb(dir: &Path) -> std::path::PathBuf {
    let spec = dir.join("demo.spec");
    std::fs::write(&spec, SPEC).unwrap();
    let top = dir.join("top");
    run(Command::new("rpmbuild")
        .arg("--quiet")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("-bb")
        .arg(&spec));
    let rpms: Vec<_> = std::fs::read_dir(top.join("RPMS/noarch"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(rpms.len(), 2, "{rpms:?}");
    let db = dir.join("db");
    let rpm = |args: &[&str]| {
        let mut c = Command::new("rpm");
        c.arg("--dbpath")
            .arg(&db)
            .args(["--define", "_db_backend sqlite"])
            .args(args);
        c
    };
    run(&mut rpm(&["--initdb"]));
    run(rpm(&["-i", "--justdb", "--nodeps", "--ignorearch", "--ignoreos"]).args(&rpms));
    db.join("rpmdb.sqlite")
}

#[test]
fn an_rpmdb_made_by_rpm_reads_as_rpm_lists_it() {
    if Command::new("rpmbuild").arg("--version").output().is_err() {
        skip("no rpmbuild on this machine (apt-get install rpm)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = make_rpmdb(dir.path());
    // What rpm itself says is installed.
    let listed = run(Command::new("rpm")
        .arg("--dbpath")
        .arg(path.parent().unwrap())
        .args([
            "-qa",
            "--qf",
            "%{NAME} %{EPOCH}:%{VERSION}-%{RELEASE} %{SOURCERPM}\\n",
        ]));
    let mut want: Vec<String> = listed.lines().map(str::to_string).collect();
    want.sort();
    assert_eq!(
        want,
        [
            "cordon-demo 2:1.2.3-4.el9 cordon-demo-1.2.3-4.el9.src.rpm",
            "cordon-demo-libs 2:1.2.3-4.el9 cordon-demo-1.2.3-4.el9.src.rpm",
        ]
    );
    // cordon, from the file's bytes as an image layer holds them.
    let bytes = std::fs::read(&path).unwrap();
    let mut got: Vec<String> = rpm::parse_sqlite(&bytes)
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p.db, "rpm");
            format!("{} {} {}@{}", p.name, p.version, p.source, p.source_version)
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "cordon-demo 2:1.2.3-4.el9 cordon-demo@2:1.2.3-4.el9",
            "cordon-demo-libs 2:1.2.3-4.el9 cordon-demo@2:1.2.3-4.el9",
        ]
    );
}

/// A synthesised rpmdb.sqlite: rows of header blobs in rpm's table.
fn synth_db(blobs: &[Vec<u8>]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rpmdb.sqlite");
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(
        "CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL)",
    )
    .unwrap();
    for b in blobs {
        db.execute("INSERT INTO Packages (blob) VALUES (?1)", [b])
            .unwrap();
    }
    drop(db);
    std::fs::read(&path).unwrap()
}

fn header(name: &str, epoch: Option<&str>, version: &str, release: &str, srpm: &str) -> Vec<u8> {
    let mut e = vec![(1000, name), (1001, version), (1002, release), (1044, srpm)];
    if let Some(ep) = epoch {
        e.push((1003, ep));
    }
    rpm::build_header(&e)
}

#[test]
fn a_malformed_header_names_its_row() {
    let good = header("bash", None, "5.1.8", "6.el9", "bash-5.1.8-6.el9.src.rpm");
    let mut bad = good.clone();
    bad.truncate(bad.len() - 3);
    let e = rpm::parse_sqlite(&synth_db(&[good.clone(), bad])).unwrap_err();
    assert!(e.starts_with("package 2: header of"), "{e}");
    assert_eq!(rpm::parse_sqlite(&synth_db(&[good])).unwrap().len(), 1);
    let e = rpm::parse_sqlite(b"SQLite format 3\0 but not really").unwrap_err();
    assert!(e.contains("SQLite") || e.contains("Packages"), "{e}");
}

fn record(id: &str, eco: &str, name: &str, fixed: &str) -> String {
    format!(
        r#"{{"id":"{id}","affected":[{{"package":{{"ecosystem":"{eco}","name":"{name}"}},
        "ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"{fixed}"}}]}}]}}]}}"#
    )
}

/// A Rocky Linux 9 root filesystem with an rpmdb: records of Rocky Linux
/// 9 about installed binary packages above their version match (with
/// epochs and `^` ordered as rpm orders them); records fixed at or below,
/// of Rocky 8, of AlmaLinux, or about the source name only, do not.
#[test]
fn rocky_packages_match_their_release_by_binary_name() {
    let db = synth_db(&[
        header(
            "openssl-libs",
            Some("1"),
            "3.0.7",
            "24.el9",
            "openssl-3.0.7-24.el9.src.rpm",
        ),
        header("bash", None, "5.1.8", "6.el9", "bash-5.1.8-6.el9.src.rpm"),
        header(
            "vim-minimal",
            Some("2"),
            "8.2.2637",
            "20.el9_1",
            "vim-8.2.2637-20.el9_1.src.rpm",
        ),
        rpm::build_header(&[(1000, "gpg-pubkey"), (1001, "350d275d"), (1002, "6279464b")]),
    ]);
    let mut fs = Rootfs::default();
    fs.files.insert(
        "etc/os-release".into(),
        Node::File(b"ID=\"rocky\"\nVERSION_ID=\"9.3\"\n".to_vec()),
    );
    fs.files
        .insert("var/lib/rpm/rpmdb.sqlite".into(), Node::File(db));
    let inv = cordon_scan::inventory::read(&fs).unwrap();
    assert_eq!(inv.packages.len(), 3, "gpg-pubkey is not a package");
    assert!(inv.unread.is_empty());
    let mut osv = Db::default();
    for (i, r) in [
        // Above: 1:3.0.7-25.el9 > 1:3.0.7-24.el9.
        record("RLSA-1", "Rocky Linux:9", "openssl-libs", "1:3.0.7-25.el9"),
        // Without the epoch the fix is below the installed 1:3.0.7.
        record("RLSA-2", "Rocky Linux:9", "openssl-libs", "3.0.8-1.el9"),
        record("RLSA-3", "Rocky Linux:8", "bash", "9.0-1.el8"),
        record("ALSA-4", "AlmaLinux:9", "bash", "9.0-1.el9"),
        // The source name: OSV's RPM records name binary packages.
        record("RLSA-5", "Rocky Linux:9", "openssl", "1:9.0-1.el9"),
        // 8.2.2637^1 sorts above 8.2.2637: fixed above the installed one.
        record(
            "RLSA-6",
            "Rocky Linux:9",
            "vim-minimal",
            "2:8.2.2637^1-1.el9",
        ),
        record("RLSA-7", "Rocky Linux:9", "bash", "5.1.8-6.el9"),
    ]
    .iter()
    .enumerate()
    {
        osv.add(&format!("{i}.json"), r.as_bytes()).unwrap();
    }
    let found = cordon_scan::find(&osv, &inv, "rocky:9", &[]);
    let ids: Vec<(&str, &str, &str)> = found
        .iter()
        .map(|f| (f.id.as_str(), f.source.as_str(), f.installed.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("RLSA-1", "openssl-libs", "1:3.0.7-24.el9"),
            ("RLSA-6", "vim-minimal", "2:8.2.2637-20.el9_1"),
        ]
    );
}

/// The old formats are never silent: each is one `unread` line.
#[test]
fn berkeleydb_and_ndb_databases_are_named_unsupported() {
    let mut fs = Rootfs::default();
    fs.files
        .insert("var/lib/rpm/Packages".into(), Node::Present);
    fs.files
        .insert("usr/lib/sysimage/rpm/Packages.db".into(), Node::Present);
    let inv = cordon_scan::inventory::read(&fs).unwrap();
    assert_eq!(
        inv.unread,
        [
            "/var/lib/rpm/Packages: unsupported rpm database format (BerkeleyDB; cordon reads rpmdb.sqlite only): its packages are not scanned",
            "/usr/lib/sysimage/rpm/Packages.db: unsupported rpm database format (ndb; cordon reads rpmdb.sqlite only): its packages are not scanned",
        ]
    );
    assert!(inv.packages.is_empty());
}
