//! The comparison of what the policy says with what the probes saw: a
//! table for people, JSON for programs.

use serde::Serialize;

use cordon_compiler::evaluate::Expected;
use cordon_inventory::Shown;

use crate::observed::Observed;
use crate::target::Target;

/// One probe: what the policy says and what happened.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The target, as written (`198.51.100.2:80/tcp`).
    pub target: String,
    /// `allow`, `allow (audit)` or `deny`.
    pub expected: String,
    /// The rule or fixed behaviour that decides.
    pub rule: String,
    /// What the probe saw.
    pub observed: Observed,
    /// True when the probe reached its target.
    pub reached: bool,
    /// True when the observation matches the policy.
    pub agree: bool,
}

impl Row {
    /// Compares one expectation with one observation: they agree when the
    /// policy allows and the probe reached its target, or the policy denies
    /// and it did not. A probe that could not run agrees with nothing.
    pub fn new(target: &Target, expected: &Expected, observed: Observed) -> Row {
        let reached = observed.reached();
        Row {
            target: target.to_string(),
            expected: match (expected.allowed, expected.audit) {
                (true, true) => "allow (audit)".into(),
                (true, false) => "allow".into(),
                (false, _) => "deny".into(),
            },
            rule: expected.reason.clone(),
            agree: !observed.failed() && reached == expected.allowed,
            reached,
            observed,
        }
    }
}

/// Everything `cordon verify` found for one container.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The container's name.
    pub container: String,
    /// Its id.
    pub id: String,
    /// Its policy, as `cordon plan` shows it.
    pub policy: String,
    /// One row per target, in the order given.
    pub rows: Vec<Row>,
    /// True when every row agrees.
    pub agree: bool,
    /// Things that affect the reading (cordon not installed, …).
    pub notes: Vec<String>,
}

impl Report {
    /// Builds the report; `agree` follows the rows.
    pub fn new(
        container: &str,
        id: &str,
        policy: &str,
        rows: Vec<Row>,
        notes: Vec<String>,
    ) -> Report {
        Report {
            container: container.into(),
            id: id.into(),
            policy: policy.into(),
            agree: rows.iter().all(|r| r.agree),
            rows,
            notes,
        }
    }

    /// The rows that disagree.
    pub fn disagreements(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| !r.agree)
    }

    /// The table: target, expected, observed, agree?, and the deciding rule.
    pub fn text(&self) -> String {
        let mut out = format!(
            "container {} ({}) policy {}\n",
            Shown(&self.container),
            Shown(&self.id[..self.id.len().min(12)]),
            Shown(&self.policy)
        );
        let observed: Vec<String> = self.rows.iter().map(|r| r.observed.to_string()).collect();
        let width = |cells: &mut dyn Iterator<Item = usize>, header: &str| {
            cells.chain([header.len()]).max().unwrap_or(0)
        };
        let w_target = width(&mut self.rows.iter().map(|r| r.target.len()), "TARGET");
        let w_exp = width(&mut self.rows.iter().map(|r| r.expected.len()), "EXPECTED");
        let w_obs = width(&mut observed.iter().map(String::len), "OBSERVED");
        out.push_str(&format!(
            "{:<w_target$}  {:<w_exp$}  {:<w_obs$}  {:<5}  RULE\n",
            "TARGET", "EXPECTED", "OBSERVED", "AGREE"
        ));
        for (r, obs) in self.rows.iter().zip(&observed) {
            out.push_str(&format!(
                "{:<w_target$}  {:<w_exp$}  {:<w_obs$}  {:<5}  {}\n",
                r.target,
                r.expected,
                obs,
                if r.agree { "yes" } else { "NO" },
                r.rule
            ));
        }
        for n in &self.notes {
            out.push_str(&format!("note: {}\n", Shown(n)));
        }
        out
    }

    /// The report as pretty JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(allowed: bool) -> Expected {
        Expected {
            allowed,
            audit: false,
            policy: "web".into(),
            reason: "egress rule 1 of web (line 5): to [internet] ports [80/tcp]".into(),
        }
    }

    #[test]
    fn rows_agree_only_when_reachability_matches_the_policy() {
        let t: Target = "198.51.100.2:80/tcp".parse().unwrap();
        assert!(Row::new(&t, &expected(true), Observed::Connected).agree);
        assert!(Row::new(&t, &expected(true), Observed::Refused).agree);
        assert!(!Row::new(&t, &expected(true), Observed::TimedOut).agree);
        assert!(Row::new(&t, &expected(false), Observed::NoReply).agree);
        assert!(!Row::new(&t, &expected(false), Observed::EchoReply).agree);
        assert!(!Row::new(&t, &expected(false), Observed::Failed("x".into())).agree);
        let rows = vec![
            Row::new(&t, &expected(true), Observed::Connected),
            Row::new(&t, &expected(false), Observed::Connected),
        ];
        let r = Report::new("ctr", "0123456789abcdef", "web", rows, vec![]);
        assert!(!r.agree);
        assert_eq!(r.disagreements().count(), 1);
        let text = r.text();
        assert!(text.contains("NO"), "{text}");
        assert!(text.contains("to [internet]"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(json["rows"][1]["agree"], false);
        assert_eq!(json["rows"][0]["observed"]["outcome"], "connected");
    }
}
