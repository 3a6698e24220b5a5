//! A lab server that records when data arrives: a TCP listener and a UDP
//! socket on one port in a namespace, each read noted with its time. Tests
//! that ask "did this flow still get through, and until when?" use it.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::Netns;

/// The transport a [`Recorder`] saw data on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A TCP connection.
    Tcp,
    /// A UDP datagram.
    Udp,
}

type Seen = Arc<Mutex<Vec<(Instant, Transport)>>>;
type Payloads = Arc<Mutex<Vec<(Instant, Vec<u8>)>>>;

/// Records every read on `port` (TCP and UDP, IPv4 and IPv6) of a
/// namespace; stops its threads when dropped.
pub struct Recorder {
    seen: Seen,
    payloads: Payloads,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

const POLL: Duration = Duration::from_millis(50);

impl Recorder {
    /// Starts recording on `port` in `ns`.
    ///
    /// # Panics
    /// When the namespace cannot be entered or the port is taken.
    pub fn start(ns: &Netns, port: u16) -> Recorder {
        let seen: Seen = Arc::default();
        let payloads: Payloads = Arc::default();
        let p2 = payloads.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let file = std::fs::File::open(ns.path()).expect("open the namespace");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (s, st) = (seen.clone(), stop.clone());
        let main = std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            // SAFETY: setns on a descriptor we own; it changes the network
            // namespace of this thread (and of threads it spawns) only.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            let any: SocketAddr = format!("[::]:{port}").parse().expect("addr");
            let tcp = TcpListener::bind(any).expect("bind the recorder's TCP port");
            let udp = UdpSocket::bind(any).expect("bind the recorder's UDP port");
            // A large receive buffer: on a busy host the recorder must not
            // be where datagrams are lost (as root, past rmem_max).
            {
                use std::os::fd::AsRawFd;
                let size: libc::c_int = 8 << 20;
                // SAFETY: setsockopt on a socket we own, with a c_int value.
                unsafe {
                    libc::setsockopt(
                        udp.as_raw_fd(),
                        libc::SOL_SOCKET,
                        libc::SO_RCVBUFFORCE,
                        (&size as *const libc::c_int).cast(),
                        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                    )
                };
            }
            tcp.set_nonblocking(true).expect("nonblocking");
            udp.set_read_timeout(Some(POLL)).expect("timeout");
            let _ = ready_tx.send(());
            let (s2, st2) = (s.clone(), st.clone());
            let udp_thread = std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !st2.load(Ordering::Relaxed) {
                    if let Ok((n, _)) = udp.recv_from(&mut buf) {
                        note(&s2, Transport::Udp);
                        p2.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((Instant::now(), buf[..n.min(16)].to_vec()));
                    }
                }
            });
            let mut conns = Vec::new();
            while !st.load(Ordering::Relaxed) {
                match tcp.accept() {
                    Ok((mut c, _)) => {
                        let (s3, st3) = (s.clone(), st.clone());
                        conns.push(std::thread::spawn(move || {
                            let _ = c.set_nonblocking(false);
                            let _ = c.set_read_timeout(Some(POLL));
                            let mut buf = [0u8; 4096];
                            while !st3.load(Ordering::Relaxed) {
                                match c.read(&mut buf) {
                                    Ok(0) => break,
                                    Ok(_) => note(&s3, Transport::Tcp),
                                    Err(e)
                                        if matches!(
                                            e.kind(),
                                            std::io::ErrorKind::WouldBlock
                                                | std::io::ErrorKind::TimedOut
                                        ) => {}
                                    Err(_) => break,
                                }
                            }
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            let _ = udp_thread.join();
            for c in conns {
                let _ = c.join();
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the recorder listens");
        Recorder {
            seen,
            payloads,
            stop,
            threads: vec![main],
        }
    }

    /// When data last arrived over `t`.
    pub fn last(&self, t: Transport) -> Option<Instant> {
        self.times(t).last().copied()
    }

    /// When data first arrived over `t` at or after `since`.
    pub fn first_since(&self, t: Transport, since: Instant) -> Option<Instant> {
        self.times(t).into_iter().find(|at| *at >= since)
    }

    /// How many reads over `t` happened at or after `since`.
    pub fn count_since(&self, t: Transport, since: Instant) -> usize {
        self.times(t).into_iter().filter(|at| *at >= since).count()
    }

    /// The first bytes (up to 16) of every UDP datagram received, with
    /// when it arrived: tests that number their datagrams find which one
    /// was lost.
    pub fn udp_payloads(&self) -> Vec<(Instant, Vec<u8>)> {
        self.payloads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn times(&self, t: Transport) -> Vec<Instant> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, x)| *x == t)
            .map(|(at, _)| *at)
            .collect()
    }
}

fn note(seen: &Seen, t: Transport) {
    seen.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((Instant::now(), t));
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl crate::Lab {
    /// A [`Recorder`] on `port` of the lab host `ns`.
    pub fn record(&self, ns: &crate::Ns, port: u16) -> Recorder {
        self.with_ns(ns, |n| Recorder::start(n, port))
    }
}
