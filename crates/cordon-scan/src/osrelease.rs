//! `/etc/os-release` (or `/usr/lib/os-release`): the distribution and its
//! release, as OSV names them in ecosystems (`Debian:12`, `Alpine:v3.19`,
//! `Ubuntu:22.04`).

use std::collections::BTreeMap;

/// The distribution an image is built on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OsRelease {
    /// `ID`: debian, alpine, ubuntu, ...
    pub id: String,
    /// `VERSION_ID`, if any.
    pub version_id: Option<String>,
    /// `VERSION_CODENAME`, if any.
    pub codename: Option<String>,
    /// `PRETTY_NAME`, if any.
    pub pretty_name: Option<String>,
}

/// Parses os-release's `KEY=value` lines (values optionally quoted).
pub fn parse(text: &str) -> OsRelease {
    let mut kv = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().trim_matches('"').trim_matches('\'');
            kv.insert(k.trim().to_string(), v.to_string());
        }
    }
    let get = |k: &str| kv.get(k).filter(|v| !v.is_empty()).cloned();
    OsRelease {
        id: get("ID").unwrap_or_default(),
        version_id: get("VERSION_ID"),
        codename: get("VERSION_CODENAME"),
        pretty_name: get("PRETTY_NAME"),
    }
}

impl OsRelease {
    /// The OSV ecosystem of this release's packages (`Debian:12`,
    /// `Alpine:v3.19`, `Ubuntu:22.04`), or the distribution alone when the
    /// release is unknown; None for a distribution OSV does not cover.
    pub fn ecosystem(&self) -> Option<(&'static str, Option<String>)> {
        let distro = match self.id.as_str() {
            "debian" => "Debian",
            "alpine" => "Alpine",
            "ubuntu" => "Ubuntu",
            _ => return None,
        };
        let release = self.version_id.as_deref().map(|v| match distro {
            // Debian: the major release; Alpine: v + major.minor.
            "Debian" => v.split('.').next().unwrap_or(v).to_string(),
            "Alpine" => {
                let mm: Vec<&str> = v.split('.').take(2).collect();
                format!("v{}", mm.join("."))
            }
            _ => v.to_string(),
        });
        Some((distro, release))
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn debian_alpine_and_ubuntu_name_their_osv_ecosystems() {
        let d = parse("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n");
        assert_eq!(d.ecosystem(), Some(("Debian", Some("12".into()))));
        assert_eq!(d.codename.as_deref(), Some("bookworm"));
        let a = parse("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n");
        assert_eq!(a.ecosystem(), Some(("Alpine", Some("v3.19".into()))));
        let u = parse("ID=ubuntu\nVERSION_ID=\"22.04\"\n");
        assert_eq!(u.ecosystem(), Some(("Ubuntu", Some("22.04".into()))));
        let sid = parse("ID=debian\n");
        assert_eq!(sid.ecosystem(), Some(("Debian", None)));
        assert_eq!(parse("ID=fedora\n").ecosystem(), None);
    }
}
