//! OSV records (the OSV JSON schema), loaded from a directory of `.json`
//! files, one `.json` file, or an ecosystem's `all.zip` as osv.dev
//! publishes it; indexed by (distribution, package name).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::ScanError;
use crate::severity::{self, Severity};

/// One event of a range.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Event {
    /// First affected version (`0`: all earlier ones).
    pub introduced: Option<String>,
    /// First fixed version.
    pub fixed: Option<String>,
    /// Last affected version.
    pub last_affected: Option<String>,
}

/// A range of affected versions.
#[derive(Clone, Debug, Deserialize)]
pub struct Range {
    /// `ECOSYSTEM` (the only kind OS packages use), `SEMVER` or `GIT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Events in the record's order.
    #[serde(default)]
    pub events: Vec<Event>,
}

/// The package an `affected` entry is about.
#[derive(Clone, Debug, Deserialize)]
pub struct PackageRef {
    /// `Debian:12`, `Alpine:v3.19`, ...
    pub ecosystem: String,
    /// The (source) package name.
    pub name: String,
}

/// One `affected` entry.
#[derive(Clone, Debug, Deserialize)]
pub struct Affected {
    /// Its package.
    pub package: PackageRef,
    /// Affected ranges.
    #[serde(default)]
    pub ranges: Vec<Range>,
    /// Affected versions listed one by one.
    #[serde(default)]
    pub versions: Vec<String>,
    /// Debian's `urgency`, other databases' `severity` for this entry.
    #[serde(default)]
    pub ecosystem_specific: Option<Specific>,
    /// Severity for this entry, computed at load time.
    #[serde(skip, default = "unknown")]
    pub severity: Severity,
}

fn unknown() -> Severity {
    Severity::Unknown
}

/// The severity words of `database_specific` / `ecosystem_specific`
/// (their other fields are not read).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Specific {
    /// `HIGH`, `moderate`, ...
    pub severity: Option<Value>,
    /// Debian's urgency: `low`, `medium`, `high`, `unimportant`.
    pub urgency: Option<Value>,
}

/// One `severity` entry: a CVSS vector (or a score).
#[derive(Clone, Debug, Deserialize)]
pub struct Score {
    /// `CVSS_V3`, `CVSS_V4`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The vector.
    pub score: String,
}

/// An OSV record.
#[derive(Clone, Debug, Deserialize)]
pub struct Record {
    /// `DSA-5678-1`, `CVE-2024-1234`, `ALPINE-CVE-...`
    pub id: String,
    /// Other ids (the CVE).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// One line, if given.
    #[serde(default)]
    pub summary: Option<String>,
    /// Affected packages.
    #[serde(default)]
    pub affected: Vec<Affected>,
    /// Withdrawn records do not match.
    #[serde(default)]
    pub withdrawn: Option<String>,
    /// CVSS vectors.
    #[serde(default)]
    pub severity: Vec<Score>,
    /// The database's own severity word.
    #[serde(default)]
    pub database_specific: Option<Specific>,
}

/// The records and their index.
#[derive(Default, Debug)]
pub struct Db {
    /// Every record loaded.
    pub records: Vec<Record>,
    /// (distribution, package) → (record, affected entry).
    index: HashMap<(String, String), Vec<(u32, u32)>>,
}

/// The distribution part of an ecosystem (`Debian` of `Debian:12`) and
/// its release, if any.
pub fn split_ecosystem(eco: &str) -> (&str, Option<&str>) {
    match eco.split_once(':') {
        Some((d, r)) => (d, Some(r)),
        None => (eco, None),
    }
}

impl Db {
    /// Loads `path`: a directory (every `.json` below it), an `all.zip`,
    /// or one `.json` record.
    pub fn load(path: &Path) -> Result<Db, ScanError> {
        let mut db = Db::default();
        let fail = |p: &Path, m: String| ScanError::Db {
            path: p.display().to_string(),
            message: m,
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(path, e.to_string()))?;
        if meta.is_dir() {
            let mut stack = vec![path.to_path_buf()];
            while let Some(dir) = stack.pop() {
                let mut entries: Vec<_> = std::fs::read_dir(&dir)
                    .map_err(|e| fail(&dir, e.to_string()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .collect();
                entries.sort();
                for p in entries {
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|x| x == "json") {
                        let data = std::fs::read(&p).map_err(|e| fail(&p, e.to_string()))?;
                        db.add(&p.display().to_string(), &data)?;
                    } else if p.extension().is_some_and(|x| x == "zip") {
                        db.add_zip(&p)?;
                    }
                }
            }
        } else if path.extension().is_some_and(|x| x == "zip") {
            db.add_zip(path)?;
        } else {
            let data = std::fs::read(path).map_err(|e| fail(path, e.to_string()))?;
            db.add(&path.display().to_string(), &data)?;
        }
        Ok(db)
    }

    fn add_zip(&mut self, path: &Path) -> Result<(), ScanError> {
        let fail = |m: String| ScanError::Db {
            path: path.display().to_string(),
            message: m,
        };
        let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
        let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
            .map_err(|e| fail(format!("not a readable zip archive: {e}")))?;
        let mut data = Vec::new();
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).map_err(|e| fail(e.to_string()))?;
            let entry_name = entry.name().map_err(|e| fail(e.to_string()))?.into_owned();
            if !entry_name.ends_with(".json") {
                continue;
            }
            let name = format!("{}:{entry_name}", path.display());
            data.clear();
            entry.read_to_end(&mut data).map_err(|e| ScanError::Db {
                path: name.clone(),
                message: e.to_string(),
            })?;
            self.add(&name, &data)?;
        }
        Ok(())
    }

    /// Adds the record in `data`, read from `name` (for errors).
    pub fn add(&mut self, name: &str, data: &[u8]) -> Result<(), ScanError> {
        let mut record: Record = serde_json::from_slice(data).map_err(|e| {
            let what = if e.is_syntax() || e.is_eof() {
                "malformed OSV record"
            } else {
                "not an OSV record"
            };
            ScanError::Db {
                path: format!("{name}:{}:{}", e.line(), e.column()),
                message: format!("{what}: {e}"),
            }
        })?;
        if record.withdrawn.is_some() {
            return Ok(());
        }
        let n = self.records.len() as u32;
        let word = record.database_specific.as_ref().and_then(severity::word);
        let scored = severity::from_scores(&record.severity);
        for (i, a) in record.affected.iter_mut().enumerate() {
            a.severity = word
                .or_else(|| a.ecosystem_specific.as_ref().and_then(severity::word))
                .unwrap_or(scored);
            let (distro, _) = split_ecosystem(&a.package.ecosystem);
            self.index
                .entry((distro.to_string(), a.package.name.clone()))
                .or_default()
                .push((n, i as u32));
        }
        record.severity = Vec::new();
        self.records.push(record);
        Ok(())
    }

    /// The (record, affected entry) pairs about `name` in `distro`.
    pub fn about<'a>(
        &'a self,
        distro: &str,
        name: &str,
    ) -> impl Iterator<Item = (&'a Record, &'a Affected)> + 'a {
        self.index
            .get(&(distro.to_string(), name.to_string()))
            .into_iter()
            .flatten()
            .map(|&(r, a)| {
                let rec = &self.records[r as usize];
                (rec, &rec.affected[a as usize])
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_record_is_located() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("good.json"),
            r#"{"id":"X-1","affected":[]}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("bad.json"),
            "{\n  \"id\": \"X-2\",\n  \"affected\": [,]\n}",
        )
        .unwrap();
        let e = Db::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("bad.json:3:16: malformed OSV record"), "{e}");
    }

    #[test]
    fn records_load_from_an_all_zip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("all.zip");
        let mut w = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file("DSA-1-1.json", opts).unwrap();
        std::io::Write::write_all(
            &mut w,
            br#"{"id":"DSA-1-1","aliases":["CVE-2024-1"],"affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"}}]}"#,
        )
        .unwrap();
        w.finish().unwrap();
        let db = Db::load(&path).unwrap();
        assert_eq!(db.records.len(), 1);
        assert_eq!(db.about("Debian", "openssl").count(), 1);
        assert_eq!(db.about("Debian", "bash").count(), 0);
    }
}
