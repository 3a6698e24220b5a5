//! SARIF 2.1.0: one rule per OSV record, one result per finding; the
//! location is a logical one naming the image and the package.

use serde_json::{json, Value};

use crate::findings::Finding;
use crate::severity::Severity;

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Unknown => "note",
    }
}

/// The findings as a SARIF 2.1.0 log.
pub fn render(findings: &[Finding]) -> String {
    let mut ids: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    let rules: Vec<Value> = ids
        .iter()
        .map(|id| {
            let f = findings.iter().find(|f| f.id == *id).expect("listed");
            json!({
                "id": id,
                "shortDescription": { "text": f.summary.clone().unwrap_or_else(|| format!("{id} in {}", f.source)) },
                "properties": { "aliases": f.aliases, "tags": ["security", "vulnerability"] },
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.id,
                "ruleIndex": ids.iter().position(|i| *i == f.id),
                "level": level(f.severity),
                "message": { "text": format!("{} {} in {}: {} ({}), fixed in {}",
                    f.source, f.installed, f.image, f.id, f.aliases.join(", "),
                    f.fixed.as_deref().unwrap_or("no version yet")) },
                "locations": [{ "logicalLocations": [{
                    "name": f.source,
                    "kind": "package",
                    "fullyQualifiedName": format!("{}/{}", f.image, f.source),
                }]}],
                "properties": { "severity": f.severity, "containers": f.containers },
            })
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": { "name": "cordon scan", "rules": rules } },
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&log).unwrap_or_default()
}
