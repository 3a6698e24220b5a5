//! SARIF 2.1.0: one rule per automated check, one result per failed check
//! and object. Findings on hosts, files and containers have no source
//! file; their location is a logical location naming the object (and, for
//! files, the file's URI).

use serde_json::{json, Value};

use crate::model::{Kind, Report, Severity};

/// The SARIF schema this renders.
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's numeric `security-severity` for a level.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// The report as a SARIF 2.1.0 log.
pub fn render(report: &Report) -> String {
    let rules: Vec<Value> = report
        .checks
        .iter()
        .filter(|c| c.kind == Kind::Automated)
        .map(|c| {
            json!({
                "id": c.id,
                "name": format!("CIS {}", c.id),
                "shortDescription": { "text": c.title },
                "fullDescription": { "text": format!("{} (data: {})", c.title, c.source) },
                "help": { "text": c.remediation },
                "defaultConfiguration": { "level": level(c.severity) },
                "properties": { "security-severity": security_severity(c.severity), "tags": ["security", "cis-docker"] },
            })
        })
        .collect();
    let index = |id: &str| {
        report
            .checks
            .iter()
            .filter(|c| c.kind == Kind::Automated)
            .position(|c| c.id == id)
    };
    let results: Vec<Value> = report
        .results
        .iter()
        .filter(|f| f.status == crate::model::Status::Fail)
        .map(|f| {
            let mut text = format!("{}: {} ({})", f.object.label(), f.title, f.evidence);
            if let (Some(c), Some(e)) = (&f.configured, &f.effective) {
                text.push_str(&format!("; configured: {c}; in effect: {e}"));
            }
            let mut loc = json!({
                "logicalLocations": [{
                    "name": f.object.name,
                    "kind": f.object.kind,
                    "fullyQualifiedName": format!("{}/{}", f.object.kind, f.object.name),
                }],
            });
            if f.object.kind == "file" {
                loc["physicalLocation"] = json!({ "artifactLocation": { "uri": format!("file://{}", f.object.name) } });
            }
            let mut r = json!({
                "ruleId": f.id,
                "level": level(f.severity),
                "message": { "text": text },
                "locations": [loc],
                "properties": { "severity": f.severity, "mismatch": f.mismatch, "remediation": f.remediation },
            });
            if let Some(i) = index(f.id) {
                r["ruleIndex"] = json!(i);
            }
            r
        })
        .collect();
    let log = json!({
        "version": "2.1.0",
        "$schema": SCHEMA,
        "runs": [{
            "tool": { "driver": {
                "name": "cordon-audit",
                "informationUri": "https://www.cisecurity.org/benchmark/docker",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&log).expect("SARIF serializes")
}
