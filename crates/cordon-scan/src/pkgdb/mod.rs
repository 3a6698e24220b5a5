//! The OS package databases of a root filesystem.

pub mod apk;
pub mod dpkg;
pub mod rpm;

/// One installed package.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Package {
    /// Binary package name.
    pub name: String,
    /// Installed version of the binary package.
    pub version: String,
    /// Source package name (OSV's Debian and Alpine records name sources).
    pub source: String,
    /// Source package version (the binary's when not given).
    pub source_version: String,
    /// The database it was read from (`dpkg`, `apk`, `rpm`).
    pub db: &'static str,
}
