//! apk's database `/lib/apk/db/installed`: paragraphs of `X:value` lines
//! (`P` name, `V` version, `o` origin, i.e. the source package).

use super::Package;

/// The installed packages of an apk database.
pub fn parse(text: &str) -> Vec<Package> {
    text.split("\n\n")
        .filter_map(|para| {
            let (mut name, mut version, mut origin) = (None, None, None);
            for line in para.lines() {
                match line.split_once(':') {
                    Some(("P", v)) => name = Some(v.trim()),
                    Some(("V", v)) => version = Some(v.trim()),
                    Some(("o", v)) => origin = Some(v.trim()),
                    _ => {}
                }
            }
            let (name, version) = (name?.to_string(), version?.to_string());
            Some(Package {
                source: origin.unwrap_or(&name).to_string(),
                source_version: version.clone(),
                name,
                version,
                db: "apk",
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn packages_with_their_origin() {
        let db = "C:Q1abc=\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\n\nP:musl\nV:1.2.4_git20230717-r4\n";
        let p = super::parse(db);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].source.as_str(), p[0].version.as_str()),
            ("openssl", "3.1.4-r5")
        );
        assert_eq!(p[1].source, "musl");
    }
}
