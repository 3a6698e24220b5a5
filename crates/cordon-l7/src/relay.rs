//! The two-way relay between the client and the original destination.
//!
//! Each direction moves bytes with splice(2) through a pipe of its own
//! (socket to pipe, pipe to socket: the payload never enters user space),
//! driven by tokio's readiness (`TcpStream::try_io`). The pipe is made on
//! the first byte of its direction, so an idle connection holds no pipe.
//! If a pipe cannot be made or the kernel refuses splice on these sockets,
//! that direction falls back to copying through a buffer.
//!
//! Half-close is honoured: when one side reaches end of file, the other
//! side's write half is shut down, and the opposite direction carries on
//! until it ends too. An error in either direction ends both.

use std::io::{self, ErrorKind};
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{splice, OFlag, SpliceFFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Bytes moved per splice call (a default pipe holds 64 KiB).
const CHUNK: usize = 64 * 1024;

/// Relays both ways until both sides are closed (or one errs); returns the
/// bytes moved client to server and server to client. The counts are
/// written to `up` and `down` as they grow, so they are right even when the
/// relay ends in an error.
pub async fn relay(
    client: &TcpStream,
    server: &TcpStream,
    up: &mut u64,
    down: &mut u64,
) -> io::Result<()> {
    tokio::try_join!(one_way(client, server, up), one_way(server, client, down))?;
    Ok(())
}

/// Moves `from`'s bytes to `to` until `from`'s end of file, then shuts
/// down `to`'s write half.
pub async fn one_way(from: &TcpStream, to: &TcpStream, moved: &mut u64) -> io::Result<()> {
    let mut pipe: Option<(OwnedFd, OwnedFd)> = None;
    let mut copy = false;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        from.readable().await?;
        if !copy && pipe.is_none() {
            match nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC) {
                Ok(p) => pipe = Some(p),
                Err(_) => copy = true,
            }
        }
        let n = if let (false, Some((r, w))) = (copy, &pipe) {
            match from.try_io(Interest::READABLE, || {
                splice(
                    from.as_fd(),
                    None,
                    w.as_fd(),
                    None,
                    CHUNK,
                    SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE,
                )
                .map_err(io::Error::from)
            }) {
                Ok(n) => {
                    drain(r, to, n).await?;
                    n
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                    copy = true;
                    pipe = None;
                    continue;
                }
                Err(e) => return Err(e),
            }
        } else {
            if buf.is_empty() {
                buf = vec![0u8; 16 * 1024];
            }
            match from.try_read(&mut buf) {
                Ok(n) => {
                    write_all(to, &buf[..n]).await?;
                    n
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            // End of file: pass it on; ENOTCONN if `to` is already gone.
            let _ = socket2::SockRef::from(to).shutdown(Shutdown::Write);
            return Ok(());
        }
        *moved += n as u64;
    }
}

/// Splices the `n` bytes in the pipe `r` out to `to`.
async fn drain(r: &OwnedFd, to: &TcpStream, mut n: usize) -> io::Result<()> {
    while n > 0 {
        to.writable().await?;
        match to.try_io(Interest::WRITABLE, || {
            splice(
                r.as_fd(),
                None,
                to.as_fd(),
                None,
                n,
                SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE,
            )
            .map_err(io::Error::from)
        }) {
            Ok(0) => return Err(io::Error::from(ErrorKind::WriteZero)),
            Ok(m) => n -= m,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes all of `buf` to `to`.
pub async fn write_all(to: &TcpStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        to.writable().await?;
        match to.try_write(buf) {
            Ok(0) => return Err(io::Error::from(ErrorKind::WriteZero)),
            Ok(m) => buf = &buf[m..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
