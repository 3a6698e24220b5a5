//! `cordon audit`: the CIS Docker Benchmark (sections 1–5) for a Docker
//! host and its running containers, as configured and as in effect, plus
//! cordon's own coverage check.
//!
//! - [`gather::gather`] collects the [`Facts`] once: the Engine API, the
//!   daemon's command line and `daemon.json`, host files and each
//!   container's `/proc/<pid>`.
//! - [`checks::registry`] lists every check; each is a pure function of the
//!   facts, so checks are tested from fixtures without Docker.
//! - [`audit`] runs them into a [`Report`], which [`render`] prints as a
//!   table, JSON or SARIF 2.1.0.
//!
//! docs/audit.md lists every check, its id and where its data comes from.

#![warn(missing_docs)]

pub mod caps;
pub mod checks;
pub mod coverage;
pub mod enforceable;
pub mod facts;
pub mod flags;
pub mod gather;
pub mod hostfs;
pub mod model;
pub mod procfs;
pub mod render;

pub use facts::Facts;
pub use model::{Finding, Report, Severity, Status};

use model::{Kind, Summary};

/// Runs every check of the registry on `facts`.
pub fn audit(facts: &Facts, warnings: Vec<String>) -> Report {
    let registry = checks::registry();
    let mut results = Vec::new();
    for check in &registry {
        let i = &check.info;
        let outcomes = match &check.eval {
            Some(eval) => eval(facts),
            None => vec![model::Outcome::new(
                model::Object::host(),
                Status::Manual,
                "to be checked by a person",
            )],
        };
        for o in outcomes {
            let status = match i.kind {
                Kind::Automated => o.status,
                Kind::Manual => Status::Manual,
                Kind::NotScored => Status::NotScored,
            };
            results.push(Finding {
                id: i.id,
                title: i.title,
                severity: i.severity,
                status,
                object: o.object,
                evidence: o.evidence,
                configured: o.configured,
                effective: o.effective,
                mismatch: o.mismatch && status == Status::Fail,
                remediation: i.remediation,
            });
        }
    }
    // Findings first, worst first; the registry's order otherwise.
    results.sort_by_key(|f| (f.status != Status::Fail, std::cmp::Reverse(f.severity)));
    let mut summary = Summary {
        checks: registry.len(),
        automated: registry
            .iter()
            .filter(|c| c.info.kind == Kind::Automated)
            .count(),
        manual: registry
            .iter()
            .filter(|c| c.info.kind == Kind::Manual)
            .count(),
        ..Default::default()
    };
    for f in &results {
        match f.status {
            Status::Pass => summary.pass += 1,
            Status::Fail => {
                summary.fail += 1;
                *summary
                    .fail_by_severity
                    .entry(f.severity.as_str())
                    .or_default() += 1;
                summary.mismatches += usize::from(f.mismatch);
            }
            Status::NotApplicable => summary.not_applicable += 1,
            _ => {}
        }
    }
    Report {
        schema: "cordon-audit/1",
        host: facts.info.name.clone().unwrap_or_default(),
        docker_version: facts.version.version.clone().unwrap_or_default(),
        summary,
        checks: registry.into_iter().map(|c| c.info).collect(),
        results,
        warnings,
    }
}
