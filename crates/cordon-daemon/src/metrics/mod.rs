//! The daemon's metrics in the Prometheus text format (prometheus-client),
//! served on the admin socket (`cordon metrics`, root only) and, with
//! `--metrics ADDR`, over HTTP on a loopback address, where
//! `--metrics-token-file FILE` makes every request show
//! `Authorization: Bearer <token>` (the others get 401).
//!
//! | metric | labels | from |
//! |---|---|---|
//! | `cordon_policy_allowed_packets_total`, `_bytes_total` | policy | the kernel's counters of the policy's accept rules (connection-opening packets) |
//! | `cordon_policy_dropped_packets_total`, `_bytes_total` | policy | the kernel's counters of the policy's final drop (or audit) rule |
//! | `cordon_fail_closed_dropped_packets_total` | rule | fail-closed and anti-spoofing drops |
//! | `cordon_logged_packets_total`, `_bytes_total` | container, policy, direction, verdict | the drop log (every logged packet since the daemon started) |
//! | `cordon_container_judged_packets_total` | container, policy, direction | the kernel's per-element counters of the dispatch maps: packets the container's policy judged |
//! | `cordon_container_allowed_packets_total` | container, policy, direction | judged minus what the drop log saw dropped or audited |
//! | `cordon_dns_answers_total`, `cordon_dns_refusals_total` | | the DNS proxy |
//! | `cordon_dns_stripped_total`, `cordon_dns_rate_limited_total`, `cordon_dns_cache_hits_total`, `cordon_dns_upstream_queries_total` | | the DNS proxy: addresses taken out of answers, queries over a container's rate limit, answers from the cache, queries asked upstream |
//! | `cordon_l7_passed_total`, `cordon_l7_refused_total` (reason), `cordon_l7_over_cap_total`, `cordon_l7_audited_total`, `cordon_l7_connections` (gauge) | reason | the L7 proxy (rules with `match: server-name`) |
//! | `cordon_reconciles_total`, `cordon_repairs_total`, `cordon_connections_ended_total`, `cordon_replacements_total`, `cordon_element_updates_total` | | the engine |
//! | `cordon_reconcile_seconds` | | histogram of reconcile durations |
//! | `cordon_event_lag_seconds` | | histogram from Docker's event to the policy live |
//! | `cordon_log_events_suppressed_total`, `cordon_log_lost_total` | | the drop log's rate limit and read errors |
//! | `cordon_containers` | | containers enforced |
//! | `cordon_container_enforced` | container, policy, reason | 1 when cordon enforces the container's own policy, 0 when it cannot (`reason`: `host-network`, `driver-macvlan`, …, `container-netns`, `no-managed-endpoint`; empty when enforced) |

mod http;
mod token;

pub use http::{serve_http, MAX_HEADERS, MAX_REQUEST, READ_TIMEOUT};
pub use token::read_token;

use std::sync::atomic::Ordering;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::engine::Stats;
use crate::observe::Observe;
use crate::status::Status;

type Labels = Vec<(String, String)>;

fn counter(reg: &mut Registry, name: &str, help: &str, v: u64) {
    let c: Counter = Counter::default();
    c.inc_by(v);
    reg.register(name, help, c);
}

fn family(reg: &mut Registry, name: &str, help: &str, rows: Vec<(Labels, u64)>) {
    let f: Family<Labels, Counter> = Family::default();
    for (labels, v) in rows {
        f.get_or_create(&labels).inc_by(v);
    }
    reg.register(name, help, f);
}

/// Label pairs, each value escaped for the exposition format.
fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), label_value(v)))
        .collect()
}

/// A label value as the exposition format writes it between quotes:
/// prometheus-client writes values as they are, so a container name or
/// a `cordon.policy` label with a newline or a quote would forge a sample.
/// `\`, `"` and a newline get the format's escapes; other control and
/// invisible format characters, which the format cannot escape, become
/// U+FFFD.
fn label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if cordon_inventory::needs_escape(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The L7 proxy's metrics (rules with `match: server-name`).
fn l7(reg: &mut Registry, obs: &Observe) {
    let c = &obs.l7;
    counter(
        reg,
        "cordon_l7_passed",
        "Connections the L7 proxy passed (server name and address matched a server-name rule)",
        c.passed.load(Ordering::Relaxed),
    );
    family(
        reg,
        "cordon_l7_refused",
        "Connections the L7 proxy reset, by reason (name, address, no-name, ech, not-tls-or-http, no-rule, unknown-source, timeout, connect-failed, other)",
        c.refusals()
            .into_iter()
            .map(|(k, v)| (l(&[("reason", &k)]), v))
            .collect(),
    );
    counter(
        reg,
        "cordon_l7_over_cap",
        "Connections the L7 proxy reset because their container had l7.max_connections_per_container open",
        c.over_cap.load(Ordering::Relaxed),
    );
    counter(
        reg,
        "cordon_l7_audited",
        "Connections an audit-mode policy's server-name rules would have refused (passed)",
        c.audited.load(Ordering::Relaxed),
    );
    let g: Gauge = Gauge::default();
    g.set(c.live.load(Ordering::Relaxed));
    reg.register(
        "cordon_l7_connections",
        "Connections the L7 proxy is relaying now",
        g,
    );
}

/// The text exposition of everything above.
pub fn render(status: &Status, stats: &Stats, obs: &Observe) -> String {
    let mut reg = Registry::default();
    let pol = |f: fn(&crate::status::PolicyCounters) -> u64| {
        status
            .policies
            .iter()
            .map(|(p, c)| (l(&[("policy", p)]), f(c)))
            .collect::<Vec<_>>()
    };
    family(
        &mut reg,
        "cordon_policy_allowed_packets",
        "Connection-opening packets a policy's rules allowed",
        pol(|c| c.allowed.packets),
    );
    family(
        &mut reg,
        "cordon_policy_allowed_bytes",
        "Bytes of connection-opening packets a policy's rules allowed",
        pol(|c| c.allowed.bytes),
    );
    family(
        &mut reg,
        "cordon_policy_dropped_packets",
        "Packets a policy dropped (or, in audit mode, logged and let through)",
        pol(|c| c.dropped.packets),
    );
    family(
        &mut reg,
        "cordon_policy_dropped_bytes",
        "Bytes a policy dropped (or audited)",
        pol(|c| c.dropped.bytes),
    );
    family(
        &mut reg,
        "cordon_fail_closed_dropped_packets",
        "Packets dropped by the fail-closed and anti-spoofing rules",
        status
            .fail_closed
            .iter()
            .map(|(r, c)| (l(&[("rule", r)]), c.packets))
            .collect(),
    );
    let (tallies, logged, suppressed) = {
        let r = obs.recorder.lock().unwrap_or_else(|p| p.into_inner());
        (r.tallies().clone(), r.logged_by_container(), r.suppressed)
    };
    let rows = |bytes: bool| {
        tallies
            .iter()
            .map(|((c, p, d, v), t)| {
                (
                    l(&[
                        ("container", c),
                        ("policy", p),
                        ("direction", d),
                        ("verdict", v),
                    ]),
                    if bytes { t.bytes } else { t.packets },
                )
            })
            .collect::<Vec<_>>()
    };
    family(
        &mut reg,
        "cordon_logged_packets",
        "Packets the ruleset logged (drops, audits, DNS refusals), per container",
        rows(false),
    );
    family(
        &mut reg,
        "cordon_logged_bytes",
        "Bytes of the packets the ruleset logged, per container",
        rows(true),
    );
    counter(
        &mut reg,
        "cordon_dns_answers",
        "DNS answers released after opening the firewall",
        obs.dns_answers.load(Ordering::Relaxed),
    );
    counter(
        &mut reg,
        "cordon_dns_refusals",
        "DNS queries refused (name not allowlisted)",
        obs.dns_refusals.load(Ordering::Relaxed),
    );
    counter(
        &mut reg,
        "cordon_dns_stripped",
        "Addresses taken out of DNS answers: not public, and the rule names no such destination",
        obs.dns_stripped.load(Ordering::Relaxed),
    );
    counter(
        &mut reg,
        "cordon_dns_rate_limited",
        "DNS queries dropped over their container's rate limit",
        obs.dns_rate_limited.load(Ordering::Relaxed),
    );
    counter(
        &mut reg,
        "cordon_dns_cache_hits",
        "DNS answers served from the proxy's cache",
        obs.dns_cache_hits.load(Ordering::Relaxed),
    );
    counter(
        &mut reg,
        "cordon_dns_upstream_queries",
        "DNS queries for allowlisted names asked upstream (cache misses)",
        obs.dns_upstream_queries.load(Ordering::Relaxed),
    );
    counter(
        &mut reg,
        "cordon_reconciles",
        "Reconciliations run",
        stats.reconciles,
    );
    counter(
        &mut reg,
        "cordon_repairs",
        "Reconciliations that found the kernel changed and repaired it",
        stats.repairs,
    );
    counter(
        &mut reg,
        "cordon_connections_ended",
        "Tracked connections ended after a repair because the policy does not allow them",
        stats.connections_ended,
    );
    counter(
        &mut reg,
        "cordon_replacements",
        "Whole replacements of cordon's tables",
        stats.replacements,
    );
    counter(
        &mut reg,
        "cordon_element_updates",
        "Set-element transactions applied",
        stats.element_updates,
    );
    counter(
        &mut reg,
        "cordon_log_events_suppressed",
        "Drop-log events held back by the per-container rate limit",
        suppressed,
    );
    counter(
        &mut reg,
        "cordon_log_lost",
        "Drop-log read errors (e.g. the kernel's buffer overflowed)",
        obs.log_lost.load(Ordering::Relaxed),
    );
    reg.register(
        "cordon_reconcile_seconds",
        "Time a reconcile took",
        obs.reconcile_seconds.clone(),
    );
    reg.register(
        "cordon_event_lag_seconds",
        "Time from Docker's event to the policy live in the kernel",
        obs.event_lag_seconds.clone(),
    );
    // Per container: what its policy judged (the kernel), and of that what
    // was allowed (judged minus what the drop log saw dropped or audited).
    let mut judged_rows = Vec::new();
    let mut allowed_rows = Vec::new();
    for c in &status.containers {
        for (dir, j) in [("egress", c.judged.egress), ("ingress", c.judged.ingress)] {
            let labels = l(&[
                ("container", &c.name),
                ("policy", &c.policy),
                ("direction", dir),
            ]);
            judged_rows.push((labels.clone(), j.packets));
            let seen = logged.get(&(c.name.clone(), dir)).copied().unwrap_or(0);
            allowed_rows.push((labels, j.packets.saturating_sub(seen)));
        }
    }
    family(
        &mut reg,
        "cordon_container_judged_packets",
        "Packets of a container its policy judged (not of established connections)",
        judged_rows,
    );
    family(
        &mut reg,
        "cordon_container_allowed_packets",
        "Judged packets of a container its policy allowed (judged minus logged drops and audits)",
        allowed_rows,
    );
    l7(&mut reg, obs);
    let g: Gauge = Gauge::default();
    g.set(status.containers.len() as i64);
    reg.register("cordon_containers", "Containers enforced", g);
    let enforced: Family<Labels, Gauge> = Family::default();
    for c in &status.containers {
        let reason = c
            .enforcement
            .reason()
            .map(|r| r.label())
            .unwrap_or_default();
        enforced
            .get_or_create(&l(&[
                ("container", &c.name),
                ("policy", &c.policy),
                ("reason", &reason),
            ]))
            .set(i64::from(c.enforcement.is_enforced()));
    }
    reg.register(
        "cordon_container_enforced",
        "1 when cordon enforces the container's own policy, 0 when it cannot (see reason)",
        enforced,
    );
    let mut out = String::new();
    encode(&mut out, &reg).expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_values() {
        let mut s = Status::default();
        s.policies.insert(
            "web".into(),
            crate::status::PolicyCounters {
                allowed: crate::status::Counter {
                    packets: 3,
                    bytes: 180,
                },
                dropped: crate::status::Counter {
                    packets: 2,
                    bytes: 120,
                },
            },
        );
        let obs = Observe::default();
        obs.dns_refusals.store(4, Ordering::Relaxed);
        obs.l7.passed.store(5, Ordering::Relaxed);
        obs.l7.live.store(2, Ordering::Relaxed);
        obs.l7.refused.lock().unwrap().insert("name".into(), 3);
        obs.reconcile_seconds.observe(0.002);
        let stats = Stats {
            reconciles: 7,
            ..Default::default()
        };
        for (name, enforcement) in [
            ("web", cordon_inventory::Enforcement::Enforced),
            (
                "hostnet",
                cordon_inventory::Enforcement::Unenforced {
                    reason: cordon_inventory::Unenforced::HostNetwork,
                },
            ),
        ] {
            s.containers.push(crate::status::ContainerStatus {
                name: name.into(),
                id: "0123456789ab".into(),
                policy: "web".into(),
                addresses: vec![],
                counters: Default::default(),
                judged: Default::default(),
                logged: None,
                last_drop: None,
                enforcement,
                governed_by: None,
            });
        }
        let text = render(&s, &stats, &obs);
        for want in [
            "cordon_policy_allowed_packets_total{policy=\"web\"} 3",
            "cordon_policy_dropped_bytes_total{policy=\"web\"} 120",
            "cordon_dns_refusals_total 4",
            "cordon_l7_passed_total 5",
            "cordon_l7_refused_total{reason=\"name\"} 3",
            "cordon_l7_over_cap_total 0",
            "cordon_l7_connections 2",
            "cordon_reconciles_total 7",
            "cordon_reconcile_seconds_count 1",
            "cordon_container_enforced{container=\"web\",policy=\"web\",reason=\"\"} 1",
            "cordon_container_enforced{container=\"hostnet\",policy=\"web\",reason=\"host-network\"} 0",
            "# EOF",
        ] {
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
    }

    #[test]
    fn a_newline_in_a_container_name_stays_inside_its_label_value() {
        let mut s = Status::default();
        s.containers.push(crate::status::ContainerStatus {
            name: "x\ncordon_containers 999".into(),
            id: "c".repeat(12),
            policy: "web\"} 7\nforged_total 1".into(),
            addresses: Vec::new(),
            counters: Default::default(),
            judged: Default::default(),
            logged: None,
            last_drop: None,
            enforcement: Default::default(),
            governed_by: None,
        });
        let text = render(&s, &Stats::default(), &Observe::default());
        for line in text.lines() {
            assert!(
                !line.starts_with("cordon_containers 999") && !line.starts_with("forged_total"),
                "forged line {line:?} in:\n{text}"
            );
        }
        assert!(
            text.contains(
                "container=\"x\\ncordon_containers 999\",policy=\"web\\\"} 7\\nforged_total 1\""
            ),
            "{text}"
        );
        assert_eq!(label_value("a\rb\u{202e}c\\"), "a\u{fffd}b\u{fffd}c\\\\");
        assert!(text.contains("cordon_containers 1\n"), "{text}");
    }
}
