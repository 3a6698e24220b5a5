//! Whether an installed version falls in an OSV `affected` entry, and
//! which release of the distribution the entry is about.

use std::cmp::Ordering;

use crate::osv::{split_ecosystem, Affected};
use crate::version::Scheme;

/// Whether an entry of ecosystem `eco` applies to an image of `release`:
/// a record for one release (`Debian:12`) applies to that release only;
/// one for the distribution without a release applies to every release.
/// Releases with a qualifier (`Ubuntu:22.04:LTS`) match their prefix.
pub fn same_release(eco: &str, release: Option<&str>) -> bool {
    match (split_ecosystem(eco).1, release) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(r), Some(mine)) => {
            r == mine || r.strip_prefix(mine).is_some_and(|q| q.starts_with(':'))
        }
    }
}

/// If `version` is affected: `Some(fixed)`, the first fixed version above
/// it when the record names one.
pub fn affected(scheme: Scheme, entry: &Affected, version: &str) -> Option<Option<String>> {
    let cmp = |a: &str, b: &str| scheme.compare(a, b);
    if entry
        .versions
        .iter()
        .any(|v| cmp(v, version) == Ordering::Equal)
    {
        return Some(fixed_above(scheme, entry, version));
    }
    for range in entry.ranges.iter().filter(|r| r.kind == "ECOSYSTEM") {
        // Events in version order; `introduced: 0` is below everything.
        let mut events: Vec<(&str, u8)> = Vec::new();
        for e in &range.events {
            if let Some(v) = &e.introduced {
                events.push((v, 0));
            }
            if let Some(v) = &e.fixed {
                events.push((v, 1));
            }
            if let Some(v) = &e.last_affected {
                events.push((v, 2));
            }
        }
        let key = |v: &str, w: &str| match (v == "0", w == "0") {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => cmp(v, w),
        };
        events.sort_by(|a, b| key(a.0, b.0).then(a.1.cmp(&b.1)));
        let mut hit = false;
        for (v, kind) in &events {
            let c = key(version, v);
            match kind {
                0 if c != Ordering::Less => hit = true,
                1 if c != Ordering::Less => hit = false,
                2 if c == Ordering::Greater => hit = false,
                _ => {}
            }
        }
        if hit {
            return Some(fixed_above(scheme, entry, version));
        }
    }
    None
}

fn fixed_above(scheme: Scheme, entry: &Affected, version: &str) -> Option<String> {
    entry
        .ranges
        .iter()
        .flat_map(|r| r.events.iter().filter_map(|e| e.fixed.as_deref()))
        .filter(|f| scheme.compare(f, version) == Ordering::Greater)
        .min_by(|a, b| scheme.compare(a, b))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osv::Record;

    fn entry(json: &str) -> Affected {
        let r: Record = serde_json::from_str(json).unwrap();
        r.affected[0].clone()
    }

    #[test]
    fn ranges_and_versions() {
        let e = entry(
            r#"{"id":"X","affected":[{"package":{"ecosystem":"Debian:12","name":"p"},
            "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.2-3"}]}]}]}"#,
        );
        assert_eq!(
            affected(Scheme::Dpkg, &e, "1.2-2"),
            Some(Some("1.2-3".into()))
        );
        assert_eq!(affected(Scheme::Dpkg, &e, "1.2-3"), None);
        assert_eq!(
            affected(Scheme::Dpkg, &e, "1:1.0"),
            None,
            "an epoch is above"
        );
        assert_eq!(
            affected(Scheme::Dpkg, &e, "1.2~rc1-1"),
            Some(Some("1.2-3".into()))
        );
        let e = entry(
            r#"{"id":"X","affected":[{"package":{"ecosystem":"Alpine:v3.19","name":"p"},
            "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.0-r0"},{"last_affected":"2.1-r4"}]}],
            "versions":["1.0-r0"]}]}"#,
        );
        assert_eq!(affected(Scheme::Apk, &e, "1.0-r0"), Some(None));
        assert_eq!(affected(Scheme::Apk, &e, "1.5-r0"), None);
        assert_eq!(affected(Scheme::Apk, &e, "2.1-r4"), Some(None));
        assert_eq!(affected(Scheme::Apk, &e, "2.1-r5"), None);
    }

    #[test]
    fn releases() {
        assert!(same_release("Debian:12", Some("12")));
        assert!(!same_release("Debian:11", Some("12")));
        assert!(!same_release("Debian:12", None));
        assert!(same_release("Debian", Some("12")));
        assert!(same_release("Ubuntu:22.04:LTS", Some("22.04")));
        assert!(!same_release("Ubuntu:22.04.1", Some("22.04")));
    }
}
