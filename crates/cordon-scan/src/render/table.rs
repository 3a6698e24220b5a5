//! The table for people: worst first, then a summary line.

use std::fmt::Write as _;

use crate::findings::Finding;

/// The findings as a table.
pub fn render(findings: &[Finding], images: usize) -> String {
    let mut out = String::new();
    if !findings.is_empty() {
        let _ = writeln!(
            out,
            "{:<9} {:<22} {:<18} {:<22} {:<22} {:<16} IMAGE (CONTAINERS)",
            "SEVERITY", "ID", "PACKAGE", "INSTALLED", "FIXED", "ALIAS"
        );
    }
    for f in findings {
        let alias = f.aliases.first().map(String::as_str).unwrap_or("-");
        let mut image = f.image.clone();
        if !f.containers.is_empty() {
            image.push_str(&format!(" ({})", f.containers.join(", ")));
        }
        let _ = writeln!(
            out,
            "{:<9} {:<22} {:<18} {:<22} {:<22} {:<16} {}",
            f.severity.as_str(),
            f.id,
            f.source,
            f.installed,
            f.fixed.as_deref().unwrap_or("(no fix)"),
            alias,
            image
        );
    }
    let _ = writeln!(out, "{} finding(s) in {} image(s)", findings.len(), images);
    out
}
