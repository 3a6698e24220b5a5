//! The table for people: findings first (worst first), then a summary
//! line; colours when writing to a terminal.

use std::fmt::Write as _;

use cordon_inventory::Shown;

use crate::model::{Report, Severity, Status};

fn paint(s: &str, code: &str, colour: bool) -> String {
    if colour {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn severity_colour(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "1;31",
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "36",
        Severity::Info => "2",
    }
}

/// The report as a table; `all` also lists passes, manual and
/// not-applicable results.
pub fn render(report: &Report, colour: bool, all: bool) -> String {
    let mut out = String::new();
    let shown: Vec<_> = report
        .results
        .iter()
        .filter(|f| all || f.status == Status::Fail)
        .collect();
    let w_obj = shown
        .iter()
        .map(|f| Shown(&f.object.label()).to_string().chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 48);
    let _ = writeln!(
        out,
        "{:<8} {:<9} {:<14} {:<w_obj$}  FINDING",
        "ID", "SEVERITY", "STATUS", "OBJECT"
    );
    for f in &shown {
        let sev = format!("{:<9}", f.severity.as_str());
        let status = format!(
            "{:<14}",
            if f.mismatch {
                "fail-mismatch"
            } else {
                f.status.as_str()
            }
        );
        let status = match f.status {
            Status::Fail => paint(&status, "1", colour),
            Status::Pass => paint(&status, "32", colour),
            _ => paint(&status, "2", colour),
        };
        // Objects are named by Docker (containers, images, networks): shown
        // escaped, cut on a character boundary.
        let label: String = Shown(&f.object.label())
            .to_string()
            .chars()
            .take(w_obj)
            .collect();
        let _ = writeln!(
            out,
            "{:<8} {} {} {:<w_obj$}  {}: {}",
            f.id,
            paint(
                &sev,
                severity_colour(f.severity),
                colour && f.status == Status::Fail
            ),
            status,
            label,
            f.title,
            Shown(&f.evidence)
        );
        if f.status == Status::Fail {
            if let (Some(c), Some(e)) = (&f.configured, &f.effective) {
                let (c, e) = (Shown(c), Shown(e));
                let _ = writeln!(out, "{:8} configured: {c} | in effect: {e}", "");
            }
            let _ = writeln!(out, "{:8} fix: {}", "", f.remediation);
        }
    }
    let s = &report.summary;
    let by: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter_map(|l| {
            s.fail_by_severity
                .get(l.as_str())
                .map(|n| format!("{n} {}", l.as_str()))
        })
        .collect();
    let _ = writeln!(
        out,
        "\n{} checks ({} automated, {} manual): {} passed, {} failed{}, {} not applicable; {} configured/effective mismatch(es)",
        s.checks,
        s.automated,
        s.manual,
        s.pass,
        s.fail,
        if by.is_empty() { String::new() } else { format!(" ({})", by.join(", ")) },
        s.not_applicable,
        s.mismatches
    );
    for w in &report.warnings {
        let _ = writeln!(out, "warning: {}", Shown(w));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Finding, Object, Summary};

    #[test]
    fn a_forged_line_in_a_container_name_or_evidence_stays_on_its_row() {
        let forged = "x\nCORDON-1 high      fail           container web  all good";
        let report = Report {
            schema: "test",
            host: "h".into(),
            docker_version: "1".into(),
            summary: Summary::default(),
            checks: Vec::new(),
            results: vec![Finding {
                id: "CORDON-1",
                title: "Ensure",
                severity: Severity::Medium,
                status: Status::Fail,
                object: Object {
                    kind: "container",
                    name: format!("café-{forged}"),
                    id: None,
                },
                evidence: format!("policy unknown label {forged}"),
                configured: Some(forged.into()),
                effective: Some("\u{1b}[2Jx".into()),
                mismatch: false,
                remediation: "fix",
            }],
            warnings: vec![forged.into()],
        };
        let text = render(&report, false, true);
        assert!(
            !text.lines().any(|l| l.starts_with("CORDON-1 high")),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "{text}");
        assert_eq!(
            text.lines().filter(|l| l.starts_with("CORDON-1")).count(),
            1,
            "{text}"
        );
        assert!(text.contains("container café-x\\nCORDON-1"), "{text}");
    }
}
