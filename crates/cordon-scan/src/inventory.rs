//! An image's inventory: its distribution and its installed OS packages,
//! read from the merged root filesystem.

use crate::layers::Rootfs;
use crate::osrelease::{self, OsRelease};
use crate::pkgdb::{apk, dpkg, Package};

/// What an image has installed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Inventory {
    /// The distribution, from os-release, if the image has one.
    pub os: Option<OsRelease>,
    /// Installed packages, from every database found.
    pub packages: Vec<Package>,
    /// Databases present that cordon does not read (e.g. the rpm one).
    pub unread: Vec<String>,
}

/// Reads the inventory of a root filesystem.
pub fn read(fs: &Rootfs) -> Inventory {
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
    let unread = if fs.read("var/lib/rpm/rpmdb.sqlite").is_some() {
        vec!["/var/lib/rpm/rpmdb.sqlite (rpm is not read yet)".to_string()]
    } else {
        Vec::new()
    };
    Inventory {
        os,
        packages,
        unread,
    }
}
