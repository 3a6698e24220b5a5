//! An image's inventory: its distribution and its installed OS packages,
//! read from the merged root filesystem.

use crate::layers::Rootfs;
use crate::osrelease::{self, OsRelease};
use crate::pkgdb::{apk, dpkg, rpm, Package};

/// What an image has installed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Inventory {
    /// The distribution, from os-release, if the image has one.
    pub os: Option<OsRelease>,
    /// Installed packages, from every database found.
    pub packages: Vec<Package>,
    /// Databases present that cordon does not read (rpm's BerkeleyDB and
    /// ndb formats), one line each.
    pub unread: Vec<String>,
}

/// Where rpm keeps its SQLite database: Fedora 36 and later in
/// /usr/lib/sysimage/rpm (with /var/lib/rpm a link to it), the others in
/// /var/lib/rpm.
const RPMDB_SQLITE: [&str; 2] = [
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
    "var/lib/rpm/rpmdb.sqlite",
];

/// Reads the inventory of a root filesystem. A malformed rpm database is
/// an error naming the file and the package (row) at fault.
pub fn read(fs: &Rootfs) -> Result<Inventory, String> {
    let os = fs
        .read("etc/os-release")
        .or_else(|| fs.read("usr/lib/os-release"))
        .map(|b| osrelease::parse(&String::from_utf8_lossy(b)));
    let mut packages = Vec::new();
    if let Some(status) = fs.read("var/lib/dpkg/status") {
        packages.extend(dpkg::parse(&String::from_utf8_lossy(status), true));
    }
    for (_, data) in fs.files_under("var/lib/dpkg/status.d/") {
        packages.extend(dpkg::parse(&String::from_utf8_lossy(data), false));
    }
    if let Some(db) = fs.read("lib/apk/db/installed") {
        packages.extend(apk::parse(&String::from_utf8_lossy(db)));
    }
    let mut unread = Vec::new();
    if let Some((path, db)) = RPMDB_SQLITE
        .iter()
        .find_map(|p| fs.read(p).map(|db| (p, db)))
    {
        packages.extend(rpm::parse_sqlite(db).map_err(|e| format!("/{path}: {e}"))?);
    } else {
        for (path, format) in [
            ("var/lib/rpm/Packages", "BerkeleyDB"),
            ("usr/lib/sysimage/rpm/Packages", "BerkeleyDB"),
            ("var/lib/rpm/Packages.db", "ndb"),
            ("usr/lib/sysimage/rpm/Packages.db", "ndb"),
        ] {
            if fs.exists(path) {
                unread.push(format!(
                    "/{path}: unsupported rpm database format ({format}; cordon reads rpmdb.sqlite only): its packages are not scanned"
                ));
            }
        }
    }
    Ok(Inventory {
        os,
        packages,
        unread,
    })
}
