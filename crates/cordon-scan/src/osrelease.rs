//! `/etc/os-release` (or `/usr/lib/os-release`): the distribution and its
//! release, as OSV names them in ecosystems (`Debian:12`, `Alpine:v3.19`,
//! `Ubuntu:22.04`, `AlmaLinux:9`, `Rocky Linux:9`,
//! `Red Hat:enterprise_linux:9`, `openSUSE:Leap 15.5`,
//! `SUSE:Linux Enterprise Server 15 SP5`, `Mageia:9`).

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
    /// `Alpine:v3.19`, `Ubuntu:22.04`, `AlmaLinux:9`, ...), or the
    /// distribution alone when the release is unknown; None for a
    /// distribution OSV does not cover (Fedora, CentOS).
    pub fn ecosystem(&self) -> Option<(&'static str, Option<String>)> {
        let v = self.version_id.as_deref();
        let major = v.map(|v| v.split('.').next().unwrap_or(v).to_string());
        Some(match self.id.as_str() {
            // Debian: the major release; Alpine: v + major.minor.
            "debian" => ("Debian", major),
            "alpine" => (
                "Alpine",
                v.map(|v| {
                    let mm: Vec<&str> = v.split('.').take(2).collect();
                    format!("v{}", mm.join("."))
                }),
            ),
            "ubuntu" => ("Ubuntu", v.map(str::to_string)),
            "almalinux" => ("AlmaLinux", major),
            "rocky" => ("Rocky Linux", major),
            // Red Hat's releases are CPE-like (`enterprise_linux:9::baseos`):
            // matched by prefix.
            "rhel" => ("Red Hat", major.map(|m| format!("enterprise_linux:{m}"))),
            "opensuse-leap" => ("openSUSE", v.map(|v| format!("Leap {v}"))),
            "opensuse-tumbleweed" => ("openSUSE", Some("Tumbleweed".to_string())),
            // SLES 15.5 is `Linux Enterprise Server 15 SP5`.
            "sles" => (
                "SUSE",
                v.map(|v| match v.split_once('.') {
                    Some((m, sp)) if sp != "0" => format!("Linux Enterprise Server {m} SP{sp}"),
                    Some((m, _)) => format!("Linux Enterprise Server {m}"),
                    None => format!("Linux Enterprise Server {v}"),
                }),
            ),
            "mageia" => ("Mageia", v.map(str::to_string)),
            _ => return None,
        })
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

    #[test]
    fn rpm_distributions_name_their_osv_ecosystems() {
        let eco = |text: &str| {
            let (d, r) = parse(text).ecosystem().unwrap();
            format!("{d}:{}", r.unwrap_or_default())
        };
        assert_eq!(eco("ID=\"almalinux\"\nVERSION_ID=\"9.3\"\n"), "AlmaLinux:9");
        assert_eq!(eco("ID=\"rocky\"\nVERSION_ID=\"8.9\"\n"), "Rocky Linux:8");
        assert_eq!(
            eco("ID=\"rhel\"\nVERSION_ID=\"9.2\"\n"),
            "Red Hat:enterprise_linux:9"
        );
        assert_eq!(
            eco("ID=\"opensuse-leap\"\nVERSION_ID=\"15.5\"\n"),
            "openSUSE:Leap 15.5"
        );
        assert_eq!(
            eco("ID=\"opensuse-tumbleweed\"\nVERSION_ID=\"20240101\"\n"),
            "openSUSE:Tumbleweed"
        );
        assert_eq!(
            eco("ID=\"sles\"\nVERSION_ID=\"15.5\"\n"),
            "SUSE:Linux Enterprise Server 15 SP5"
        );
        assert_eq!(eco("ID=mageia\nVERSION_ID=9\n"), "Mageia:9");
        assert!(crate::matching::same_release(
            "Red Hat:enterprise_linux:9::appstream",
            Some("enterprise_linux:9")
        ));
    }
}
