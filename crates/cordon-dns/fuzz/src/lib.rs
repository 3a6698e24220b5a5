//! The bodies of cordon-dns's fuzz targets, shared by the cargo-fuzz
//! targets (`fuzz_targets/*.rs`) and the stable-toolchain corpus test
//! (`crates/cordon-dns/tests/corpus.rs` includes this file), so the checked
//! in corpus keeps being run by `cargo test`.
//!
//! Each body asserts invariants, not only "no panic":
//!
//! - [`query`]: a readable query gets a refusal with its id and question;
//!   the allowlist matches a name exactly when its labels are the allowed
//!   labels (an independent, label-wise matcher), in any case.
//! - [`answer`]: every address learned from an answer comes from an A or
//!   AAAA record owned by the queried name or a name its CNAME chain
//!   reaches, with a lifetime within the limits and no longer than its
//!   record's, at most the cap of them, none twice.
//! - [`proxy`]: `Proxy::handle` with a fake context and a loopback upstream
//!   that answers with fuzzer bytes: unreadable queries and unknown senders
//!   are dropped without upstream seeing them, names off the list are
//!   refused without upstream seeing them, and an answer is released only
//!   after the firewall was opened, for addresses the answer gives; it
//!   carries no non-public address (the policy names none), and is
//!   upstream's bytes unchanged when upstream's had none.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cordon_dns::allow::{Allowlist, DnsRule, Pattern};
use cordon_dns::answer::{addresses, Learned, Limits};
use cordon_dns::hickory_proto::op::{Message, MessageType, ResponseCode};
use cordon_dns::hickory_proto::rr::{Name, RData};
use cordon_dns::proxy::{Config, Context, Proxy, Verdict};
use cordon_dns::rebind::{classify, Local};
use cordon_dns::reply::{question, refusal};

/// The policy the targets' allowlist comes from.
pub const POLICY: &str = "version: 1
default:
  egress: []
policies:
  - name: app
    select: { name: app }
    egress:
      - to: [api.example.com, \"*.example.org\"]
        ports: [443/tcp]
      - to: [\"*.cdn.test\"]
";

/// The policy key whose names [`POLICY`] allowlists.
pub const KEY: &str = "app";

/// The fake container the proxy target's queries come from.
pub const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 88, 0, 2));

/// A sender that is no container.
pub const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 88, 0, 3));

/// The allowlist of [`POLICY`].
pub fn allowlist() -> &'static Allowlist {
    static A: OnceLock<Allowlist> = OnceLock::new();
    A.get_or_init(|| {
        Allowlist::from_policy(&cordon_policy::parse("fuzz.yaml", POLICY).expect("valid policy"))
    })
}

/// Whether [`POLICY`] allows `name`, decided on its labels (not on its
/// text form): `api.example.com` exactly, or anything below `example.org`
/// or `cdn.test`, ignoring ASCII case.
pub fn allowed_by_labels(name: &Name) -> bool {
    let labels: Vec<Vec<u8>> = name.iter().map(|l| l.to_ascii_lowercase()).collect();
    let is = |want: &[&str]| {
        labels
            .iter()
            .map(Vec::as_slice)
            .eq(want.iter().map(|w| w.as_bytes()))
    };
    let below = |suffix: &[&str]| {
        labels.len() > suffix.len()
            && labels[labels.len() - suffix.len()..]
                .iter()
                .map(Vec::as_slice)
                .eq(suffix.iter().map(|w| w.as_bytes()))
    };
    is(&["api", "example", "com"]) || below(&["example", "org"]) || below(&["cdn", "test"])
}

/// Limits chosen by a fuzzer byte, including degenerate ones (no
/// addresses, max below min).
pub fn limits_from(sel: u8) -> Limits {
    let min = [0, 5, 60, 300][usize::from(sel & 3)];
    let max = [3600, 1, 86_400, 30][usize::from((sel >> 2) & 3)];
    let cap = [32, 1, 0, 4][usize::from((sel >> 4) & 3)];
    Limits {
        min_ttl: Duration::from_secs(min),
        max_ttl: Duration::from_secs(max),
        max_addrs: cap,
    }
}

/// The query path: `question`, `refusal` and the allowlist match.
pub fn query(data: &[u8]) {
    let q = question(data);
    for nxdomain in [false, true] {
        let r = refusal(data, nxdomain);
        let Some((id, name, ty)) = &q else { continue };
        let r = r.expect("a readable query gets a refusal");
        let m = Message::from_vec(&r).expect("a refusal parses");
        assert_eq!(m.metadata.id, *id);
        assert_eq!(m.metadata.message_type, MessageType::Response);
        let code = if nxdomain {
            ResponseCode::NXDomain
        } else {
            ResponseCode::Refused
        };
        assert_eq!(m.metadata.response_code, code);
        assert_eq!(m.queries.len(), 1);
        assert!(m.queries[0].name.eq_case(name));
        assert_eq!(m.queries[0].query_type, *ty);
        assert!(m.answers.is_empty() && m.authorities.is_empty());
    }
    if let Some((_, name, _)) = q {
        let shown = name.to_ascii();
        let al = allowlist();
        let matched = !al.matching(KEY, &shown).is_empty();
        assert_eq!(matched, allowed_by_labels(&name), "allowlist on {shown:?}");
        let upper = !al.matching(KEY, &shown.to_ascii_uppercase()).is_empty();
        assert_eq!(matched, upper, "case matters for {shown:?}");
        assert!(al.matching("_default", &shown).is_empty());
    }
}

/// The answer path: `addresses` on a parsed message, for its question's
/// name or one of its records' owners (the first byte chooses, and the
/// limits).
pub fn answer(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Ok(resp) = Message::from_vec(rest) else {
        return;
    };
    let names: Vec<&Name> = resp
        .queries
        .iter()
        .map(|q| &q.name)
        .chain(resp.answers.iter().map(|r| &r.name))
        .collect();
    if names.is_empty() {
        return;
    }
    let qname = names[usize::from(sel >> 6) % names.len()];
    let limits = limits_from(sel);
    let learned = addresses(qname, &resp, &limits);
    check_learned(qname, &resp, &limits, &learned);
}

/// The invariants of what `addresses` learned for `qname` from `resp`.
pub fn check_learned(qname: &Name, resp: &Message, limits: &Limits, learned: &[Learned]) {
    assert!(learned.len() <= limits.max_addrs, "over the cap");
    // Every name the CNAME chain from qname reaches, however long.
    let mut reach: Vec<&Name> = vec![qname];
    let mut i = 0;
    while i < reach.len() {
        for r in &resp.answers {
            if let RData::CNAME(t) = &r.data {
                if r.name == *reach[i] && !reach.contains(&&t.0) {
                    reach.push(&t.0);
                }
            }
        }
        i += 1;
    }
    let max = limits.max_ttl.max(limits.min_ttl);
    let clamp = |t: u32| Duration::from_secs(u64::from(t)).clamp(limits.min_ttl, max);
    let mut seen = HashSet::new();
    for l in learned {
        assert!(seen.insert(l.addr), "{} learned twice", l.addr);
        assert!(l.ttl >= limits.min_ttl && l.ttl <= max, "ttl {:?}", l.ttl);
        let from_record = resp.answers.iter().any(|r| {
            let addr = match &r.data {
                RData::A(a) => IpAddr::V4(a.0),
                RData::AAAA(a) => IpAddr::V6(a.0),
                _ => return false,
            };
            addr == l.addr && reach.contains(&&r.name) && l.ttl <= clamp(r.ttl)
        });
        assert!(
            from_record,
            "{} is in no A/AAAA record on the chain",
            l.addr
        );
    }
    let direct = resp
        .answers
        .iter()
        .any(|r| r.name == *qname && matches!(r.data, RData::A(_) | RData::AAAA(_)));
    if direct && limits.max_addrs > 0 {
        assert!(
            !learned.is_empty(),
            "an address record for the name itself was missed"
        );
    }
}

/// What the fake daemon saw.
#[derive(Default)]
struct Fake {
    allowed: Mutex<Vec<(DnsRule, Vec<Learned>)>>,
    refused: Mutex<usize>,
    fail: bool,
}

impl Context for Fake {
    fn policy_of(&self, src: IpAddr) -> Option<String> {
        (src == CLIENT).then(|| KEY.to_string())
    }

    fn allow(
        &self,
        src: IpAddr,
        rule: &DnsRule,
        pattern: &Pattern,
        learned: &[Learned],
    ) -> Result<(), String> {
        assert_eq!(src, CLIENT, "only a known client's answers open anything");
        assert!(
            rule.patterns.contains(pattern),
            "the pattern named is one of the rule's"
        );
        let mut a = self.allowed.lock().expect("not poisoned");
        a.push((rule.clone(), learned.to_vec()));
        if self.fail {
            Err("netlink said no".into())
        } else {
            Ok(())
        }
    }

    fn refused(&self, _src: IpAddr, _policy: &str, _name: &str) {
        *self.refused.lock().expect("not poisoned") += 1;
    }
}

/// What became of one proxy input, for the corpus test's controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Forwarded and answered.
    Answered,
    /// Refused without upstream.
    Refused,
    /// SERVFAIL.
    Failed,
    /// Not answered.
    Dropped,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    // Paused time: an upstream reply the proxy rejects ends in its timeout
    // at once instead of after a real wait.
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("runtime")
    })
}

/// `Proxy::handle` on fuzzer input. Layout: a flags byte (bit 0: give the
/// upstream reply the id of the query upstream received; bit 1: opening the firewall fails; bit
/// 2: NXDOMAIN for refusals; bit 3: the sender is no container; bits 4-7:
/// the TTL limits as in [`limits_from`], the cap stays 32), a big-endian u16 query length, the query, then the upstream's
/// reply.
pub fn proxy(data: &[u8]) -> Outcome {
    let Some((&flags, rest)) = data.split_first() else {
        return Outcome::Dropped;
    };
    let Some((len, rest)) = rest.split_first_chunk::<2>() else {
        return Outcome::Dropped;
    };
    let qlen = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (q, reply) = rest.split_at(qlen);
    runtime().block_on(run_proxy(flags, q, reply))
}

async fn run_proxy(flags: u8, query: &[u8], reply: &[u8]) -> Outcome {
    let up = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("loopback");
    let limits = limits_from(flags >> 4);
    let nxdomain = flags & 4 != 0;
    let ctx = Arc::new(Fake {
        fail: flags & 2 != 0,
        ..Fake::default()
    });
    let proxy = Proxy::new(
        allowlist().clone(),
        Config {
            upstreams: vec![up.local_addr().expect("bound")],
            upstream_timeout: Duration::from_millis(200),
            limits,
            nxdomain,
            ..Config::default()
        },
        ctx.clone(),
    );
    let mut sent = reply.to_vec();
    let patch = flags & 1 != 0;
    let upstream = tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        let (n, from) = up.recv_from(&mut buf).await.ok()?;
        if patch && sent.len() >= 2 && n >= 2 {
            sent[..2].copy_from_slice(&buf[..2]);
        }
        up.send_to(&sent, from).await.ok()?;
        Some((buf[..n].to_vec(), sent))
    });
    let src = if flags & 8 != 0 { STRANGER } else { CLIENT };
    let verdict = proxy.handle(src, query).await;
    tokio::task::yield_now().await;
    let seen = if upstream.is_finished() {
        upstream.await.expect("upstream task")
    } else {
        upstream.abort();
        None
    };
    let allowed = std::mem::take(&mut *ctx.allowed.lock().expect("not poisoned"));
    let refused = *ctx.refused.lock().expect("not poisoned");

    let q = question(query);
    let Some((id, name, _)) = q.filter(|_| src == CLIENT) else {
        assert_eq!(
            verdict,
            Verdict::Dropped,
            "unreadable or stranger's query answered"
        );
        assert!(seen.is_none() && allowed.is_empty() && refused == 0);
        return Outcome::Dropped;
    };
    if !allowed_by_labels(&name) {
        let Verdict::Refused(b) = &verdict else {
            panic!("{} not refused: {verdict:?}", name.to_ascii());
        };
        let m = Message::from_vec(b).expect("refusal parses");
        assert_eq!(m.metadata.id, id);
        let code = if nxdomain {
            ResponseCode::NXDomain
        } else {
            ResponseCode::Refused
        };
        assert_eq!(m.metadata.response_code, code);
        assert!(seen.is_none(), "upstream saw a refused name");
        assert!(allowed.is_empty() && refused == 1);
        return Outcome::Refused;
    }
    assert_eq!(refused, 0);
    if let Some((got, _)) = &seen {
        // The same query under an id of the proxy's own.
        assert_eq!(got.len(), query.len(), "upstream got another query");
        assert_eq!(&got[2..], &query[2..], "upstream got another query");
    }
    match verdict {
        Verdict::Answered(raw) => {
            let (_, sent) = seen.expect("an answer came from upstream");
            let closed = |m: &Message| {
                m.all_sections().any(|r| {
                    let a = match &r.data {
                        RData::A(a) => IpAddr::V4(a.0),
                        RData::AAAA(a) => IpAddr::V6(a.0),
                        _ => return false,
                    };
                    classify(a, &Local::default()).is_some()
                })
            };
            let upstream_closed = Message::from_vec(&sent).is_ok_and(|u| closed(&u));
            if !upstream_closed {
                // Upstream's bytes, with the client's id back in place.
                assert_eq!(
                    raw.len(),
                    sent.len(),
                    "the released answer is not upstream's"
                );
                assert_eq!(
                    &raw[2..],
                    &sent[2..],
                    "the released answer is not upstream's"
                );
            }
            assert_eq!(&raw[..2], &query[..2], "the client's id is not restored");
            let m = Message::from_vec(&raw).expect("a released answer parses");
            // The policy names no private destination: nothing non-public
            // reaches the container.
            assert!(!closed(&m), "a non-public address was released");
            assert_eq!(m.metadata.id, id);
            assert_eq!(m.metadata.message_type, MessageType::Response);
            assert!(m.queries.len() == 1 && m.queries[0].name == name);
            assert!(
                !ctx.fail || allowed.is_empty(),
                "released though opening failed"
            );
            for (rule, learned) in &allowed {
                assert_eq!(rule.policy, KEY);
                assert!(!learned.is_empty());
                check_learned(&name, &m, &limits, learned);
            }
            Outcome::Answered
        }
        Verdict::Failed(b) => {
            let m = Message::from_vec(&b).expect("SERVFAIL parses");
            assert_eq!(m.metadata.id, id);
            assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
            Outcome::Failed
        }
        v => panic!("{} got {v:?}", name.to_ascii()),
    }
}
