//! A drop-log event: what one logged packet (or one DNS refusal) says,
//! its time stamp, and its one line for people.

use std::net::IpAddr;
use std::time::SystemTime;

use cordon_inventory::Shown;
use serde::{Deserialize, Serialize};

/// One logged packet, decoded and attributed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When it was logged (RFC 3339, UTC).
    pub time: String,
    /// Milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// The container's name, when the packet is attributed to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Its id (12 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The policy whose rule logged it (`default`, `unknown`, a name), or
    /// the fail-closed rule (`unknown-source`, `unknown-destination`).
    pub policy: String,
    /// `egress`, `egress-host`, `ingress`, `ingress-host`, `spoof`, `dns`
    /// (a refused name), or `l7` (the L7 proxy: `name` is the server name
    /// seen, `reason` why it was refused or audited).
    pub direction: String,
    /// `drop`, `audit` (logged and let through), `refused` (DNS, L7), or
    /// `stripped` (an address taken out of a DNS answer: `dst` is the
    /// address, `reason` why, e.g. `private`, `metadata`).
    pub verdict: String,
    /// For spoofing drops: what was forged (`ip`, `ip6`, `mac`, `arp`,
    /// `port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `tcp`, `udp`, `icmp`, `icmpv6`, `arp`, or the IP protocol number.
    pub proto: String,
    /// Source address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    /// Destination address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<IpAddr>,
    /// Source port (TCP, UDP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sport: Option<u16>,
    /// Destination port (TCP, UDP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dport: Option<u16>,
    /// The packet's length in bytes (its IP header's).
    pub bytes: u64,
    /// For DNS refusals (direction `dns`): the name refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Events of this container the rate limit held back since its
    /// previous event.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub suppressed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `at` as an event's time: RFC 3339 (UTC, milliseconds) and milliseconds
/// since the epoch.
pub fn stamp(at: SystemTime) -> (String, u64) {
    let ms = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    (humantime::format_rfc3339_millis(at).to_string(), ms)
}

/// An event on one line for people: time, container, what and where.
/// Values from Docker or from the container (its name, a DNS name) are
/// escaped (see [`cordon_inventory::escape`]), so none can forge a line.
pub fn one_line(e: &Event) -> String {
    let who = Shown(e.container.as_deref().unwrap_or("-"));
    let port = |p: Option<u16>| p.map(|p| format!(":{p}")).unwrap_or_default();
    let addr = |a: Option<IpAddr>, p: Option<u16>| match a {
        Some(IpAddr::V6(v6)) if p.is_some() => format!("[{v6}]{}", port(p)),
        Some(a) => format!("{a}{}", port(p)),
        None => "-".into(),
    };
    let proto = Shown(&e.proto);
    let what = match (&e.name, &e.reason) {
        // The L7 proxy: the name seen (if any), where to, and why.
        (name, Some(r)) if e.direction == "l7" => format!(
            "{proto} {} -> {} ({})",
            Shown(name.as_deref().unwrap_or("(no name)")),
            addr(e.dst, e.dport),
            Shown(r)
        ),
        // An address taken out of a DNS answer, and why.
        (Some(n), Some(r)) if e.dst.is_some() => {
            format!(
                "{proto} {} -> {} ({})",
                Shown(n),
                addr(e.dst, None),
                Shown(r)
            )
        }
        (Some(n), _) => format!("{proto} {}", Shown(n)),
        (None, Some(r)) => format!(
            "{proto} forged {} {} -> {}",
            Shown(r),
            addr(e.src, None),
            addr(e.dst, None)
        ),
        (None, None) => format!(
            "{proto} {} -> {}",
            addr(e.src, e.sport),
            addr(e.dst, e.dport)
        ),
    };
    let held = if e.suppressed > 0 {
        format!(" (+{} suppressed)", e.suppressed)
    } else {
        String::new()
    };
    format!(
        "{} {:<7} {who} policy={} {} {what}{held}",
        Shown(&e.time),
        Shown(&e.verdict),
        Shown(&e.policy),
        Shown(&e.direction)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stripped_dns_address_shows_the_address_and_why() {
        let e = Event {
            time: "2026-11-30T10:48:16.897Z".into(),
            unix_ms: 0,
            container: Some("web-1".into()),
            id: None,
            policy: "web".into(),
            direction: "dns".into(),
            verdict: "stripped".into(),
            reason: Some("private".into()),
            proto: "dns".into(),
            src: Some("172.20.0.2".parse().unwrap()),
            dst: Some("10.213.0.10".parse().unwrap()),
            sport: None,
            dport: Some(53),
            bytes: 0,
            name: Some("evil.wild.test".into()),
            suppressed: 0,
        };
        assert_eq!(
            one_line(&e),
            "2026-11-30T10:48:16.897Z stripped web-1 policy=web dns dns evil.wild.test -> 10.213.0.10 (private)"
        );
        // A refusal (no address) shows the name only.
        let r = Event {
            verdict: "refused".into(),
            reason: None,
            dst: None,
            ..e
        };
        assert!(one_line(&r).ends_with("policy=web dns dns evil.wild.test"));
        // The L7 proxy: the name seen, the destination and why.
        let l7 = Event {
            direction: "l7".into(),
            proto: "tcp".into(),
            name: Some("evil.example.net".into()),
            reason: Some("name: not a name of the rule".into()),
            dst: Some("198.51.100.9".parse().unwrap()),
            dport: Some(443),
            ..r
        };
        assert!(
            one_line(&l7).ends_with(
                "policy=web l7 tcp evil.example.net -> 198.51.100.9:443 (name: not a name of the rule)"
            ),
            "{}",
            one_line(&l7)
        );
        let none = Event { name: None, ..l7 };
        assert!(one_line(&none).contains("l7 tcp (no name) -> 198.51.100.9:443"));
    }
}
