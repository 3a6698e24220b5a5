//! The proxy's answer cache.
//!
//! Upstream answers are kept as the upstream sent them, keyed by the
//! question (name without case, type, class) and the query's EDNS, DO and
//! CD bits, for as long as their TTLs say: a positive answer for the
//! smallest TTL of its answer records, a negative one (NXDOMAIN, or no
//! records) for the smaller of its SOA record's TTL and SOA minimum
//! (RFC 2308), both capped. Truncated answers, other response codes,
//! answers without an SOA to time them and TTL 0 are not kept.
//!
//! A hit is served with every record's TTL lowered by the answer's age,
//! with the asking client's id, recursion-desired bit and spelling of the
//! name (the bytes are patched in place; the message is not re-encoded),
//! and only when it fits the client's UDP size. The proxy then treats it
//! exactly as a fresh answer: it is filtered and opens the firewall for
//! the asking container's policy.
//!
//! The cache is bounded in entries and bytes; when full, the oldest
//! entries go first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most bytes the cache holds (answer bytes and per-entry overhead).
pub const MAX_BYTES: usize = 32 << 20;

/// The longest a negative answer is kept.
pub const MAX_NEGATIVE: Duration = Duration::from_secs(300);

/// What an answer is kept under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The question's name in wire form, lower-case.
    name: Vec<u8>,
    qtype: u16,
    qclass: u16,
    /// Bit 0: the query has EDNS; bit 1: DO; bit 2: CD.
    flags: u8,
}

/// What the cache needs to know of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// Its key.
    pub key: Key,
    /// The largest UDP answer the client takes (512 without EDNS).
    pub udp_limit: usize,
}

/// Reads what the cache needs from a query; `None` when it is not one
/// plain query with one question whose name is written without
/// compression (such a query is simply not answered from the cache).
pub fn asked(query: &[u8]) -> Option<Asked> {
    let h = header(query)?;
    if query[2] & 0x80 != 0 || query[2] & 0x78 != 0 || h.qd != 1 {
        return None;
    }
    let (name, mut pos) = plain_name(query, 12)?;
    let qtype = be16(query, pos)?;
    let qclass = be16(query, pos + 2)?;
    pos += 4;
    let mut flags = if query[3] & 0x10 != 0 { 4 } else { 0 };
    let mut udp_limit = 512;
    for i in 0..(h.an + h.ns + h.ar) {
        let rr = record(query, pos)?;
        if i >= h.an + h.ns && rr.rtype == OPT {
            flags |= 1;
            if rr.ttl & 0x8000 != 0 {
                flags |= 2;
            }
            udp_limit = usize::from(rr.class).max(512);
        }
        pos = rr.end;
    }
    Some(Asked {
        key: Key {
            name,
            qtype,
            qclass,
            flags,
        },
        udp_limit,
    })
}

/// How long `answer` (an answer to the question `key`) may be kept; `None`
/// when it may not be. `max` caps a positive answer's time.
pub fn lifetime(key: &Key, answer: &[u8], max: Duration) -> Option<Duration> {
    let h = header(answer)?;
    let rcode = answer[3] & 0x0f;
    if answer[2] & 0x80 == 0 || answer[2] & 0x02 != 0 || h.qd != 1 || !matches!(rcode, 0 | 3) {
        return None;
    }
    let (name, mut pos) = plain_name(answer, 12)?;
    if name != key.name || be16(answer, pos)? != key.qtype || be16(answer, pos + 2)? != key.qclass {
        return None;
    }
    pos += 4;
    let mut positive: Option<u32> = None;
    let mut negative: Option<u32> = None;
    for i in 0..(h.an + h.ns + h.ar) {
        let rr = record(answer, pos)?;
        if i < h.an && rr.rtype != OPT {
            positive = Some(positive.map_or(rr.ttl, |t| t.min(rr.ttl)));
        } else if i < h.an + h.ns && rr.rtype == SOA && rr.end >= rr.rdata + 4 {
            let minimum = u32::from_be_bytes(answer[rr.end - 4..rr.end].try_into().ok()?);
            negative = Some(rr.ttl.min(minimum));
        }
        pos = rr.end;
    }
    let secs = match (rcode, positive) {
        (0, Some(t)) => Duration::from_secs(t.into()).min(max),
        _ => Duration::from_secs(negative?.into()).min(MAX_NEGATIVE),
    };
    (!secs.is_zero()).then_some(secs)
}

/// The offsets of the TTL fields of every record but OPT.
fn ttl_offsets(answer: &[u8]) -> Option<Vec<usize>> {
    let h = header(answer)?;
    let (_, mut pos) = plain_name(answer, 12)?;
    pos += 4;
    let mut out = Vec::new();
    for _ in 0..(h.an + h.ns + h.ar) {
        let rr = record(answer, pos)?;
        if rr.rtype != OPT {
            out.push(rr.ttl_at);
        }
        pos = rr.end;
    }
    Some(out)
}

struct Entry {
    bytes: Vec<u8>,
    ttls: Vec<usize>,
    stored: Instant,
    lifetime: Duration,
    stamp: u64,
}

impl Entry {
    fn size(&self) -> usize {
        self.bytes.len() + self.ttls.len() * 8 + 128
    }
}

#[derive(Default)]
struct Inner {
    map: HashMap<Key, Entry>,
    /// Insertion order, for eviction; a pair whose stamp no longer matches
    /// its entry's is stale and skipped.
    order: VecDeque<(Key, u64)>,
    bytes: usize,
    stamp: u64,
}

impl Inner {
    fn remove(&mut self, key: &Key) {
        if let Some(e) = self.map.remove(key) {
            self.bytes -= e.size();
        }
    }
}

/// The cache.
pub struct Cache {
    inner: Mutex<Inner>,
    max_entries: usize,
    max_bytes: usize,
    max_ttl: Duration,
}

impl Cache {
    /// A cache of at most `max_entries` answers and `max_bytes` bytes; a
    /// positive answer is kept at most `max_ttl`.
    pub fn new(max_entries: usize, max_bytes: usize, max_ttl: Duration) -> Cache {
        Cache {
            inner: Mutex::default(),
            max_entries,
            max_bytes,
            max_ttl,
        }
    }

    /// Answers held.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `answer`, the upstream's answer to `asked`, if it may be kept.
    pub fn put(&self, asked: &Asked, answer: &[u8], now: Instant) {
        if self.max_entries == 0 {
            return;
        }
        let Some(lifetime) = lifetime(&asked.key, answer, self.max_ttl) else {
            return;
        };
        let Some(ttls) = ttl_offsets(answer) else {
            return;
        };
        let mut g = self.lock();
        g.stamp += 1;
        let stamp = g.stamp;
        let e = Entry {
            bytes: answer.to_vec(),
            ttls,
            stored: now,
            lifetime,
            stamp,
        };
        if e.size() > self.max_bytes {
            return;
        }
        g.remove(&asked.key);
        g.bytes += e.size();
        g.map.insert(asked.key.clone(), e);
        g.order.push_back((asked.key.clone(), stamp));
        while g.map.len() > self.max_entries || g.bytes > self.max_bytes {
            let Some((k, s)) = g.order.pop_front() else {
                break;
            };
            if g.map.get(&k).is_some_and(|e| e.stamp == s) {
                g.remove(&k);
            }
        }
        if g.order.len() > 2 * self.max_entries + 16 {
            let Inner { map, order, .. } = &mut *g;
            order.retain(|(k, s)| map.get(k).is_some_and(|e| e.stamp == *s));
        }
    }

    /// The kept answer to `query` (whose [`asked`] is `asked`), aged and
    /// made the client's; `None` when there is none, it expired, or it is
    /// larger than `limit` bytes.
    pub fn get(&self, asked: &Asked, query: &[u8], limit: usize, now: Instant) -> Option<Vec<u8>> {
        if self.max_entries == 0 {
            return None;
        }
        let (mut out, ttls, age) = {
            let mut g = self.lock();
            let e = g.map.get(&asked.key)?;
            let age = now.saturating_duration_since(e.stored);
            if age >= e.lifetime {
                g.remove(&asked.key);
                return None;
            }
            if e.bytes.len() > limit {
                return None;
            }
            (e.bytes.clone(), e.ttls.clone(), age)
        };
        let age = u32::try_from(age.as_secs()).unwrap_or(u32::MAX);
        for at in ttls {
            let t = u32::from_be_bytes(out[at..at + 4].try_into().ok()?);
            out[at..at + 4].copy_from_slice(&t.saturating_sub(age).to_be_bytes());
        }
        // The client's id, recursion-desired bit and spelling of the name
        // (the same length: the key holds the name without case).
        out[..2].copy_from_slice(&query[..2]);
        out[2] = (out[2] & !0x01) | (query[2] & 0x01);
        let end = 12 + asked.key.name.len();
        out[12..end].copy_from_slice(query.get(12..end)?);
        Some(out)
    }
}

const OPT: u16 = 41;
const SOA: u16 = 6;

struct Header {
    qd: usize,
    an: usize,
    ns: usize,
    ar: usize,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn header(b: &[u8]) -> Option<Header> {
    Some(Header {
        qd: be16(b, 4)?.into(),
        an: be16(b, 6)?.into(),
        ns: be16(b, 8)?.into(),
        ar: be16(b, 10)?.into(),
    })
}

/// A name at `pos` written without compression, lower-cased, and the
/// position after it.
fn plain_name(b: &[u8], mut pos: usize) -> Option<(Vec<u8>, usize)> {
    let start = pos;
    loop {
        let len = usize::from(*b.get(pos)?);
        if len == 0 {
            let name = b[start..=pos].to_ascii_lowercase();
            return Some((name, pos + 1));
        }
        if len > 63 || pos - start + len > 254 {
            return None;
        }
        pos += 1 + len;
    }
}

/// The position after the (possibly compressed) name at `pos`.
fn skip_name(b: &[u8], mut pos: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *b.get(pos)?;
        match len & 0xc0 {
            0 if len == 0 => return Some(pos + 1),
            0 => pos += 1 + usize::from(len),
            0xc0 => return b.get(pos + 1).map(|_| pos + 2),
            _ => return None,
        }
    }
    None
}

struct Rr {
    rtype: u16,
    class: u16,
    ttl: u32,
    ttl_at: usize,
    rdata: usize,
    end: usize,
}

fn record(b: &[u8], pos: usize) -> Option<Rr> {
    let at = skip_name(b, pos)?;
    let rtype = be16(b, at)?;
    let class = be16(b, at + 2)?;
    let ttl = u32::from_be_bytes(b.get(at + 4..at + 8)?.try_into().ok()?);
    let len = usize::from(be16(b, at + 8)?);
    let rdata = at + 10;
    let end = rdata + len;
    (end <= b.len()).then_some(Rr {
        rtype,
        class,
        ttl,
        ttl_at: at + 4,
        rdata,
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::rdata::{A, SOA as Soa};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn query(id: u16, n: &str, edns: Option<(u16, bool)>) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(name(n), RecordType::A));
        if let Some((size, dnssec)) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            e.set_dnssec_ok(dnssec);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    fn answer(q: &[u8], ttls: &[u32]) -> Vec<u8> {
        let q = Message::from_vec(q).unwrap();
        let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        m.metadata.recursion_desired = q.metadata.recursion_desired;
        m.add_queries(q.queries.clone());
        for (i, t) in ttls.iter().enumerate() {
            m.add_answer(Record::from_rdata(
                q.queries[0].name.clone(),
                *t,
                RData::A(A([198, 51, 100, i as u8 + 1].into())),
            ));
        }
        if let Some(e) = q.edns {
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    fn negative(q: &[u8], soa_ttl: u32, minimum: u32) -> Vec<u8> {
        let q = Message::from_vec(q).unwrap();
        let mut m = Message::error_msg(q.metadata.id, OpCode::Query, ResponseCode::NXDomain);
        m.add_queries(q.queries.clone());
        m.add_authority(Record::from_rdata(
            name("w.test."),
            soa_ttl,
            RData::SOA(Soa::new(
                name("ns.w.test."),
                name("h.w.test."),
                1,
                2,
                3,
                4,
                minimum,
            )),
        ));
        m.to_vec().unwrap()
    }

    #[test]
    fn a_hit_is_aged_and_made_the_clients() {
        let c = Cache::new(10, MAX_BYTES, Duration::from_secs(3600));
        let q = query(1, "Ok.W.test.", None);
        let a = asked(&q).unwrap();
        let t0 = Instant::now();
        c.put(&a, &answer(&q, &[300, 60]), t0);
        // Another client, other id, other spelling, 10 s later.
        let q2 = query(0xbeef, "oK.w.TEST.", None);
        let a2 = asked(&q2).unwrap();
        assert_eq!(a2.key, a.key, "case does not matter");
        let hit = c.get(&a2, &q2, 512, t0 + Duration::from_secs(10)).unwrap();
        let m = Message::from_vec(&hit).unwrap();
        assert_eq!(m.metadata.id, 0xbeef);
        assert!(m.metadata.recursion_desired);
        assert_eq!(m.queries[0].name.to_ascii(), "oK.w.TEST.");
        let ttls: Vec<u32> = m.answers.iter().map(|r| r.ttl).collect();
        assert_eq!(ttls, [290, 50]);
        // Gone once the shortest TTL has passed.
        assert!(c.get(&a2, &q2, 512, t0 + Duration::from_secs(60)).is_none());
        assert!(c.is_empty());
    }

    #[test]
    fn edns_do_and_size_are_respected() {
        let c = Cache::new(10, MAX_BYTES, Duration::from_secs(3600));
        let now = Instant::now();
        let plain = query(1, "a.w.test.", None);
        let edns = query(2, "a.w.test.", Some((1232, false)));
        let dnssec = query(3, "a.w.test.", Some((1232, true)));
        let (p, e, d) = (
            asked(&plain).unwrap(),
            asked(&edns).unwrap(),
            asked(&dnssec).unwrap(),
        );
        assert_ne!(p.key, e.key);
        assert_ne!(e.key, d.key);
        assert_eq!((p.udp_limit, e.udp_limit), (512, 1232));
        c.put(&e, &answer(&edns, &[300]), now);
        assert!(
            c.get(&p, &plain, 512, now).is_none(),
            "no OPT to a client without EDNS"
        );
        assert!(
            c.get(&d, &dnssec, 1232, now).is_none(),
            "DO is part of the key"
        );
        let hit = c.get(&e, &edns, 1232, now).unwrap();
        assert!(
            c.get(&e, &edns, hit.len() - 1, now).is_none(),
            "too large for the client"
        );
        assert!(Message::from_vec(&hit).unwrap().edns.is_some());
    }

    #[test]
    fn what_is_not_kept() {
        let c = Cache::new(10, MAX_BYTES, Duration::from_secs(3600));
        let now = Instant::now();
        let q = query(1, "a.w.test.", None);
        let a = asked(&q).unwrap();
        // TTL 0.
        c.put(&a, &answer(&q, &[0]), now);
        // SERVFAIL.
        let mut m = Message::from_vec(&answer(&q, &[30])).unwrap();
        m.metadata.response_code = ResponseCode::ServFail;
        c.put(&a, &m.to_vec().unwrap(), now);
        // Truncated.
        let mut m = Message::from_vec(&answer(&q, &[30])).unwrap();
        m.metadata.truncation = true;
        c.put(&a, &m.to_vec().unwrap(), now);
        // No records and no SOA.
        c.put(&a, &answer(&q, &[]), now);
        // An answer to another question.
        let other = query(1, "b.w.test.", None);
        c.put(&a, &answer(&other, &[30]), now);
        assert!(c.is_empty());
        // Garbage.
        assert!(asked(&[1, 2, 3]).is_none());
        assert!(lifetime(&a.key, &[0xff; 40], Duration::MAX).is_none());
    }

    #[test]
    fn negative_answers_live_for_their_soa_minimum_capped() {
        let c = Cache::new(10, MAX_BYTES, Duration::from_secs(3600));
        let now = Instant::now();
        let q = query(1, "nx.w.test.", None);
        let a = asked(&q).unwrap();
        assert_eq!(
            lifetime(&a.key, &negative(&q, 600, 30), Duration::MAX),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            lifetime(&a.key, &negative(&q, 20, 30), Duration::MAX),
            Some(Duration::from_secs(20))
        );
        assert_eq!(
            lifetime(&a.key, &negative(&q, 86_400, 86_400), Duration::MAX),
            Some(MAX_NEGATIVE)
        );
        c.put(&a, &negative(&q, 600, 30), now);
        let hit = c.get(&a, &q, 512, now + Duration::from_secs(29)).unwrap();
        let m = Message::from_vec(&hit).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(m.authorities[0].ttl, 600 - 29);
        assert!(c.get(&a, &q, 512, now + Duration::from_secs(30)).is_none());
        // A positive answer's time is capped too.
        assert_eq!(
            lifetime(&a.key, &answer(&q, &[86_400]), Duration::from_secs(60)),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn bounded_in_entries_and_bytes_oldest_first() {
        let now = Instant::now();
        let c = Cache::new(3, MAX_BYTES, Duration::from_secs(3600));
        let qs: Vec<Vec<u8>> = (0..5)
            .map(|i| query(1, &format!("n{i}.w.test."), None))
            .collect();
        for q in &qs {
            c.put(&asked(q).unwrap(), &answer(q, &[300]), now);
        }
        assert_eq!(c.len(), 3);
        assert!(c.get(&asked(&qs[0]).unwrap(), &qs[0], 512, now).is_none());
        assert!(c.get(&asked(&qs[4]).unwrap(), &qs[4], 512, now).is_some());
        // Re-storing one key many times keeps the order queue bounded.
        for _ in 0..1000 {
            c.put(&asked(&qs[4]).unwrap(), &answer(&qs[4], &[300]), now);
        }
        assert!(c.lock().order.len() <= 2 * 3 + 16);
        assert_eq!(c.len(), 3);
        // Bytes: room for about two answers.
        let one = answer(&qs[0], &[300]).len() + 8 + 128;
        let c = Cache::new(100, 2 * one + 10, Duration::from_secs(3600));
        for q in &qs {
            c.put(&asked(q).unwrap(), &answer(q, &[300]), now);
        }
        assert_eq!(c.len(), 2);
        assert!(c.lock().bytes <= 2 * one + 10);
        // Off.
        let c = Cache::new(0, MAX_BYTES, Duration::from_secs(3600));
        c.put(&asked(&qs[0]).unwrap(), &answer(&qs[0], &[300]), now);
        assert!(c.get(&asked(&qs[0]).unwrap(), &qs[0], 512, now).is_none());
    }
}
