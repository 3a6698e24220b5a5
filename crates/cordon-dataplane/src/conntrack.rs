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
//! original tuple (and zone) sent back as dumped, all as
//! netlink-packet-netfilter's conntrack messages and attributes (the crate
//! leaves the zone and the ICMP type/code/id untyped; they travel as raw
//! attributes). A deleted TCP entry's next packet
//! is judged afresh by the policy (as a new connection picked up mid-way),
//! so a forbidden connection's packets are dropped from then on.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    DefaultNla, Nla, NlasIterator, Parseable, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_netfilter::conntrack::{
    ConntrackAttribute, ConntrackMessage, IPTuple, ProtoTuple, Tuple as CtTuple,
};
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterProtoFamily};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

use crate::nl;

/// `CTA_ZONE`, `CTA_PROTO_ICMP_TYPE`, `CTA_PROTO_ICMPV6_TYPE`: attributes
/// the crate reads as untyped ([`DefaultNla`]).
const CTA_ZONE: u16 = 18;
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

/// One entry to delete: its l3 family and the attributes that name it.
#[derive(Debug, Clone, PartialEq)]
struct Victim {
    family: NetfilterProtoFamily,
    /// The `CTA_TUPLE_ORIG` attribute (and `CTA_ZONE` when present), as
    /// dumped.
    attrs: Vec<ConntrackAttribute>,
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
    for (seq, v) in victims.into_iter().enumerate() {
        let seq = seq as u32 + 2;
        sock.send(
            &request(
                NLM_F_REQUEST | NLM_F_ACK,
                seq,
                v.family,
                ConntrackMessage::Delete(v.attrs),
            ),
            0,
        )?;
        let n = sock.recv(&mut &mut buf[..], 0)?;
        for answer in nl::messages(&buf[..n]).filter_map(|m| nl::ack(&m)) {
            match answer {
                Ok(()) => deleted += 1,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
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

/// Dumps the conntrack table; returns the socket (for the deletes) and the
/// entries `judge` picks.
fn dump_matching(judge: &dyn Fn(&Tracked) -> bool) -> io::Result<(Socket, Vec<Victim>)> {
    let mut sock = Socket::new(NETLINK_NETFILTER)?;
    sock.bind_auto()?;
    sock.send(
        &request(
            NLM_F_REQUEST | NLM_F_DUMP,
            1,
            NetfilterProtoFamily::Unspec,
            ConntrackMessage::Get(vec![]),
        ),
        0,
    )?;
    let mut victims = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = sock.recv(&mut &mut buf[..], 0)?;
        for frame in nl::frames(&buf[..n]) {
            match frame.message_type() {
                netlink_packet_core::NLMSG_DONE => return Ok((sock, victims)),
                netlink_packet_core::NLMSG_ERROR => {
                    for answer in nl::messages(frame.buffer).filter_map(|m| nl::ack(&m)) {
                        answer?;
                    }
                    return Ok((sock, victims));
                }
                _ => {
                    if let Some((header, attrs)) = nl::netfilter_parts(&frame) {
                        victims.extend(victim(header.family, attrs, judge));
                    }
                }
            }
        }
    }
}

/// One ctnetlink request as bytes.
fn request(flags: u16, seq: u32, family: NetfilterProtoFamily, msg: ConntrackMessage) -> Vec<u8> {
    let mut out = Vec::new();
    nl::emit(
        &mut out,
        flags,
        seq,
        NetfilterMessage::new(NetfilterHeader::new(family, 0, 0), msg),
    );
    out
}

/// The value of an attribute the crate leaves untyped.
fn raw_value(nla: &DefaultNla) -> Vec<u8> {
    let mut v = vec![0; nla.value_len()];
    nla.emit_value(&mut v);
    v
}

/// A `CTA_TUPLE_ORIG`/`CTA_TUPLE_REPLY` attribute's value as a [`Tuple`]
/// and the protocol number; `None` when it lacks addresses.
fn tuple(parts: &[CtTuple]) -> Option<(u8, Tuple)> {
    let (mut src, mut dst) = (None, None);
    let (mut proto, mut sport, mut dport) = (0u8, 0u16, 0u16);
    for part in parts {
        match part {
            CtTuple::Ip(ips) => {
                for ip in ips {
                    match ip {
                        IPTuple::SourceAddress(a) => src = Some(*a),
                        IPTuple::DestinationAddress(a) => dst = Some(*a),
                        _ => {}
                    }
                }
            }
            CtTuple::Proto(l4) => {
                for p in l4 {
                    match p {
                        ProtoTuple::Protocol(n) => proto = (*n).into(),
                        ProtoTuple::SourcePort(p) => sport = *p,
                        ProtoTuple::DestinationPort(p) => dport = *p,
                        // The ICMP message type stands in for the port.
                        ProtoTuple::Other(nla)
                            if matches!(
                                nla.kind(),
                                CTA_PROTO_ICMP_TYPE | CTA_PROTO_ICMPV6_TYPE
                            ) =>
                        {
                            dport = raw_value(nla).first().copied().unwrap_or(0).into()
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

/// The entry in a dumped `CT_NEW` message's attributes, when `judge`
/// picks it. The attributes are parsed one at a time with the crate's
/// types, so one it cannot read (a protocol's private state, say) does
/// not hide the entry.
fn victim(
    family: NetfilterProtoFamily,
    attrs: &[u8],
    judge: &dyn Fn(&Tracked) -> bool,
) -> Option<Victim> {
    let (mut orig, mut reply, mut zone) = (None, None, None);
    for nla in NlasIterator::new(attrs).map_while(Result::ok) {
        match ConntrackAttribute::parse(&nla) {
            Ok(ConntrackAttribute::CtaTupleOrig(t)) => orig = Some(t),
            Ok(ConntrackAttribute::CtaTupleReply(t)) => reply = Some(t),
            Ok(a @ ConntrackAttribute::Other(_)) if nla.kind() == CTA_ZONE => zone = Some(a),
            _ => {}
        }
    }
    let orig_parts = orig?;
    let ((proto, o), (_, r)) = (tuple(&orig_parts)?, tuple(&reply?)?);
    if !judge(&Tracked {
        proto,
        orig: o,
        reply: r,
    }) {
        return None;
    }
    let mut attrs = vec![ConntrackAttribute::CtaTupleOrig(orig_parts)];
    attrs.extend(zone);
    Some(Victim { family, attrs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, NlaBuffer, NLA_F_NESTED};
    use netlink_packet_netfilter::conntrack::Protocol;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A ctnetlink dump the kernel sent (captured in a namespace): a UDP
    /// entry 127.0.0.1:40000 -> 127.0.0.1:5353, then an ICMP echo request
    /// (type 8, id 1) to 127.0.0.1, then `NLMSG_DONE`.
    const DUMP: &str = "a4000000000102000100000025040000020000003400018014000180080001007f000001080002007f0000011c0002800500010011000000060002009c4000000600030014e900003400028014000180080001007f000001080002007f0000011c00028005000100110000000600020014e90000060003009c4000000800030000000008080008000000000008000c0040dbf39e08000b0000000001080007000000001db4000000000102000100000025040000020000003c00018014000180080001007f000001080002007f0000012400028005000100010000000600040000010000050005000800000005000600000000003c00028014000180080001007f000001080002007f000001240002800500010001000000060004000001000005000500000000000500060000000000080003000000000a080008000000000008000c0061c99a2808000b0000000001080007000000001d1400000003000200010000002504000000000000";

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The entries of a dump `judge` picks, and what it was shown.
    fn picked(dump: &[u8], judge: impl Fn(&Tracked) -> bool) -> (Vec<Victim>, Vec<Tracked>) {
        let seen = std::cell::RefCell::new(Vec::new());
        let j = |t: &Tracked| {
            seen.borrow_mut().push(*t);
            judge(t)
        };
        let victims = nl::frames(dump)
            .filter_map(|f| {
                let (h, attrs) = nl::netfilter_parts(&f)?;
                victim(h.family, attrs, &j)
            })
            .collect();
        (victims, seen.into_inner())
    }

    #[test]
    fn a_captured_dump_is_read_and_its_entries_named_verbatim() {
        let dump = hex(DUMP);
        assert_eq!(nl::frames(&dump).count(), 3);
        let (victims, seen) = picked(&dump, |t| t.proto == 17);
        let lo = a("127.0.0.1");
        assert_eq!(
            seen,
            [
                Tracked {
                    proto: 17,
                    orig: Tuple {
                        src: lo,
                        dst: lo,
                        sport: 40000,
                        dport: 5353
                    },
                    reply: Tuple {
                        src: lo,
                        dst: lo,
                        sport: 5353,
                        dport: 40000
                    },
                },
                // ICMP: the type stands in for the destination port.
                Tracked {
                    proto: 1,
                    orig: Tuple {
                        src: lo,
                        dst: lo,
                        sport: 0,
                        dport: 8
                    },
                    reply: Tuple {
                        src: lo,
                        dst: lo,
                        sport: 0,
                        dport: 0
                    },
                },
            ]
        );
        // The delete names the entry by its original tuple, byte for byte
        // as dumped (payload offset 20: nlmsghdr and nfgenmsg).
        assert_eq!(victims.len(), 1);
        assert_eq!(victims[0].family, NetfilterProtoFamily::IPv4);
        let orig_len = u16::from_ne_bytes([dump[20], dump[21]]) as usize;
        assert_eq!(emitted(&victims[0].attrs), &dump[20..20 + orig_len]);
        // The ICMP entry's original tuple (with its id and code) too.
        let (victims, _) = picked(&dump, |t| t.proto == 1);
        let icmp = &dump[0xa4 + 20..];
        let orig_len = u16::from_ne_bytes([icmp[0], icmp[1]]) as usize;
        assert_eq!(emitted(&victims[0].attrs), &icmp[..orig_len]);
    }

    #[test]
    fn requests_are_framed_as_ctnetlink_expects() {
        let dump = request(
            NLM_F_REQUEST | NLM_F_DUMP,
            1,
            NetfilterProtoFamily::Unspec,
            ConntrackMessage::Get(vec![]),
        );
        #[rustfmt::skip]
        assert_eq!(
            dump,
            [20, 0, 0, 0, 0x01, 0x01, 0x01, 0x03, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        let entry = hex(DUMP);
        let (victims, _) = picked(&entry, |t| t.proto == 17);
        let v = victims[0].clone();
        let del = request(
            NLM_F_REQUEST | NLM_F_ACK,
            2,
            v.family,
            ConntrackMessage::Delete(v.attrs),
        );
        // IPCTNL_MSG_CT_DELETE, NFPROTO_IPV4, and the original tuple.
        assert_eq!(&del[4..8], &[0x02, 0x01, 0x05, 0x00]);
        assert_eq!(del[16], 2);
        assert_eq!(&del[20..], &entry[20..20 + 0x34]);
    }

    fn emitted(attrs: &[ConntrackAttribute]) -> Vec<u8> {
        let mut v = vec![0; attrs.buffer_len()];
        attrs.emit(&mut v);
        v
    }

    fn tuple_attr(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16) -> Vec<CtTuple> {
        vec![
            CtTuple::Ip(vec![
                IPTuple::SourceAddress(src.into()),
                IPTuple::DestinationAddress(dst.into()),
            ]),
            CtTuple::Proto(vec![
                ProtoTuple::Protocol(Protocol::from(proto)),
                ProtoTuple::SourcePort(sport),
                ProtoTuple::DestinationPort(dport),
            ]),
        ]
    }

    /// A DNATed TCP connection in conntrack zone 7: 172.17.0.2:40000 ->
    /// 198.51.100.9:8080, answered by 10.9.0.5:80 towards the masquerading
    /// 192.168.1.1; and its delete attributes.
    fn payload() -> (Vec<u8>, Vec<u8>) {
        let orig = ConntrackAttribute::CtaTupleOrig(tuple_attr(
            [172, 17, 0, 2],
            [198, 51, 100, 9],
            6,
            40000,
            8080,
        ));
        let reply = ConntrackAttribute::CtaTupleReply(tuple_attr(
            [10, 9, 0, 5],
            [192, 168, 1, 1],
            6,
            80,
            40000,
        ));
        let zone =
            ConntrackAttribute::Other(DefaultNla::new(CTA_ZONE, 7u16.to_be_bytes().to_vec()));
        // A status the crate cannot read (two bytes, not four).
        let odd = ConntrackAttribute::Other(DefaultNla::new(3, vec![1, 2]));
        (
            emitted(&[orig.clone(), odd, reply, zone.clone()]),
            emitted(&[orig, zone]),
        )
    }

    #[test]
    fn finds_entries_by_any_address_of_either_direction() {
        let (payload, delete) = payload();
        assert!(NlasIterator::new(&payload[..])
            .map(|n| ConntrackAttribute::parse(&n.unwrap()))
            .any(|r| r.is_err()));
        let by = |x: &str| {
            victim(NetfilterProtoFamily::IPv4, &payload, &|t: &Tracked| {
                involves(t, &[a(x)])
            })
        };
        let v = by("172.17.0.2").expect("found despite the unreadable status");
        assert_eq!(v.family, NetfilterProtoFamily::IPv4);
        assert_eq!(
            emitted(&v.attrs),
            delete,
            "the original tuple and zone go back"
        );
        assert!(by("192.168.1.1").is_some(), "reply direction counts");
        assert!(by("10.9.0.5").is_some(), "the real destination counts");
        assert!(by("172.17.0.3").is_none());
        let any = |_: &Tracked| true;
        let fam = NetfilterProtoFamily::IPv4;
        assert!(victim(fam, &[1, 2], &any).is_none());
        assert!(victim(fam, &[0xff; 64], &any).is_none());
        // The nested flag is kept on what is sent back.
        let nla = NlaBuffer::new(&delete[..]);
        assert!(nla.nested_flag() && nla.kind() == 1);
        let _ = NLA_F_NESTED;
    }

    #[test]
    fn the_judge_sees_both_directions_with_protocol_and_ports() {
        let (payload, _) = payload();
        let seen = std::cell::Cell::new(None);
        let judge = |t: &Tracked| {
            seen.set(Some(*t));
            false
        };
        assert!(
            victim(NetfilterProtoFamily::IPv4, &payload, &judge).is_none(),
            "the judge said keep"
        );
        let t = seen.get().expect("the judge was asked");
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
