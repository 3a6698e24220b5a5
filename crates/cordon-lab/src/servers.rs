//! Lab servers: a TCP banner (each connection gets one fixed line, then the
//! server closes), a UDP echo and a DNS server (dnsmasq) that knows only the
//! test's own names. Each runs until dropped; constructors return once the
//! server listens.

use crate::addr;
use crate::netns::{Netns, NsProcess};

/// A TCP server that answers each connection with one line, its banner,
/// and closes (socat).
#[derive(Debug)]
pub struct TcpServer {
    proc: NsProcess,
    port: u16,
    banner: String,
}

impl TcpServer {
    /// In `ns`, on every address (IPv4 and IPv6) of `port`.
    ///
    /// # Panics
    /// When the banner is not `[A-Za-z0-9._@+/-]+` or the server cannot
    /// listen.
    #[track_caller]
    pub fn banner(ns: &Netns, port: u16, banner: &str) -> TcpServer {
        Self::start(Some(ns), None, port, banner)
    }

    /// In `ns`, on one address only.
    #[track_caller]
    pub fn banner_on(ns: &Netns, bind_ip: &str, port: u16, banner: &str) -> TcpServer {
        Self::start(Some(ns), Some(bind_ip), port, banner)
    }

    /// On the host itself, bound to `bind_ip` (a lab address, e.g. the
    /// host side of an [`Uplink`](crate::Uplink)): for tests of containers
    /// reaching the host's own services.
    #[track_caller]
    pub fn on_host(bind_ip: &str, port: u16, banner: &str) -> TcpServer {
        Self::start(None, Some(bind_ip), port, banner)
    }

    #[track_caller]
    pub(crate) fn start_in(
        ns: Option<&str>,
        bind_ip: Option<&str>,
        port: u16,
        banner: &str,
    ) -> TcpServer {
        check_banner(banner);
        let listen = match bind_ip.map(addr) {
            None => format!("TCP6-LISTEN:{port},ipv6only=0,fork,reuseaddr"),
            Some(ip) if ip.is_ipv4() => format!("TCP4-LISTEN:{port},bind={ip},fork,reuseaddr"),
            Some(ip) => format!("TCP6-LISTEN:{port},bind=[{ip}],fork,reuseaddr"),
        };
        let answer = format!("SYSTEM:echo {banner}");
        let mut proc = spawn_in(ns, &["socat", &listen, &answer]);
        proc.wait_listening("tcp", port);
        TcpServer {
            proc,
            port,
            banner: banner.into(),
        }
    }

    #[track_caller]
    fn start(ns: Option<&Netns>, bind_ip: Option<&str>, port: u16, banner: &str) -> TcpServer {
        Self::start_in(ns.map(Netns::name), bind_ip, port, banner)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its banner.
    pub fn banner_text(&self) -> &str {
        &self.banner
    }

    /// The server process.
    pub fn process(&mut self) -> &mut NsProcess {
        &mut self.proc
    }
}

/// A UDP server that sends every datagram back to its sender (socat).
#[derive(Debug)]
pub struct UdpEcho {
    proc: NsProcess,
    port: u16,
}

impl UdpEcho {
    /// In `ns`, on every address (IPv4 and IPv6) of `port`.
    ///
    /// # Panics
    /// When the server cannot listen.
    #[track_caller]
    pub fn start(ns: &Netns, port: u16) -> UdpEcho {
        Self::start_in(Some(ns.name()), None, port)
    }

    /// On the host itself, bound to `bind_ip` (a lab address).
    #[track_caller]
    pub fn on_host(bind_ip: &str, port: u16) -> UdpEcho {
        Self::start_in(None, Some(bind_ip), port)
    }

    #[track_caller]
    fn start_in(ns: Option<&str>, bind_ip: Option<&str>, port: u16) -> UdpEcho {
        let listen = match bind_ip.map(addr) {
            None => format!("UDP6-RECVFROM:{port},ipv6only=0,fork"),
            Some(ip) if ip.is_ipv4() => format!("UDP4-RECVFROM:{port},bind={ip},fork"),
            Some(ip) => format!("UDP6-RECVFROM:{port},bind=[{ip}],fork"),
        };
        let mut proc = spawn_in(ns, &["socat", "-T", "1", &listen, "PIPE"]);
        proc.wait_listening("udp", port);
        UdpEcho { proc, port }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server process.
    pub fn process(&mut self) -> &mut NsProcess {
        &mut self.proc
    }
}

/// The lab's resolver: dnsmasq in a namespace, answering only the names it
/// was given (no upstream, no hosts file, no configuration file), for
/// containers started with `dns` pointing at it.
#[derive(Debug)]
pub struct Dnsmasq {
    proc: NsProcess,
    listen: String,
}

impl Dnsmasq {
    /// Serves on `listen` (an address of `ns`), port 53, answering each
    /// `(name, address)` record (the name and its subdomains; a name may
    /// have several records, e.g. an IPv4 and an IPv6 one).
    ///
    /// # Panics
    /// When a name or address is malformed, or dnsmasq cannot listen
    /// (not installed: `apt-get install dnsmasq-base`).
    #[track_caller]
    pub fn start(ns: &Netns, listen: &str, records: &[(&str, &str)]) -> Dnsmasq {
        Self::start_in(ns.name(), listen, records)
    }

    #[track_caller]
    pub(crate) fn start_in(ns: &str, listen: &str, records: &[(&str, &str)]) -> Dnsmasq {
        let listen = addr(listen).to_string();
        let mut argv = vec![
            "dnsmasq".to_string(),
            "--no-daemon".into(),
            "--conf-file=/dev/null".into(),
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--no-poll".into(),
            "--bind-interfaces".into(),
            "--pid-file=".into(),
            "--user=root".into(),
            "--port=53".into(),
            format!("--listen-address={listen}"),
        ];
        for (name, ip) in records {
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
                "bad lab DNS name {name:?}"
            );
            argv.push(format!("--address=/{name}/{}", addr(ip)));
        }
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut proc = spawn_in(Some(ns), &argv);
        proc.wait_listening("udp", 53);
        Dnsmasq { proc, listen }
    }

    /// The address it serves on.
    pub fn address(&self) -> &str {
        &self.listen
    }

    /// The server process.
    pub fn process(&mut self) -> &mut NsProcess {
        &mut self.proc
    }
}

#[track_caller]
fn spawn_in(ns: Option<&str>, argv: &[&str]) -> NsProcess {
    match ns {
        Some(ns) => {
            let mut full = vec!["ip", "netns", "exec", ns];
            full.extend_from_slice(argv);
            NsProcess::spawn(&full)
        }
        None => NsProcess::spawn(argv),
    }
}

/// Banners travel through socat's and a shell's parsing: keep them plain.
#[track_caller]
pub(crate) fn check_banner(banner: &str) {
    assert!(
        !banner.is_empty()
            && banner
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._@+/-".contains(c)),
        "lab banners are [A-Za-z0-9._@+/-]+, not {banner:?}"
    );
}
