//! The nflog prefixes of cordon's logging rules, which the drop log and
//! `cordon status` read back:
//!
//! ```text
//! cordon <direction> <policy> <verdict>      end of a policy chain
//! cordon <direction> <fail-closed rule> drop unknown-source, unknown-destination, unbound-bridge
//! cordon spoof <reason> drop                 the bridge table's identity checks
//! ```
//!
//! The compiler writes them with a trailing space (nft prints the prefix
//! right before the packet's fields); [`LogPrefix::parse`] ignores it.

use std::fmt;

use crate::key::PolicyKey;

/// The first word of every prefix.
const COOKIE: &str = "cordon";
/// The direction word of the spoofing drops.
const SPOOF: &str = "spoof";

/// Which traffic a logging rule judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// A container's forwarded connections (`egress`).
    Egress,
    /// A container's connections to the host (`egress-host`).
    EgressHost,
    /// Forwarded connections to a container (`ingress`).
    Ingress,
    /// The host's connections to a container (`ingress-host`).
    IngressHost,
}

impl Direction {
    /// All four.
    pub const ALL: [Direction; 4] = [
        Direction::Egress,
        Direction::EgressHost,
        Direction::Ingress,
        Direction::IngressHost,
    ];

    /// The word in the prefix.
    pub fn word(self) -> &'static str {
        match self {
            Direction::Egress => "egress",
            Direction::EgressHost => "egress-host",
            Direction::Ingress => "ingress",
            Direction::IngressHost => "ingress-host",
        }
    }

    /// Reads [`Direction::word`] back.
    pub fn from_word(w: &str) -> Option<Direction> {
        Direction::ALL.into_iter().find(|d| d.word() == w)
    }

    /// True for traffic a container sends (attributed by source address).
    pub fn is_egress(self) -> bool {
        matches!(self, Direction::Egress | Direction::EgressHost)
    }
}

/// What a logging rule does with the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogVerdict {
    /// Dropped.
    Drop,
    /// Let through and logged (a policy in `mode: audit`).
    Audit,
}

impl LogVerdict {
    /// The word in the prefix (`drop`, `audit`).
    pub fn word(self) -> &'static str {
        match self {
            LogVerdict::Drop => "drop",
            LogVerdict::Audit => "audit",
        }
    }

    /// Reads [`LogVerdict::word`] back.
    pub fn from_word(w: &str) -> Option<LogVerdict> {
        [LogVerdict::Drop, LogVerdict::Audit]
            .into_iter()
            .find(|v| v.word() == w)
    }
}

/// The fail-closed drops of packets no policy judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailClosed {
    /// Sent from a bridge by an address that is no known container's.
    UnknownSource,
    /// Sent to a Docker subnet address that is no known container's.
    UnknownDestination,
    /// On a Docker bridge cordon does not manage.
    UnboundBridge,
    /// A container's connection to the L7 proxy's port that cordon's
    /// redirect did not send there (the proxy is reached only through it).
    L7Direct,
}

impl FailClosed {
    /// All four.
    pub const ALL: [FailClosed; 4] = [
        FailClosed::UnknownSource,
        FailClosed::UnknownDestination,
        FailClosed::UnboundBridge,
        FailClosed::L7Direct,
    ];

    /// The word in the prefix, in place of a policy.
    pub fn word(self) -> &'static str {
        match self {
            FailClosed::UnknownSource => "unknown-source",
            FailClosed::UnknownDestination => "unknown-destination",
            FailClosed::UnboundBridge => "unbound-bridge",
            FailClosed::L7Direct => "l7-direct",
        }
    }

    /// Reads [`FailClosed::word`] back.
    pub fn from_word(w: &str) -> Option<FailClosed> {
        FailClosed::ALL.into_iter().find(|f| f.word() == w)
    }
}

/// One logging rule's prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LogPrefix {
    /// The end of a policy chain: what the policy does with the rest. An
    /// unknown policy's label is not in the prefix (its chain is shared).
    Policy {
        /// The path the chain judges.
        direction: Direction,
        /// The policy, written as its [`PolicyKey::label`].
        policy: PolicyKey,
        /// Dropped, or audited.
        verdict: LogVerdict,
    },
    /// A fail-closed drop.
    FailClosed {
        /// The path.
        direction: Direction,
        /// Which rule.
        rule: FailClosed,
    },
    /// A spoofing drop of the bridge table.
    Spoof {
        /// Why, one word (`mac`, `ip`, `arp`, `ip6`, `nd`, `router`,
        /// `dhcp6`, `port`).
        reason: String,
    },
}

impl LogPrefix {
    /// The prefix as the compiler writes it (with the trailing space).
    pub fn format(&self) -> String {
        format!("{self} ")
    }

    /// Reads a prefix back; `None` for prefixes that are not cordon's.
    pub fn parse(prefix: &str) -> Option<LogPrefix> {
        let words: Vec<&str> = prefix.split_whitespace().collect();
        let [COOKIE, dir, subject, verdict] = words.as_slice() else {
            return None;
        };
        let verdict = LogVerdict::from_word(verdict)?;
        if *dir == SPOOF {
            return (verdict == LogVerdict::Drop).then(|| LogPrefix::Spoof {
                reason: subject.to_string(),
            });
        }
        let direction = Direction::from_word(dir)?;
        match FailClosed::from_word(subject) {
            Some(rule) => {
                (verdict == LogVerdict::Drop).then_some(LogPrefix::FailClosed { direction, rule })
            }
            None => Some(LogPrefix::Policy {
                direction,
                policy: PolicyKey::from_label(subject),
                verdict,
            }),
        }
    }

    /// The direction word: the path's, or `spoof`.
    pub fn direction_word(&self) -> &'static str {
        match self {
            LogPrefix::Policy { direction, .. } | LogPrefix::FailClosed { direction, .. } => {
                direction.word()
            }
            LogPrefix::Spoof { .. } => SPOOF,
        }
    }

    /// What judged the packet: the policy's label, the fail-closed rule's
    /// word, or `spoof`.
    pub fn subject(&self) -> &str {
        match self {
            LogPrefix::Policy { policy, .. } => policy.label(),
            LogPrefix::FailClosed { rule, .. } => rule.word(),
            LogPrefix::Spoof { .. } => SPOOF,
        }
    }

    /// What happened to the packet.
    pub fn verdict(&self) -> LogVerdict {
        match self {
            LogPrefix::Policy { verdict, .. } => *verdict,
            _ => LogVerdict::Drop,
        }
    }

    /// A spoofing drop's reason.
    pub fn reason(&self) -> Option<&str> {
        match self {
            LogPrefix::Spoof { reason } => Some(reason),
            _ => None,
        }
    }
}

impl fmt::Display for LogPrefix {
    /// The prefix without its trailing space.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (subject, verdict) = match self {
            LogPrefix::Spoof { reason } => (reason.as_str(), LogVerdict::Drop),
            other => (other.subject(), other.verdict()),
        };
        write!(
            f,
            "{COOKIE} {} {subject} {}",
            self.direction_word(),
            verdict.word()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Names that read back as something else: the built-in labels and the
    /// fail-closed words (the policy language refuses them as names, see
    /// `cordon_policy::RESERVED_NAMES`; generated policies avoid them too).
    fn ambiguous(name: &str) -> bool {
        matches!(name, "default" | "unknown") || FailClosed::from_word(name).is_some()
    }

    fn any_prefix() -> impl Strategy<Value = LogPrefix> {
        let direction = prop::sample::select(Direction::ALL.to_vec());
        let verdict = prop::sample::select(vec![LogVerdict::Drop, LogVerdict::Audit]);
        let policy = prop_oneof![
            "[a-z][a-z0-9_-]{0,31}"
                .prop_filter("not a built-in word", |n| !ambiguous(n))
                .prop_map(PolicyKey::Named),
            Just(PolicyKey::Default),
            Just(PolicyKey::Unknown(String::new())),
        ];
        prop_oneof![
            (direction.clone(), policy, verdict).prop_map(|(direction, policy, verdict)| {
                LogPrefix::Policy {
                    direction,
                    policy,
                    verdict,
                }
            }),
            (direction, prop::sample::select(FailClosed::ALL.to_vec()))
                .prop_map(|(direction, rule)| LogPrefix::FailClosed { direction, rule }),
            "[a-z0-9-]{1,12}".prop_map(|reason| LogPrefix::Spoof { reason }),
        ]
    }

    proptest! {
        #[test]
        fn every_prefix_reads_back(p in any_prefix()) {
            let text = p.format();
            prop_assert!(text.ends_with(' '));
            prop_assert!(text.len() <= 127, "nft's limit");
            prop_assert_eq!(LogPrefix::parse(&text), Some(p.clone()));
            prop_assert_eq!(LogPrefix::parse(text.trim_end()), Some(p));
        }

        #[test]
        fn parse_never_panics_and_what_it_reads_formats_back(s in "[ a-z_-]{0,40}") {
            if let Some(p) = LogPrefix::parse(&s) {
                prop_assert_eq!(p.to_string(), s.split_whitespace().collect::<Vec<_>>().join(" "));
            }
        }
    }

    #[test]
    fn the_prefixes_cordon_writes() {
        let p = LogPrefix::parse("cordon egress-host web audit ").unwrap();
        assert_eq!(
            p,
            LogPrefix::Policy {
                direction: Direction::EgressHost,
                policy: PolicyKey::Named("web".into()),
                verdict: LogVerdict::Audit
            }
        );
        assert_eq!(
            (p.direction_word(), p.subject(), p.verdict(), p.reason()),
            ("egress-host", "web", LogVerdict::Audit, None)
        );
        let d = LogPrefix::parse("cordon ingress default drop ").unwrap();
        assert_eq!(d.subject(), "default");
        let u = LogPrefix::parse("cordon egress unknown drop ").unwrap();
        assert_eq!(u.subject(), "unknown");
        // The neighbour discovery, router and unbound-bridge drops read like
        // the others: spoofing with its reason, or a fail-closed rule in
        // place of the policy.
        for what in ["nd", "router", "dhcp6"] {
            let s = LogPrefix::parse(&format!("cordon spoof {what} drop ")).unwrap();
            assert_eq!(
                (s.direction_word(), s.subject(), s.verdict(), s.reason()),
                ("spoof", "spoof", LogVerdict::Drop, Some(what))
            );
        }
        for dir in ["egress", "ingress"] {
            let f = LogPrefix::parse(&format!("cordon {dir} unbound-bridge drop ")).unwrap();
            assert_eq!(
                (f.direction_word(), f.subject(), f.verdict(), f.reason()),
                (dir, "unbound-bridge", LogVerdict::Drop, None)
            );
        }
    }

    #[test]
    fn foreign_prefixes_are_not_read() {
        for p in [
            "",
            "cordon",
            "cordon egress web",
            "cordon egress web drop extra",
            "other egress web drop",
            "cordon sideways web drop",
            "cordon egress web reject",
            "cordon spoof mac audit",
            "cordon egress unknown-source audit",
        ] {
            assert_eq!(LogPrefix::parse(p), None, "{p:?}");
        }
    }
}
