//! The drop log's memory: the ring of recent events shown (what `cordon
//! logs` and its followers read), the last event per container, the
//! tallies per container, and the distinct flows for suggestions.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::event::Event;
use super::limit::Limiter;

/// Recent events kept for `cordon logs`.
pub const RECENT: usize = 5_000;
/// Distinct flows kept for `cordon suggest`.
pub const FLOWS: usize = 50_000;

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
    limiter: Limiter,
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
    pub fn record(&mut self, e: Event, now: Instant) -> Option<Event> {
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
        let Some(e) = self.limiter.admit(who, e, now) else {
            self.suppressed += 1;
            return None;
        };
        self.push_recent(e.clone());
        Some(e)
    }

    /// Summaries for containers whose suppressed events were not reported
    /// yet and whose bucket has refilled: the last held event, carrying the
    /// count. Called about once a second.
    pub fn flush(&mut self, now: Instant) -> Vec<Event> {
        let out = self.limiter.due(now);
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

/// The timeout after which a follower that does not read is dropped.
pub const FOLLOW_STALL: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::droplog::fixtures::{dir, logged, v4_tcp};
    use crate::droplog::{event, BURST};

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
