//! JSON for programs: `{"images": [{"image", "os", "packages",
//! "unread"}], "findings": [...]}` (schema in docs/scan.md).

use serde_json::json;

use crate::findings::Finding;
use crate::inventory::Inventory;

/// The findings and the scanned images as JSON.
pub fn render(images: &[(String, Inventory)], findings: &[Finding]) -> String {
    let images: Vec<_> = images
        .iter()
        .map(|(name, inv)| {
            json!({
                "image": name,
                "os": inv.os,
                "packages": inv.packages.len(),
                "unread": inv.unread,
            })
        })
        .collect();
    let v = json!({ "images": images, "findings": findings });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}
