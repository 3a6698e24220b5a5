//! dpkg's database: `/var/lib/dpkg/status` (paragraphs of `Field: value`,
//! only those whose `Status` ends in `installed`), and distroless images'
//! `/var/lib/dpkg/status.d/NAME` (one paragraph each, no `Status`).

use super::Package;

/// The installed packages of a status file (or a status.d file).
pub fn parse(text: &str, need_status: bool) -> Vec<Package> {
    text.split("\n\n")
        .filter_map(|para| paragraph(para, need_status))
        .collect()
}

fn paragraph(para: &str, need_status: bool) -> Option<Package> {
    let (mut name, mut version, mut source, mut status) = (None, None, None, None);
    for line in para.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k {
            "Package" => name = Some(v),
            "Version" => version = Some(v),
            "Source" => source = Some(v),
            "Status" => status = Some(v),
            _ => {}
        }
    }
    if need_status && !status.is_some_and(|s| s.ends_with(" installed")) {
        return None;
    }
    let (name, version) = (name?.to_string(), version?.to_string());
    // `Source: name (version)` when the source version differs.
    let (source, source_version) = match source {
        Some(s) => match s.split_once('(') {
            Some((n, v)) => (
                n.trim().to_string(),
                v.trim_end_matches(')').trim().to_string(),
            ),
            None => (s.to_string(), version.clone()),
        },
        None => (name.clone(), version.clone()),
    };
    Some(Package {
        name,
        version,
        source,
        source_version,
        db: "dpkg",
    })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn installed_packages_with_their_sources() {
        let status = "Package: libssl3\nStatus: install ok installed\nSource: openssl (3.0.11-1~deb12u2)\nVersion: 3.0.11-1~deb12u2\nDescription: x\n  long\n\n\
Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b2\n";
        let p = parse(status, true);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].source.as_str(), p[0].source_version.as_str()),
            ("openssl", "3.0.11-1~deb12u2")
        );
        assert_eq!(
            (p[1].source.as_str(), p[1].source_version.as_str()),
            ("bash", "5.2.15-2+b2")
        );
        // status.d: no Status field.
        let d = parse("Package: base-files\nVersion: 12.4+deb12u5\n", false);
        assert_eq!(d[0].name, "base-files");
        assert!(parse("Package: base-files\nVersion: 12.4\n", true).is_empty());
    }
}
