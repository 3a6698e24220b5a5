//! Allowlisted names per policy, from the policy file's `to:` words.
//!
//! `api.example.com` matches that name only; `*.example.org` matches any
//! name below `example.org` (`a.example.org`, `a.b.example.org`) but not
//! `example.org` itself, as DNS wildcards do. Matching ignores case and a
//! trailing dot.

use cordon_policy::{Body, Peer, PolicyFile};
use cordon_ruleset::{names, PolicyKey};

/// One allowlisted name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Exactly this name (lower-case, no trailing dot).
    Exact(String),
    /// Any name below this suffix (lower-case, no leading `*.`).
    Below(String),
}

/// Lower-case, without a trailing dot.
pub fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Pattern {
    /// True when the (normalised or not) `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let name = normalise(name);
        match self {
            Pattern::Exact(n) => name == *n,
            Pattern::Below(suffix) => name
                .strip_suffix(suffix.as_str())
                .and_then(|head| head.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty() && !escapes_last(label)),
        }
    }
}

impl std::fmt::Display for Pattern {
    /// As written in the policy: `api.example.com` or `*.example.org`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pattern::Exact(n) => f.write_str(n),
            Pattern::Below(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

/// True when `s` ends in an odd run of backslashes, so the character
/// after it is escaped: in `a.b\.example.org` (a name's text form, see
/// `Name::to_ascii`) the dot before `example` is inside the label
/// `b.example`, not a label boundary.
fn escapes_last(s: &str) -> bool {
    s.bytes().rev().take_while(|b| *b == b'\\').count() % 2 == 1
}

/// One egress rule that names DNS names, and the sets its answers fill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRule {
    /// The policy.
    pub policy: PolicyKey,
    /// The rule's index in the policy's `egress:`.
    pub rule: usize,
    /// Its names.
    pub patterns: Vec<Pattern>,
    /// What its names may resolve to beyond public addresses (the rule's
    /// other destinations).
    pub scope: crate::rebind::Scope,
    /// The rule has `match: server-name`: its connections go through the
    /// L7 proxy, which needs the addresses each answer let through.
    pub server_name: bool,
}

impl DnsRule {
    /// The timeout sets of `inet cordon` that this rule's addresses go to:
    /// (IPv4 set, IPv6 set).
    pub fn sets(&self) -> (String, String) {
        (
            names::dns_set(&self.policy, self.rule, 4),
            names::dns_set(&self.policy, self.rule, 6),
        )
    }
}

/// Every DNS rule of a policy file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    rules: Vec<DnsRule>,
}

impl Allowlist {
    /// The DNS rules of every policy and of the default body.
    pub fn from_policy(p: &PolicyFile) -> Allowlist {
        let mut rules = Vec::new();
        let bodies = p
            .policies
            .iter()
            .map(|x| (PolicyKey::Named(x.name.clone()), &x.body))
            .chain(std::iter::once((PolicyKey::Default, &p.default)));
        for (key, body) in bodies {
            rules.extend(rules_of(&key, body, p));
        }
        Allowlist { rules }
    }

    /// Every rule, policies first, then the default body's.
    pub fn rules(&self) -> &[DnsRule] {
        &self.rules
    }

    /// True when the policy names any DNS name; `policy` is its key as
    /// chain names write it ([`PolicyKey::chain_part`]).
    pub fn has_names(&self, policy: &str) -> bool {
        self.rules.iter().any(|r| r.policy.chain_part() == policy)
    }

    /// The rules of `policy` ([`PolicyKey::chain_part`]) that allow `name`;
    /// empty when it is not allowlisted.
    pub fn matching<'a>(&'a self, policy: &str, name: &str) -> Vec<&'a DnsRule> {
        self.rules
            .iter()
            .filter(|r| {
                r.policy.chain_part() == policy && r.patterns.iter().any(|p| p.matches(name))
            })
            .collect()
    }
}

fn rules_of(key: &PolicyKey, body: &Body, file: &PolicyFile) -> Vec<DnsRule> {
    body.egress
        .iter()
        .enumerate()
        .filter_map(|(idx, rule)| {
            let patterns: Vec<Pattern> = rule
                .peers
                .iter()
                .filter_map(|p| match p {
                    Peer::Dns(n) => Some(Pattern::Exact(normalise(n))),
                    Peer::DnsWildcard(n) => Some(Pattern::Below(normalise(n))),
                    _ => None,
                })
                .collect();
            (!patterns.is_empty()).then(|| DnsRule {
                policy: key.clone(),
                rule: idx,
                patterns,
                scope: crate::rebind::Scope::of_rule(rule, file),
                server_name: rule.server_name,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_wildcard_names_match_as_dns_does() {
        let e = Pattern::Exact("api.example.com".into());
        assert!(e.matches("api.example.com"));
        assert!(e.matches("API.Example.COM."));
        assert!(!e.matches("x.api.example.com"));
        assert!(!e.matches("api.example.com.evil.test"));
        let w = Pattern::Below("example.org".into());
        assert!(w.matches("a.example.org"));
        assert!(w.matches("A.B.Example.Org."));
        assert!(
            !w.matches("example.org"),
            "the wildcard is below the suffix"
        );
        assert!(!w.matches("badexample.org"), "a label boundary is needed");
        assert!(!w.matches(".example.org"));
        assert!(!w.matches("example.org.evil.test"));
    }

    /// Found by the fuzzer: the name with labels `a`, `b.example`, `org`
    /// (text `a.b\.example.org.`) is not below `example.org`.
    #[test]
    fn an_escaped_dot_is_no_label_boundary() {
        let w = Pattern::Below("example.org".into());
        assert!(!w.matches(r"a.b\.example.org."));
        assert!(!w.matches(r"b\.example.org"));
        // An escaped backslash ends its label; the dot after it is real.
        assert!(w.matches(r"a.b\\.example.org."));
        assert!(w.matches(r"a\.b.example.org."));
    }

    #[test]
    fn rules_come_from_policies_and_the_default_body() {
        let p = cordon_policy::parse(
            "p.yaml",
            "version: 1\ndefault:\n  egress:\n    - to: [internet]\n    - to: [\"*.example.org\"]\npolicies:\n  - name: web\n    select: { name: web }\n    egress:\n      - to: [db.example.com, \"*.Example.NET\"]\n        ports: [443/tcp]\n",
        )
        .unwrap();
        let a = Allowlist::from_policy(&p);
        let default = PolicyKey::Default;
        assert!(a.has_names("web") && a.has_names(default.chain_part()));
        let m = a.matching("web", "x.example.net.");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].sets(), ("dns_web_0_4".into(), "dns_web_0_6".into()));
        assert!(
            a.matching("web", "a.example.org").is_empty(),
            "not web's name"
        );
        assert_eq!(a.matching(default.chain_part(), "a.example.org")[0].rule, 1);
        assert!(a.matching("web", "db.example.com").len() == 1);
    }

    #[test]
    fn a_rule_knows_whether_it_matches_server_names() {
        let p = cordon_policy::parse(
            "p.yaml",
            "version: 1\ndefault:\n  egress: []\npolicies:\n  - name: web\n    select: { name: web }\n    egress:\n      - to: [api.example.com]\n        ports: [443/tcp]\n        match: server-name\n      - to: [db.example.com]\n        ports: [5432/tcp]\n",
        )
        .unwrap();
        let a = Allowlist::from_policy(&p);
        assert!(a.matching("web", "api.example.com")[0].server_name);
        assert!(!a.matching("web", "db.example.com")[0].server_name);
    }
}
