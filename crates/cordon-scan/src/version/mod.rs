//! Version ordering per ecosystem: dpkg (Debian, Ubuntu), apk (Alpine)
//! and rpm (AlmaLinux, Rocky Linux, Red Hat, openSUSE, SUSE, Mageia).

pub mod apk;
pub mod dpkg;
pub mod rpm;

use std::cmp::Ordering;

/// The ordering rules of one package ecosystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// dpkg: epoch, upstream with `~`, revision.
    Dpkg,
    /// apk: numbers, letter, suffixes, `-rN`.
    Apk,
    /// rpm: epoch, `rpmvercmp` on version and release (`~`, `^`).
    Rpm,
}

impl Scheme {
    /// The scheme of an OSV ecosystem name without its release
    /// (`Debian`, `Ubuntu`, `Alpine`), if cordon orders its versions.
    pub fn of(distro: &str) -> Option<Scheme> {
        match distro {
            "Debian" | "Ubuntu" => Some(Scheme::Dpkg),
            "Alpine" => Some(Scheme::Apk),
            "AlmaLinux" | "Rocky Linux" | "Red Hat" | "openSUSE" | "SUSE" | "Mageia" => {
                Some(Scheme::Rpm)
            }
            _ => None,
        }
    }

    /// Compares two versions of this scheme.
    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Scheme::Dpkg => dpkg::compare(a, b),
            Scheme::Apk => apk::compare(a, b),
            Scheme::Rpm => rpm::compare(a, b),
        }
    }
}
