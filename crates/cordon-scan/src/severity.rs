//! A finding's severity: the record's own (`database_specific.severity`,
//! Debian's `urgency`), else the CVSS v3 base score of its vector.

use serde_json::Value;

use crate::osv::{Score, Specific};

/// Severity levels, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The record gives none.
    Unknown,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// A severity word (`HIGH`, `moderate`, Debian's `unimportant`, ...).
    pub fn from_word(w: &str) -> Option<Severity> {
        Some(match w.trim().to_ascii_lowercase().as_str() {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" | "negligible" | "unimportant" => Severity::Low,
            _ => return None,
        })
    }

    /// The CVSS band of a base score.
    pub fn from_score(s: f64) -> Severity {
        match s {
            s if s >= 9.0 => Severity::Critical,
            s if s >= 7.0 => Severity::High,
            s if s >= 4.0 => Severity::Medium,
            s if s > 0.0 => Severity::Low,
            _ => Severity::Unknown,
        }
    }
}

/// CVSS v3.x base score of a vector (`CVSS:3.1/AV:N/AC:L/...`).
pub fn cvss3_score(vector: &str) -> Option<f64> {
    let mut m = std::collections::HashMap::new();
    for part in vector.split('/').skip(1) {
        let (k, v) = part.split_once(':')?;
        m.insert(k, v);
    }
    let av = match *m.get("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match *m.get("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let changed = *m.get("S")? == "C";
    let pr = match (*m.get("PR")?, changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match *m.get("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |k: &str| -> Option<f64> {
        Some(match *m.get(k)? {
            "H" => 0.56,
            "L" => 0.22,
            "N" => 0.0,
            _ => return None,
        })
    };
    let iss = 1.0 - (1.0 - cia("C")?) * (1.0 - cia("I")?) * (1.0 - cia("A")?);
    let impact = if changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Some(0.0);
    }
    let raw = if changed {
        (1.08 * (impact + exploitability)).min(10.0)
    } else {
        (impact + exploitability).min(10.0)
    };
    // CVSS "round up" to one decimal.
    let int = (raw * 100_000.0).round() as i64;
    Some(if int % 10_000 == 0 {
        int as f64 / 100_000.0
    } else {
        ((int / 10_000) + 1) as f64 / 10.0
    })
}

/// The severity word of a `database_specific` or `ecosystem_specific`.
pub fn word(s: &Specific) -> Option<Severity> {
    [&s.severity, &s.urgency]
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(Severity::from_word)
}

/// The worst severity of a record's CVSS entries (v3 vectors are scored;
/// a bare number is taken as the score).
pub fn from_scores(scores: &[Score]) -> Severity {
    scores
        .iter()
        .filter_map(|s| {
            s.score.parse::<f64>().ok().or_else(|| {
                s.score
                    .starts_with("CVSS:3")
                    .then(|| cvss3_score(&s.score))
                    .flatten()
            })
        })
        .map(Severity::from_score)
        .max()
        .unwrap_or(Severity::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvss3_base_scores_match_nvd() {
        assert_eq!(
            cvss3_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            Some(9.8)
        );
        assert_eq!(
            cvss3_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"),
            Some(10.0)
        );
        assert_eq!(
            cvss3_score("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"),
            Some(7.8)
        );
        assert_eq!(
            cvss3_score("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N"),
            Some(3.1)
        );
        assert_eq!(
            cvss3_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"),
            Some(6.1)
        );
    }

    fn severities(json: &str) -> Vec<Severity> {
        let mut db = crate::osv::Db::default();
        db.add("t.json", json.as_bytes()).unwrap();
        db.records[0].affected.iter().map(|a| a.severity).collect()
    }

    #[test]
    fn the_records_word_wins_over_the_score() {
        let cvss = r#""severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]"#;
        let a = r#""affected":[{"package":{"ecosystem":"Debian:12","name":"p"}},
            {"package":{"ecosystem":"Debian:11","name":"p"},"ecosystem_specific":{"urgency":"unimportant"}}]"#;
        assert_eq!(
            severities(&format!(
                r#"{{"id":"X",{cvss},"database_specific":{{"severity":"MODERATE"}},{a}}}"#
            )),
            [Severity::Medium, Severity::Medium]
        );
        assert_eq!(
            severities(&format!(r#"{{"id":"X",{cvss},{a}}}"#)),
            [Severity::Critical, Severity::Low]
        );
        assert_eq!(
            severities(&format!(r#"{{"id":"X",{a}}}"#)),
            [Severity::Unknown, Severity::Low]
        );
    }
}
