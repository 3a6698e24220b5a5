//! rpm's database: `rpmdb.sqlite` (RHEL/Rocky/Alma 9, Fedora 33 and
//! later, openSUSE), a SQLite file whose `Packages` table holds one rpm
//! header blob per installed package. The blob is parsed here, with
//! bounds checked at every step: `il` and `dl` (big-endian u32: index
//! entries, data bytes), `il` entries of 16 bytes (tag, type, offset,
//! count), then the data. Only NAME, VERSION, RELEASE, EPOCH, ARCH and
//! SOURCERPM are read. No maintained Rust reader of the rpmdb exists on
//! crates.io (the one crate, `rpmdb` 0.1.0, has had one release in 2023).

use std::path::Path;

use super::Package;

/// Most index entries a header may have (rpm's own limit).
const MAX_ENTRIES: usize = 0xffff;
/// Most data bytes a header may have (rpm's own limit, 256 MiB).
const MAX_DATA: usize = 0x0fff_ffff;

const TAG_NAME: i32 = 1000;
const TAG_VERSION: i32 = 1001;
const TAG_RELEASE: i32 = 1002;
const TAG_EPOCH: i32 = 1003;
const TAG_ARCH: i32 = 1022;
const TAG_SOURCERPM: i32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

/// The fields cordon reads from one rpm header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// NAME.
    pub name: Option<String>,
    /// VERSION.
    pub version: Option<String>,
    /// RELEASE.
    pub release: Option<String>,
    /// EPOCH, if the package has one.
    pub epoch: Option<u32>,
    /// ARCH.
    pub arch: Option<String>,
    /// SOURCERPM (`openssl-3.0.7-24.el9.src.rpm`).
    pub source_rpm: Option<String>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Parses an rpm header blob as rpmdb stores it (no leading magic).
pub fn parse_header(blob: &[u8]) -> Result<Header, String> {
    let il = be32(blob, 0).ok_or("header shorter than 8 bytes")? as usize;
    let dl = be32(blob, 4).ok_or("header shorter than 8 bytes")? as usize;
    if il == 0 || il > MAX_ENTRIES {
        return Err(format!(
            "header has {il} index entries (1 to {MAX_ENTRIES})"
        ));
    }
    if dl > MAX_DATA {
        return Err(format!("header data of {dl} bytes (at most {MAX_DATA})"));
    }
    // il ≤ 0xffff and dl < 2^28: no overflow on any platform cordon runs.
    let data_at = 8 + il * 16;
    if blob.len() < data_at + dl {
        return Err(format!(
            "header of {} bytes, {} expected ({il} entries, {dl} data bytes)",
            blob.len(),
            data_at + dl
        ));
    }
    let data = &blob[data_at..data_at + dl];
    let mut h = Header::default();
    for i in 0..il {
        let e = 8 + i * 16;
        let tag = be32(blob, e).unwrap_or(0) as i32;
        let kind = be32(blob, e + 4).unwrap_or(0);
        let offset = be32(blob, e + 8).unwrap_or(0) as usize;
        let count = be32(blob, e + 12).unwrap_or(0);
        let wanted = matches!(
            tag,
            TAG_NAME | TAG_VERSION | TAG_RELEASE | TAG_EPOCH | TAG_ARCH | TAG_SOURCERPM
        );
        if !wanted {
            continue;
        }
        let bad = |what: &str| format!("header entry {i} (tag {tag}): {what}");
        if offset >= dl {
            return Err(bad(&format!("offset {offset} past the {dl} data bytes")));
        }
        if tag == TAG_EPOCH {
            if kind != TYPE_INT32 || count < 1 {
                return Err(bad(&format!("type {kind} count {count}, not an INT32")));
            }
            h.epoch = Some(be32(data, offset).ok_or_else(|| bad("INT32 past the data"))?);
            continue;
        }
        if kind != TYPE_STRING && kind != TYPE_I18NSTRING {
            return Err(bad(&format!("type {kind}, not a STRING")));
        }
        let rest = &data[offset..];
        let end = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| bad("string without its NUL"))?;
        let s = Some(String::from_utf8_lossy(&rest[..end]).into_owned());
        match tag {
            TAG_NAME => h.name = s,
            TAG_VERSION => h.version = s,
            TAG_RELEASE => h.release = s,
            TAG_ARCH => h.arch = s,
            _ => h.source_rpm = s,
        }
    }
    Ok(h)
}

/// Splits `NAME-VERSION-RELEASE.src.rpm` into (NAME, VERSION-RELEASE).
pub fn split_source_rpm(s: &str) -> Option<(&str, &str)> {
    let nvr = s
        .strip_suffix(".src.rpm")
        .or_else(|| s.strip_suffix(".nosrc.rpm"))?;
    let (nv, _release) = nvr.rsplit_once('-')?;
    let (name, _version) = nv.rsplit_once('-')?;
    if name.is_empty() {
        return None;
    }
    Some((name, &nvr[name.len() + 1..]))
}

impl Header {
    /// The installed package: its version as `EPOCH:VERSION-RELEASE`
    /// (no `EPOCH:` without one), as OSV's RPM ecosystems write versions.
    /// None for a header without a name or version (rpm's own
    /// `gpg-pubkey` entries have both, and are skipped by the caller).
    pub fn package(&self) -> Option<Package> {
        let name = self.name.clone()?;
        let mut version = String::new();
        if let Some(e) = self.epoch {
            version.push_str(&format!("{e}:"));
        }
        version.push_str(self.version.as_deref()?);
        if let Some(r) = &self.release {
            version.push('-');
            version.push_str(r);
        }
        let (source, source_version) = match self.source_rpm.as_deref().and_then(split_source_rpm) {
            Some((n, vr)) => {
                let epoch = self.epoch.map(|e| format!("{e}:")).unwrap_or_default();
                (n.to_string(), format!("{epoch}{vr}"))
            }
            None => (name.clone(), version.clone()),
        };
        Some(Package {
            name,
            version,
            source,
            source_version,
            db: "rpm",
        })
    }
}

/// The installed packages of an rpmdb.sqlite, given as bytes (a copy of
/// the file from the image). Errors name the row (`hnum`) of a malformed
/// header.
pub fn parse_sqlite(bytes: &[u8]) -> Result<Vec<Package>, String> {
    // SQLite reads files: the bytes go to a private temporary file.
    let mut tmp = tempfile::NamedTempFile::new().map_err(|e| format!("temporary file: {e}"))?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(|e| format!("temporary file: {e}"))?;
    read_sqlite_file(tmp.path())
}

/// The installed packages of the rpmdb.sqlite at `path` (opened read-only,
/// as an immutable file).
pub fn read_sqlite_file(path: &Path) -> Result<Vec<Package>, String> {
    use rusqlite::OpenFlags;
    let uri = format!("file:{}?immutable=1", path.display());
    let db = rusqlite::Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(|e| format!("not an SQLite database: {e}"))?;
    let mut stmt = db
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .map_err(|e| format!("no Packages table: {e}"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .map_err(|e| format!("Packages: {e}"))?;
    let mut out = Vec::new();
    for row in rows {
        let (hnum, blob) = row.map_err(|e| format!("Packages: {e}"))?;
        let h = parse_header(&blob).map_err(|e| format!("package {hnum}: {e}"))?;
        // rpm keeps imported signing keys as `gpg-pubkey` pseudo-packages.
        if h.name.as_deref() == Some("gpg-pubkey") {
            continue;
        }
        match h.package() {
            Some(p) => out.push(p),
            None => return Err(format!("package {hnum}: header without NAME or VERSION")),
        }
    }
    Ok(out)
}

/// Builds a header blob holding `entries` (tag, value), for tests: STRING
/// values, or an INT32 for EPOCH.
#[doc(hidden)]
pub fn build_header(entries: &[(i32, &str)]) -> Vec<u8> {
    let mut index = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    for (tag, value) in entries {
        if *tag == TAG_EPOCH {
            while !data.len().is_multiple_of(4) {
                data.push(0);
            }
            index.push((*tag, TYPE_INT32, data.len() as u32));
            data.extend_from_slice(&value.parse::<u32>().unwrap_or(0).to_be_bytes());
        } else {
            index.push((*tag, TYPE_STRING, data.len() as u32));
            data.extend_from_slice(value.as_bytes());
            data.push(0);
        }
    }
    let mut blob = Vec::new();
    blob.extend_from_slice(&(index.len() as u32).to_be_bytes());
    blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
    for (tag, kind, offset) in index {
        blob.extend_from_slice(&tag.to_be_bytes());
        blob.extend_from_slice(&kind.to_be_bytes());
        blob.extend_from_slice(&offset.to_be_bytes());
        blob.extend_from_slice(&1u32.to_be_bytes());
    }
    blob.extend_from_slice(&data);
    blob
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openssl() -> Vec<u8> {
        build_header(&[
            (TAG_NAME, "openssl-libs"),
            (TAG_EPOCH, "1"),
            (TAG_VERSION, "3.0.7"),
            (TAG_RELEASE, "24.el9"),
            (TAG_ARCH, "x86_64"),
            (TAG_SOURCERPM, "openssl-3.0.7-24.el9.src.rpm"),
        ])
    }

    #[test]
    fn a_header_gives_name_epoch_version_release_and_source() {
        let h = parse_header(&openssl()).unwrap();
        assert_eq!(h.arch.as_deref(), Some("x86_64"));
        let p = h.package().unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("openssl-libs", "1:3.0.7-24.el9")
        );
        assert_eq!(
            (p.source.as_str(), p.source_version.as_str()),
            ("openssl", "1:3.0.7-24.el9")
        );
        let h = parse_header(&build_header(&[
            (TAG_NAME, "bash"),
            (TAG_VERSION, "5.1.8"),
            (TAG_RELEASE, "6.el9_1"),
        ]))
        .unwrap();
        assert_eq!(h.package().unwrap().version, "5.1.8-6.el9_1");
    }

    #[test]
    fn source_rpm_names_split_at_the_last_two_hyphens() {
        assert_eq!(
            split_source_rpm("python3.11-pip-22.3.1-4.el9.src.rpm"),
            Some(("python3.11-pip", "22.3.1-4.el9"))
        );
        assert_eq!(split_source_rpm("nodash.src.rpm"), None);
        assert_eq!(split_source_rpm("a-1-2.noarch.rpm"), None);
    }

    #[test]
    fn malformed_headers_say_what_is_wrong() {
        assert!(parse_header(&[0, 0, 0]).unwrap_err().contains("shorter"));
        let mut b = openssl();
        b.truncate(b.len() - 1);
        assert!(parse_header(&b).unwrap_err().contains("expected"));
        // Entry 0's offset past the data.
        let mut b = openssl();
        b[16..20].copy_from_slice(&0xffffu32.to_be_bytes());
        let e = parse_header(&b).unwrap_err();
        assert!(e.contains("entry 0 (tag 1000): offset 65535"), "{e}");
        // The last string without its NUL.
        let mut b = openssl();
        let n = b.len();
        b[n - 1] = b'x';
        assert!(parse_header(&b).unwrap_err().contains("NUL"));
        // Too many entries claimed.
        let mut b = openssl();
        b[0..4].copy_from_slice(&0x10000u32.to_be_bytes());
        assert!(parse_header(&b).unwrap_err().contains("index entries"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// Any bytes: an answer or an error, never a panic or a hang.
        #[test]
        fn any_bytes_parse_or_fail_cleanly(blob in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse_header(&blob);
        }

        /// A valid header with bytes changed: an answer or an error.
        #[test]
        fn mutated_headers_parse_or_fail_cleanly(
            edits in proptest::collection::vec((0usize..400, proptest::prelude::any::<u8>()), 1..8),
            cut in 0usize..400,
        ) {
            let mut b = openssl();
            for (at, v) in edits {
                let n = b.len();
                b[at % n] = v;
            }
            let _ = parse_header(&b);
            b.truncate(cut.min(b.len()));
            let _ = parse_header(&b);
        }
    }
}
