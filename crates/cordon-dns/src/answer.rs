//! The addresses an upstream answer gives for the queried name.
//!
//! Only records that answer the question count: A and AAAA records owned by
//! the queried name or by a name the CNAME chain from it leads to (at most
//! [`MAX_CHAIN`] hops, loops ignored). Records for other names in the same
//! answer (a hostile or confused upstream adding extra records) are ignored,
//! so an allowlisted name cannot smuggle in addresses for another.

use std::net::IpAddr;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData};

/// CNAME hops followed from the queried name.
pub const MAX_CHAIN: usize = 16;

/// Bounds on what one answer may open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The shortest lifetime given to an address.
    pub min_ttl: Duration,
    /// The longest lifetime given to an address.
    pub max_ttl: Duration,
    /// The most addresses one answer may add.
    pub max_addrs: usize,
}

impl Default for Limits {
    /// The policy file's defaults ([`cordon_policy::dns_defaults`]).
    fn default() -> Self {
        use cordon_policy::dns_defaults;
        Limits {
            min_ttl: dns_defaults::MIN_TTL,
            max_ttl: dns_defaults::MAX_TTL,
            max_addrs: dns_defaults::MAX_ADDRESSES,
        }
    }
}

/// An address learned from an answer, with how long it stays allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learned {
    /// The address.
    pub addr: IpAddr,
    /// Its lifetime: the smallest TTL along its chain, clamped.
    pub ttl: Duration,
}

/// The addresses `resp` gives for `qname`.
pub fn addresses(qname: &Name, resp: &Message, limits: &Limits) -> Vec<Learned> {
    // The chain: (name, smallest TTL to reach it).
    let mut chain: Vec<(Name, u32)> = vec![(qname.clone(), u32::MAX)];
    for _ in 0..MAX_CHAIN {
        let mut grew = false;
        for r in &resp.answers {
            let RData::CNAME(target) = &r.data else {
                continue;
            };
            let Some(ttl) = chain.iter().find(|(n, _)| *n == r.name).map(|(_, t)| *t) else {
                continue;
            };
            if !chain.iter().any(|(n, _)| *n == target.0) {
                chain.push((target.0.clone(), ttl.min(r.ttl)));
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    let mut out: Vec<Learned> = Vec::new();
    for r in &resp.answers {
        let addr = match &r.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            _ => continue,
        };
        let Some(via) = chain.iter().find(|(n, _)| *n == r.name).map(|(_, t)| *t) else {
            continue;
        };
        let secs = Duration::from_secs(u64::from(r.ttl.min(via)));
        let ttl = secs.clamp(limits.min_ttl, limits.max_ttl.max(limits.min_ttl));
        if let Some(l) = out.iter_mut().find(|l| l.addr == addr) {
            l.ttl = l.ttl.max(ttl);
        } else if out.len() < limits.max_addrs {
            out.push(Learned { addr, ttl });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::rdata::{A, AAAA, CNAME};
    use hickory_proto::rr::Record;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn resp(records: Vec<Record>) -> Message {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.add_answers(records);
        m
    }

    #[test]
    fn follows_cname_chains_and_ignores_other_names() {
        let m = resp(vec![
            Record::from_rdata(
                name("api.example.com."),
                300,
                RData::CNAME(CNAME(name("edge.cdn.test."))),
            ),
            Record::from_rdata(
                name("edge.cdn.test."),
                60,
                RData::A(A("198.51.100.7".parse().unwrap())),
            ),
            Record::from_rdata(
                name("edge.cdn.test."),
                60,
                RData::AAAA(AAAA("2001:db8::7".parse().unwrap())),
            ),
            // Not on the chain: an upstream trying to open another address.
            Record::from_rdata(
                name("evil.test."),
                60,
                RData::A(A("203.0.113.66".parse().unwrap())),
            ),
        ]);
        let got = addresses(&name("API.example.com."), &m, &Limits::default());
        let addrs: Vec<String> = got.iter().map(|l| l.addr.to_string()).collect();
        assert_eq!(addrs, ["198.51.100.7", "2001:db8::7"]);
        assert!(got.iter().all(|l| l.ttl == Duration::from_secs(60)));
    }

    #[test]
    fn ttls_are_clamped_and_addresses_capped() {
        let mut recs = vec![Record::from_rdata(
            name("a.test."),
            0,
            RData::A(A("198.51.100.1".parse().unwrap())),
        )];
        recs.push(Record::from_rdata(
            name("a.test."),
            999_999,
            RData::A(A("198.51.100.2".parse().unwrap())),
        ));
        for i in 3..100u8 {
            recs.push(Record::from_rdata(
                name("a.test."),
                30,
                RData::A(A([198, 51, 100, i].into())),
            ));
        }
        let got = addresses(&name("a.test."), &resp(recs), &Limits::default());
        assert_eq!(got.len(), 32);
        assert_eq!(got[0].ttl, Duration::from_secs(5));
        assert_eq!(got[1].ttl, Duration::from_secs(3600));
    }

    #[test]
    fn cname_loops_end() {
        let m = resp(vec![
            Record::from_rdata(name("a.test."), 30, RData::CNAME(CNAME(name("b.test.")))),
            Record::from_rdata(name("b.test."), 30, RData::CNAME(CNAME(name("a.test.")))),
        ]);
        assert!(addresses(&name("a.test."), &m, &Limits::default()).is_empty());
    }

    /// The proxy's limits without a policy are the policy file's defaults.
    #[test]
    fn default_limits_are_the_policy_defaults() {
        let d = cordon_policy::DnsConfig::default();
        assert_eq!(
            Limits::default(),
            Limits {
                min_ttl: d.min_ttl,
                max_ttl: d.max_ttl,
                max_addrs: d.max_addresses,
            }
        );
    }
}
