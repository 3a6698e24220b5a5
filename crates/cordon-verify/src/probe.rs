//! Probing from inside a container's network namespace, from the host.
//!
//! Nothing runs in the container and nothing is installed in its image (a
//! distroless container works): cordon opens `/proc/PID/ns/net`, and
//! dedicated OS threads of its own process enter that namespace with
//! `setns(CLONE_NEWNET)` (only those threads move) and open their sockets
//! there. The sockets then belong to the container's namespace: its
//! addresses, routes and interfaces, so the host's ruleset judges them as
//! the container's own traffic.

use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cordon_compiler::evaluate::{Flow, Proto};
use nix::sched::{setns, CloneFlags};
use socket2::{Domain, Protocol, Socket, Type};

use crate::icmp;
use crate::observed::Observed;

/// The most probes that run at the same time.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// The payload of UDP and ICMP probes.
const PAYLOAD: &[u8] = b"cordon-verify";

/// The payload of UDP probes to port 53: a DNS query (recursion desired)
/// for the A record of `verify.cordon.invalid`, a name that exists nowhere
/// (RFC 6761), so that a DNS server, or cordon's DNS proxy the query is
/// redirected to, answers (with an error) instead of ignoring a datagram
/// that is not DNS.
const DNS_QUERY: &[u8] = b"\x63\x76\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
\x06verify\x06cordon\x07invalid\x00\x00\x01\x00\x01";

/// Probes each flow from the network namespace `netns` (a
/// `/proc/PID/ns/net` path), at most `concurrency` at a time, each waiting
/// up to `timeout`. The outcomes come back in the order of `flows`.
///
/// # Errors
/// When the namespace cannot be opened or entered (not root, the
/// container stopped).
pub fn probe_all(
    netns: &Path,
    flows: &[Flow],
    timeout: Duration,
    concurrency: usize,
) -> io::Result<Vec<Observed>> {
    let ns = File::open(netns)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", netns.display())))?;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Observed>>> = Mutex::new(vec![None; flows.len()]);
    let workers = concurrency.clamp(1, flows.len().max(1));
    let entered: Vec<io::Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| -> io::Result<()> {
                    setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| {
                        io::Error::other(format!(
                            "cannot enter the network namespace {}: {e} (run as root)",
                            netns.display()
                        ))
                    })?;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(flow) = flows.get(i) else {
                            return Ok(());
                        };
                        let seen = probe(flow, timeout, i);
                        results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(seen);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a probe thread panicked")))
            })
            .collect()
    });
    for r in entered {
        r?;
    }
    Ok(results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Observed::Failed("not probed".into())))
        .collect())
}

/// One probe, in the calling thread's network namespace.
pub fn probe(flow: &Flow, timeout: Duration, n: usize) -> Observed {
    let dst = SocketAddr::new(flow.dst, flow.port);
    match flow.proto {
        Proto::Tcp => match TcpStream::connect_timeout(&dst, timeout) {
            Ok(_) => Observed::Connected,
            Err(e) => classify(&e, Observed::Refused, Observed::TimedOut),
        },
        Proto::Udp => udp(dst, timeout),
        Proto::Icmp => ping(flow.dst, timeout, n),
    }
}

/// What an error means: `refused` for ECONNREFUSED, `silent` for a
/// timeout, unreachable for the kernel's "no way there".
fn classify(e: &io::Error, refused: Observed, silent: Observed) -> Observed {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => refused,
        Some(libc::ETIMEDOUT | libc::EAGAIN | libc::EINPROGRESS) => silent,
        Some(
            libc::EHOSTUNREACH
            | libc::ENETUNREACH
            | libc::EHOSTDOWN
            | libc::ENETDOWN
            | libc::EACCES
            | libc::EPERM
            | libc::EADDRNOTAVAIL,
        ) => Observed::Unreachable(e.to_string()),
        _ if matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ) =>
        {
            silent
        }
        _ => Observed::Failed(e.to_string()),
    }
}

fn unspecified(dst: &SocketAddr) -> SocketAddr {
    match dst {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

/// A datagram (a DNS query to port 53), sent twice (at the start and half-way): a reply or an ICMP
/// port unreachable (ECONNREFUSED on a connected socket) means it got
/// there; silence means it did not, or that the service does not answer.
fn udp(dst: SocketAddr, timeout: Duration) -> Observed {
    let run = || -> io::Result<Observed> {
        let s = UdpSocket::bind(unspecified(&dst))?;
        s.connect(dst)?;
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 512];
        let payload = if dst.port() == 53 { DNS_QUERY } else { PAYLOAD };
        for round in 0..2 {
            if let Err(e) = s.send(payload) {
                return Ok(classify(&e, Observed::PortUnreachable, Observed::NoReply));
            }
            let wait = if round == 0 {
                timeout / 2
            } else {
                deadline.saturating_duration_since(Instant::now())
            };
            if wait.is_zero() {
                break;
            }
            s.set_read_timeout(Some(wait))?;
            match s.recv(&mut buf) {
                Ok(_) => return Ok(Observed::Reply),
                Err(e) => match classify(&e, Observed::PortUnreachable, Observed::NoReply) {
                    Observed::NoReply => {}
                    other => return Ok(other),
                },
            }
        }
        Ok(Observed::NoReply)
    };
    run().unwrap_or_else(|e| Observed::Failed(e.to_string()))
}

/// An ICMP (ICMPv6) echo through a raw socket connected to `dst` (so the
/// kernel passes only its packets), sent twice; an echo reply with our
/// identifier means it got there.
fn ping(dst: IpAddr, timeout: Duration, n: usize) -> Observed {
    let v6 = dst.is_ipv6();
    let id = (std::process::id() as u16)
        .wrapping_mul(31)
        .wrapping_add(n as u16);
    let run = || -> io::Result<Observed> {
        let (domain, proto) = if v6 {
            (Domain::IPV6, Protocol::ICMPV6)
        } else {
            (Domain::IPV4, Protocol::ICMPV4)
        };
        let mut s = Socket::new(domain, Type::from(libc::SOCK_RAW), Some(proto))?;
        s.connect(&SocketAddr::new(dst, 0).into())?;
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 1500];
        for seq in 1..=2u16 {
            if let Err(e) = s.send(&icmp::echo_request(v6, id, seq, PAYLOAD)) {
                return Ok(classify(&e, Observed::NoReply, Observed::NoReply));
            }
            let until = if seq == 1 {
                Instant::now() + timeout / 2
            } else {
                deadline
            };
            while let Some(left) = until.checked_duration_since(Instant::now()) {
                if left.is_zero() {
                    break;
                }
                s.set_read_timeout(Some(left))?;
                match s.read(&mut buf) {
                    Ok(len) if (1..=seq).any(|q| icmp::is_echo_reply(v6, &buf[..len], id, q)) => {
                        return Ok(Observed::EchoReply)
                    }
                    Ok(_) => {}
                    Err(e) => match classify(&e, Observed::NoReply, Observed::NoReply) {
                        Observed::NoReply => break,
                        other => return Ok(other),
                    },
                }
            }
        }
        Ok(Observed::NoReply)
    };
    run().unwrap_or_else(|e| Observed::Failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dns_probe_is_one_well_formed_question() {
        assert_eq!(&DNS_QUERY[4..6], &[0, 1], "one question");
        let qname = &DNS_QUERY[12..DNS_QUERY.len() - 4];
        let mut labels = Vec::new();
        let mut i = 0;
        while qname[i] != 0 {
            let len = usize::from(qname[i]);
            labels.push(std::str::from_utf8(&qname[i + 1..=i + len]).unwrap());
            i += len + 1;
        }
        assert_eq!(labels.join("."), "verify.cordon.invalid");
        assert_eq!(i + 1, qname.len());
        assert_eq!(&DNS_QUERY[DNS_QUERY.len() - 4..], &[0, 1, 0, 1], "A, IN");
    }
}
