//! The drop log: each packet cordon's ruleset logged (nflog group 100)
//! becomes an [`Event`] naming the container, its policy, the direction,
//! the protocol, the addresses and ports and the verdict (`drop`, or
//! `audit` for a policy in audit mode, which lets the packet through).
//!
//! [`Recorder`] keeps what `cordon logs`, `cordon status`, `cordon suggest`
//! and the metrics read: the recent events, the last drop per container,
//! per-container counts of everything logged, and the distinct flows seen
//! (for suggestions). Events shown are rate-limited per container (a token
//! bucket); what a bucket suppresses is counted and reported on the
//! container's next event, or in a summary event once the bucket refills.
//! Counts and flows see every packet, suppressed or not.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use cordon_dataplane::nflog::Logged;
use cordon_inventory::Shown;
use cordon_ruleset::LogPrefix;
use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};
use serde::{Deserialize, Serialize};

use crate::directory::Directory;

/// Events a container may show per second, on average.
pub const RATE_PER_SEC: f64 = 10.0;
/// Events a container may show in a burst.
pub const BURST: f64 = 20.0;
/// Recent events kept for `cordon logs`.
pub const RECENT: usize = 5_000;
/// Distinct flows kept for `cordon suggest`.
pub const FLOWS: usize = 50_000;

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
    /// `egress`, `egress-host`, `ingress`, `ingress-host`, `spoof`, or
    /// `dns` (a refused name).
    pub direction: String,
    /// `drop`, `audit` (logged and let through), `refused` (DNS), or
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

/// What the packet itself says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packet {
    /// Protocol word.
    pub proto: String,
    /// Source address.
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// Source port.
    pub sport: Option<u16>,
    /// Destination port.
    pub dport: Option<u16>,
    /// Length.
    pub bytes: u64,
}

/// Decodes a logged payload (from the network header on; possibly cut
/// short). Never panics: what cannot be read stays empty.
pub fn decode(payload: &[u8]) -> Packet {
    let mut p = Packet {
        proto: "unknown".into(),
        bytes: payload.len() as u64,
        ..Default::default()
    };
    let Ok(sliced) = LaxSlicedPacket::from_ip(payload) else {
        // Not IP: an ARP packet from the bridge table.
        if let Ok(arp) = etherparse::ArpPacketSlice::from_slice(payload) {
            p.proto = "arp".into();
            if let Ok(b) = <[u8; 4]>::try_from(arp.sender_protocol_addr()) {
                p.src = Some(IpAddr::from(b));
            }
        }
        return p;
    };
    let ip_number = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            p.src = Some(h.source_addr().into());
            p.dst = Some(h.destination_addr().into());
            p.bytes = u64::from(h.total_len());
            Some(v4.payload().ip_number)
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            p.src = Some(h.source_addr().into());
            p.dst = Some(h.destination_addr().into());
            p.bytes = 40 + u64::from(h.payload_length());
            Some(v6.payload().ip_number)
        }
        _ => None,
    };
    if let Some(n) = ip_number {
        p.proto = match n {
            etherparse::IpNumber::TCP => "tcp".into(),
            etherparse::IpNumber::UDP => "udp".into(),
            etherparse::IpNumber::ICMP => "icmp".into(),
            etherparse::IpNumber::IPV6_ICMP => "icmpv6".into(),
            other => other.0.to_string(),
        };
    }
    match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => {
            p.sport = Some(t.source_port());
            p.dport = Some(t.destination_port());
        }
        Some(TransportSlice::Udp(u)) => {
            p.sport = Some(u.source_port());
            p.dport = Some(u.destination_port());
        }
        _ => {}
    }
    p
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

/// A logged packet as an event, attributed with `dir`: egress by its
/// source, ingress by its destination, spoofing by the port it came in on.
/// `ifname` names an interface index. `None` for foreign log lines.
pub fn event(
    l: &Logged,
    dir: &Directory,
    ifname: impl Fn(u32) -> Option<String>,
    at: SystemTime,
) -> Option<Event> {
    let prefix = LogPrefix::parse(&l.prefix)?;
    let (direction, policy, verdict, reason) = (
        prefix.direction_word().to_string(),
        prefix.subject().to_string(),
        prefix.verdict().word().to_string(),
        prefix.reason().map(str::to_string),
    );
    let p = decode(&l.payload);
    let who = match direction.as_str() {
        "spoof" => l
            .in_ifindex
            .and_then(&ifname)
            .and_then(|i| dir.by_iface.get(&i)),
        d if d.starts_with("ingress") => p.dst.and_then(|a| dir.by_addr.get(&a)),
        _ => p.src.and_then(|a| dir.by_addr.get(&a)),
    };
    let (time, unix_ms) = stamp(at);
    Some(Event {
        time,
        unix_ms,
        container: who.map(|c| c.container.clone()),
        id: who.map(|c| c.id.clone()),
        policy,
        direction,
        verdict,
        reason,
        proto: p.proto,
        src: p.src,
        dst: p.dst,
        sport: p.sport,
        dport: p.dport,
        bytes: p.bytes,
        name: None,
        suppressed: 0,
    })
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

/// A container's token bucket.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    at: Instant,
    suppressed: u64,
    /// The last suppressed event, the template of a summary.
    held: Option<Event>,
}

/// A distinct flow, for suggestions: who, which way, to or from where.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FlowKey {
    /// The container.
    pub container: String,
    /// Its policy.
    pub policy: String,
    /// `egress`, `egress-host`, `ingress`, `ingress-host`.
    pub direction: String,
    /// Protocol word.
    pub proto: String,
    /// The other end: the destination of egress, the source of ingress.
    pub peer: IpAddr,
    /// The destination port (TCP, UDP).
    pub port: Option<u16>,
}

/// How often a flow was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowStat {
    /// Packets logged.
    pub packets: u64,
    /// First seen (ms since the epoch).
    pub first_ms: u64,
    /// Last seen (ms since the epoch).
    pub last_ms: u64,
    /// `drop` or `audit`.
    pub verdict: String,
}

/// Packets and bytes logged for one (container, policy, direction,
/// verdict).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// The drop log's memory.
#[derive(Debug, Default)]
pub struct Recorder {
    recent: VecDeque<Event>,
    buckets: HashMap<String, Bucket>,
    flows: HashMap<FlowKey, FlowStat>,
    last: BTreeMap<String, Event>,
    tallies: BTreeMap<(String, String, String, String), Tally>,
    /// Every event recorded, shown or not.
    pub seen: u64,
    /// Events the rate limit held back.
    pub suppressed: u64,
}

impl Recorder {
    /// Records `e` (logged at `now`); returns the event to show, if the
    /// container's rate allows, carrying the count suppressed before it.
    pub fn record(&mut self, mut e: Event, now: Instant) -> Option<Event> {
        self.seen += 1;
        let who = e.container.clone().unwrap_or_else(|| "-".into());
        let t = self
            .tallies
            .entry((
                who.clone(),
                e.policy.clone(),
                e.direction.clone(),
                e.verdict.clone(),
            ))
            .or_default();
        t.packets += 1;
        t.bytes += e.bytes;
        self.note_flow(&e);
        if e.container.is_some() {
            self.last.insert(who.clone(), e.clone());
        }
        let b = self.buckets.entry(who).or_insert(Bucket {
            tokens: BURST,
            at: now,
            suppressed: 0,
            held: None,
        });
        refill(b, now);
        if b.tokens < 1.0 {
            b.suppressed += 1;
            self.suppressed += 1;
            b.held = Some(e);
            return None;
        }
        b.tokens -= 1.0;
        e.suppressed = std::mem::take(&mut b.suppressed);
        b.held = None;
        self.push_recent(e.clone());
        Some(e)
    }

    /// Summaries for containers whose suppressed events were not reported
    /// yet and whose bucket has refilled: the last held event, carrying the
    /// count. Called about once a second.
    pub fn flush(&mut self, now: Instant) -> Vec<Event> {
        let mut out = Vec::new();
        for b in self.buckets.values_mut() {
            refill(b, now);
            if b.suppressed > 0 && b.tokens >= 1.0 {
                if let Some(mut e) = b.held.take() {
                    b.tokens -= 1.0;
                    // The held event itself was counted as suppressed.
                    e.suppressed = std::mem::take(&mut b.suppressed) - 1;
                    out.push(e);
                }
            }
        }
        // Idle full buckets are forgotten.
        self.buckets
            .retain(|_, b| b.suppressed > 0 || b.tokens < BURST);
        for e in &out {
            self.push_recent(e.clone());
        }
        out
    }

    fn push_recent(&mut self, e: Event) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(e);
    }

    fn note_flow(&mut self, e: &Event) {
        if e.direction == "spoof" || e.direction == "dns" {
            return;
        }
        let (Some(container), Some(peer)) = (
            e.container.clone(),
            if e.direction.starts_with("ingress") {
                e.src
            } else {
                e.dst
            },
        ) else {
            return;
        };
        let key = FlowKey {
            container,
            policy: e.policy.clone(),
            direction: e.direction.clone(),
            proto: e.proto.clone(),
            peer,
            port: e.dport,
        };
        if !self.flows.contains_key(&key) && self.flows.len() >= FLOWS {
            // Full: forget the tenth seen least recently, in one pass, so a
            // scan of new flows does not pay a full walk per packet.
            let mut last: Vec<u64> = self.flows.values().map(|s| s.last_ms).collect();
            let cut = *last.select_nth_unstable(FLOWS / 10).1;
            self.flows.retain(|_, s| s.last_ms > cut);
        }
        let s = self.flows.entry(key).or_insert(FlowStat {
            packets: 0,
            first_ms: e.unix_ms,
            last_ms: e.unix_ms,
            verdict: e.verdict.clone(),
        });
        s.packets += 1;
        s.last_ms = e.unix_ms;
    }

    /// The most recent `n` events shown, oldest first.
    pub fn recent(&self, n: usize) -> Vec<Event> {
        let skip = self.recent.len().saturating_sub(n);
        self.recent.iter().skip(skip).cloned().collect()
    }

    /// The last event of each container (shown or not).
    pub fn last(&self) -> &BTreeMap<String, Event> {
        &self.last
    }

    /// Flows last seen at or after `since_ms`.
    pub fn flows(&self, since_ms: u64) -> Vec<(FlowKey, FlowStat)> {
        let mut v: Vec<_> = self
            .flows
            .iter()
            .filter(|(_, s)| s.last_ms >= since_ms)
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Packets and bytes per (container, policy, direction, verdict).
    pub fn tallies(&self) -> &BTreeMap<(String, String, String, String), Tally> {
        &self.tallies
    }

    /// Packets logged per container and side (`egress` or `ingress`,
    /// their `-host` directions folded in; `other` for spoofing and DNS),
    /// every verdict together.
    pub fn logged_by_container(&self) -> HashMap<(String, &'static str), u64> {
        let mut out: HashMap<(String, &'static str), u64> = HashMap::new();
        for ((who, _, dir, _), t) in &self.tallies {
            let side = if dir.starts_with("ingress") {
                "ingress"
            } else if dir.starts_with("egress") {
                "egress"
            } else {
                "other"
            };
            *out.entry((who.clone(), side)).or_default() += t.packets;
        }
        out
    }
}

fn refill(b: &mut Bucket, now: Instant) {
    let dt = now.saturating_duration_since(b.at);
    b.tokens = (b.tokens + dt.as_secs_f64() * RATE_PER_SEC).min(BURST);
    b.at = now;
}

/// Interface index → name (`if_indextoname`).
pub fn ifname(index: u32) -> Option<String> {
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: the buffer holds IF_NAMESIZE bytes, as the call requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr().cast()) };
    if p.is_null() {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// The timeout after which a follower that does not read is dropped.
pub const FOLLOW_STALL: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Client;

    fn v4_tcp(src: [u8; 4], dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ipv4(src, dst, 64)
            .tcp(40000, dport, 1, 1000)
            .write(&mut out, &[])
            .unwrap();
        out
    }

    fn dir() -> Directory {
        let c = Client {
            key: "web".into(),
            policy: "web".into(),
            container: "web-1".into(),
            id: "0123456789ab".into(),
        };
        let mut d = Directory::default();
        d.by_addr.insert("172.20.0.2".parse().unwrap(), c.clone());
        d.by_iface.insert("veth1".into(), c);
        d
    }

    fn logged(prefix: &str, payload: Vec<u8>) -> Logged {
        Logged {
            prefix: prefix.into(),
            payload,
            in_ifindex: Some(7),
        }
    }

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
    }

    #[test]
    fn events_name_the_container_by_direction() {
        let d = dir();
        let name = |i: u32| (i == 7).then(|| "veth1".to_string());
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let out = v4_tcp([172, 20, 0, 2], [10, 9, 0, 2], 80);
        let e = event(&logged("cordon egress web drop ", out), &d, name, at).unwrap();
        assert_eq!(e.container.as_deref(), Some("web-1"));
        assert_eq!(e.id.as_deref(), Some("0123456789ab"));
        assert_eq!((e.proto.as_str(), e.dport), ("tcp", Some(80)));
        assert_eq!(e.dst, Some("10.9.0.2".parse().unwrap()));
        assert_eq!(e.bytes, 40);
        assert_eq!(e.time, "2023-11-14T22:13:20.000Z");
        // Ingress is attributed by destination.
        let inbound = v4_tcp([203, 0, 113, 9], [172, 20, 0, 2], 22);
        let e = event(
            &logged("cordon ingress web drop ", inbound.clone()),
            &d,
            name,
            at,
        )
        .unwrap();
        assert_eq!(e.container.as_deref(), Some("web-1"));
        // Spoofing by the port: the forged source names nobody.
        let forged = v4_tcp([172, 20, 0, 99], [203, 0, 113, 9], 80);
        let e = event(&logged("cordon spoof ip drop ", forged), &d, name, at).unwrap();
        assert_eq!(
            (
                e.direction.as_str(),
                e.reason.as_deref(),
                e.container.as_deref()
            ),
            ("spoof", Some("ip"), Some("web-1"))
        );
        // Fail-closed drops name no container when none has the address.
        let stray = v4_tcp([172, 20, 0, 77], [203, 0, 113, 9], 80);
        let e = event(
            &logged("cordon egress unknown-source drop ", stray),
            &d,
            name,
            at,
        )
        .unwrap();
        assert_eq!((e.policy.as_str(), e.container), ("unknown-source", None));
        // Foreign prefixes are not cordon's.
        assert!(event(&logged("IN=eth0 ", inbound), &d, name, at).is_none());
    }

    #[test]
    fn decode_survives_anything() {
        assert_eq!(decode(&[]).proto, "unknown");
        let full = v4_tcp([1, 2, 3, 4], [5, 6, 7, 8], 443);
        for n in 0..full.len() {
            let _ = decode(&full[..n]);
        }
        // Cut inside the TCP header: the addresses are still read, and
        // the length is the header's, not what was copied.
        let cut = decode(&full[..30]);
        assert_eq!(cut.dst, Some("5.6.7.8".parse().unwrap()));
        assert_eq!((cut.bytes, cut.dport), (40, None));
        assert_eq!(decode(&full).dport, Some(443));
        let mut v6 = Vec::new();
        etherparse::PacketBuilder::ipv6(
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .udp(5000, 53)
        .write(&mut v6, &[1, 2, 3])
        .unwrap();
        let p = decode(&v6);
        assert_eq!((p.proto.as_str(), p.dport, p.bytes), ("udp", Some(53), 51));
    }

    #[test]
    fn rate_limit_counts_what_it_holds_back() {
        let d = dir();
        let at = SystemTime::now();
        let mut r = Recorder::default();
        let t0 = Instant::now();
        let mk = |port| {
            event(
                &logged(
                    "cordon egress web drop ",
                    v4_tcp([172, 20, 0, 2], [198, 51, 100, 2], port),
                ),
                &d,
                |_| None,
                at,
            )
            .unwrap()
        };
        let shown = (0..100)
            .filter(|i| r.record(mk(1000 + i), t0).is_some())
            .count();
        assert_eq!(shown, BURST as usize);
        assert_eq!(r.suppressed, 80);
        // A second later, ten tokens are back: the next event carries the
        // count, and every packet was tallied and its flow kept.
        let next = r.record(mk(80), t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(next.suppressed, 80);
        let t = r.tallies().values().next().unwrap();
        assert_eq!(t.packets, 101);
        assert_eq!(r.flows(0).len(), 101);
        assert_eq!(r.last()["web-1"].dport, Some(80));
        // Suppressed events with nothing after them come out as a summary.
        for i in 0..30 {
            r.record(mk(2000 + i), t0 + Duration::from_secs(1));
        }
        let summary = r.flush(t0 + Duration::from_secs(3));
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0].dport, Some(2029));
        assert_eq!(summary[0].suppressed + 1 + 9, 30);
        assert!(r.flush(t0 + Duration::from_secs(4)).is_empty());
        assert_eq!(r.recent(1)[0].dport, Some(2029));
        assert_eq!(
            r.logged_by_container()[&("web-1".to_string(), "egress")],
            131
        );
    }

    #[test]
    fn flows_stay_bounded_and_keep_the_newest() {
        let d = dir();
        let mut r = Recorder::default();
        let t0 = Instant::now();
        for i in 0..(FLOWS as u64 + 10) {
            let at = SystemTime::UNIX_EPOCH + Duration::from_millis(i);
            let dst = [198, 51, (i >> 16) as u8, (i >> 8) as u8];
            let pkt = v4_tcp([172, 20, 0, 2], dst, i as u16);
            let e = event(&logged("cordon egress web drop ", pkt), &d, |_| None, at).unwrap();
            r.record(e, t0);
        }
        let flows = r.flows(0);
        assert!(flows.len() <= FLOWS, "{}", flows.len());
        assert!(flows.len() >= FLOWS * 9 / 10 - 1, "{}", flows.len());
        // The most recent flow is kept; the oldest was forgotten.
        assert!(flows.iter().any(|(_, s)| s.last_ms == FLOWS as u64 + 9));
        assert!(flows.iter().all(|(_, s)| s.last_ms > 0));
    }
}
