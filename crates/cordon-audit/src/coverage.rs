//! Does a cordon policy keep a container away from the private network and
//! the cloud metadata endpoint? A pure function of the policy file and the
//! container's name, image and labels.

use std::collections::{BTreeMap, BTreeSet};

use cordon_compiler::words;
use cordon_policy::{Body, Mode, Peer, PolicyFile, Selection};
use cordon_ruleset::PolicyKey;
use ipnet::IpNet;

/// What the policy file gives one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// The policy it gets (shown as the policy's name, `default`, or
    /// `unknown policy NAME`, as `cordon status` shows it).
    pub policy: PolicyKey,
    /// The egress words that open private ranges.
    pub opens_private: Vec<String>,
    /// The egress words that open the metadata endpoint.
    pub opens_metadata: Vec<String>,
    /// The policy only logs (`mode: audit`).
    pub audit_only: bool,
}

impl Coverage {
    /// Private ranges and metadata are blocked and enforced.
    pub fn blocks(&self) -> bool {
        self.opens_private.is_empty() && self.opens_metadata.is_empty() && !self.audit_only
    }
}

/// The coverage a container gets from `file`.
pub fn coverage(
    file: &PolicyFile,
    name: &str,
    image: &str,
    labels: &BTreeMap<String, String>,
    image_labels: &BTreeSet<String>,
) -> Coverage {
    let c = cordon_policy::Candidate {
        name,
        image,
        labels,
        image_labels,
    };
    let (policy, body) = match file.select(&c) {
        Selection::Policy(p) => (PolicyKey::Named(p.name.clone()), Some(&p.body)),
        Selection::Default => (PolicyKey::Default, Some(&file.default)),
        // Fail closed: an unknown label gets nothing at all.
        Selection::UnknownLabel(l) => (PolicyKey::Unknown(l), None),
    };
    let mut cov = Coverage {
        policy,
        opens_private: Vec::new(),
        opens_metadata: Vec::new(),
        audit_only: false,
    };
    if let Some(b) = body {
        judge(file, b, &mut cov);
    }
    cov
}

fn judge(file: &PolicyFile, body: &Body, cov: &mut Coverage) {
    cov.audit_only = body.mode == Mode::Audit;
    let private = words::private();
    let metadata = words::metadata();
    for rule in &body.egress {
        for peer in &rule.peers {
            let (word, nets): (String, Vec<IpNet>) = match peer {
                Peer::Any => (
                    "any".into(),
                    vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
                ),
                Peer::Private => ("private".into(), private.clone()),
                Peer::Metadata => ("metadata".into(), metadata.clone()),
                Peer::Net(n) => (n.to_string(), vec![*n]),
                Peer::Set(s) => (
                    format!("set {s}"),
                    file.set(s).map(|x| x.addrs.clone()).unwrap_or_default(),
                ),
                _ => continue,
            };
            if nets.iter().any(|n| private.iter().any(|p| overlaps(n, p))) {
                cov.opens_private.push(word.clone());
            }
            if nets.iter().any(|n| metadata.iter().any(|m| overlaps(n, m))) {
                cov.opens_metadata.push(word);
            }
        }
    }
    cov.opens_private.dedup();
    cov.opens_metadata.dedup();
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> PolicyFile {
        cordon_policy::parse("t.yaml", text).unwrap()
    }

    #[test]
    fn the_embedded_default_blocks() {
        let f = cordon_policy::embedded_default();
        let cov = coverage(&f, "web", "nginx", &BTreeMap::new(), &BTreeSet::new());
        assert_eq!(cov.policy, "default");
        assert!(cov.blocks(), "{cov:?}");
    }

    #[test]
    fn opening_words_are_named() {
        let f = file(
            "version: 1\nsets:\n  lan: [10.1.0.0/16]\npolicies:\n  - name: a\n    select: { name: \"a*\" }\n    egress:\n      - to: [lan, 169.254.169.254]\n  - name: b\n    select: { name: \"b*\" }\n    mode: audit\n    egress:\n      - to: [internet]\n  - name: c\n    select: { name: \"c*\" }\n    egress:\n      - to: [any]\n",
        );
        let none = BTreeMap::new();
        let a = coverage(&f, "a1", "x", &none, &BTreeSet::new());
        assert_eq!(a.opens_private, ["set lan", "169.254.169.254/32"]);
        assert_eq!(a.opens_metadata, ["169.254.169.254/32"]);
        let b = coverage(&f, "b1", "x", &none, &BTreeSet::new());
        assert!(b.audit_only && !b.blocks());
        let c = coverage(&f, "c1", "x", &none, &BTreeSet::new());
        assert_eq!(c.opens_metadata, ["any"]);
        let unknown = coverage(
            &f,
            "z",
            "x",
            &BTreeMap::from([("cordon.policy".to_string(), "nope".to_string())]),
            &BTreeSet::new(),
        );
        assert!(unknown.blocks());
        assert_eq!(unknown.policy.to_string(), "unknown policy nope");
    }

    #[test]
    fn an_image_s_policy_label_is_judged_as_the_daemon_judges_it() {
        let text = "version: 1\npolicies:\n  - name: deny\n    egress: []\n";
        let labels = BTreeMap::from([("cordon.policy".to_string(), "deny".to_string())]);
        let from_image = BTreeSet::from(["cordon.policy".to_string()]);
        let cov = coverage(&file(text), "x", "img", &labels, &from_image);
        assert_eq!(cov.policy, "default");
        let trusting = file(&format!("trust_image_labels: true\n{text}"));
        assert_eq!(
            coverage(&trusting, "x", "img", &labels, &from_image).policy,
            "deny"
        );
        assert_eq!(
            coverage(&file(text), "x", "img", &labels, &BTreeSet::new()).policy,
            "deny"
        );
    }
}
