//! The kernel's nftables generation id: a counter every committed
//! nftables transaction (anyone's, on any table) increments. Reading it
//! costs one netlink round trip, so the daemon's periodic reconcile can
//! tell "nothing was committed since I last compared" without listing its
//! tables.

use std::io;
use std::time::Duration;

use netlink_packet_netfilter::nftables::{GenAttribute, NfTablesMessageType as Kind};
use netlink_packet_netfilter::NetfilterSubsystem;
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

use crate::nl::{find_attr, frames, netfilter_parts};

/// `NFT_MSG_GETGEN` in the nftables subsystem (`NFNL_SUBSYS_NFTABLES`, 10).
const GETGEN: u16 = (10 << 8) | 16;

/// The request: `nlmsghdr` (`NLM_F_REQUEST`) and an `nfgenmsg` for
/// `AF_UNSPEC`.
fn request(seq: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    out.extend_from_slice(&20u32.to_ne_bytes());
    out.extend_from_slice(&GETGEN.to_ne_bytes());
    out.extend_from_slice(&1u16.to_ne_bytes()); // NLM_F_REQUEST
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]); // family, version, res_id
    out
}

/// The generation id in a `NEWGEN` answer, if `data` holds one.
fn parse(data: &[u8]) -> Option<u32> {
    frames(data).find_map(|frame| {
        let ty = frame.message_type();
        if NetfilterSubsystem::from((ty >> 8) as u8) != NetfilterSubsystem::NfTables
            || Kind::from(ty as u8) != Kind::NewGen
        {
            return None;
        }
        let (_, attrs) = netfilter_parts(&frame)?;
        find_attr(attrs, |a| match a {
            GenAttribute::Id(id) => Some(id),
            _ => None,
        })
    })
}

/// Reads the current generation id of the calling thread's network
/// namespace.
pub fn current() -> io::Result<u32> {
    let mut sock = Socket::new(NETLINK_NETFILTER)?;
    sock.bind_auto()?;
    crate::nl::set_read_timeout(&sock, Duration::from_secs(2))?;
    let req = request(1);
    if sock.send(&req, 0)? != req.len() {
        return Err(io::Error::other("netlink: short write"));
    }
    let mut buf = vec![0u8; 4096];
    for _ in 0..4 {
        let n = sock.recv(&mut &mut buf[..], 0)?;
        if let Some(id) = parse(&buf[..n]) {
            return Ok(id);
        }
        for m in crate::nl::messages(&buf[..n]) {
            if let Some(Err(e)) = crate::nl::ack(&m) {
                return Err(e);
            }
        }
    }
    Err(io::Error::other("netlink: no generation id in the answer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_one_getgen_message() {
        let r = request(7);
        assert_eq!(r.len(), 20);
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), 0x0a10);
        assert_eq!(u32::from_ne_bytes([r[8], r[9], r[10], r[11]]), 7);
    }

    /// A `NEWGEN` message as the kernel sends it (captured on kernel
    /// 6.x, committed by `nft`): generation 2.
    const NEWGEN: &str =
        "2c0000000f0a000001000000e273000000000002080001000000000208000200000073e2080003006e667400";

    #[test]
    fn a_newgen_answer_gives_its_id() {
        let bytes: Vec<u8> = (0..NEWGEN.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&NEWGEN[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(parse(&bytes), Some(2));
        assert_eq!(parse(&request(1)), None);
    }
}
