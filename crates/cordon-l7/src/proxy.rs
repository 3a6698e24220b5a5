//! The listeners, the accept loop, the caps, the first-flight read and the
//! decision.
//!
//! One connection's life: accepted (reset at once if its source, or the
//! proxy in all, is at its cap); its original destination read; its first
//! flight read within [`Limits::first_flight_bytes`] and, for the whole
//! flight, [`Limits::first_flight_timeout`] (reset on the deadline); the
//! [`Decider`] asked; refused (reset) or passed: connected from the host to
//! the original destination within [`Limits::connect_timeout`] (the client
//! reset on failure), the first flight replayed, then relayed both ways
//! ([`crate::relay`]) until both sides close.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::time::{timeout, timeout_at, Instant};

use crate::budget::{Budget, Taken};
use crate::event::{Cap, Event, Observer};
use crate::flight::{parse_first_flight_within, FirstFlight, Parse};
use crate::limits::Limits;
use crate::origdst::original_dst;
use crate::relay::{relay, write_all};

/// The accept backlog asked of the kernel (capped by `somaxconn`).
const BACKLOG: i32 = 4096;

/// How long the accept loop sleeps after an error such as `EMFILE`, so it
/// neither spins nor exits while descriptors are short.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The most bytes read from a client per read during the first flight.
const READ_CHUNK: usize = 4096;

/// A connection whose first flight has been read, as the decider sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The client.
    pub source: SocketAddr,
    /// Where the client was going, before the redirect.
    pub original_dst: SocketAddr,
    /// What the client sent first.
    pub first_flight: FirstFlight,
}

/// The decider's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Connect to the original destination and relay.
    Pass,
    /// Reset the client's connection.
    Refuse {
        /// Why, for the logs.
        reason: String,
    },
}

/// Decides whether a connection may go on (the daemon's policy lookup).
/// Called on the proxy's tasks: it must not block for long.
pub trait Decider: Send + Sync + 'static {
    /// The verdict on `conn`.
    fn decide(&self, conn: &Connection) -> Verdict;
}

/// The proxy's listeners.
#[derive(Debug)]
pub struct Proxy {
    listeners: Vec<std::net::TcpListener>,
    budget: Option<Arc<Budget>>,
}

impl Proxy {
    /// Binds one listener per address, with `SO_REUSEADDR`; an IPv6
    /// address is bound with `IPV6_V6ONLY` on, so pass both `0.0.0.0:PORT`
    /// and `[::]:PORT` to serve both families. Needs no runtime.
    pub fn bind(addrs: &[SocketAddr]) -> io::Result<Proxy> {
        let listeners = addrs
            .iter()
            .map(|a| listener(*a))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Proxy {
            listeners,
            budget: None,
        })
    }

    /// Serves under `budget` rather than one of its own: a caller that
    /// restarts the proxy (new listeners, connections of the old one still
    /// open) keeps one budget for all of them. Without it, [`Proxy::serve`]
    /// takes the process's ([`Budget::of_process`] with
    /// [`Limits::reserved_descriptors`]).
    pub fn with_budget(mut self, budget: Arc<Budget>) -> Proxy {
        self.budget = Some(budget);
        self
    }

    /// The addresses actually bound (with the ports chosen for port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves until `shutdown` holds `true` or its sender is dropped; then
    /// stops accepting and returns. Connections already accepted carry on
    /// to their end (each is bounded by its first-flight deadline until
    /// the decision; a passed one lasts as long as its two sides do).
    /// Must run inside a tokio runtime with the I/O and time drivers.
    pub async fn serve(
        self,
        limits: Limits,
        decider: Arc<dyn Decider>,
        observer: Observer,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let budget = self
            .budget
            .unwrap_or_else(|| Budget::of_process(limits.reserved_descriptors));
        let shared = Arc::new(Shared {
            limits,
            decider,
            observer,
            live: Mutex::new(Live::default()),
            budget,
        });
        let mut accepts = tokio::task::JoinSet::new();
        for l in self.listeners {
            match TcpListener::from_std(l) {
                Ok(l) => {
                    accepts.spawn(accept_loop(l, shared.clone()));
                }
                Err(e) => {
                    (shared.observer)(Event::ConnectFailed {
                        source: unspecified(),
                        original_dst: unspecified(),
                        error: format!("listener not registered: {e}"),
                    });
                }
            }
        }
        while !*shutdown.borrow_and_update() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
        accepts.shutdown().await;
    }
}

fn unspecified() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

/// A non-blocking listening socket on `addr`.
fn listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    Ok(s.into())
}

/// What every connection task shares.
struct Shared {
    limits: Limits,
    decider: Arc<dyn Decider>,
    observer: Observer,
    live: Mutex<Live>,
    /// The descriptors the connections and their pipes may hold.
    budget: Arc<Budget>,
}

/// The live connections, per source address and in all.
#[derive(Default)]
struct Live {
    per_source: HashMap<IpAddr, usize>,
    total: usize,
}

/// One live connection's place in [`Live`], given back on drop.
struct Slot {
    shared: Arc<Shared>,
    ip: IpAddr,
    /// The connection's two sockets in the descriptor budget.
    _fds: Taken,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut live = self.shared.live.lock().unwrap_or_else(|p| p.into_inner());
        live.total = live.total.saturating_sub(1);
        if let Some(n) = live.per_source.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                live.per_source.remove(&self.ip);
            }
        }
    }
}

/// A slot for a connection from `ip`, or the cap it meets (the descriptor
/// budget's among them: no room for its two sockets).
fn admit(shared: &Arc<Shared>, ip: IpAddr) -> Result<Slot, Cap> {
    let mut live = shared.live.lock().unwrap_or_else(|p| p.into_inner());
    let n = live.per_source.get(&ip).copied().unwrap_or(0);
    if n >= shared.limits.per_source {
        return Err(Cap::Source);
    }
    if live.total >= shared.limits.total {
        return Err(Cap::Total);
    }
    let fds = shared.budget.take(2).ok_or(Cap::Descriptors)?;
    live.per_source.insert(ip, n + 1);
    live.total += 1;
    Ok(Slot {
        shared: shared.clone(),
        ip,
        _fds: fds,
    })
}

/// The source address a cap counts: an IPv4-mapped IPv6 address is its
/// IPv4 address.
fn source_ip(a: SocketAddr) -> IpAddr {
    match a.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        ip => ip,
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, source) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS, ENOMEM, or a connection that
                // died in the queue: wait a little and go on.
                if !matches!(
                    e.raw_os_error(),
                    Some(libc::ECONNABORTED | libc::EPROTO | libc::EINTR)
                ) {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
                continue;
            }
        };
        let slot = match admit(&shared, source_ip(source)) {
            Ok(slot) => slot,
            Err(cap) => {
                reset(stream);
                (shared.observer)(Event::OverCap { source, cap });
                continue;
            }
        };
        tokio::spawn(connection(stream, source, slot));
    }
}

/// Closes `stream` with a reset (`SO_LINGER` 0, then drop).
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// One connection, from its first flight to its close.
async fn connection(client: TcpStream, source: SocketAddr, slot: Slot) {
    let shared = slot.shared.clone();
    let emit = |e: Event| (shared.observer)(e);
    let limits = &shared.limits;
    let deadline = Instant::now() + limits.first_flight_timeout;

    let original_dst = match original_dst(&client) {
        Ok(d) if client.local_addr().is_ok_and(|l| l != d) => d,
        got => {
            let why = match got {
                Err(e) => format!("no original destination ({e})"),
                Ok(_) => "not redirected (the proxy's own address)".to_string(),
            };
            emit(Event::Refused {
                source,
                original_dst: client.local_addr().unwrap_or_else(|_| unspecified()),
                first_flight: FirstFlight::Unknown { why: why.clone() },
                reason: why,
            });
            return reset(client);
        }
    };

    let (flight, first) = match timeout_at(deadline, read_first_flight(&client, limits)).await {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => {
            let why = format!("the client's connection failed ({e})");
            emit(Event::Refused {
                source,
                original_dst,
                first_flight: FirstFlight::Unknown { why: why.clone() },
                reason: why,
            });
            return reset(client);
        }
        Err(_) => {
            emit(Event::FirstFlightTimeout {
                source,
                original_dst,
            });
            return reset(client);
        }
    };

    let conn = Connection {
        source,
        original_dst,
        first_flight: flight,
    };
    if let Verdict::Refuse { reason } = shared.decider.decide(&conn) {
        emit(Event::Refused {
            source,
            original_dst,
            first_flight: conn.first_flight,
            reason,
        });
        return reset(client);
    }

    let server = match timeout(limits.connect_timeout, connect(original_dst)).await {
        Ok(Ok(s)) => s,
        failed => {
            let error = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer in {:?}", limits.connect_timeout),
            };
            emit(Event::ConnectFailed {
                source,
                original_dst,
                error,
            });
            return reset(client);
        }
    };
    let _ = server.set_nodelay(true);
    let _ = client.set_nodelay(true);
    emit(Event::Passed {
        source,
        original_dst,
        name: conn.first_flight.name().map(str::to_string),
    });

    let (mut up, mut down) = (0u64, 0u64);
    let result = async {
        write_all(&server, &first).await?;
        up = first.len() as u64;
        drop(first);
        relay(&client, &server, &shared.budget, &mut up, &mut down).await
    }
    .await;
    if result.is_err() {
        // Pass the failure on to both sides as a reset.
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
    emit(Event::Closed {
        source,
        original_dst,
        up,
        down,
    });
    drop(slot);
}

/// Reads until the first flight parses, the byte limit is reached, or the
/// client closes; returns the parse and the bytes read (replayed to the
/// server). Buffers only what arrived.
async fn read_first_flight(
    client: &TcpStream,
    limits: &Limits,
) -> io::Result<(FirstFlight, Vec<u8>)> {
    let max = limits.first_flight_bytes.min(crate::FIRST_FLIGHT_MAX);
    let mut buf: Vec<u8> = Vec::new();
    loop {
        client.readable().await?;
        let want = READ_CHUNK.min(max - buf.len());
        let mut chunk = [0u8; READ_CHUNK];
        let n = match client.try_read(&mut chunk[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        buf.extend_from_slice(&chunk[..n]);
        match parse_first_flight_within(&buf, max) {
            Parse::Done(f) => return Ok((f, buf)),
            Parse::NeedMore if n == 0 => {
                let why = if buf.is_empty() {
                    "the client closed without sending".to_string()
                } else {
                    "the client closed before its first flight was complete".to_string()
                };
                return Ok((FirstFlight::Unknown { why }, buf));
            }
            Parse::NeedMore => {}
        }
    }
}

/// A connection from the host to `dst`.
async fn connect(dst: SocketAddr) -> io::Result<TcpStream> {
    let s = if dst.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    s.connect(dst).await
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nobody;
    impl Decider for Nobody {
        fn decide(&self, _: &Connection) -> Verdict {
            Verdict::Refuse {
                reason: "test".into(),
            }
        }
    }

    fn shared(per_source: usize, total: usize) -> Arc<Shared> {
        Arc::new(Shared {
            limits: Limits {
                per_source,
                total,
                ..Limits::default()
            },
            decider: Arc::new(Nobody),
            observer: Arc::new(|_| {}),
            live: Mutex::new(Live::default()),
            budget: Budget::unbounded(),
        })
    }

    #[test]
    fn caps_count_from_admission_until_the_slot_drops() {
        let s = shared(2, 3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = admit(&s, a).expect("first");
        let _a2 = admit(&s, a).expect("second");
        assert_eq!(
            admit(&s, a).err(),
            Some(Cap::Source),
            "over the per-source cap"
        );
        let _b1 = admit(&s, b).expect("another source");
        assert_eq!(admit(&s, b).err(), Some(Cap::Total), "over the total cap");
        drop(a1);
        let _a3 = admit(&s, a).expect("a slot came back");
        assert_eq!(s.live.lock().unwrap().total, 3);
    }

    #[test]
    fn a_mapped_address_counts_as_its_ipv4_address() {
        let m: SocketAddr = "[::ffff:10.0.0.1]:5".parse().unwrap();
        assert_eq!(source_ip(m), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
