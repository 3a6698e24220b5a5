//! The check registry. Each check is a pure function of the [`Facts`];
//! one module per CIS Docker Benchmark section, plus cordon's own.

pub mod containers;
pub mod cordon;
pub mod daemon;
pub mod files;
pub mod host;
pub mod images;

use crate::facts::{ContainerFacts, Facts};
use crate::model::{CheckInfo, Kind, Object, Outcome, Severity, Status};

/// Evaluates a check: one outcome per object it looked at.
pub type Eval = Box<dyn Fn(&Facts) -> Vec<Outcome> + Send + Sync>;

/// A check: its metadata and, for automated ones, how it is evaluated.
/// Manual checks may have an evaluation too, for evidence only.
pub struct Check {
    /// Id, title, severity, ….
    pub info: CheckInfo,
    /// The evaluation.
    pub eval: Option<Eval>,
}

/// The metadata shared by every constructor.
#[derive(Clone, Copy)]
pub struct Meta {
    /// CIS id.
    pub id: &'static str,
    /// Title.
    pub title: &'static str,
    /// Where the data comes from.
    pub source: &'static str,
    /// The fix.
    pub remediation: &'static str,
}

fn info(section: u8, m: Meta, severity: Severity, kind: Kind) -> CheckInfo {
    CheckInfo {
        id: m.id,
        section,
        title: m.title,
        severity,
        kind,
        source: m.source,
        remediation: m.remediation,
    }
}

/// An automated, scored check.
pub fn automated(
    section: u8,
    severity: Severity,
    m: Meta,
    eval: impl Fn(&Facts) -> Vec<Outcome> + Send + Sync + 'static,
) -> Check {
    Check {
        info: info(section, m, severity, Kind::Automated),
        eval: Some(Box::new(eval)),
    }
}

/// A manual check, listed and never scored.
pub fn manual(section: u8, m: Meta) -> Check {
    Check {
        info: info(section, m, Severity::Info, Kind::Manual),
        eval: None,
    }
}

/// A manual check from its parts.
pub fn by_hand(
    section: u8,
    id: &'static str,
    title: &'static str,
    source: &'static str,
    remediation: &'static str,
) -> Check {
    let m = Meta {
        id,
        title,
        source,
        remediation,
    };
    manual(section, m)
}

/// A manual check with evidence to help the person deciding.
pub fn manual_with(
    section: u8,
    m: Meta,
    evidence: impl Fn(&Facts) -> String + Send + Sync + 'static,
) -> Check {
    Check {
        info: info(section, m, Severity::Info, Kind::Manual),
        eval: Some(Box::new(move |f: &Facts| {
            vec![Outcome::new(Object::host(), Status::Manual, evidence(f))]
        })),
    }
}

/// A check listed but not scored (e.g. retired upstream).
pub fn not_scored(section: u8, m: Meta, why: &'static str) -> Check {
    Check {
        info: info(section, m, Severity::Info, Kind::NotScored),
        eval: Some(Box::new(move |_: &Facts| {
            vec![Outcome::new(Object::host(), Status::NotScored, why)]
        })),
    }
}

/// The container as a result's object.
pub fn container_object(c: &ContainerFacts) -> Object {
    Object {
        kind: "container",
        name: c.name().to_string(),
        id: c.inspect.id.clone(),
    }
}

/// Runs `f` on every audited container.
pub fn per_container(
    f: &Facts,
    check: impl Fn(&Facts, &ContainerFacts) -> Outcome,
) -> Vec<Outcome> {
    f.containers.iter().map(|c| check(f, c)).collect()
}

/// Every check, in CIS order.
pub fn registry() -> Vec<Check> {
    let mut all = host::checks();
    all.extend(daemon::checks());
    all.extend(files::checks());
    all.extend(images::checks());
    all.extend(containers::checks());
    all.extend(cordon::checks());
    all
}
