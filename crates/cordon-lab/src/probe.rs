//! Probes run from a network namespace by a thread of this process that
//! entered it (`setns`), with plain sockets: no tool's exit code to
//! interpret. A TCP probe succeeds only when the server's banner came back;
//! a UDP probe only when the datagram it sent (a token unique to the probe)
//! was echoed back.

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// Runs `f` on a fresh thread that has entered the network namespace at
/// `ns` (`/run/netns/NAME`, `/proc/PID/ns/net`).
pub(crate) fn in_netns<T: Send>(ns: &Path, f: impl FnOnce() -> T + Send) -> std::io::Result<T> {
    let file = std::fs::File::open(ns)?;
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: setns on a descriptor we own; it changes the network
            // namespace of this thread only, which ends with the closure.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            drop(file);
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("probe thread panicked")))
    })
}

/// Connects to `ip`:`port` and returns what the server sent before closing
/// (or before `timeout` of silence), trimmed; `None` when the connection
/// failed or nothing came back.
pub(crate) fn tcp_read(ip: IpAddr, port: u16, timeout: Duration) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&SocketAddr::new(ip, port), timeout).ok()?;
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while buf.len() < 64 * 1024 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Sends a unique token to `ip`:`port` over UDP; true when the same token
/// comes back within `timeout`.
pub(crate) fn udp_echo(ip: IpAddr, port: u16, timeout: Duration) -> bool {
    let bind: SocketAddr = if ip.is_ipv4() {
        "0.0.0.0:0".parse().expect("addr")
    } else {
        "[::]:0".parse().expect("addr")
    };
    let Ok(sock) = UdpSocket::bind(bind) else {
        return false;
    };
    if sock.connect(SocketAddr::new(ip, port)).is_err() {
        return false;
    }
    let token = format!(
        "cordon-lab-udp-{}-{}-{}",
        std::process::id(),
        crate::next_seq(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    if sock.send(token.as_bytes()).is_err() {
        return false;
    }
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || sock.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        match sock.recv(&mut buf) {
            Ok(n) if String::from_utf8_lossy(&buf[..n]).trim() == token => return true,
            Ok(_) => continue,
            // A port unreachable (refused) or the timeout.
            Err(_) => return false,
        }
    }
}
