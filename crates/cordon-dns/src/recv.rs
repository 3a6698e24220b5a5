//! Receiving datagrams in batches (`recvmmsg`), on a thread of its own.
//!
//! A container flooding the proxy fills the socket's receive queue; once
//! it is full the kernel drops every datagram, its neighbours' too. The
//! proxy must therefore empty the queue faster than any flood fills it,
//! whatever else the runtime is doing: a dedicated thread takes up to
//! [`BATCH`] datagrams per system call and hands each to a callback that
//! decides at once (the rate limit) whether it is worth more work.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// Datagrams taken per system call.
pub const BATCH: usize = 64;

/// The largest datagram kept (larger ones are cut, and then unreadable).
const MAX_DATAGRAM: usize = 4096;

/// The socket's receive buffer, bytes (SO_RCVBUFFORCE as root).
const RCVBUF: libc::c_int = 8 << 20;

/// The receiving thread's nice value.
const NICE: libc::c_int = -10;

/// How long one wait for data lasts before `stop` is looked at again, ms.
const WAIT_MS: i32 = 200;

/// Receives on `fd` until `stop` is set or the socket fails, calling
/// `each(Some((sender, bytes)))` for every datagram and `each(None)` after
/// each batch (so the caller can hand a batch on at once). `fd` may be
/// non-blocking.
pub fn each_datagram(
    fd: BorrowedFd<'_>,
    stop: &AtomicBool,
    mut each: impl FnMut(Option<(SocketAddr, &[u8])>),
) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // A flood must not out-compete the thread that sheds it: a higher
    // scheduling weight (when allowed; containers cannot raise theirs
    // without CAP_SYS_NICE, which Docker does not grant by default).
    // SAFETY: setpriority on this thread's own id.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE);
    }
    // Room for bursts: the default queue holds a few hundred datagrams,
    // a few milliseconds of a flood, so any delay in scheduling this
    // thread would drop neighbours' queries with the flood's.
    let size: libc::c_int = RCVBUF;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: an int option of this socket.
        let r = unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                opt,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            break;
        }
    }
    let mut bufs = vec![[0u8; MAX_DATAGRAM]; BATCH];
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut addrs: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; BATCH];
    let mut iovs: Vec<libc::iovec> = Vec::with_capacity(BATCH);
    // SAFETY: mmsghdr is plain data; all-zero is a valid value.
    let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; BATCH];
    for b in bufs.iter_mut() {
        iovs.push(libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: MAX_DATAGRAM,
        });
    }
    while !stop.load(Ordering::Relaxed) {
        for i in 0..BATCH {
            let h = &mut msgs[i].msg_hdr;
            h.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            msgs[i].msg_len = 0;
        }
        // SAFETY: every header points at live buffers of the stated sizes,
        // owned by this function for the duration of the call.
        let n = unsafe {
            libc::recvmmsg(
                raw,
                msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => {
                    let mut p = libc::pollfd {
                        fd: raw,
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut p, 1, WAIT_MS) };
                    continue;
                }
                io::ErrorKind::Interrupted | io::ErrorKind::ConnectionRefused => continue,
                _ => return Err(e),
            }
        }
        for i in 0..n as usize {
            let len = (msgs[i].msg_len as usize).min(MAX_DATAGRAM);
            if let Some(from) = sockaddr(&addrs[i]) {
                each(Some((from, &bufs[i][..len])));
            }
        }
        each(None);
    }
    Ok(())
}

/// The address in `s`, when it is IPv4 or IPv6.
fn sockaddr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says it holds a sockaddr_in, which fits.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr))),
                u16::from_be(a.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says it holds a sockaddr_in6, which fits.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr)),
                u16::from_be(a.sin6_port),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::sync::Arc;

    #[test]
    fn batches_arrive_with_their_senders() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let to = rx.local_addr().unwrap();
        let tx4 = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
        for i in 0..200u8 {
            tx4.send_to(&[i; 3], to).unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut got = Vec::new();
        let s2 = stop.clone();
        let mut batches = 0;
        each_datagram(rx.as_fd(), &stop, |d| {
            let Some((from, b)) = d else {
                batches += 1;
                return;
            };
            assert_eq!(from, tx4.local_addr().unwrap());
            got.push(b.to_vec());
            if got.len() == 200 {
                s2.store(true, Ordering::Relaxed);
            }
        })
        .unwrap();
        assert_eq!(got.len(), 200);
        assert!(batches >= 200 / BATCH, "{batches} batches");
        assert!(got.iter().enumerate().all(|(i, b)| b == &[i as u8; 3]));
        // IPv6, when the host has it.
        if let Ok(rx6) = std::net::UdpSocket::bind("[::1]:0") {
            rx6.set_nonblocking(true).unwrap();
            let tx6 = std::net::UdpSocket::bind("[::1]:0").unwrap();
            tx6.send_to(b"six", rx6.local_addr().unwrap()).unwrap();
            let stop = AtomicBool::new(false);
            let mut from6 = None;
            each_datagram(rx6.as_fd(), &stop, |d| {
                let Some((from, b)) = d else { return };
                assert_eq!(b, b"six");
                from6 = Some(from);
                stop.store(true, Ordering::Relaxed);
            })
            .unwrap();
            assert_eq!(from6, Some(tx6.local_addr().unwrap()));
        }
    }
}
