//! The two-way relay between the client and the original destination.
//!
//! Each direction starts by copying through a small buffer taken only
//! while bytes are in hand, so an idle connection holds no buffer and no
//! pipe: most connections exchange little. Once a direction has moved
//! [`SPLICE_AFTER`] bytes it is a bulk flow and switches to splice(2)
//! through a pipe of its own, grown to [`PIPE_SIZE`] (socket to pipe, pipe
//! to socket: the payload never enters user space), driven by tokio's
//! readiness (`TcpStream::try_io`); it reads while the pipe has room and
//! writes while the pipe holds bytes, the two overlapping. If the pipe
//! cannot be made (the proxy's descriptor budget has no room, or the
//! kernel refuses) or the kernel refuses splice on these sockets, the
//! direction keeps copying.
//!
//! Half-close is honoured: when one side reaches end of file, the other
//! side's write half is shut down, and the opposite direction carries on
//! until it ends too. An error in either direction ends both.

use std::io::{self, ErrorKind};
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use nix::fcntl::{splice, OFlag, SpliceFFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::budget::Budget;

/// Bytes a direction moves by copying before it switches to splice.
pub const SPLICE_AFTER: u64 = 1 << 20;

/// The size a bulk flow's pipe is grown to (the most moved per splice).
pub const PIPE_SIZE: usize = 1 << 20;

/// The copy buffer, taken while bytes are in hand.
const COPY_CHUNK: usize = 16 * 1024;

/// Relays both ways until both sides are closed (or one errs); returns the
/// bytes moved client to server and server to client. The counts are
/// written to `up` and `down` as they grow, so they are right even when the
/// relay ends in an error.
///
/// A direction's splice pipe takes two descriptors from `budget`; without
/// room there, the direction keeps copying.
pub async fn relay(
    client: &TcpStream,
    server: &TcpStream,
    budget: &Arc<Budget>,
    up: &mut u64,
    down: &mut u64,
) -> io::Result<()> {
    tokio::try_join!(
        one_way(client, server, budget, up),
        one_way(server, client, budget, down)
    )?;
    Ok(())
}

/// Moves `from`'s bytes to `to` until `from`'s end of file, then shuts
/// down `to`'s write half.
pub async fn one_way(
    from: &TcpStream,
    to: &TcpStream,
    budget: &Arc<Budget>,
    moved: &mut u64,
) -> io::Result<()> {
    loop {
        if *moved >= SPLICE_AFTER {
            let pipe = budget.take(2).and_then(|fds| {
                let (r, w) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).ok()?;
                Some((r, w, fds))
            });
            if let Some((r, w, _fds)) = pipe {
                let size =
                    nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE as i32))
                        .map(|n| n as usize)
                        .unwrap_or(64 * 1024);
                match spliced(from, to, moved, &r, &w, size).await? {
                    Spliced::Done => return Ok(()),
                    // The kernel refuses splice here: copy from now on.
                    Spliced::Unsupported => {}
                }
            }
            return copied(from, to, moved, u64::MAX).await.map(|_| ());
        }
        if copied(from, to, moved, SPLICE_AFTER).await? {
            return Ok(());
        }
    }
}

/// Copies until end of file (true: `to`'s write half is shut down) or
/// until `moved` reaches `until` (false).
async fn copied(from: &TcpStream, to: &TcpStream, moved: &mut u64, until: u64) -> io::Result<bool> {
    while *moved < until {
        from.readable().await?;
        let mut buf = vec![0u8; COPY_CHUNK];
        let n = match from.try_read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            // End of file: pass it on; ENOTCONN if `to` is already gone.
            let _ = socket2::SockRef::from(to).shutdown(Shutdown::Write);
            return Ok(true);
        }
        write_all(to, &buf[..n]).await?;
        *moved += n as u64;
    }
    Ok(false)
}

/// How a spliced direction ended.
enum Spliced {
    /// End of file passed on.
    Done,
    /// The kernel refused splice on these sockets before any byte moved.
    Unsupported,
}

/// Moves bytes with splice through the pipe `r`/`w` of `size` bytes,
/// reading while the pipe has room and writing while it holds bytes (the
/// two overlap), until end of file.
async fn spliced(
    from: &TcpStream,
    to: &TcpStream,
    moved: &mut u64,
    r: &OwnedFd,
    w: &OwnedFd,
    size: usize,
) -> io::Result<Spliced> {
    let flags = SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE;
    let mut held = 0usize;
    let mut eof = false;
    let mut any = false;
    loop {
        if eof && held == 0 {
            let _ = socket2::SockRef::from(to).shutdown(Shutdown::Write);
            return Ok(Spliced::Done);
        }
        let (can_read, can_write) = (!eof && held < size, held > 0);
        tokio::select! {
            ready = from.readable(), if can_read => {
                ready?;
                match from.try_io(Interest::READABLE, || {
                    splice(from.as_fd(), None, w.as_fd(), None, size - held, flags)
                        .map_err(io::Error::from)
                }) {
                    Ok(0) => eof = true,
                    Ok(n) => {
                        held += n;
                        any = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) if !any && matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                        return Ok(Spliced::Unsupported);
                    }
                    Err(e) => return Err(e),
                }
            }
            ready = to.writable(), if can_write => {
                ready?;
                match to.try_io(Interest::WRITABLE, || {
                    splice(r.as_fd(), None, to.as_fd(), None, held, flags).map_err(io::Error::from)
                }) {
                    Ok(0) => return Err(io::Error::from(ErrorKind::WriteZero)),
                    Ok(m) => {
                        held -= m;
                        *moved += m as u64;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
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
