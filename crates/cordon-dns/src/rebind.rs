//! Which addresses a DNS answer may give a container (DNS rebinding).
//!
//! A name under an allowlisted suffix is controlled by whoever runs its
//! authoritative server, and that server may answer with any address: the
//! LAN, a neighbour container, the cloud metadata endpoint, loopback. By
//! default an answer may therefore carry only what the policy word
//! `internet` means: an address outside `cordon_compiler::words::nonpublic`
//! (the same list the compiler's `nonpublic4`/`nonpublic6` sets hold, so
//! the two cannot drift), outside the Docker networks' subnets and not one
//! of the host's own addresses. A rule that also names other destinations
//! widens what its names may resolve to, by exactly those destinations:
//!
//! | the rule also names | answers may also carry |
//! |---|---|
//! | `private` | the `private` ranges (loopback, link-local and metadata included, as the word means in the firewall) |
//! | `metadata` | the metadata endpoints |
//! | an address or CIDR, a set | those addresses |
//! | `host` | the host's own addresses |
//! | `same-network`, a policy name | the Docker networks' subnets |
//! | `any` | everything |
//!
//! Anything else is stripped from the answer before the container sees it
//! and never reaches the rule's set.

use std::net::IpAddr;
use std::sync::OnceLock;

use cordon_compiler::words;
use cordon_policy::{Peer, PolicyFile, Rule};
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, Record};
use ipnet::IpNet;

/// What one rule's names may resolve to beyond public addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Addresses the rule names (from `private`, `metadata`, CIDRs, sets).
    pub nets: Vec<IpNet>,
    /// `any`: every address.
    pub any: bool,
    /// `host`: the host's own addresses.
    pub host: bool,
    /// `same-network` or a policy name: the Docker networks' subnets.
    pub docker: bool,
}

impl Scope {
    /// The scope of `rule`, a rule of `file` (for its sets).
    pub fn of_rule(rule: &Rule, file: &PolicyFile) -> Scope {
        let mut s = Scope::default();
        for p in &rule.peers {
            match p {
                Peer::Any => s.any = true,
                Peer::Host => s.host = true,
                Peer::SameNetwork | Peer::Policy(_) => s.docker = true,
                Peer::Private => s.nets.extend(words::private()),
                Peer::Metadata => s.nets.extend(words::metadata()),
                Peer::Net(n) => s.nets.push(*n),
                Peer::Set(name) => {
                    if let Some(set) = file.sets.iter().find(|x| x.name == *name) {
                        s.nets.extend(set.addrs.iter().copied());
                    }
                }
                Peer::Internet | Peer::Dns(_) | Peer::DnsWildcard(_) => {}
            }
        }
        s
    }
}

/// The host's side of the picture, which changes at run time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    /// The Docker networks' subnets.
    pub docker: Vec<IpNet>,
    /// The host's own addresses.
    pub host: Vec<IpAddr>,
}

/// Why an address is not public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The cloud metadata endpoint.
    Metadata,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// The rest of `private`: RFC 1918, carrier-grade NAT, unique local.
    Private,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 0.0.0.0/8, ::.
    Unspecified,
    /// ::ffff:0:0/96, an IPv4 address in IPv6 form.
    Mapped,
    /// Any other range outside `internet` (240.0.0.0/4).
    Reserved,
    /// In a Docker network's subnet.
    Docker,
    /// One of the host's own addresses.
    Host,
}

impl Closed {
    /// A word for the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::Metadata => "metadata",
            Closed::Loopback => "loopback",
            Closed::LinkLocal => "link-local",
            Closed::Private => "private",
            Closed::Multicast => "multicast",
            Closed::Unspecified => "unspecified",
            Closed::Mapped => "ipv4-mapped",
            Closed::Reserved => "reserved",
            Closed::Docker => "docker-subnet",
            Closed::Host => "host",
        }
    }
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn within(nets: &[IpNet], addr: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(&addr))
}

/// `nonpublic`, parsed once.
fn nonpublic() -> &'static [IpNet] {
    static N: OnceLock<Vec<IpNet>> = OnceLock::new();
    N.get_or_init(words::nonpublic)
}

fn metadata() -> &'static [IpNet] {
    static N: OnceLock<Vec<IpNet>> = OnceLock::new();
    N.get_or_init(words::metadata)
}

/// `None` when `addr` is public (what `internet` means, and neither a
/// Docker subnet's nor the host's); else why not.
pub fn classify(addr: IpAddr, local: &Local) -> Option<Closed> {
    // Loopback is also among the host's addresses; it says more.
    if addr.is_loopback() {
        return Some(Closed::Loopback);
    }
    if local.host.contains(&addr) {
        return Some(Closed::Host);
    }
    if within(&local.docker, addr) {
        return Some(Closed::Docker);
    }
    // The decision is `nonpublic`'s; the rest only names the reason.
    if !within(nonpublic(), addr) {
        return None;
    }
    if within(metadata(), addr) {
        return Some(Closed::Metadata);
    }
    Some(match addr {
        IpAddr::V4(a) if a.is_loopback() => Closed::Loopback,
        IpAddr::V4(a) if a.is_link_local() => Closed::LinkLocal,
        IpAddr::V4(a) if a.is_multicast() => Closed::Multicast,
        IpAddr::V4(a) if a.octets()[0] == 0 => Closed::Unspecified,
        IpAddr::V4(a) if a.octets()[0] >= 240 => Closed::Reserved,
        IpAddr::V4(_) => Closed::Private,
        IpAddr::V6(a) if a.is_loopback() => Closed::Loopback,
        IpAddr::V6(a) if a.is_unspecified() => Closed::Unspecified,
        IpAddr::V6(a) if a.is_multicast() => Closed::Multicast,
        IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80 => Closed::LinkLocal,
        IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => Closed::Mapped,
        IpAddr::V6(a) if a.segments()[0] & 0xfe00 == 0xfc00 => Closed::Private,
        IpAddr::V6(_) => Closed::Reserved,
    })
}

/// `Ok` when an answer for a name of a rule with `scope` may carry
/// `addr`; else why not.
pub fn permitted(addr: IpAddr, scope: &Scope, local: &Local) -> Result<(), Closed> {
    if scope.any
        || within(&scope.nets, addr)
        || (scope.host && local.host.contains(&addr))
        || (scope.docker && within(&local.docker, addr))
    {
        return Ok(());
    }
    classify(addr, local).map_or(Ok(()), Err)
}

/// An address taken out of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stripped {
    /// The record's owner name.
    pub owner: Name,
    /// The address.
    pub addr: IpAddr,
    /// Why no rule may carry it.
    pub why: Closed,
}

/// Takes out of `resp` (every section) each A and AAAA record whose
/// address none of `scopes` permits; returns what it took. The message
/// stays well-formed (the counts follow when it is encoded).
pub fn strip(resp: &mut Message, scopes: &[&Scope], local: &Local) -> Vec<Stripped> {
    let mut out = Vec::new();
    let mut keep = |r: &Record| {
        let addr = match &r.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            _ => return true,
        };
        let mut why = None;
        for s in scopes {
            match permitted(addr, s, local) {
                Ok(()) => return true,
                Err(w) => why = Some(w),
            }
        }
        // No rule (cannot happen for an allowlisted name): public only.
        let Some(why) = why.or_else(|| classify(addr, local)) else {
            return true;
        };
        out.push(Stripped {
            owner: r.name.clone(),
            addr,
            why,
        });
        false
    };
    resp.answers.retain(&mut keep);
    resp.authorities.retain(&mut keep);
    resp.additionals.retain(&mut keep);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn local() -> Local {
        Local {
            docker: vec![
                "172.18.0.0/16".parse().unwrap(),
                "198.18.7.0/24".parse().unwrap(),
            ],
            host: vec![ip("198.51.100.1"), ip("2001:db8::1"), ip("127.0.0.1")],
        }
    }

    #[test]
    fn only_public_addresses_by_default() {
        let l = local();
        let cases = [
            ("198.51.100.7", None),
            ("2001:db8::7", None),
            ("10.213.0.10", Some(Closed::Private)),
            ("192.168.1.1", Some(Closed::Private)),
            ("100.64.0.1", Some(Closed::Private)),
            ("fd12::1", Some(Closed::Private)),
            ("169.254.169.254", Some(Closed::Metadata)),
            ("fd00:ec2::254", Some(Closed::Metadata)),
            ("169.254.1.1", Some(Closed::LinkLocal)),
            ("fe80::1", Some(Closed::LinkLocal)),
            ("127.0.0.1", Some(Closed::Loopback)),
            ("127.8.8.8", Some(Closed::Loopback)),
            ("::1", Some(Closed::Loopback)),
            ("0.0.0.0", Some(Closed::Unspecified)),
            ("::", Some(Closed::Unspecified)),
            ("224.0.0.1", Some(Closed::Multicast)),
            ("ff02::1", Some(Closed::Multicast)),
            ("255.255.255.255", Some(Closed::Reserved)),
            ("::ffff:10.213.0.10", Some(Closed::Mapped)),
            ("::ffff:198.51.100.7", Some(Closed::Mapped)),
            // A Docker subnet or a host address, even in public space.
            ("172.18.0.5", Some(Closed::Docker)),
            ("198.18.7.9", Some(Closed::Docker)),
            ("198.51.100.1", Some(Closed::Host)),
            ("2001:db8::1", Some(Closed::Host)),
        ];
        for (a, want) in cases {
            assert_eq!(classify(ip(a), &l), want, "{a}");
            assert_eq!(
                permitted(ip(a), &Scope::default(), &l),
                want.map_or(Ok(()), Err),
                "{a}"
            );
        }
    }

    /// The decision is the compiler's `nonpublic`: every range in it is
    /// closed, and the addresses just outside are open.
    #[test]
    fn the_same_ranges_as_the_word_internet() {
        let l = Local::default();
        for n in words::nonpublic() {
            assert!(classify(n.network(), &l).is_some(), "{n}");
            assert!(classify(n.broadcast(), &l).is_some(), "{n}");
        }
        for a in [
            "9.255.255.255",
            "11.0.0.0",
            "172.32.0.0",
            "100.128.0.0",
            "1.1.1.1",
        ] {
            assert_eq!(classify(ip(a), &l), None, "{a}");
        }
    }

    fn scope(rule: &str) -> Scope {
        let p = cordon_policy::parse(
            "p.yaml",
            &format!("version: 1\nsets:\n  lan: [10.213.0.0/24]\ndefault:\n  egress:\n    - to: {rule}\n"),
        )
        .unwrap();
        Scope::of_rule(&p.default.egress[0], &p)
    }

    #[test]
    fn words_in_the_same_rule_widen_the_scope() {
        let l = local();
        let ok = |rule: &str, a: &str| permitted(ip(a), &scope(rule), &l).is_ok();
        assert!(!ok("[\"*.w.test\", internet]", "10.213.0.10"));
        assert!(ok("[\"*.w.test\", private]", "10.213.0.10"));
        assert!(ok("[\"*.w.test\", private]", "127.0.0.1"));
        assert!(ok("[\"*.w.test\", private]", "169.254.169.254"));
        assert!(ok("[\"*.w.test\", private]", "172.18.0.5"));
        assert!(!ok("[\"*.w.test\", private]", "::ffff:10.213.0.10"));
        assert!(
            !ok("[\"*.w.test\", private]", "198.18.7.9"),
            "docker, public space"
        );
        assert!(ok("[\"*.w.test\", metadata]", "169.254.169.254"));
        assert!(!ok("[\"*.w.test\", metadata]", "169.254.1.1"));
        assert!(ok("[\"*.w.test\", 10.213.0.0/24]", "10.213.0.10"));
        assert!(!ok("[\"*.w.test\", 10.213.0.0/24]", "10.213.1.10"));
        assert!(ok("[\"*.w.test\", lan]", "10.213.0.10"));
        assert!(ok("[\"*.w.test\", host]", "198.51.100.1"));
        assert!(!ok("[\"*.w.test\", host]", "10.213.0.10"));
        assert!(ok("[\"*.w.test\", same-network]", "172.18.0.5"));
        assert!(ok("[\"*.w.test\", same-network]", "198.18.7.9"));
        assert!(!ok("[\"*.w.test\", same-network]", "10.213.0.10"));
        assert!(ok("[\"*.w.test\", any]", "127.0.0.1"));
        assert!(ok("[\"*.w.test\"]", "198.51.100.7"));
    }

    #[test]
    fn strip_takes_out_what_no_rule_permits() {
        use hickory_proto::op::{MessageType, OpCode};
        use hickory_proto::rr::rdata::{A, AAAA, CNAME};
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let mut m = Message::new(9, MessageType::Response, OpCode::Query);
        m.add_answer(Record::from_rdata(
            n("x.w.test."),
            60,
            RData::CNAME(CNAME(n("y.w.test."))),
        ));
        m.add_answer(Record::from_rdata(
            n("y.w.test."),
            60,
            RData::A(A("198.51.100.7".parse().unwrap())),
        ));
        m.add_answer(Record::from_rdata(
            n("y.w.test."),
            60,
            RData::A(A("10.213.0.10".parse().unwrap())),
        ));
        m.add_answer(Record::from_rdata(
            n("y.w.test."),
            60,
            RData::AAAA(AAAA("::1".parse().unwrap())),
        ));
        m.add_additional(Record::from_rdata(
            n("z.w.test."),
            60,
            RData::A(A("169.254.169.254".parse().unwrap())),
        ));
        let public = Scope::default();
        let lan = scope("[\"*.w.test\", 10.213.0.0/24]");
        let mut only_public = m.clone();
        let s = strip(&mut only_public, &[&public], &Local::default());
        let got: Vec<(String, Closed)> = s.iter().map(|x| (x.addr.to_string(), x.why)).collect();
        assert_eq!(
            got,
            [
                ("10.213.0.10".to_string(), Closed::Private),
                ("::1".to_string(), Closed::Loopback),
                ("169.254.169.254".to_string(), Closed::Metadata),
            ]
        );
        assert_eq!(
            only_public.answers.len(),
            2,
            "the CNAME and the public address stay"
        );
        assert!(only_public.additionals.is_empty());
        // Encodes and reads back with the right counts.
        let back = Message::from_vec(&only_public.to_vec().unwrap()).unwrap();
        assert_eq!(back.answers.len(), 2);
        // A second rule naming the LAN keeps its address.
        let mut both = m.clone();
        let s = strip(&mut both, &[&public, &lan], &Local::default());
        assert_eq!(s.len(), 2);
        assert_eq!(both.answers.len(), 3);
    }
}
