//! Findings: an image's packages matched against the OSV records.

use std::collections::BTreeMap;

use crate::inventory::Inventory;
use crate::matching;
use crate::osv::Db;
use crate::severity::Severity;
use crate::version::Scheme;

/// One known vulnerability in one image's (source) package.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Finding {
    /// The image as named on the command line (or by a container).
    pub image: String,
    /// The OSV record's id.
    pub id: String,
    /// Its aliases (the CVE).
    pub aliases: Vec<String>,
    /// The package the record names: the source package for Debian,
    /// Ubuntu and Alpine; the binary package for the RPM distributions,
    /// whose OSV records name binary packages.
    pub source: String,
    /// Installed binary packages built from it.
    pub packages: Vec<String>,
    /// The installed version of that package.
    pub installed: String,
    /// The first fixed version above it, if the record names one.
    pub fixed: Option<String>,
    /// Severity.
    pub severity: Severity,
    /// The record's summary.
    pub summary: Option<String>,
    /// The OSV ecosystem of the record's entry (`Debian:12`).
    pub ecosystem: String,
    /// Running containers of this image.
    pub containers: Vec<String>,
}

/// Matches `inv` (of `image`, run by `containers`) against `db`, worst
/// first.
pub fn find(db: &Db, inv: &Inventory, image: &str, containers: &[String]) -> Vec<Finding> {
    let Some((distro, release)) = inv.os.as_ref().and_then(|o| o.ecosystem()) else {
        return Vec::new();
    };
    let Some(scheme) = Scheme::of(distro) else {
        return Vec::new();
    };
    // (record id, source, installed) → finding; binaries of one source
    // share it.
    let mut out: BTreeMap<(String, String, String), Finding> = BTreeMap::new();
    for pkg in &inv.packages {
        // OSV's RPM ecosystems name binary packages, the others sources.
        let (name, version) = if scheme == Scheme::Rpm {
            (&pkg.name, &pkg.version)
        } else {
            (&pkg.source, &pkg.source_version)
        };
        for (rec, entry) in db.about(distro, name) {
            if !matching::same_release(&entry.package.ecosystem, release.as_deref()) {
                continue;
            }
            let Some(fixed) = matching::affected(scheme, entry, version) else {
                continue;
            };
            let key = (rec.id.clone(), name.clone(), version.clone());
            let f = out.entry(key).or_insert_with(|| Finding {
                image: image.to_string(),
                id: rec.id.clone(),
                aliases: rec.aliases.clone(),
                source: name.clone(),
                packages: Vec::new(),
                installed: version.clone(),
                fixed,
                severity: entry.severity,
                summary: rec.summary.clone(),
                ecosystem: entry.package.ecosystem.clone(),
                containers: containers.to_vec(),
            });
            if !f.packages.contains(&pkg.name) {
                f.packages.push(pkg.name.clone());
            }
        }
    }
    let mut v: Vec<Finding> = out.into_values().collect();
    v.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(&b.id)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Node, Rootfs};

    fn record(id: &str, eco: &str, name: &str, fixed: &str) -> String {
        format!(
            r#"{{"id":"{id}","affected":[{{"package":{{"ecosystem":"{eco}","name":"{name}"}},
            "ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"{fixed}"}}]}}]}}]}}"#
        )
    }

    /// An Alpine root filesystem: apk's origin names the source; only the
    /// v3.19 record above the installed version applies.
    #[test]
    fn alpine_packages_match_their_release_by_origin() {
        let mut fs = Rootfs::default();
        fs.files.insert(
            "etc/os-release".into(),
            Node::File(b"ID=alpine\nVERSION_ID=3.19.1\n".to_vec()),
        );
        fs.files.insert(
            "lib/apk/db/installed".into(),
            Node::File(
                b"P:libcrypto3\nV:3.1.4-r5\no:openssl\n\nP:busybox\nV:1.36.1-r15\n".to_vec(),
            ),
        );
        let inv = crate::inventory::read(&fs).unwrap();
        let mut db = Db::default();
        for (i, r) in [
            record("ALPINE-1", "Alpine:v3.19", "openssl", "3.1.4-r6"),
            record("ALPINE-2", "Alpine:v3.18", "openssl", "3.1.4-r6"),
            record("ALPINE-3", "Alpine:v3.19", "busybox", "1.36.1-r5"),
            record("DSA-4", "Debian:12", "openssl", "9.0-1"),
            record("ALPINE-5", "Alpine:v3.19", "libcrypto3", "9.0-r0"),
        ]
        .iter()
        .enumerate()
        {
            db.add(&format!("{i}.json"), r.as_bytes()).unwrap();
        }
        let found = find(&db, &inv, "alpine:3.19", &["web".into()]);
        let ids: Vec<&str> = found.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["ALPINE-1"]);
        assert_eq!(found[0].packages, ["libcrypto3"]);
        assert_eq!(found[0].fixed.as_deref(), Some("3.1.4-r6"));
        assert_eq!(found[0].containers, ["web"]);
    }
}
