//! What `cordon status` shows: each container with its policy and
//! addresses, and the kernel's counters of what each policy allowed and
//! dropped, plus the fail-closed and anti-spoofing drops.
//!
//! Counters live in the kernel (the counters of the policy chains' rules),
//! so they are the same whether the daemon answers or the CLI reads the
//! kernel directly, and they survive daemon restarts.

pub mod unenforced;

use std::collections::BTreeMap;

use cordon_compiler::Assignment;
use cordon_dataplane::kernel::KernelTable;
use cordon_inventory::Shown;
use cordon_ruleset::listing;
use cordon_ruleset::names::{Dispatch, Path};
use cordon_ruleset::nft::KeyType;
use cordon_ruleset::LogPrefix;
use serde::{Deserialize, Serialize};

use crate::engine::Stats;

/// Packets and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

impl From<listing::Counter> for Counter {
    fn from(c: listing::Counter) -> Self {
        Counter {
            packets: c.packets,
            bytes: c.bytes,
        }
    }
}

impl Counter {
    fn add(&mut self, o: Counter) {
        self.packets += o.packets;
        self.bytes += o.bytes;
    }
}

/// One policy's counters: new connections allowed by a rule, and packets
/// dropped (or, in audit mode, logged and let through) at its end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyCounters {
    /// Packets that opened a connection a rule allowed.
    pub allowed: Counter,
    /// Packets dropped (or audited) by the policy.
    pub dropped: Counter,
}

/// Packets of one container its policy judged (every packet that is not
/// part of an established connection: new connections, allowed or not),
/// per direction; from the per-element counters of the dispatch maps
/// (`egress4/6`: sent, `ingress4/6`: received; a container whose policy
/// has no ingress rules counts what it received too, all let through).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judged {
    /// Sent by the container (to anywhere, the host included).
    pub egress: Counter,
    /// Sent to the container.
    pub ingress: Counter,
}

/// One container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerStatus {
    /// Its name.
    pub name: String,
    /// Its id (12 hex digits).
    pub id: String,
    /// Its policy.
    pub policy: String,
    /// The addresses enforced for it.
    pub addresses: Vec<String>,
    /// Its policy's counters (shared by the policy's containers).
    pub counters: PolicyCounters,
    /// This container's own packets its policy judged.
    #[serde(default)]
    pub judged: Judged,
    /// Packets of this container the ruleset logged since the daemon
    /// started (drops, audits), when the daemon answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logged: Option<u64>,
    /// Its most recent drop (or audit, or DNS refusal), when the daemon
    /// answered and saw one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drop: Option<crate::droplog::Event>,
    /// Whether its policy is enforced at all, and if not, why.
    #[serde(default)]
    pub enforcement: cordon_inventory::Enforcement,
    /// The policy that governs its traffic instead of its own, when it
    /// shares another container's network namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governed_by: Option<String>,
}

/// The whole status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// `daemon` when the daemon answered, `kernel` when read directly.
    pub source: String,
    /// True when cordon's tables are installed.
    pub installed: bool,
    /// The containers.
    pub containers: Vec<ContainerStatus>,
    /// Counters per policy (`default`, `unknown` for the built-ins).
    pub policies: BTreeMap<String, PolicyCounters>,
    /// Drops of the fail-closed rules: `unknown-source`,
    /// `unknown-destination`, and the bridge table's `spoof` drops.
    pub fail_closed: BTreeMap<String, Counter>,
    /// The daemon's own counters, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon: Option<Stats>,
    /// The policy in force: `PATH (sha256 …, in force since …)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// The key types of the sets whose elements the status reads: the
/// dispatch maps, keyed by container address (for
/// [`cordon_dataplane::Nft::read_table`]).
pub fn keys(set: &str) -> Option<Vec<KeyType>> {
    let (_, fam) = Dispatch::from_map(set)?;
    Some(vec![if fam == 4 {
        KeyType::Ipv4
    } else {
        KeyType::Ipv6
    }])
}

/// Reads the rule counters of the `inet cordon` (and optionally
/// `bridge cordon`) tables as the kernel holds them.
pub fn counters(
    inet: Option<&KernelTable>,
    bridge: Option<&KernelTable>,
) -> (BTreeMap<String, PolicyCounters>, BTreeMap<String, Counter>) {
    let mut policies: BTreeMap<String, PolicyCounters> = BTreeMap::new();
    let mut fail: BTreeMap<String, Counter> = BTreeMap::new();
    for table in [inet, bridge].into_iter().flatten() {
        for rule in &table.rules {
            let Some(c) = rule.counter.map(Counter::from) else {
                continue;
            };
            let key = Path::from_policy_chain(&rule.chain).map(|(_, k)| k);
            match (key, rule.log_prefix.as_deref()) {
                (Some(k), Some(_)) => policies.entry(k.label().into()).or_default().dropped.add(c),
                (Some(k), None) => policies.entry(k.label().into()).or_default().allowed.add(c),
                (None, Some(prefix)) => {
                    // "cordon egress unknown-source drop ", "cordon spoof mac drop "
                    let what = match LogPrefix::parse(prefix) {
                        Some(p) => p.subject().to_string(),
                        None => prefix.trim().to_string(),
                    };
                    fail.entry(what).or_default().add(c);
                }
                (None, None) => {}
            }
        }
    }
    (policies, fail)
}

/// The per-element counters of the dispatch maps of the `inet cordon`
/// table (read with [`keys`]): container address → what its policy
/// judged.
pub fn judged(inet: Option<&KernelTable>) -> BTreeMap<std::net::IpAddr, Judged> {
    let mut out: BTreeMap<std::net::IpAddr, Judged> = BTreeMap::new();
    let Some(table) = inet else {
        return out;
    };
    for m in &table.sets {
        let Some((dispatch, _)) = Dispatch::from_map(&m.name) else {
            continue;
        };
        for e in &m.elements {
            let (Some(cordon_ruleset::nft::Value::Net(net)), Some(c)) =
                (e.element.key.first(), e.counter)
            else {
                continue;
            };
            let j = out.entry(net.addr()).or_default();
            if dispatch == Dispatch::Egress {
                j.egress.add(c.into());
            } else {
                j.ingress.add(c.into());
            }
        }
    }
    out
}

/// Builds the status from assignments and cordon's tables as the kernel
/// holds them (read with [`keys`]).
pub fn build(
    source: &str,
    assignments: &[Assignment],
    inet: Option<&KernelTable>,
    bridge: Option<&KernelTable>,
) -> Status {
    let (policies, fail_closed) = counters(inet, bridge);
    let per_addr = judged(inet);
    let containers = assignments
        .iter()
        .map(|a| ContainerStatus {
            name: a.container.clone(),
            id: a.id[..a.id.len().min(12)].to_string(),
            policy: a.policy.to_string(),
            addresses: a.addresses.iter().map(ToString::to_string).collect(),
            counters: policies.get(a.policy.label()).cloned().unwrap_or_default(),
            judged: a.addresses.iter().filter_map(|x| per_addr.get(x)).fold(
                Judged::default(),
                |mut acc, j| {
                    acc.egress.add(j.egress);
                    acc.ingress.add(j.ingress);
                    acc
                },
            ),
            logged: None,
            last_drop: None,
            enforcement: a.enforcement.clone(),
            governed_by: a.governed_by.clone(),
        })
        .collect();
    Status {
        source: source.into(),
        installed: inet.is_some(),
        containers,
        policies,
        fail_closed,
        daemon: None,
        policy: None,
    }
}

/// The status as a table for people.
pub fn render_text(s: &Status) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cordon: {} (from the {})",
        if s.installed {
            "enforcing"
        } else {
            "NOT INSTALLED"
        },
        s.source
    );
    if let Some(p) = &s.policy {
        let _ = writeln!(out, "policy: {p}");
    }
    let _ = writeln!(
        out,
        "{:<24} {:<13} {:<16} {:>10} {:>10}  ADDRESSES",
        "CONTAINER", "ID", "POLICY", "JUDGED-OUT", "JUDGED-IN"
    );
    for c in &s.containers {
        let _ = writeln!(
            out,
            "{:<24} {:<13} {:<16} {:>10} {:>10}  {}",
            Shown(&c.name),
            Shown(&c.id),
            Shown(&c.policy),
            c.judged.egress.packets,
            c.judged.ingress.packets,
            c.addresses.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "\n{:<24} {:>10} {:>10}",
        "POLICY", "ALLOWED", "DROPPED"
    );
    for (p, c) in &s.policies {
        let _ = writeln!(
            out,
            "{:<24} {:>10} {:>10}",
            Shown(p),
            c.allowed.packets,
            c.dropped.packets
        );
    }
    unenforced::render(&mut out, &s.containers);
    let drops: Vec<&ContainerStatus> = s
        .containers
        .iter()
        .filter(|c| c.last_drop.is_some())
        .collect();
    if !drops.is_empty() {
        let _ = writeln!(out, "\nLAST DROP PER CONTAINER");
        for c in drops {
            let e = c.last_drop.as_ref().expect("filtered");
            let _ = writeln!(
                out,
                "{:<24} {} ({} logged)",
                Shown(&c.name),
                crate::droplog::one_line(e),
                c.logged.unwrap_or(0)
            );
        }
    }
    if !s.fail_closed.is_empty() {
        let parts: Vec<String> = s
            .fail_closed
            .iter()
            .map(|(k, c)| format!("{k} {}", c.packets))
            .collect();
        let _ = writeln!(out, "\nfail-closed drops: {}", parts.join(", "));
    }
    if let Some(d) = &s.daemon {
        let _ = writeln!(
            out,
            "daemon: {} element updates, {} replacements, {} reconciles ({} repairs, {} connections ended){}",
            d.element_updates,
            d.replacements,
            d.reconciles,
            d.repairs,
            d.connections_ended,
            d.last_error
                .as_ref()
                .map(|e| format!("; last error: {}", Shown(e)))
                .unwrap_or_default()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_ruleset::PolicyKey;
    use serde_json::json;

    #[test]
    fn counters_are_read_per_policy_and_fail_closed_rule() {
        let listing = json!({"nftables": [
            {"rule": {"chain": "eg_fwd_web", "expr": [{"match": {}}, {"counter": {"packets": 3, "bytes": 180}}, {"accept": null}]}},
            {"rule": {"chain": "eg_host_web", "expr": [{"counter": {"packets": 2, "bytes": 120}}, {"log": {"prefix": "cordon egress-host web drop ", "group": 100}}, {"drop": null}]}},
            {"rule": {"chain": "eg_fwd__default", "expr": [{"counter": {"packets": 5, "bytes": 300}}, {"log": {"prefix": "cordon egress default drop ", "group": 100}}, {"drop": null}]}},
            {"rule": {"chain": "egress_dispatch", "expr": [{"counter": {"packets": 7, "bytes": 1}}, {"log": {"prefix": "cordon egress unknown-source drop ", "group": 100}}, {"drop": null}]}},
            {"rule": {"chain": "forward", "expr": [{"accept": null}]}},
            {"map": {"name": "egress4", "elem": [
                [{"elem": {"val": "172.17.0.2", "counter": {"packets": 10, "bytes": 600}}}, {"goto": {"target": "eg_fwd_web"}}],
                [{"elem": {"val": "172.17.0.3", "counter": {"packets": 1, "bytes": 60}}}, {"goto": {"target": "eg_fwd__default"}}]
            ]}},
            {"map": {"name": "egress6", "elem": [
                [{"elem": {"val": "2001:db8::2", "counter": {"packets": 5, "bytes": 500}}}, {"goto": {"target": "eg_fwd_web"}}]
            ]}},
            {"map": {"name": "ingress4", "elem": [
                [{"elem": {"val": "172.17.0.2", "counter": {"packets": 4, "bytes": 240}}}, {"jump": {"target": "in_fwd_web"}}],
                [{"elem": {"val": "172.17.0.3", "counter": {"packets": 2, "bytes": 120}}}, {"accept": null}]
            ]}}
        ]});
        let bridge = json!({"nftables": [
            {"rule": {"chain": "prerouting", "expr": [{"counter": {"packets": 4, "bytes": 1}}, {"log": {"prefix": "cordon spoof mac drop ", "group": 100}}, {"drop": null}]}}
        ]});
        let listing = KernelTable::from_listing(&listing, &keys).unwrap();
        let bridge = KernelTable::from_listing(&bridge, &keys).unwrap();
        let (p, f) = counters(Some(&listing), Some(&bridge));
        assert_eq!(p["web"].allowed.packets, 3);
        assert_eq!(p["web"].dropped.packets, 2);
        assert_eq!(p["default"].dropped.packets, 5);
        assert_eq!(f["unknown-source"].packets, 7);
        assert_eq!(f["spoof"].packets, 4);
        let a = Assignment {
            container: "w".into(),
            id: "a".repeat(64),
            policy: "web".into(),
            addresses: vec!["172.17.0.2".parse().unwrap()],
            ..Default::default()
        };
        let mut a = a;
        a.addresses.push("2001:db8::2".parse().unwrap());
        let other = Assignment {
            container: "d".into(),
            id: "b".repeat(64),
            policy: PolicyKey::Default,
            addresses: vec!["172.17.0.3".parse().unwrap()],
            ..Default::default()
        };
        let s = build("kernel", &[a, other], Some(&listing), Some(&bridge));
        assert_eq!(s.containers[0].counters.dropped.packets, 2);
        // Its own judged packets: the egress map of each of its addresses
        // (to the host and forwarded alike), and the ingress map.
        assert_eq!(s.containers[0].judged.egress.packets, 15);
        assert_eq!(s.containers[0].judged.egress.bytes, 1100);
        assert_eq!(s.containers[0].judged.ingress.packets, 4);
        // A policy without ingress rules: its `accept` element counts.
        assert_eq!(s.containers[1].judged.egress.packets, 1);
        assert_eq!(s.containers[1].judged.ingress.packets, 2);
        let text = render_text(&s);
        assert!(text.contains("enforcing"));
        let row = |name: &str| -> Vec<String> {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{text}"));
            line.split_whitespace().map(str::to_string).collect()
        };
        // CONTAINER ID POLICY JUDGED-OUT JUDGED-IN ADDRESSES
        assert_eq!(&row("w")[3..5], ["15", "4"], "{text}");
        assert_eq!(&row("d")[3..5], ["1", "2"], "{text}");
        let json: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(json["containers"][0]["judged"]["egress"]["packets"], 15);
        assert_eq!(json["containers"][1]["judged"]["ingress"]["packets"], 2);
    }

    #[test]
    fn a_forged_row_in_a_name_or_policy_stays_on_its_own_row() {
        let forged = "x\nweb                      open  0 0";
        let a = Assignment {
            container: forged.into(),
            id: "a".repeat(64),
            policy: PolicyKey::Unknown(forged.into()),
            addresses: vec!["172.17.0.2".parse().unwrap()],
            ..Default::default()
        };
        let s = build("kernel", &[a], None, None);
        let text = render_text(&s);
        let lines: Vec<&str> = text.lines().collect();
        assert!(!lines.iter().any(|l| l.starts_with("web ")), "{text}");
        let rows: Vec<&&str> = lines.iter().filter(|l| l.starts_with("x\\n")).collect();
        assert_eq!(rows.len(), 1, "{text}");
        assert!(rows[0].contains("unknown policy x\\nweb"), "{text}");
        // JSON keeps the raw value.
        let back: Status = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back.containers[0].name, forged);
    }
}
