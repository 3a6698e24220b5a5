//! A three-namespace lab for the proxy: a client, a router running the
//! proxy (its tokio threads live in the router's namespace) with an nft
//! `redirect` in a table of the test's own (`inet cordon_l7_test`), and a
//! server. Direct and proxied paths cross the same router.
//!
//! Addresses (lab ranges): client side 10.213.7.0/24 and 2001:db8:17::/64
//! (client .2 and .3, router .1), server side 198.51.100.0/24 and
//! 2001:db8:18::/64 (server .2, router .1).

#![allow(dead_code)]

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cordon_l7::{Connection, Decider, Event, FirstFlight, Limits, Observer, Proxy, Verdict};
use cordon_lab::Netns;

/// The client's first address, IPv4.
pub const CLIENT4: &str = "10.213.7.2";
/// The client's second address, IPv4 (another source).
pub const CLIENT4B: &str = "10.213.7.3";
/// The client's first address, IPv6.
pub const CLIENT6: &str = "2001:db8:17::2";
/// The client's second address, IPv6.
pub const CLIENT6B: &str = "2001:db8:17::3";
/// The server, IPv4.
pub const SERVER4: &str = "198.51.100.2";
/// The server, IPv6.
pub const SERVER6: &str = "2001:db8:18::2";
/// The server's port the redirect covers.
pub const REDIRECTED: u16 = 443;
/// A server port the redirect does not cover (the direct path).
pub const DIRECT: u16 = 8443;

/// Moves the calling thread into `ns`'s network namespace.
pub fn enter(ns: &Netns) {
    let f = File::open(ns.path()).expect("netns file");
    nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
}

/// Runs `f` on a thread of its own inside `ns`.
pub fn in_ns<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter(ns);
            f()
        })
        .join()
        .expect("thread in netns")
    })
}

/// The three namespaces and the redirect.
pub struct L7Lab {
    /// The client.
    pub client: Netns,
    /// The router, where the proxy runs.
    pub router: Netns,
    /// The server.
    pub server: Netns,
}

fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    a.exec_ok(&[
        "ip",
        "link",
        "add",
        a_if,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ]);
    a.exec_ok(&["ip", "link", "set", a_if, "up"]);
    b.exec_ok(&["ip", "link", "set", b_if, "up"]);
}

fn addr(ns: &Netns, cidr: &str, dev: &str) {
    let mut argv = vec!["ip", "addr", "add", cidr, "dev", dev];
    if cidr.contains(':') {
        argv.push("nodad");
    }
    ns.exec_ok(&argv);
}

impl L7Lab {
    /// Builds the namespaces, links, addresses and routes (no redirect
    /// yet).
    pub fn new() -> L7Lab {
        cordon_lab::guard::ensure_clear(&[
            "10.213.7.0/24",
            "198.51.100.0/24",
            "2001:db8:17::/64",
            "2001:db8:18::/64",
        ]);
        let lab = L7Lab {
            client: Netns::new("l7c"),
            router: Netns::new("l7r"),
            server: Netns::new("l7s"),
        };
        veth(&lab.router, "rc", &lab.client, "eth0");
        veth(&lab.router, "rs", &lab.server, "eth0");
        addr(&lab.router, "10.213.7.1/24", "rc");
        addr(&lab.router, "2001:db8:17::1/64", "rc");
        addr(&lab.router, "198.51.100.1/24", "rs");
        addr(&lab.router, "2001:db8:18::1/64", "rs");
        for c in [
            "10.213.7.2/24",
            "10.213.7.3/24",
            "2001:db8:17::2/64",
            "2001:db8:17::3/64",
        ] {
            addr(&lab.client, c, "eth0");
        }
        addr(&lab.server, "198.51.100.2/24", "eth0");
        addr(&lab.server, "2001:db8:18::2/64", "eth0");
        for (ns, v4, v6) in [
            (&lab.client, "10.213.7.1", "2001:db8:17::1"),
            (&lab.server, "198.51.100.1", "2001:db8:18::1"),
        ] {
            ns.exec_ok(&["ip", "-4", "route", "add", "default", "via", v4]);
            ns.exec_ok(&["ip", "-6", "route", "add", "default", "via", v6]);
        }
        lab.router.exec_ok(&[
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
        ]);
        // Resolve the neighbours before anything is timed (the first IPv6
        // packet to a new neighbour here can wait a second or two).
        for (src, dst) in [
            (CLIENT4, SERVER4),
            (CLIENT4B, SERVER4),
            (CLIENT6, SERVER6),
            (CLIENT6B, SERVER6),
        ] {
            let _ = lab.client.exec(&["ping", "-c1", "-W3", "-I", src, dst]);
        }
        lab
    }

    /// Redirects the client's TCP connections to port [`REDIRECTED`] to
    /// `port` on the router (the proxy), in `inet cordon_l7_test`.
    pub fn redirect(&self, port: u16) {
        let rules = format!(
            "table inet cordon_l7_test {{
               chain pre {{
                 type nat hook prerouting priority dstnat; policy accept;
                 iifname \"rc\" tcp dport {REDIRECTED} redirect to :{port}
               }}
             }}"
        );
        let f = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(f.path(), rules).expect("write rules");
        let path = f.path().to_str().expect("utf-8 path").to_string();
        self.router.exec_ok(&["nft", "-f", &path]);
    }
}

impl Drop for L7Lab {
    fn drop(&mut self) {
        // The namespace goes with its table; delete it explicitly anyway.
        let _ = self
            .router
            .exec(&["nft", "delete", "table", "inet", "cordon_l7_test"]);
    }
}

/// What the proxy reported, in order.
#[derive(Clone, Default)]
pub struct Events(pub Arc<Mutex<Vec<Event>>>);

impl Events {
    /// The observer that records into this.
    pub fn observer(&self) -> Observer {
        let v = self.0.clone();
        Arc::new(move |e| v.lock().expect("not poisoned").push(e))
    }

    /// A copy of what was recorded.
    pub fn all(&self) -> Vec<Event> {
        self.0.lock().expect("not poisoned").clone()
    }

    /// Waits up to 5 s for an event matching `f`.
    pub fn wait(&self, f: impl Fn(&Event) -> bool) -> Event {
        for _ in 0..500 {
            if let Some(e) = self.all().into_iter().find(&f) {
                return e;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no such event; got {:#?}", self.all());
    }
}

/// Passes TLS and HTTP flights naming one of its names, refuses the rest.
pub struct Names(pub Vec<String>);

impl Decider for Names {
    fn decide(&self, conn: &Connection) -> Verdict {
        match (&conn.first_flight, conn.first_flight.name()) {
            (FirstFlight::Unknown { why }, _) => Verdict::Refuse {
                reason: format!("unreadable: {why}"),
            },
            (_, Some(n)) if self.0.iter().any(|a| a == n) => Verdict::Pass,
            (_, n) => Verdict::Refuse {
                reason: format!("{n:?} is not allowed"),
            },
        }
    }
}

/// The proxy running on a runtime whose threads live in the router's
/// namespace; stopped on drop.
pub struct RunningProxy {
    /// The listeners' port.
    pub port: u16,
    /// What it reported.
    pub events: Events,
    stop: tokio::sync::watch::Sender<bool>,
    rt: Option<tokio::runtime::Runtime>,
}

impl RunningProxy {
    /// Binds `0.0.0.0:0` and `[::]:0` in the router and serves.
    pub fn start(lab: &L7Lab, limits: Limits, decider: Arc<dyn Decider>) -> RunningProxy {
        // As the daemon does: the descriptor budget is taken from the soft
        // limit, which defaults to 1,024 in many shells.
        cordon_l7::raise_nofile_limit().expect("raise RLIMIT_NOFILE");
        let path = lab.router.path();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                let f = File::open(&path).expect("netns file");
                nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            })
            .build()
            .expect("runtime");
        let proxy = rt
            .block_on(rt.spawn(async {
                // A free port (the namespace is the test's own).
                let port = Proxy::bind(&["0.0.0.0:0".parse().expect("addr")])
                    .expect("bind v4")
                    .local_addrs()[0]
                    .port();
                Proxy::bind(&[
                    SocketAddr::from(([0, 0, 0, 0], port)),
                    SocketAddr::from(([0u16; 8], port)),
                ])
                .map(|p| (p, port))
            }))
            .expect("bind task");
        let (proxy, port) = proxy.expect("bind");
        let events = Events::default();
        let (stop, rx) = tokio::sync::watch::channel(false);
        rt.spawn(proxy.serve(limits, decider, events.observer(), rx));
        RunningProxy {
            port,
            events,
            stop,
            rt: Some(rt),
        }
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// An echo server in the server namespace on both families: echoes what it
/// reads until end of file, then closes its write half. Counts accepts and
/// notes their sources; stopped on drop.
pub struct Echo {
    /// Connections accepted.
    pub accepted: Arc<AtomicUsize>,
    /// Their sources.
    pub peers: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Echo {
    /// Listens on `port` on both families.
    pub fn start(lab: &L7Lab, port: u16) -> Echo {
        let accepted = Arc::new(AtomicUsize::new(0));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for ip in [SERVER4, SERVER6] {
            let l = in_ns(&lab.server, || {
                TcpListener::bind((ip.parse::<IpAddr>().expect("ip"), port)).expect("bind echo")
            });
            l.set_nonblocking(true).expect("nonblocking");
            let (accepted, peers, stop) = (accepted.clone(), peers.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match l.accept() {
                        Ok((s, peer)) => {
                            accepted.fetch_add(1, Ordering::SeqCst);
                            peers.lock().expect("not poisoned").push(peer);
                            std::thread::spawn(move || echo(s));
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            }));
        }
        Echo {
            accepted,
            peers,
            stop,
            threads,
        }
    }
}

fn echo(mut s: TcpStream) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
    let _ = s.shutdown(Shutdown::Write);
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A TCP connection from `src` (port 0) to `dst`, made in the current
/// thread's namespace.
pub fn connect_from(src: &str, dst: SocketAddr) -> std::io::Result<TcpStream> {
    let src: IpAddr = src.parse().expect("ip");
    let s = socket2::Socket::new(
        socket2::Domain::for_address(dst),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    s.bind(&SocketAddr::new(src, 0).into())?;
    s.connect_timeout(&dst.into(), Duration::from_secs(3))?;
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(s)
}

/// Sends `data`, closes the write half, reads everything back.
pub fn round_trip(s: &mut TcpStream, data: &[u8]) -> std::io::Result<Vec<u8>> {
    std::thread::scope(|sc| {
        let mut w = s.try_clone()?;
        let writer = sc.spawn(move || -> std::io::Result<()> {
            w.write_all(data)?;
            w.shutdown(Shutdown::Write)
        });
        let mut back = Vec::new();
        let r = s.read_to_end(&mut back);
        writer.join().expect("writer")?;
        r.map(|_| back)
    })
}

/// True when the peer reset `s` (a read ends in `ECONNRESET`).
pub fn was_reset(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 16];
    loop {
        match s.read(&mut b) {
            Err(e) => return e.kind() == ErrorKind::ConnectionReset,
            Ok(0) => return false,
            Ok(_) => {}
        }
    }
}
