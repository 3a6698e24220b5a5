//! The few netlink framing helpers the nftables monitor and the conntrack
//! flush share: splitting a datagram into messages and a payload into
//! attributes. Malformed input ends the walk; it never panics.

/// Netlink's 4-byte alignment.
pub(crate) fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// The (type, payload after the 16-byte header) of each message in a
/// datagram.
pub(crate) fn messages(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 16 {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < 16 || len > data.len() {
            break;
        }
        out.push((u16::from_ne_bytes([data[4], data[5]]), &data[16..len]));
        data = &data[align(len).min(data.len())..];
    }
    out
}

/// The attributes of a payload as (type without the nested/byte-order
/// flags, value, the whole attribute with its header).
pub(crate) fn attrs(mut data: &[u8]) -> Vec<(u16, &[u8], &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        if len < 4 || len > data.len() {
            break;
        }
        let ty = u16::from_ne_bytes([data[2], data[3]]) & 0x3fff;
        out.push((ty, &data[4..len], &data[..len]));
        data = &data[align(len).min(data.len())..];
    }
    out
}

/// The value of the first attribute of type `want`.
pub(crate) fn attr(data: &[u8], want: u16) -> Option<&[u8]> {
    attrs(data)
        .into_iter()
        .find(|(t, _, _)| *t == want)
        .map(|(_, v, _)| v)
}

/// An attribute, padded: for tests that build messages.
#[cfg(test)]
pub(crate) fn nla(ty: u16, val: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(((4 + val.len()) as u16).to_ne_bytes());
    v.extend(ty.to_ne_bytes());
    v.extend(val);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

/// Lets `sock` send a datagram of `len` bytes at once: the kernel refuses a
/// netlink message longer than the socket's send buffer (`EMSGSIZE`), and
/// an nftables batch must go in one datagram to be one transaction. Like
/// `nft`, raises the buffer with `SO_SNDBUFFORCE` (we hold CAP_NET_ADMIN),
/// falling back to `SO_SNDBUF` (capped by `net.core.wmem_max`).
pub(crate) fn ensure_send_buffer(sock: &netlink_sys::Socket, len: usize) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
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
    // The kernel keeps some of the buffer for its own bookkeeping.
    if rc == 0 && (cur as usize) >= len + 4096 {
        return Ok(());
    }
    let want = libc::c_int::try_from(len + 4096).unwrap_or(libc::c_int::MAX);
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
            return Ok(());
        }
    }
    Err(std::io::Error::last_os_error())
}

/// Sets `SO_RCVTIMEO` on a netlink socket: a receive waits at most `d`
/// (zero: for ever).
pub(crate) fn set_read_timeout(
    sock: &netlink_sys::Socket,
    d: std::time::Duration,
) -> std::io::Result<()> {
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
        Err(std::io::Error::last_os_error())
    }
}
