//! The decision on one proxied connection (rules with `match: server-name`):
//! it passes only if its server name (TLS SNI or HTTP/1.x Host) matches a
//! name of one of its policy's server-name rules covering its port, AND its
//! destination address was learned (by cordon's DNS proxy) for a name of
//! that same rule. Names match as the DNS proxy matches them
//! ([`cordon_dns::allow::Pattern`]): exactly, or `*.suffix` for any name
//! below the suffix, ignoring case and a trailing dot.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use cordon_dns::allow::{Allowlist, DnsRule};
use cordon_l7::{Connection, Decider, FirstFlight, Verdict};
use cordon_policy::{Mode, PolicyFile, PortSpec};
use cordon_ruleset::PolicyKey;

use super::learned::Learned;
use super::report;
use crate::directory::Shared;
use crate::observe::Observe;

/// One rule with `match: server-name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRule {
    /// Its names and sets, as the DNS proxy knows them.
    pub dns: DnsRule,
    /// Its TCP port ranges.
    pub ports: Vec<(u16, u16)>,
    /// Its line in the policy file.
    pub line: usize,
}

/// A policy's server-name rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyRules {
    /// `mode: audit`: a refusal is logged as `audit` and the connection
    /// passes.
    pub audit: bool,
    /// Its server-name rules, in file order.
    pub rules: Vec<NameRule>,
}

/// Every policy's server-name rules, by [`PolicyKey::chain_part`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rules {
    /// chain part → rules.
    pub by_policy: HashMap<String, PolicyRules>,
    /// `l7.max_connections_per_container`.
    pub per_container: usize,
}

impl Rules {
    /// The server-name rules of `p` (policies and the default body).
    pub fn from_policy(p: &PolicyFile) -> Rules {
        let allow = Allowlist::from_policy(p);
        let bodies = p
            .policies
            .iter()
            .map(|x| (PolicyKey::Named(x.name.clone()), &x.body))
            .chain(std::iter::once((PolicyKey::Default, &p.default)));
        let mut by_policy = HashMap::new();
        for (key, body) in bodies {
            let part = key.chain_part().to_string();
            let rules: Vec<NameRule> = body
                .egress
                .iter()
                .enumerate()
                .filter(|(_, r)| r.server_name)
                .filter_map(|(idx, r)| {
                    let dns = allow
                        .rules()
                        .iter()
                        .find(|d| d.policy == key && d.rule == idx)?
                        .clone();
                    let ports = r
                        .ports
                        .iter()
                        .filter_map(|s| match *s {
                            PortSpec::Tcp(lo, hi) => Some((lo, hi)),
                            _ => None,
                        })
                        .collect();
                    Some(NameRule {
                        dns,
                        ports,
                        line: r.loc.line,
                    })
                })
                .collect();
            if !rules.is_empty() {
                by_policy.insert(
                    part,
                    PolicyRules {
                        audit: body.mode == Mode::Audit,
                        rules,
                    },
                );
            }
        }
        Rules {
            by_policy,
            per_container: p.l7.max_connections_per_container,
        }
    }

    /// True when no policy has a server-name rule.
    pub fn is_empty(&self) -> bool {
        self.by_policy.is_empty()
    }
}

/// Why a connection is refused: a stable kind (a metric label) and one
/// line for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `unknown-source`, `no-rule`, `ech`, `no-name`, `not-tls-or-http`,
    /// `name` or `address`.
    pub kind: &'static str,
    /// What was wrong.
    pub why: String,
}

impl fmt::Display for Refusal {
    /// `KIND: WHY`, the reason the proxy reports.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.why)
    }
}

/// The kind of a reason written by [`Refusal`]'s `Display` (the word before
/// the first `:`), or `other`.
pub fn kind_of(reason: &str) -> &str {
    const KINDS: [&str; 7] = [
        "unknown-source",
        "no-rule",
        "ech",
        "no-name",
        "not-tls-or-http",
        "name",
        "address",
    ];
    let word = reason.split(':').next().unwrap_or("");
    KINDS.into_iter().find(|k| *k == word).unwrap_or("other")
}

/// Judges `conn` against `policy`'s server-name rules (`shown`: the
/// policy's name for messages); `holds(rule, addr)`: whether `addr` is
/// learned for `rule` now. Returns the index of the rule that passes it.
pub fn judge(
    policy: &PolicyRules,
    shown: &str,
    conn: &Connection,
    holds: impl Fn(&DnsRule, IpAddr) -> bool,
) -> Result<usize, Refusal> {
    let port = conn.original_dst.port();
    let dst = conn.original_dst.ip().to_canonical();
    let covering: Vec<(usize, &NameRule)> = policy
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.ports.iter().any(|(lo, hi)| (*lo..=*hi).contains(&port)))
        .collect();
    if covering.is_empty() {
        return Err(Refusal {
            kind: "no-rule",
            why: format!("no server-name rule of policy {shown} covers port {port}/tcp"),
        });
    }
    let name = match &conn.first_flight {
        FirstFlight::Tls { ech: true, .. } => {
            return Err(Refusal {
                kind: "ech",
                why: "an encrypted ClientHello (ECH): the real server name cannot be checked"
                    .into(),
            })
        }
        FirstFlight::Tls {
            server_name: None, ..
        } => {
            return Err(Refusal {
                kind: "no-name",
                why: "a TLS ClientHello without a server name (SNI)".into(),
            })
        }
        FirstFlight::Http { host: None } => {
            return Err(Refusal {
                kind: "no-name",
                why: "an HTTP request without a (single, valid) Host".into(),
            })
        }
        FirstFlight::Unknown { why } => {
            return Err(Refusal {
                kind: "not-tls-or-http",
                why: format!("neither a TLS ClientHello nor an HTTP/1.x request ({why})"),
            })
        }
        FirstFlight::Tls {
            server_name: Some(n),
            ..
        }
        | FirstFlight::Http { host: Some(n) } => n.as_str(),
    };
    let named: Vec<(usize, &NameRule)> = covering
        .into_iter()
        .filter(|(_, r)| r.dns.patterns.iter().any(|p| p.matches(name)))
        .collect();
    if named.is_empty() {
        return Err(Refusal {
            kind: "name",
            why: format!(
                "{name} is not a name of a server-name rule of policy {shown} for port {port}/tcp"
            ),
        });
    }
    named
        .iter()
        .find(|(_, r)| holds(&r.dns, dst))
        .map(|(i, _)| *i)
        .ok_or_else(|| Refusal {
            kind: "address",
            why: format!(
                "{dst} was not learned for a name of the rule (line {}) that names {name}",
                named[0].1.line
            ),
        })
}

/// The daemon's [`Decider`]: which container (by source address), its
/// policy's rules, the addresses learned; audit mode logs and passes.
pub struct PolicyDecider {
    /// The rules in force (swapped on a reload).
    pub rules: Arc<RwLock<Arc<Rules>>>,
    /// Container addresses → who.
    pub dir: Shared,
    /// The DNS proxy's learned addresses.
    pub learned: Arc<Learned>,
    /// Where audits are logged.
    pub obs: Arc<Observe>,
}

impl Decider for PolicyDecider {
    fn decide(&self, conn: &Connection) -> Verdict {
        let src = conn.source.ip().to_canonical();
        let client = self
            .dir
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_addr
            .get(&src)
            .cloned();
        let Some(client) = client else {
            return Verdict::Refuse {
                reason: Refusal {
                    kind: "unknown-source",
                    why: format!("{src} is no container cordon knows"),
                }
                .to_string(),
            };
        };
        let rules = self.rules.read().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(policy) = rules.by_policy.get(client.key.chain_part()) else {
            return Verdict::Refuse {
                reason: Refusal {
                    kind: "no-rule",
                    why: format!("policy {} has no server-name rule", client.policy),
                }
                .to_string(),
            };
        };
        match judge(policy, &client.policy, conn, |r, a| {
            self.learned.holds(r, a)
        }) {
            Ok(_) => Verdict::Pass,
            Err(r) if policy.audit => {
                report::audited(&self.obs, &self.dir, conn, &r.to_string());
                Verdict::Pass
            }
            Err(r) => Verdict::Refuse {
                reason: r.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    const POLICY: &str = r#"
version: 1
l7:
  max_connections_per_container: 9
policies:
  - name: web
    select: { name: web }
    egress:
      - to: [api.example.com, "*.cdn.example.org"]
        ports: [443/tcp, 80/tcp]
        match: server-name
      - to: [other.example.com]
        ports: [443/tcp]
        match: server-name
      - to: [plain.example.com]
        ports: [443/tcp]
  - name: watch
    select: { name: watch }
    mode: audit
    egress:
      - to: [api.example.com]
        ports: [443/tcp]
        match: server-name
"#;

    fn rules() -> Rules {
        Rules::from_policy(&cordon_policy::parse("p.yaml", POLICY).unwrap())
    }

    fn conn(dst: &str, flight: FirstFlight) -> Connection {
        Connection {
            source: "172.17.0.2:40000".parse().unwrap(),
            original_dst: dst.parse::<SocketAddr>().unwrap(),
            first_flight: flight,
        }
    }

    fn tls(name: &str) -> FirstFlight {
        FirstFlight::Tls {
            server_name: Some(name.into()),
            ech: false,
        }
    }

    /// Rule 0 learned 198.51.100.9 and 2001:db8::9; rule 1 learned
    /// 198.51.100.10.
    fn holds(r: &DnsRule, a: IpAddr) -> bool {
        matches!(
            (r.rule, a.to_string().as_str()),
            (0, "198.51.100.9") | (0, "2001:db8::9") | (1, "198.51.100.10")
        )
    }

    fn kind(r: Result<usize, Refusal>) -> &'static str {
        match r {
            Ok(_) => "pass",
            Err(e) => e.kind,
        }
    }

    #[test]
    fn rules_come_from_server_name_rules_only() {
        let r = rules();
        assert_eq!(r.per_container, 9);
        let web = &r.by_policy["web"];
        assert!(!web.audit);
        assert_eq!(web.rules.len(), 2, "the plain DNS rule is not checked");
        assert_eq!(web.rules[0].ports, vec![(443, 443), (80, 80)]);
        assert_eq!(web.rules[1].dns.rule, 1);
        assert!(r.by_policy["watch"].audit);
        assert!(Rules::from_policy(&cordon_policy::embedded_default()).is_empty());
    }

    #[test]
    fn name_and_address_must_both_belong_to_one_rule() {
        let r = rules();
        let web = &r.by_policy["web"];
        let j = |dst: &str, f: FirstFlight| kind(judge(web, "web", &conn(dst, f), holds));
        // Positive controls: the rule's name at its learned address, both
        // families, exact and wildcard, any case, SNI and Host.
        assert_eq!(j("198.51.100.9:443", tls("api.example.com")), "pass");
        assert_eq!(j("[2001:db8::9]:443", tls("API.Example.com")), "pass");
        assert_eq!(j("198.51.100.9:443", tls("a.b.cdn.example.org")), "pass");
        let host = |h: &str| FirstFlight::Http {
            host: Some(h.into()),
        };
        assert_eq!(j("198.51.100.9:80", host("api.example.com")), "pass");
        assert_eq!(j("198.51.100.10:443", tls("other.example.com")), "pass");
        // Another name to the same address.
        assert_eq!(j("198.51.100.9:443", tls("evil.example.net")), "name");
        assert_eq!(j("198.51.100.9:443", tls("cdn.example.org")), "name");
        assert_eq!(j("198.51.100.9:80", host("evil.example.net")), "name");
        // A plain DNS rule's name does not count.
        assert_eq!(j("198.51.100.9:443", tls("plain.example.com")), "name");
        // The allowed name at an address learned for another rule's name.
        assert_eq!(j("198.51.100.10:443", tls("api.example.com")), "address");
        assert_eq!(j("198.51.100.9:443", tls("other.example.com")), "address");
        // ... or learned for nothing.
        assert_eq!(j("198.51.100.11:443", tls("api.example.com")), "address");
        // A port the rule does not name (other.example.com has no 80).
        assert_eq!(j("198.51.100.10:80", host("other.example.com")), "name");
        assert_eq!(j("198.51.100.9:8443", tls("api.example.com")), "no-rule");
        // No name, ECH, not TLS nor HTTP.
        let none = FirstFlight::Tls {
            server_name: None,
            ech: false,
        };
        assert_eq!(j("198.51.100.9:443", none), "no-name");
        let ech = FirstFlight::Tls {
            server_name: Some("api.example.com".into()),
            ech: true,
        };
        assert_eq!(j("198.51.100.9:443", ech), "ech");
        assert_eq!(
            j("198.51.100.9:80", FirstFlight::Http { host: None }),
            "no-name"
        );
        let junk = FirstFlight::Unknown {
            why: "HTTP/2 preface".into(),
        };
        assert_eq!(j("198.51.100.9:443", junk), "not-tls-or-http");
    }

    #[test]
    fn reasons_carry_their_kind() {
        let r = rules();
        let e = judge(
            &r.by_policy["web"],
            "web",
            &conn("198.51.100.9:443", tls("evil.example.net")),
            holds,
        )
        .unwrap_err();
        let reason = e.to_string();
        assert_eq!(
            reason,
            "name: evil.example.net is not a name of a server-name rule of policy web for port 443/tcp"
        );
        assert_eq!(kind_of(&reason), "name");
        assert_eq!(kind_of("not redirected (the proxy's own address)"), "other");
    }

    #[test]
    fn the_decider_finds_the_container_and_audits() {
        let p = cordon_policy::parse("p.yaml", POLICY).unwrap();
        let mut d = crate::directory::Directory::default();
        for (addr, key) in [("172.17.0.2", "web"), ("172.17.0.3", "watch")] {
            d.by_addr.insert(
                addr.parse().unwrap(),
                crate::directory::Client {
                    key: PolicyKey::Named(key.into()),
                    policy: key.into(),
                    container: format!("{key}-1"),
                    id: "0123456789ab".into(),
                },
            );
        }
        let obs = Arc::new(Observe::default());
        let learned = Arc::new(Learned::default());
        let decider = PolicyDecider {
            rules: Arc::new(RwLock::new(Arc::new(Rules::from_policy(&p)))),
            dir: Arc::new(RwLock::new(d)),
            learned: learned.clone(),
            obs: obs.clone(),
        };
        let web_rule = decider.rules.read().unwrap().by_policy["web"].rules[0]
            .dns
            .clone();
        learned.note(
            &web_rule,
            &["198.51.100.9".parse().unwrap()],
            std::time::Instant::now() + std::time::Duration::from_secs(60),
        );
        let mut c = conn("198.51.100.9:443", tls("api.example.com"));
        assert_eq!(decider.decide(&c), Verdict::Pass);
        c.first_flight = tls("evil.example.net");
        assert!(
            matches!(decider.decide(&c), Verdict::Refuse { reason } if reason.starts_with("name: "))
        );
        // An IPv4-mapped source is the container's IPv4 address.
        c.source = "[::ffff:172.17.0.2]:40000".parse().unwrap();
        assert!(matches!(decider.decide(&c), Verdict::Refuse { .. }));
        c.first_flight = tls("api.example.com");
        assert_eq!(decider.decide(&c), Verdict::Pass);
        // Not a container.
        c.source = "172.17.0.99:40000".parse().unwrap();
        assert!(
            matches!(decider.decide(&c), Verdict::Refuse { reason } if reason.starts_with("unknown-source: "))
        );
        // Audit: the wrong name passes, logged as audit with the name.
        c.source = "172.17.0.3:40000".parse().unwrap();
        c.first_flight = tls("evil.example.net");
        assert_eq!(decider.decide(&c), Verdict::Pass);
        let logged = obs.recorder.lock().unwrap().recent(10);
        let e = logged.last().expect("an audit event");
        assert_eq!(
            (e.verdict.as_str(), e.direction.as_str(), e.name.as_deref()),
            ("audit", "l7", Some("evil.example.net"))
        );
        assert_eq!(e.container.as_deref(), Some("watch-1"));
    }
}
