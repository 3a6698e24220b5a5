//! The table for people: findings first (worst first), then a summary
//! line; colours when writing to a terminal.

use std::fmt::Write as _;

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
        .map(|f| f.object.label().len())
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
        let mut label = f.object.label();
        if label.len() > w_obj {
            label.truncate(w_obj);
        }
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
            f.evidence
        );
        if f.status == Status::Fail {
            if let (Some(c), Some(e)) = (&f.configured, &f.effective) {
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
        let _ = writeln!(out, "warning: {w}");
    }
    out
}
