//! Forgetting tracked connections: those of addresses that left, and those
//! the policy in force does not allow.
//!
//! cordon's base chains accept `ct state established,related` before any
//! policy: replies to allowed connections pass. Two things must therefore
//! end tracked connections:
//!
//! - When a container goes and Docker gives its address to a new container
//!   of another policy, entries tracked for the old one would let the new
//!   one carry on the old one's connections. So when an address leaves the
//!   ruleset, every conntrack entry with it as a source or destination, in
//!   either direction, is deleted ([`forget`]).
//! - While cordon's tables were gone (deleted by hand, `nft flush
//!   ruleset`, a host booted without them), connections were opened that
//!   the policy forbids; once the tables are back they would pass as
//!   established. So after a repair every entry is shown to a judge and
//!   deleted when the judge says so ([`forget_where`]).
//!
//! Both go through ctnetlink: a dump, then one delete per entry, the
//! original tuple copied back verbatim. A deleted TCP entry's next packet
//! is judged afresh by the policy (as a new connection picked up mid-way),
//! so a forbidden connection's packets are dropped from then on.

use std::io;
use std::net::IpAddr;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

use crate::nl::{attrs, messages};

const SUBSYS_CTNETLINK: u16 = 1;
const MSG_CT_GET: u16 = 1;
const MSG_CT_DELETE: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_ZONE: u16 = 18;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_PROTO_ICMP_TYPE: u16 = 5;
const CTA_PROTO_ICMPV6_TYPE: u16 = 8;

/// One direction of a tracked connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    /// Its source address.
    pub src: IpAddr,
    /// Its destination address.
    pub dst: IpAddr,
    /// Its source port (0 when the protocol has none).
    pub sport: u16,
    /// Its destination port (for ICMP and ICMPv6: the message type).
    pub dport: u16,
}

/// A tracked connection as ctnetlink dumps it: the original direction (as
/// the first packet was seen, before NAT) and the reply direction (as the
/// answers travel, so after DNAT its source is the real destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    /// The IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).
    pub proto: u8,
    /// The original direction.
    pub orig: Tuple,
    /// The reply direction.
    pub reply: Tuple,
}

/// One entry to delete: its l3 family and the raw attributes that name it.
#[derive(Debug, Clone, PartialEq)]
struct Victim {
    family: u8,
    /// The `CTA_TUPLE_ORIG` attribute (and `CTA_ZONE` when present), header
    /// included, as dumped.
    attrs: Vec<u8>,
}

/// Deletes every conntrack entry of this network namespace that has one of
/// `addrs` as a source or destination of either direction. Returns how many
/// were deleted. Entries that vanish meanwhile are not an error.
pub fn forget(addrs: &[IpAddr]) -> io::Result<usize> {
    if addrs.is_empty() {
        return Ok(0);
    }
    forget_where(|t| involves(t, addrs))
}

/// Deletes every conntrack entry of this network namespace for which
/// `judge` answers true (entries it cannot parse are kept). Returns how
/// many were deleted. Entries that vanish meanwhile are not an error.
pub fn forget_where(judge: impl Fn(&Tracked) -> bool) -> io::Result<usize> {
    let (sock, victims) = dump_matching(&judge)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut deleted = 0;
    for (seq, v) in victims.iter().enumerate() {
        let seq = seq as u32 + 2;
        sock.send(
            &request(
                MSG_CT_DELETE,
                NLM_F_REQUEST | NLM_F_ACK,
                v.family,
                seq,
                &v.attrs,
            ),
            0,
        )?;
        let n = sock.recv(&mut &mut buf[..], 0)?;
        for (ty, payload) in messages(&buf[..n]) {
            if ty == NLMSG_ERROR {
                match -error_code(payload) {
                    0 => deleted += 1,
                    libc::ENOENT => {}
                    e => return Err(io::Error::from_raw_os_error(e)),
                }
            }
        }
    }
    Ok(deleted)
}

/// How many conntrack entries of this network namespace involve one of
/// `addrs` (as [`forget`] matches them).
pub fn count(addrs: &[IpAddr]) -> io::Result<usize> {
    count_where(|t| involves(t, addrs))
}

/// How many conntrack entries of this network namespace `judge` answers
/// true for.
pub fn count_where(judge: impl Fn(&Tracked) -> bool) -> io::Result<usize> {
    Ok(dump_matching(&judge)?.1.len())
}

/// True when one of `addrs` is a source or destination of either
/// direction of `t`.
fn involves(t: &Tracked, addrs: &[IpAddr]) -> bool {
    [t.orig, t.reply]
        .iter()
        .any(|d| addrs.contains(&d.src) || addrs.contains(&d.dst))
}

fn error_code(payload: &[u8]) -> i32 {
    payload
        .get(..4)
        .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
        .unwrap_or(0)
}

/// Dumps the conntrack table; returns the socket (for the deletes) and the
/// entries `judge` picks.
fn dump_matching(judge: &dyn Fn(&Tracked) -> bool) -> io::Result<(Socket, Vec<Victim>)> {
    let mut sock = Socket::new(NETLINK_NETFILTER)?;
    sock.bind_auto()?;
    sock.send(
        &request(MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 0, 1, &[]),
        0,
    )?;
    let mut victims = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = sock.recv(&mut &mut buf[..], 0)?;
        for (ty, payload) in messages(&buf[..n]) {
            match ty {
                NLMSG_DONE => return Ok((sock, victims)),
                NLMSG_ERROR => {
                    let code = error_code(payload);
                    if code != 0 {
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    return Ok((sock, victims));
                }
                _ => victims.extend(victim(payload, judge)),
            }
        }
    }
}

fn request(msg: u16, flags: u16, family: u8, seq: u32, attrs: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + attrs.len();
    let mut v = Vec::with_capacity(len);
    v.extend((len as u32).to_ne_bytes());
    v.extend(((SUBSYS_CTNETLINK << 8) | msg).to_ne_bytes());
    v.extend(flags.to_ne_bytes());
    v.extend(seq.to_ne_bytes());
    v.extend(0u32.to_ne_bytes());
    v.extend([family, 0, 0, 0]);
    v.extend(attrs);
    v
}

/// A `CTA_TUPLE_ORIG`/`CTA_TUPLE_REPLY` attribute's value as a [`Tuple`]
/// and the protocol number; `None` when it lacks addresses.
fn tuple(val: &[u8]) -> Option<(u8, Tuple)> {
    let (mut src, mut dst) = (None, None);
    let (mut proto, mut sport, mut dport) = (0u8, 0u16, 0u16);
    for (ty, val, _) in attrs(val) {
        match ty {
            CTA_TUPLE_IP => {
                for (t, v, _) in attrs(val) {
                    let a = match v.len() {
                        4 => IpAddr::from(<[u8; 4]>::try_from(v).expect("4")),
                        16 => IpAddr::from(<[u8; 16]>::try_from(v).expect("16")),
                        _ => continue,
                    };
                    match t {
                        1 | 3 => src = Some(a),
                        2 | 4 => dst = Some(a),
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for (t, v, _) in attrs(val) {
                    let be16 = || v.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
                    match t {
                        CTA_PROTO_NUM => proto = v.first().copied().unwrap_or(0),
                        CTA_PROTO_SRC_PORT => sport = be16().unwrap_or(0),
                        CTA_PROTO_DST_PORT => dport = be16().unwrap_or(0),
                        CTA_PROTO_ICMP_TYPE | CTA_PROTO_ICMPV6_TYPE => {
                            dport = v.first().copied().unwrap_or(0).into()
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Some((
        proto,
        Tuple {
            src: src?,
            dst: dst?,
            sport,
            dport,
        },
    ))
}

/// The entry in a dumped `CT_NEW` message, when `judge` picks it.
fn victim(payload: &[u8], judge: &dyn Fn(&Tracked) -> bool) -> Option<Victim> {
    if payload.len() < 4 {
        return None;
    }
    let family = payload[0];
    let (mut orig, mut orig_attr, mut reply, mut zone) = (None, None, None, None);
    for (ty, val, whole) in attrs(&payload[4..]) {
        match ty {
            CTA_TUPLE_ORIG => {
                orig = tuple(val);
                orig_attr = Some(whole);
            }
            CTA_TUPLE_REPLY => reply = tuple(val),
            CTA_ZONE => zone = Some(whole),
            _ => {}
        }
    }
    let ((proto, orig), (_, reply)) = (orig?, reply?);
    if !judge(&Tracked { proto, orig, reply }) {
        return None;
    }
    let mut attrs = orig_attr?.to_vec();
    while attrs.len() % 4 != 0 {
        attrs.push(0);
    }
    if let Some(z) = zone {
        attrs.extend(z);
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
    }
    Some(Victim { family, attrs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nl::nla;

    fn tuple_attr(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16) -> Vec<u8> {
        let ip = nla(
            CTA_TUPLE_IP | 0x8000,
            &[nla(1, &src), nla(2, &dst)].concat(),
        );
        let l4 = nla(
            CTA_TUPLE_PROTO | 0x8000,
            &[
                nla(CTA_PROTO_NUM, &[proto]),
                nla(CTA_PROTO_SRC_PORT, &sport.to_be_bytes()),
                nla(CTA_PROTO_DST_PORT, &dport.to_be_bytes()),
            ]
            .concat(),
        );
        [ip, l4].concat()
    }

    /// A DNATed TCP connection: 172.17.0.2:40000 -> 198.51.100.9:8080,
    /// answered by 10.9.0.5:80 towards the masquerading 192.168.1.1.
    fn payload() -> (Vec<u8>, Vec<u8>) {
        let orig = nla(
            CTA_TUPLE_ORIG | 0x8000,
            &tuple_attr([172, 17, 0, 2], [198, 51, 100, 9], 6, 40000, 8080),
        );
        let reply = nla(
            CTA_TUPLE_REPLY | 0x8000,
            &tuple_attr([10, 9, 0, 5], [192, 168, 1, 1], 6, 80, 40000),
        );
        ([vec![2, 0, 0, 0], orig.clone(), reply].concat(), orig)
    }

    #[test]
    fn finds_entries_by_any_address_of_either_direction() {
        let (payload, orig) = payload();
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        let by = |x: &str| victim(&payload, &|t: &Tracked| involves(t, &[a(x)]));
        let v = by("172.17.0.2").unwrap();
        assert_eq!(v.family, 2);
        assert_eq!(v.attrs, orig, "the original tuple is sent back verbatim");
        assert!(by("192.168.1.1").is_some(), "reply direction counts");
        assert!(by("10.9.0.5").is_some(), "the real destination counts");
        assert!(by("172.17.0.3").is_none());
        let any = |_: &Tracked| true;
        assert!(victim(&[1, 2], &any).is_none());
        assert!(victim(&[0xff; 64], &any).is_none());
    }

    #[test]
    fn the_judge_sees_both_directions_with_protocol_and_ports() {
        let (payload, _) = payload();
        let seen = std::cell::Cell::new(None);
        let judge = |t: &Tracked| {
            seen.set(Some(*t));
            false
        };
        assert!(victim(&payload, &judge).is_none(), "the judge said keep");
        let t = seen.get().expect("the judge was asked");
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(t.proto, 6);
        assert_eq!(
            t.orig,
            Tuple {
                src: a("172.17.0.2"),
                dst: a("198.51.100.9"),
                sport: 40000,
                dport: 8080
            }
        );
        assert_eq!((t.reply.src, t.reply.sport), (a("10.9.0.5"), 80));
    }
}
