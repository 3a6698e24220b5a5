//! Forgetting the tracked connections of addresses that left.
//!
//! cordon's base chains accept `ct state established,related` before any
//! policy: replies to allowed connections pass. When a container goes and
//! Docker gives its address to a new container of another policy, entries
//! tracked for the old one would let the new one carry on the old one's
//! connections. So when an address leaves the ruleset, every conntrack
//! entry with it as a source or destination, in either direction, is
//! deleted through ctnetlink (a dump, then one delete per entry, the
//! original tuple copied back verbatim).

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
    let (sock, victims) = dump_matching(addrs)?;
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
    Ok(dump_matching(addrs)?.1.len())
}

fn error_code(payload: &[u8]) -> i32 {
    payload
        .get(..4)
        .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
        .unwrap_or(0)
}

/// Dumps the conntrack table; returns the socket (for the deletes) and the
/// entries involving `addrs`.
fn dump_matching(addrs: &[IpAddr]) -> io::Result<(Socket, Vec<Victim>)> {
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
                _ => victims.extend(victim(payload, addrs)),
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

/// The addresses of a tuple attribute's `CTA_TUPLE_IP`.
fn tuple_addrs(tuple: &[u8]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for (ty, val, _) in attrs(tuple) {
        if ty != CTA_TUPLE_IP {
            continue;
        }
        for (t, v, _) in attrs(val) {
            match (t, v.len()) {
                (1 | 2, 4) => out.push(IpAddr::from(<[u8; 4]>::try_from(v).expect("4"))),
                (3 | 4, 16) => out.push(IpAddr::from(<[u8; 16]>::try_from(v).expect("16"))),
                _ => {}
            }
        }
    }
    out
}

/// The entry in a dumped `CT_NEW` message, when it involves one of `addrs`.
fn victim(payload: &[u8], addrs: &[IpAddr]) -> Option<Victim> {
    if payload.len() < 4 {
        return None;
    }
    let family = payload[0];
    let mut orig = None;
    let mut zone = None;
    let mut hit = false;
    for (ty, val, whole) in attrs(&payload[4..]) {
        match ty {
            CTA_TUPLE_ORIG | CTA_TUPLE_REPLY => {
                if tuple_addrs(val).iter().any(|a| addrs.contains(a)) {
                    hit = true;
                }
                if ty == CTA_TUPLE_ORIG {
                    orig = Some(whole);
                }
            }
            CTA_ZONE => zone = Some(whole),
            _ => {}
        }
    }
    if !hit {
        return None;
    }
    let mut attrs = orig?.to_vec();
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

    fn tuple(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        nla(
            CTA_TUPLE_IP | 0x8000,
            &[nla(1, &src), nla(2, &dst)].concat(),
        )
    }

    #[test]
    fn finds_entries_by_any_address_of_either_direction() {
        let orig = nla(
            CTA_TUPLE_ORIG | 0x8000,
            &tuple([172, 17, 0, 2], [203, 0, 113, 9]),
        );
        let reply = nla(
            CTA_TUPLE_REPLY | 0x8000,
            &tuple([203, 0, 113, 9], [192, 168, 1, 1]),
        );
        let payload = [vec![2, 0, 0, 0], orig.clone(), reply].concat();
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        let v = victim(&payload, &[a("172.17.0.2")]).unwrap();
        assert_eq!(v.family, 2);
        assert_eq!(v.attrs, orig, "the original tuple is sent back verbatim");
        assert!(
            victim(&payload, &[a("192.168.1.1")]).is_some(),
            "reply direction counts"
        );
        assert!(victim(&payload, &[a("172.17.0.3")]).is_none());
        assert!(victim(&[1, 2], &[a("172.17.0.2")]).is_none());
        assert!(victim(&[0xff; 64], &[a("172.17.0.2")]).is_none());
    }
}
