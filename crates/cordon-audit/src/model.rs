//! What an audit produces: checks, their outcomes and the report.

use serde::Serialize;

/// How bad a failed check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Defence in depth.
    Low,
    /// Weakens isolation.
    Medium,
    /// Breaks isolation in a common attack.
    High,
    /// Gives away the host.
    Critical,
}

impl Severity {
    /// Every level, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The lower-case name (`high`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses a lower-case name.
    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// Whether a check is evaluated and scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Evaluated from the gathered facts and scored.
    Automated,
    /// Needs a person; listed with whatever evidence helps, never scored.
    Manual,
    /// Retired upstream or otherwise not scored (e.g. content trust).
    NotScored,
}

/// The outcome of a check on one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Meets the benchmark.
    Pass,
    /// Does not: a finding.
    Fail,
    /// The check does not apply here (the file, feature or object is absent).
    NotApplicable,
    /// A person must decide.
    Manual,
    /// Listed, not scored.
    NotScored,
}

impl Status {
    /// The snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::NotApplicable => "not_applicable",
            Status::Manual => "manual",
            Status::NotScored => "not_scored",
        }
    }
}

/// What a result is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Object {
    /// `host`, `daemon`, `file`, `image` or `container`.
    pub kind: &'static str,
    /// A path, a container or image name, `dockerd`.
    pub name: String,
    /// The container or image id, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl Object {
    /// The Docker host.
    pub fn host() -> Object {
        Object::named("host", "host")
    }

    /// The Docker daemon.
    pub fn daemon() -> Object {
        Object::named("daemon", "dockerd")
    }

    /// A file on the host.
    pub fn file(path: &str) -> Object {
        Object::named("file", path)
    }

    /// An object with a kind and a name and no id.
    pub fn named(kind: &'static str, name: &str) -> Object {
        Object {
            kind,
            name: name.to_string(),
            id: None,
        }
    }

    /// `kind name` as shown to people.
    pub fn label(&self) -> String {
        format!("{} {}", self.kind, self.name)
    }
}

/// What a check found on one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The object.
    pub object: Object,
    /// Pass, fail, ….
    pub status: Status,
    /// The value seen, in words.
    pub evidence: String,
    /// What the configuration asks for, when the check compares it with
    /// what is in effect.
    pub configured: Option<String>,
    /// What is in effect (the kernel's or the running daemon's view).
    pub effective: Option<String>,
    /// The configuration and what is in effect disagree.
    pub mismatch: bool,
}

impl Outcome {
    /// An outcome with evidence only.
    pub fn new(object: Object, status: Status, evidence: impl Into<String>) -> Outcome {
        Outcome {
            object,
            status,
            evidence: evidence.into(),
            configured: None,
            effective: None,
            mismatch: false,
        }
    }

    /// Pass when `ok`, else fail.
    pub fn verdict(object: Object, ok: bool, evidence: impl Into<String>) -> Outcome {
        let status = if ok { Status::Pass } else { Status::Fail };
        Outcome::new(object, status, evidence)
    }

    /// Adds the configured and effective values; a disagreement between
    /// them (`mismatch`) always fails.
    pub fn compare(
        mut self,
        configured: impl Into<String>,
        effective: impl Into<String>,
        mismatch: bool,
    ) -> Outcome {
        self.configured = Some(configured.into());
        self.effective = Some(effective.into());
        self.mismatch = mismatch;
        if mismatch {
            self.status = Status::Fail;
        }
        self
    }

    /// This outcome alone, as a check returns it.
    pub fn into_vec(self) -> Vec<Outcome> {
        vec![self]
    }
}

/// One result of the report: a check's metadata and its outcome on one
/// object.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The CIS Docker Benchmark id (`5.4`) or `CORDON-1`.
    pub id: &'static str,
    /// The check's title.
    pub title: &'static str,
    /// Its severity when it fails.
    pub severity: Severity,
    /// Pass, fail, ….
    pub status: Status,
    /// The object.
    pub object: Object,
    /// The value seen.
    pub evidence: String,
    /// The configured value, for checks that compare.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configured: Option<String>,
    /// The value in effect, for checks that compare.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective: Option<String>,
    /// Configured and effective values disagree.
    pub mismatch: bool,
    /// The flag or setting that fixes it.
    pub remediation: &'static str,
}

/// Counts of a report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Checks in the registry.
    pub checks: usize,
    /// Automated (scored) checks.
    pub automated: usize,
    /// Manual checks.
    pub manual: usize,
    /// Results that passed.
    pub pass: usize,
    /// Results that failed (findings).
    pub fail: usize,
    /// Results that did not apply.
    pub not_applicable: usize,
    /// Failed results by severity.
    pub fail_by_severity: std::collections::BTreeMap<&'static str, usize>,
    /// Configured/effective disagreements among the failures.
    pub mismatches: usize,
}

/// A whole audit.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The JSON schema name, `cordon-audit/1`.
    pub schema: &'static str,
    /// The host as Docker names it.
    pub host: String,
    /// The Docker server version.
    pub docker_version: String,
    /// Counts.
    pub summary: Summary,
    /// Every check in the registry (also those without a result).
    pub checks: Vec<CheckInfo>,
    /// Every result, findings (`status: fail`) first by severity.
    pub results: Vec<Finding>,
    /// Problems met while gathering facts (a file unreadable, …).
    pub warnings: Vec<String>,
}

impl Report {
    /// The failed results at or above `level`.
    pub fn failures_at_or_above(&self, level: Severity) -> impl Iterator<Item = &Finding> {
        self.results
            .iter()
            .filter(move |f| f.status == Status::Fail && f.severity >= level)
    }
}

/// A check as listed in the report and in docs/audit.md.
#[derive(Debug, Clone, Serialize)]
pub struct CheckInfo {
    /// The CIS id.
    pub id: &'static str,
    /// The CIS section, 1–5, or 6 for cordon's own checks.
    pub section: u8,
    /// The title.
    pub title: &'static str,
    /// Severity when failed.
    pub severity: Severity,
    /// Automated, manual or not scored.
    pub kind: Kind,
    /// Where its data comes from.
    pub source: &'static str,
    /// The fix.
    pub remediation: &'static str,
}
