//! Which policy a container got, in the three forms cordon writes it:
//!
//! | key                    | shown (plan, status, logs) | label (log prefixes, counters) | in chain names |
//! |------------------------|----------------------------|--------------------------------|----------------|
//! | `Named("web")`         | `web`                      | `web`                          | `web`          |
//! | `Default`              | `default`                  | `default`                      | `_default`     |
//! | `Unknown("typo")`      | `unknown policy typo`      | `unknown`                      | `_unknown`     |
//!
//! Policy names are `[a-z][a-z0-9_-]*` and never `default` (the policy
//! language reserves it), so the chain forms of the built-ins, which start
//! with `_`, never collide with a policy's. Every container with an unknown
//! label shares the one `_unknown` chain, so the label is not part of the
//! chain names; read back from a chain name or a log prefix it is empty.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The policy a container got.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum PolicyKey {
    /// A policy of the policy file, by name.
    Named(String),
    /// The policy file's `default` body.
    #[default]
    Default,
    /// The container's label names a policy the file does not have (the
    /// label is kept); it gets nothing at all (fail closed).
    Unknown(String),
}

/// What [`PolicyKey::Default`] is shown as.
const DEFAULT_SHOWN: &str = "default";
/// What [`PolicyKey::Unknown`] is shown as, before its label.
const UNKNOWN_SHOWN: &str = "unknown policy";
/// [`PolicyKey::Unknown`] in log prefixes and counters.
const UNKNOWN_LABEL: &str = "unknown";
/// [`PolicyKey::Default`] in chain and set names.
const DEFAULT_PART: &str = "_default";
/// [`PolicyKey::Unknown`] in chain and set names.
const UNKNOWN_PART: &str = "_unknown";

impl PolicyKey {
    /// The key in chain and set names: the policy's name, `_default` or
    /// `_unknown`.
    pub fn chain_part(&self) -> &str {
        match self {
            PolicyKey::Named(n) => n,
            PolicyKey::Default => DEFAULT_PART,
            PolicyKey::Unknown(_) => UNKNOWN_PART,
        }
    }

    /// Reads [`PolicyKey::chain_part`] back (an unknown policy's label is
    /// empty: chain names do not carry it).
    pub fn from_chain_part(part: &str) -> PolicyKey {
        match part {
            DEFAULT_PART => PolicyKey::Default,
            UNKNOWN_PART => PolicyKey::Unknown(String::new()),
            n => PolicyKey::Named(n.to_string()),
        }
    }

    /// The key in log prefixes and in the per-policy counters of
    /// `cordon status`: the policy's name, `default` or `unknown`.
    pub fn label(&self) -> &str {
        match self {
            PolicyKey::Named(n) => n,
            PolicyKey::Default => DEFAULT_SHOWN,
            PolicyKey::Unknown(_) => UNKNOWN_LABEL,
        }
    }

    /// Reads [`PolicyKey::label`] back (an unknown policy's label is
    /// empty).
    pub fn from_label(label: &str) -> PolicyKey {
        match label {
            DEFAULT_SHOWN => PolicyKey::Default,
            UNKNOWN_LABEL => PolicyKey::Unknown(String::new()),
            n => PolicyKey::Named(n.to_string()),
        }
    }

    /// Reads the shown form ([`Display`](fmt::Display)) back: `default`,
    /// `unknown policy LABEL`, or a policy's name.
    pub fn from_shown(shown: &str) -> PolicyKey {
        if shown == DEFAULT_SHOWN {
            PolicyKey::Default
        } else if let Some(rest) = shown.strip_prefix(UNKNOWN_SHOWN) {
            PolicyKey::Unknown(rest.strip_prefix(' ').unwrap_or(rest).to_string())
        } else {
            PolicyKey::Named(shown.to_string())
        }
    }
}

impl fmt::Display for PolicyKey {
    /// As `cordon plan` and `cordon status` show it: the policy's name,
    /// `default`, or `unknown policy LABEL`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyKey::Named(n) => f.write_str(n),
            PolicyKey::Default => f.write_str(DEFAULT_SHOWN),
            PolicyKey::Unknown(l) => write!(f, "{UNKNOWN_SHOWN} {l}"),
        }
    }
}

impl From<&str> for PolicyKey {
    /// Reads the shown form ([`PolicyKey::from_shown`]).
    fn from(shown: &str) -> Self {
        PolicyKey::from_shown(shown)
    }
}

impl From<String> for PolicyKey {
    /// Reads the shown form ([`PolicyKey::from_shown`]).
    fn from(shown: String) -> Self {
        PolicyKey::from_shown(&shown)
    }
}

impl PartialEq<str> for PolicyKey {
    /// Compares the shown form.
    fn eq(&self, other: &str) -> bool {
        match self {
            PolicyKey::Named(n) => n == other,
            PolicyKey::Default => other == DEFAULT_SHOWN,
            PolicyKey::Unknown(l) => other
                .strip_prefix(UNKNOWN_SHOWN)
                .and_then(|r| r.strip_prefix(' '))
                .is_some_and(|r| r == l),
        }
    }
}

impl PartialEq<&str> for PolicyKey {
    /// Compares the shown form.
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl Serialize for PolicyKey {
    /// Serialised in the shown form, as the assignments always were.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PolicyKey {
    /// Read from the shown form.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(PolicyKey::from_shown(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<PolicyKey> {
        vec![
            PolicyKey::Named("web".into()),
            PolicyKey::Named("a-b_c9".into()),
            PolicyKey::Default,
            PolicyKey::Unknown("typo".into()),
            PolicyKey::Unknown("a\nforged".into()),
            PolicyKey::Unknown(String::new()),
        ]
    }

    #[test]
    fn the_three_forms() {
        let web = PolicyKey::Named("web".into());
        assert_eq!(
            (web.to_string(), web.label(), web.chain_part()),
            ("web".into(), "web", "web")
        );
        let d = PolicyKey::Default;
        assert_eq!(
            (d.to_string(), d.label(), d.chain_part()),
            ("default".into(), "default", "_default")
        );
        let u = PolicyKey::Unknown("typo".into());
        assert_eq!(
            (u.to_string(), u.label(), u.chain_part()),
            ("unknown policy typo".into(), "unknown", "_unknown")
        );
    }

    #[test]
    fn every_form_reads_back() {
        for k in keys() {
            assert_eq!(PolicyKey::from_shown(&k.to_string()), k);
            assert!(k == k.to_string().as_str(), "{k:?}");
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, serde_json::to_string(&k.to_string()).unwrap());
            assert_eq!(serde_json::from_str::<PolicyKey>(&json).unwrap(), k);
            // Chain names and labels drop an unknown policy's label.
            let bare = match &k {
                PolicyKey::Unknown(_) => PolicyKey::Unknown(String::new()),
                other => other.clone(),
            };
            assert_eq!(PolicyKey::from_chain_part(k.chain_part()), bare);
            assert_eq!(PolicyKey::from_label(k.label()), bare);
        }
        assert!(PolicyKey::Named("web".into()) != "webx");
        assert!(PolicyKey::Unknown("x".into()) != "unknown policy y");
    }
}
