//! The netlink plumbing the element writer, the nftables monitor, the
//! conntrack flush and the nflog reader share, on netlink-packet-core's
//! framing: splitting a datagram into messages, serialising requests,
//! reading acknowledgements and picking one typed attribute out of a
//! message. Malformed input ends the walk; it never panics.
//!
//! Two socket options netlink-sys does not offer (`SO_SNDBUF[FORCE]`,
//! `SO_RCVTIMEO`) are set with libc here.

use std::io;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlaBuffer, NlasIterator,
    Parseable,
};
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage};

/// The messages of a datagram, each as a checked buffer (its length field
/// fits the datagram). A truncated or malformed message ends the walk.
pub(crate) fn frames(data: &[u8]) -> impl Iterator<Item = NetlinkBuffer<&[u8]>> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let buf = NetlinkBuffer::new_checked(rest).ok()?;
        let len = buf.length() as usize;
        let frame = NetlinkBuffer::new(&rest[..len]);
        rest = &rest[((len + 3) & !3).min(rest.len())..];
        Some(frame)
    })
}

/// The netfilter messages of a datagram, parsed whole by the crate;
/// messages it cannot parse are skipped.
pub(crate) fn messages(data: &[u8]) -> impl Iterator<Item = NetlinkMessage<NetfilterMessage>> + '_ {
    frames(data).filter_map(|f| NetlinkMessage::deserialize(f.buffer).ok())
}

/// A message's netfilter header (`nfgenmsg`) and the attributes after it.
pub(crate) fn netfilter_parts<'a>(
    frame: &NetlinkBuffer<&'a [u8]>,
) -> Option<(NetfilterHeader, &'a [u8])> {
    let payload = frame.payload();
    let header = NetfilterHeader::parse(payload).ok()?;
    Some((header, payload.get(4..)?))
}

/// The first attribute of `attrs` that parses as `A` and that `pick`
/// takes. Attributes are parsed one at a time, so one the crate cannot
/// read (an expression it does not know, a name that is not UTF-8) hides
/// nothing else.
pub(crate) fn find_attr<A, T>(attrs: &[u8], mut pick: impl FnMut(A) -> Option<T>) -> Option<T>
where
    A: for<'b> Parseable<NlaBuffer<&'b [u8]>>,
{
    NlasIterator::new(attrs)
        .map_while(Result::ok)
        .filter_map(|nla| A::parse(&nla).ok())
        .find_map(&mut pick)
}

/// Appends `msg` to `out` as one netlink message with `flags` and `seq`.
pub(crate) fn emit(out: &mut Vec<u8>, flags: u16, seq: u32, msg: NetfilterMessage) {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut m = NetlinkMessage::new(header, NetlinkPayload::from(msg));
    m.finalize();
    let start = out.len();
    out.resize(start + m.buffer_len(), 0);
    m.serialize(&mut out[start..]);
}

/// What an `NLMSG_ERROR` message says: `Ok` for an acknowledgement, the
/// errno otherwise; `None` for any other message.
pub(crate) fn ack(msg: &NetlinkMessage<NetfilterMessage>) -> Option<io::Result<()>> {
    match &msg.payload {
        NetlinkPayload::Error(e) => Some(match e.code {
            None => Ok(()),
            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
        }),
        _ => None,
    }
}

/// Lets `sock` send a datagram of `len` bytes at once: the kernel refuses a
/// netlink message longer than the socket's send buffer (`EMSGSIZE`), and
/// an nftables batch must go in one datagram to be one transaction. Like
/// `nft`, raises the buffer with `SO_SNDBUFFORCE` (we hold CAP_NET_ADMIN),
/// falling back to `SO_SNDBUF` (capped by `net.core.wmem_max`).
///
/// `known` is the buffer's size as this function last saw it (0 at
/// first): while the datagram fits it, no socket option is read or set.
pub(crate) fn ensure_send_buffer(
    sock: &netlink_sys::Socket,
    known: &mut usize,
    len: usize,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // The kernel keeps some of the buffer for its own bookkeeping.
    let need = len + 4096;
    if need <= *known {
        return Ok(());
    }
    let fd = sock.as_raw_fd();
    let mut cur: libc::c_int = 0;
    let mut cur_len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into an int we own, with its size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&mut cur as *mut libc::c_int).cast(),
            &mut cur_len,
        )
    };
    if rc == 0 && (cur as usize) >= need {
        *known = cur as usize;
        return Ok(());
    }
    let want = libc::c_int::try_from(need).unwrap_or(libc::c_int::MAX);
    for opt in [libc::SO_SNDBUFFORCE, libc::SO_SNDBUF] {
        // SAFETY: setsockopt with an int we own, on a socket we own.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&want as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            // The kernel doubles what it is given; count only that.
            *known = need;
            return Ok(());
        }
    }
    Err(io::Error::last_os_error())
}

/// Sets `SO_RCVTIMEO` on a netlink socket: a receive waits at most `d`
/// (zero: for ever).
pub(crate) fn set_read_timeout(
    sock: &netlink_sys::Socket,
    d: std::time::Duration,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let tv = libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: setsockopt with a valid timeval on a socket we own.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::NLM_F_REQUEST;
    use netlink_packet_netfilter::none::ControlMessage;
    use netlink_packet_netfilter::NetfilterProtoFamily;

    #[test]
    fn frames_split_a_datagram_and_stop_at_garbage() {
        let mut out = Vec::new();
        for seq in 1..=3 {
            let header = NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, 10);
            emit(
                &mut out,
                NLM_F_REQUEST,
                seq,
                NetfilterMessage::new(header, ControlMessage::BatchBegin),
            );
        }
        assert_eq!(out.len(), 3 * 20);
        let seqs: Vec<u32> = frames(&out).map(|f| f.sequence_number()).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(messages(&out).count(), 3);
        // A length past the end, or below a header's, ends the walk.
        let mut bad = out.clone();
        bad[20..24].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(frames(&bad).count(), 1);
        bad[20..24].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(frames(&bad).count(), 1);
        assert_eq!(frames(&[1, 2, 3]).count(), 0);
        assert_eq!(frames(&[0xff; 40]).count(), 0);
    }

    #[test]
    fn acks_and_errors_are_read_from_nlmsg_error() {
        // NLMSG_ERROR with code 0 (an ack), then -ENOENT, each followed by
        // the request's header as the kernel echoes it.
        let err = |code: i32| {
            let mut v = Vec::new();
            v.extend(36u32.to_ne_bytes());
            v.extend(2u16.to_ne_bytes());
            v.extend([0u8; 10]);
            v.extend(code.to_ne_bytes());
            v.extend([0u8; 16]);
            v
        };
        let data = [err(0), err(-libc::ENOENT)].concat();
        let acks: Vec<_> = messages(&data).map(|m| ack(&m).unwrap()).collect();
        assert!(acks[0].is_ok());
        assert_eq!(
            acks[1].as_ref().unwrap_err().raw_os_error(),
            Some(libc::ENOENT)
        );
    }
}
