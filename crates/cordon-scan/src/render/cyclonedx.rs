//! CycloneDX 1.5 SBOM of the scanned images' inventories: one
//! `container` component per image, its OS (`operating-system`) and its
//! packages (`library`, with a package URL) nested under it.

use serde_json::{json, Value};

use crate::inventory::Inventory;
use crate::pkgdb::Package;

/// Characters kept as they are in a package URL segment.
fn purl_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-~".contains(c) {
                c.to_string()
            } else {
                let mut buf = [0u8; 4];
                c.encode_utf8(&mut buf)
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect()
            }
        })
        .collect()
}

/// The package URL of `p` (`pkg:deb/debian/bash@5.2.15-2%2Bb2?distro=debian-12`,
/// `pkg:rpm/rocky/openssl-libs@3.0.7-24.el9?distro=rocky-9.3&epoch=1&upstream=openssl`).
pub fn purl(p: &Package, inv: &Inventory) -> String {
    let os_id = inv.os.as_ref().map(|o| o.id.as_str());
    let (kind, ns) = match p.db {
        "apk" => ("apk", "alpine"),
        "rpm" => ("rpm", os_id.unwrap_or("rpm")),
        _ => (
            "deb",
            inv.os.as_ref().map(|o| o.id.as_str()).unwrap_or("debian"),
        ),
    };
    // rpm's epoch is a qualifier in a package URL, not part of the version.
    let (epoch, version) = match p.version.split_once(':') {
        Some((e, v)) if p.db == "rpm" => (Some(e), v),
        _ => (None, p.version.as_str()),
    };
    let mut purl = format!(
        "pkg:{kind}/{}/{}@{}",
        purl_escape(ns),
        purl_escape(&p.name),
        purl_escape(version)
    );
    let mut q = Vec::new();
    if let Some(os) = &inv.os {
        if let Some(v) = &os.version_id {
            q.push(format!("distro={}-{}", purl_escape(&os.id), purl_escape(v)));
        }
    }
    if let Some(e) = epoch {
        q.push(format!("epoch={}", purl_escape(e)));
    }
    if p.source != p.name {
        q.push(format!("upstream={}", purl_escape(&p.source)));
    }
    if !q.is_empty() {
        purl.push('?');
        purl.push_str(&q.join("&"));
    }
    purl
}

/// The inventories as one CycloneDX 1.5 JSON document.
pub fn render(images: &[(String, Inventory)]) -> String {
    let components: Vec<Value> = images
        .iter()
        .map(|(image, inv)| {
            let mut nested: Vec<Value> = Vec::new();
            if let Some(os) = &inv.os {
                nested.push(json!({
                    "type": "operating-system",
                    "bom-ref": format!("{image}#os"),
                    "name": os.id,
                    "version": os.version_id,
                    "description": os.pretty_name,
                }));
            }
            for p in &inv.packages {
                let purl = purl(p, inv);
                nested.push(json!({
                    "type": "library",
                    "bom-ref": format!("{image}#{purl}"),
                    "name": p.name,
                    "version": p.version,
                    "purl": purl,
                    "properties": [
                        { "name": "cordon:package-db", "value": p.db },
                        { "name": "cordon:source", "value": p.source },
                        { "name": "cordon:source-version", "value": p.source_version },
                    ],
                }));
            }
            json!({
                "type": "container",
                "bom-ref": image,
                "name": image,
                "components": nested,
            })
        })
        .collect();
    let doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "tools": { "components": [{ "type": "application", "name": "cordon", "version": env!("CARGO_PKG_VERSION") }] },
        },
        "components": components,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osrelease;

    #[test]
    fn packages_become_library_components_with_purls() {
        let inv = Inventory {
            os: Some(osrelease::parse("ID=debian\nVERSION_ID=\"12\"\n")),
            packages: crate::pkgdb::dpkg::parse(
                "Package: libssl3\nStatus: install ok installed\nSource: openssl (3.0.11-1~deb12u2)\nVersion: 3.0.11-1~deb12u2\n",
                true,
            ),
            unread: Vec::new(),
        };
        let doc: Value = serde_json::from_str(&render(&[("app:1".into(), inv)])).unwrap();
        assert_eq!(doc["specVersion"], "1.5");
        let image = &doc["components"][0];
        assert_eq!(image["type"], "container");
        assert_eq!(image["components"][0]["type"], "operating-system");
        let lib = &image["components"][1];
        assert_eq!(lib["name"], "libssl3");
        assert_eq!(
            lib["purl"],
            "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?distro=debian-12&upstream=openssl"
        );
    }
}
