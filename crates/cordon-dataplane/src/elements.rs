//! Set and map element changes written straight to nftables over netlink:
//! one batch (`NFNL_MSG_BATCH_BEGIN` … `END`), so the kernel applies it
//! whole or not at all, with no process spawned and no ruleset cache
//! loaded. This is the daemon's hot path: a container start is a handful
//! of elements.
//!
//! Only plain sets and verdict maps keyed by addresses, interface names,
//! MACs and their concatenations are written this way; a change that
//! touches an interval or timeout set (network subnets, named sets) goes
//! through `nft` (see [`encodable`]).

use std::io;
use std::time::Duration;

use cordon_compiler::diff::SetChange;
use cordon_compiler::nft::{Element, Family, Ruleset, Value, Verdict};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

use crate::nl::messages;

const SUBSYS_NFTABLES: u16 = 10;
const MSG_NEWSETELEM: u16 = 12;
const MSG_DELSETELEM: u16 = 14;
const BATCH_BEGIN: u16 = 0x10;
const BATCH_END: u16 = 0x11;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const NESTED: u16 = 0x8000;
/// `NFT_JUMP`.
const VERDICT_JUMP: i32 = -3;
/// `NF_ACCEPT`, `NF_DROP`.
const VERDICT_ACCEPT: i32 = 1;
const VERDICT_DROP: i32 = 0;
/// NFT_RETURN.
const VERDICT_RETURN: i32 = -5;
/// Elements per message, to keep each well under the socket's buffer.
const CHUNK: usize = 256;
const IFNAMSIZ: usize = 16;

/// True when every change can be written over netlink: no interval or
/// timeout set, and every key a host address, an interface name or a MAC.
pub fn encodable(changes: &[SetChange], desired: &Ruleset) -> bool {
    changes.iter().all(|c| {
        let decl = desired
            .tables
            .iter()
            .find(|t| t.family == c.family && t.name == c.table)
            .and_then(|t| t.sets.iter().find(|s| s.name == c.set));
        decl.is_some_and(|d| !d.interval && !d.timeout)
            && c.delete
                .iter()
                .chain(&c.add)
                .all(|e| key_bytes(e).is_some())
    })
}

/// The key of an element as the kernel stores it: each component in its
/// register-aligned size when concatenated.
fn key_bytes(e: &Element) -> Option<Vec<u8>> {
    let concat = e.key.len() > 1;
    let mut out = Vec::new();
    for v in &e.key {
        let mut b = match v {
            Value::Net(n) if n.prefix_len() == n.max_prefix_len() => match n.addr() {
                std::net::IpAddr::V4(a) => a.octets().to_vec(),
                std::net::IpAddr::V6(a) => a.octets().to_vec(),
            },
            Value::Net(_) => return None,
            Value::Ifname(s) => {
                if s.len() >= IFNAMSIZ || s.contains('\0') {
                    return None;
                }
                let mut b = s.as_bytes().to_vec();
                b.resize(IFNAMSIZ, 0);
                b
            }
            Value::Mac(s) => {
                let b: Vec<u8> = s
                    .split(':')
                    .map(|h| u8::from_str_radix(h, 16).ok())
                    .collect::<Option<_>>()?;
                if b.len() != 6 {
                    return None;
                }
                b
            }
            // `mark` is host byte order.
            Value::Mark(m) => m.to_ne_bytes().to_vec(),
        };
        if concat {
            b.resize(b.len().div_ceil(4) * 4, 0);
        }
        out.extend(b);
    }
    Some(out)
}

fn nla(ty: u16, val: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + val.len() + 3);
    v.extend(((4 + val.len()) as u16).to_ne_bytes());
    v.extend(ty.to_ne_bytes());
    v.extend(val);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

fn cstr(s: &str) -> Vec<u8> {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    b
}

fn element_attr(e: &Element, with_data: bool, timeout: Option<Duration>) -> Vec<u8> {
    let key = key_bytes(e).expect("checked by encodable");
    // NFTA_SET_ELEM_KEY { NFTA_DATA_VALUE }
    let mut inner = nla(1 | NESTED, &nla(1, &key));
    if let Some(t) = timeout {
        // NFTA_SET_ELEM_TIMEOUT, milliseconds, big-endian.
        inner.extend(nla(4, &(t.as_millis() as u64).to_be_bytes()));
    }
    if with_data {
        if let Some(v) = &e.verdict {
            let (code, chain) = match v {
                Verdict::Jump(c) => (VERDICT_JUMP, Some(c.as_str())),
                Verdict::Accept => (VERDICT_ACCEPT, None),
                Verdict::Drop => (VERDICT_DROP, None),
                Verdict::Return => (VERDICT_RETURN, None),
            };
            // NFTA_VERDICT_CODE, NFTA_VERDICT_CHAIN
            let mut verdict = nla(1, &code.to_be_bytes());
            if let Some(c) = chain {
                verdict.extend(nla(2, &cstr(c)));
            }
            // NFTA_SET_ELEM_DATA { NFTA_DATA_VERDICT { … } }
            inner.extend(nla(2 | NESTED, &nla(2 | NESTED, &verdict)));
        }
    }
    // NFTA_LIST_ELEM
    nla(1 | NESTED, &inner)
}

fn message(ty: u16, flags: u16, seq: u32, family: u8, res_id: u16, attrs: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + attrs.len();
    let mut v = Vec::with_capacity(len);
    v.extend((len as u32).to_ne_bytes());
    v.extend(ty.to_ne_bytes());
    v.extend(flags.to_ne_bytes());
    v.extend(seq.to_ne_bytes());
    v.extend(0u32.to_ne_bytes());
    v.extend([family, 0]);
    v.extend(res_id.to_be_bytes());
    v.extend(attrs);
    v
}

fn nfproto(f: Family) -> u8 {
    match f {
        Family::Inet => 1,
        Family::Bridge => 7,
    }
}

/// The whole batch, and how many of its messages ask for an answer.
fn batch(changes: &[SetChange], timeout: Option<Duration>) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut seq = 0u32;
    let mut next = || {
        seq += 1;
        seq
    };
    out.extend(message(
        BATCH_BEGIN,
        NLM_F_REQUEST,
        next(),
        0,
        SUBSYS_NFTABLES,
        &[],
    ));
    let mut acks = 0;
    for (delete, kind, flags) in [
        (true, MSG_DELSETELEM, NLM_F_REQUEST | NLM_F_ACK),
        (
            false,
            MSG_NEWSETELEM,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
        ),
    ] {
        for c in changes {
            let elems = if delete { &c.delete } else { &c.add };
            for chunk in elems.chunks(CHUNK) {
                let mut list = Vec::new();
                for e in chunk {
                    list.extend(element_attr(e, !delete, timeout.filter(|_| !delete)));
                }
                let mut attrs = nla(1, &cstr(&c.table));
                attrs.extend(nla(2, &cstr(&c.set)));
                attrs.extend(nla(3 | NESTED, &list));
                out.extend(message(
                    (SUBSYS_NFTABLES << 8) | kind,
                    flags,
                    next(),
                    nfproto(c.family),
                    0,
                    &attrs,
                ));
                acks += 1;
            }
        }
    }
    out.extend(message(
        BATCH_END,
        NLM_F_REQUEST,
        next(),
        0,
        SUBSYS_NFTABLES,
        &[],
    ));
    (out, acks)
}

/// Writes the changes in one batch in this thread's network namespace.
/// The kernel applies all of it or none of it; an error names the first
/// message it refused.
pub fn apply(changes: &[SetChange]) -> io::Result<()> {
    send(batch(changes, None))
}

/// Like [`apply`], with every added element given a lifetime of `timeout`
/// (for sets declared with `flags timeout`, such as the DNS proxy's). The
/// keys must be [`encodable`] ones; the set must have the timeout flag.
pub fn apply_with_timeout(changes: &[SetChange], timeout: Duration) -> io::Result<()> {
    if changes
        .iter()
        .flat_map(|c| c.delete.iter().chain(&c.add))
        .any(|e| key_bytes(e).is_none())
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an element key cannot be written over netlink",
        ));
    }
    send(batch(changes, Some(timeout)))
}

thread_local! {
    /// This thread's netlink socket and receive buffer, kept between
    /// batches: the DNS proxy writes one batch per answer, and a socket per
    /// batch cost more than the batch itself. Dropped after any error, so
    /// a half-read reply never meets the next batch.
    static WRITER: std::cell::RefCell<Option<(Socket, Vec<u8>)>> = const { std::cell::RefCell::new(None) };
}

fn send((bytes, acks): (Vec<u8>, usize)) -> io::Result<()> {
    if acks == 0 {
        return Ok(());
    }
    WRITER.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut sock = Socket::new(NETLINK_NETFILTER)?;
            sock.bind_auto()?;
            let _ = sock.set_rx_buf_sz(1 << 20);
            crate::nl::set_read_timeout(&sock, Duration::from_secs(5))?;
            *slot = Some((sock, vec![0u8; 1 << 16]));
        }
        let (sock, buf) = slot.as_mut().expect("just set");
        let result = exchange(sock, buf, &bytes, acks);
        if result.is_err() {
            *slot = None;
        }
        result
    })
}

/// Sends one batch and reads its `acks` acknowledgements.
fn exchange(sock: &Socket, buf: &mut [u8], bytes: &[u8], mut acks: usize) -> io::Result<()> {
    crate::nl::ensure_send_buffer(sock, bytes.len())?;
    let sent = sock.send(bytes, 0)?;
    if sent != bytes.len() {
        return Err(io::Error::other("netlink: short write"));
    }
    while acks > 0 {
        let n = sock.recv(&mut &mut buf[..], 0)?;
        for (ty, payload) in messages(&buf[..n]) {
            if ty != NLMSG_ERROR {
                continue;
            }
            let code = payload
                .get(..4)
                .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(0);
            if code != 0 {
                return Err(io::Error::from_raw_os_error(-code));
            }
            acks -= 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(key: Vec<Value>) -> Element {
        Element { key, verdict: None }
    }

    #[test]
    fn keys_are_encoded_in_register_aligned_sizes() {
        let v4 = Value::Net("172.17.0.2/32".parse().unwrap());
        let mac = Value::Mac("02:42:ac:11:00:02".into());
        let port = Value::Ifname("veth1".into());
        assert_eq!(
            key_bytes(&el(vec![v4.clone()])).unwrap(),
            vec![172, 17, 0, 2]
        );
        assert_eq!(key_bytes(&el(vec![mac.clone()])).unwrap().len(), 6);
        let c = key_bytes(&el(vec![port.clone(), mac, v4])).unwrap();
        assert_eq!(c.len(), 16 + 8 + 4);
        assert_eq!(&c[..5], b"veth1");
        assert_eq!(&c[16..24], &[2, 0x42, 0xac, 0x11, 0, 2, 0, 0]);
        assert!(key_bytes(&el(vec![Value::Net("10.0.0.0/8".parse().unwrap())])).is_none());
        assert!(key_bytes(&el(vec![Value::Mac("zz".into())])).is_none());
        assert!(key_bytes(&el(vec![Value::Ifname("a-very-long-name-x".into())])).is_none());
    }

    #[test]
    fn a_batch_is_framed_and_counts_its_acks() {
        let change = SetChange {
            family: Family::Inet,
            table: "cordon".into(),
            set: "egress_fwd4".into(),
            delete: vec![el(vec![Value::Net("172.17.0.3/32".parse().unwrap())])],
            add: (0..300)
                .map(|i| Element {
                    key: vec![Value::Net(
                        format!("172.18.{}.{}/32", i / 250, i % 250)
                            .parse()
                            .unwrap(),
                    )],
                    verdict: Some(Verdict::Jump("eg_fwd_web".into())),
                })
                .collect(),
        };
        let (bytes, acks) = batch(&[change], None);
        // One delete message, two add messages (256 + 44).
        assert_eq!(acks, 3);
        let msgs = messages(&bytes);
        assert_eq!(msgs.len(), 5);
        assert_eq!(msgs[0].0, BATCH_BEGIN);
        assert_eq!(msgs[1].0, (SUBSYS_NFTABLES << 8) | MSG_DELSETELEM);
        assert_eq!(msgs[2].0, (SUBSYS_NFTABLES << 8) | MSG_NEWSETELEM);
        assert_eq!(msgs[4].0, BATCH_END);
    }
}
