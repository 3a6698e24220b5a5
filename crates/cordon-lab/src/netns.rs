//! Lab hosts: network namespaces, joined to the host by routed veth pairs.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sysctl::Forwarding;
use crate::{addr, probe, sh, sh_quiet, warn, PROBE_TIMEOUT_S};

/// A network namespace `cl-<prefix>-<pid>-<n>` with `lo` up; deleted, with
/// every process still inside it, on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
    uplinks: AtomicUsize,
    host_ifs: Mutex<Vec<String>>,
}

impl Netns {
    /// Creates a uniquely named namespace and brings its loopback up.
    ///
    /// # Panics
    /// When `ip netns add` fails.
    #[track_caller]
    pub fn new(prefix: &str) -> Netns {
        let name = crate::unique_name(prefix);
        sh("ip", &["netns", "add", &name]);
        let ns = Netns {
            name,
            uplinks: AtomicUsize::new(0),
            host_ifs: Mutex::default(),
        };
        ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its bind mount, `/run/netns/<name>`.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// Runs a command inside the namespace and waits for it.
    ///
    /// # Panics
    /// When the command cannot be started at all.
    #[track_caller]
    pub fn exec(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {argv:?} in {}: {e}", self.name))
    }

    /// Runs a command inside the namespace, insisting it succeeds; returns
    /// its stdout.
    ///
    /// # Panics
    /// When it fails (with its stderr).
    #[track_caller]
    pub fn exec_ok(&self, argv: &[&str]) -> String {
        let out = self.exec(argv);
        assert!(
            out.status.success(),
            "{argv:?} in {} failed ({}): {}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a long-running command inside the namespace; it is killed
    /// when the returned value (or this namespace) drops.
    ///
    /// # Panics
    /// When it cannot be started.
    #[track_caller]
    pub fn spawn(&self, argv: &[&str]) -> NsProcess {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(argv);
        NsProcess::spawn(&full)
    }

    /// Adds an address (`198.51.100.77/32`) to the namespace's loopback:
    /// one more lab host behind the same uplink (the host needs a route to
    /// it, e.g. [`Uplink::route_to_ns`] or a covering uplink prefix).
    ///
    /// # Panics
    /// When the [`guard`](crate::guard) refuses `cidr`, or `ip` fails.
    #[track_caller]
    pub fn add_address(&self, cidr: &str) {
        crate::guard::ensure_clear(&[cidr]);
        let mut argv = vec!["ip", "addr", "add", cidr, "dev", "lo"];
        if cidr.contains(':') {
            argv.push("nodad");
        }
        self.exec_ok(&argv);
    }

    /// What a TCP server at `ip`:`port` sends from the moment this
    /// namespace connects until it closes (or 2 s of silence), trimmed;
    /// `None` when the connection fails or nothing comes back.
    #[track_caller]
    pub fn tcp_banner(&self, ip: &str, port: u16) -> Option<String> {
        let ip = addr(ip);
        let timeout = Duration::from_secs(PROBE_TIMEOUT_S.into());
        probe::in_netns(&self.path(), || probe::tcp_read(ip, port, timeout))
            .unwrap_or_else(|e| panic!("cannot enter {}: {e}", self.name))
    }

    /// True when a TCP connection from this namespace to `ip`:`port`
    /// returns a banner (any lab server's).
    #[track_caller]
    pub fn tcp_connect(&self, ip: &str, port: u16) -> bool {
        self.tcp_banner(ip, port).is_some()
    }

    /// True when a TCP connection from this namespace to `ip`:`port`
    /// returns `banner`.
    #[track_caller]
    pub fn reaches(&self, ip: &str, port: u16, banner: &str) -> bool {
        let got = self.tcp_banner(ip, port);
        debug_probe(&self.name, ip, port, banner, &got);
        got.is_some_and(|g| g.contains(banner))
    }

    /// True when a UDP echo server at `ip`:`port` returns the datagram
    /// this namespace sends.
    #[track_caller]
    pub fn udp_echo(&self, ip: &str, port: u16) -> bool {
        let ip = addr(ip);
        let timeout = Duration::from_secs(PROBE_TIMEOUT_S.into());
        probe::in_netns(&self.path(), || probe::udp_echo(ip, port, timeout))
            .unwrap_or_else(|e| panic!("cannot enter {}: {e}", self.name))
    }

    /// True when `ip` answers one ping from this namespace within 2 s.
    #[track_caller]
    pub fn ping(&self, ip: &str) -> bool {
        let ip = addr(ip).to_string();
        let out = self.exec(&["/bin/busybox", "ping", "-c", "1", "-W", "2", "-w", "3", &ip]);
        out.status.success()
    }

    /// The addresses `name` resolves to through the DNS server at `server`
    /// (a lab address), asked from this namespace; empty when it does not
    /// resolve.
    #[track_caller]
    pub fn resolve(&self, name: &str, server: &str) -> Vec<IpAddr> {
        let server = addr(server).to_string();
        let out = self.exec(&["timeout", "5", "/bin/busybox", "nslookup", name, &server]);
        parse_nslookup(&String::from_utf8_lossy(&out.stdout))
    }

    fn next_iface(&self) -> String {
        format!("eth{}", self.uplinks.fetch_add(1, Ordering::Relaxed))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Its uplinks first, synchronously: the kernel removes the veths of
        // a deleted namespace in the background.
        let host_ifs =
            std::mem::take(&mut *self.host_ifs.lock().unwrap_or_else(|e| e.into_inner()));
        for i in host_ifs {
            del_link(&i);
        }
        delete_netns(&self.name);
    }
}

/// Deletes a host interface; quiet when it is gone already.
fn del_link(name: &str) {
    let exists = || Path::new("/sys/class/net").join(name).exists();
    if !exists() {
        return;
    }
    let out = Command::new("ip").args(["link", "del", name]).output();
    if exists() {
        let err = match out {
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        warn(&format!("cannot delete interface {name}: {err}"));
    }
}

/// Kills whatever still runs in namespace `name` (a process inside keeps a
/// deleted namespace and its interfaces alive), then deletes it.
fn delete_netns(name: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", name]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
    sh_quiet("ip", &["netns", "del", name]);
}

/// When `CORDON_LAB_DEBUG` is set, says what a failed probe got.
pub(crate) fn debug_probe(from: &str, ip: &str, port: u16, want: &str, got: &Option<String>) {
    let hit = got.as_deref().is_some_and(|g| g.contains(want));
    if !hit && std::env::var_os("CORDON_LAB_DEBUG").is_some() {
        warn(&format!(
            "probe {from} -> {ip}:{port} wanted {want:?}, got {got:?}"
        ));
    }
}

/// The answer addresses in busybox `nslookup` output.
pub(crate) fn parse_nslookup(out: &str) -> Vec<IpAddr> {
    // The first block names the server; answers follow a blank line.
    out.split("\n\n")
        .skip(1)
        .flat_map(|block| block.lines())
        .filter(|l| l.starts_with("Address"))
        .filter_map(|l| l.split_whitespace().last()?.parse().ok())
        .collect()
}

/// Removes namespaces and host veths named for lab processes that no
/// longer exist (a test run killed before its guards could drop).
pub(crate) fn sweep_stale() {
    if let Ok(dir) = std::fs::read_dir("/run/netns") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if crate::pid_of_name(&name).is_some_and(|p| !crate::pid_alive(p)) {
                warn(&format!("removing stale namespace {name}"));
                delete_netns(&name);
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir("/sys/class/net") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if pid_of_iface(&name).is_some_and(|p| !crate::pid_alive(p)) {
                warn(&format!("removing stale interface {name}"));
                del_link(&name);
            }
        }
    }
}

/// A host-side veth name, `cl<pid in hex>v<n>` (at most 15 characters).
fn iface_name() -> String {
    let name = format!("cl{:x}v{}", std::process::id(), crate::next_seq());
    assert!(name.len() <= 15, "interface name too long: {name}");
    name
}

pub(crate) fn pid_of_iface(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("cl")?;
    let (pid, n) = rest.split_once('v')?;
    if pid.is_empty() || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    u32::from_str_radix(pid, 16).ok()
}

/// A veth pair from the host to a namespace, routed: each address family
/// gets a host-side and a namespace-side address on the pair and a default
/// route in the namespace via the host, so containers the host routes reach
/// the namespace and its answers come back. Forwarding for the family is on
/// while the uplink lives. The veth is removed on drop.
///
/// Docker sets the iptables `FORWARD` policy to `DROP` (accepting what
/// leaves its bridges, and replies): containers reach lab namespaces, and
/// namespaces reach published ports, but while dockerd runs two lab
/// namespaces do not reach each other through the host over IPv4.
#[derive(Debug)]
pub struct Uplink {
    host_if: String,
    ns_if: String,
    ns_name: String,
    host_addrs: Vec<IpAddr>,
    ns_addrs: Vec<IpAddr>,
    forwarding: Vec<Forwarding>,
}

impl Uplink {
    /// Joins `ns` to the host: `host_cidr` on the host side (e.g.
    /// `198.51.100.1/24` or `2001:db8:51::1/64`), `ns_cidr` on the
    /// namespace side (`198.51.100.2/24`, `2001:db8:51::2/64`). Add the
    /// other family with [`Uplink::with`].
    ///
    /// # Panics
    /// When the [`guard`](crate::guard) refuses a prefix (one overlapping
    /// the host's resolver, default route or package registries), or an
    /// `ip` command fails (e.g. the prefix is already on another host
    /// interface).
    #[track_caller]
    pub fn to_host(ns: &Netns, host_cidr: &str, ns_cidr: &str) -> Uplink {
        crate::guard::ensure_clear(&[host_cidr, ns_cidr]);
        let host_if = iface_name();
        let ns_if = ns.next_iface();
        sh(
            "ip",
            &[
                "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if, "netns", &ns.name,
            ],
        );
        ns.host_ifs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(host_if.clone());
        let mut up = Uplink {
            host_if,
            ns_if,
            ns_name: ns.name.clone(),
            host_addrs: Vec::new(),
            ns_addrs: Vec::new(),
            forwarding: Vec::new(),
        };
        // No IPv6 autoconfiguration on the lab link: addresses are static.
        let _ = std::fs::write(
            format!("/proc/sys/net/ipv6/conf/{}/accept_ra", up.host_if),
            "0",
        );
        sh("ip", &["link", "set", &up.host_if, "up"]);
        ns.exec_ok(&["ip", "link", "set", &up.ns_if, "up"]);
        up.add(ns, host_cidr, ns_cidr);
        up
    }

    /// Adds an address pair of the other family (or another pair); the
    /// first pair of each family also gets the namespace's default route.
    ///
    /// # Panics
    /// As [`Uplink::to_host`]; also when the namespace is gone.
    #[track_caller]
    pub fn with(mut self, host_cidr: &str, ns_cidr: &str) -> Uplink {
        let name = self.ns_name.clone();
        self.add_by_name(NsRef(&name), host_cidr, ns_cidr);
        self
    }

    #[track_caller]
    fn add(&mut self, ns: &Netns, host_cidr: &str, ns_cidr: &str) {
        self.add_by_name(NsRef(&ns.name), host_cidr, ns_cidr);
    }

    #[track_caller]
    fn add_by_name(&mut self, ns: NsRef<'_>, host_cidr: &str, ns_cidr: &str) {
        crate::guard::ensure_clear(&[host_cidr, ns_cidr]);
        let host_ip = cidr_addr(host_cidr);
        let ns_ip = cidr_addr(ns_cidr);
        assert_eq!(
            host_ip.is_ipv4(),
            ns_ip.is_ipv4(),
            "uplink addresses of different families: {host_cidr} and {ns_cidr}"
        );
        let v6 = host_ip.is_ipv6();
        let first = !self.host_addrs.iter().any(|a| a.is_ipv6() == v6);
        let fam = if v6 { "-6" } else { "-4" };
        let mut host = vec![fam, "addr", "add", host_cidr, "dev", &self.host_if];
        let mut inner = vec!["ip", fam, "addr", "add", ns_cidr, "dev", &self.ns_if];
        if v6 {
            host.push("nodad");
            inner.push("nodad");
        }
        sh("ip", &host);
        ns.exec_ok(&inner);
        if first {
            let gw = host_ip.to_string();
            ns.exec_ok(&["ip", fam, "route", "add", "default", "via", &gw]);
            self.forwarding.push(if v6 {
                Forwarding::ipv6()
            } else {
                Forwarding::ipv4()
            });
        }
        self.host_addrs.push(host_ip);
        self.ns_addrs.push(ns_ip);
    }

    /// Adds a host route to `cidr` through the namespace (for addresses the
    /// namespace holds beyond the uplink's prefix, see
    /// [`Netns::add_address`]); removed with the veth.
    ///
    /// # Panics
    /// When the [`guard`](crate::guard) refuses `cidr`, or `ip` fails.
    #[track_caller]
    pub fn route_to_ns(&self, cidr: &str) {
        crate::guard::ensure_clear(&[cidr]);
        let v6 = cidr.contains(':');
        let via = self
            .ns_addrs
            .iter()
            .find(|a| a.is_ipv6() == v6)
            .unwrap_or_else(|| panic!("uplink {} has no address for {cidr}", self.host_if))
            .to_string();
        let fam = if v6 { "-6" } else { "-4" };
        sh(
            "ip",
            &[fam, "route", "add", cidr, "via", &via, "dev", &self.host_if],
        );
    }

    /// The host-side interface (`cl<pid>v<n>`).
    pub fn host_if(&self) -> &str {
        &self.host_if
    }

    /// The namespace-side interface (`eth0`, `eth1`, …).
    pub fn ns_if(&self) -> &str {
        &self.ns_if
    }

    /// The host's IPv4 address on the link.
    pub fn host_ip4(&self) -> Option<IpAddr> {
        self.host_addrs.iter().copied().find(IpAddr::is_ipv4)
    }

    /// The namespace's IPv4 address on the link.
    pub fn ns_ip4(&self) -> Option<IpAddr> {
        self.ns_addrs.iter().copied().find(IpAddr::is_ipv4)
    }

    /// The host's IPv6 address on the link.
    pub fn host_ip6(&self) -> Option<IpAddr> {
        self.host_addrs.iter().copied().find(IpAddr::is_ipv6)
    }

    /// The namespace's IPv6 address on the link.
    pub fn ns_ip6(&self) -> Option<IpAddr> {
        self.ns_addrs.iter().copied().find(IpAddr::is_ipv6)
    }
}

impl Drop for Uplink {
    fn drop(&mut self) {
        // Gone already when its namespace was deleted first.
        del_link(&self.host_if);
        self.forwarding.clear();
    }
}

/// A namespace known by name only (the uplink does not borrow its
/// namespace).
#[derive(Clone, Copy)]
struct NsRef<'a>(&'a str);

impl NsRef<'_> {
    #[track_caller]
    fn exec_ok(&self, argv: &[&str]) {
        let mut full = vec!["netns", "exec", self.0];
        full.extend_from_slice(argv);
        sh("ip", &full);
    }
}

#[track_caller]
fn cidr_addr(cidr: &str) -> IpAddr {
    let (ip, len) = cidr
        .split_once('/')
        .unwrap_or_else(|| panic!("uplink address needs a prefix length: {cidr:?}"));
    len.parse::<u8>()
        .unwrap_or_else(|_| panic!("bad prefix length in {cidr:?}"));
    addr(ip)
}

/// A process the lab started (in a namespace or on the host); killed on
/// drop. Its stderr is kept for error messages.
#[derive(Debug)]
pub struct NsProcess {
    child: Child,
    what: String,
    stderr: Option<File>,
}

impl NsProcess {
    /// Starts `argv` (stdin and stdout to /dev/null, stderr kept).
    ///
    /// # Panics
    /// When it cannot be started.
    #[track_caller]
    pub fn spawn(argv: &[&str]) -> NsProcess {
        let (cmd, args) = argv.split_first().expect("a command");
        let stderr = tempfile::tempfile().ok();
        let err_stdio = match stderr.as_ref().and_then(|f| f.try_clone().ok()) {
            Some(f) => Stdio::from(f),
            None => Stdio::null(),
        };
        let child = Command::new(cmd)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err_stdio)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {argv:?}: {e}"));
        NsProcess {
            child,
            what: argv.join(" "),
            stderr,
        }
    }

    /// Adopts a child started elsewhere.
    pub fn adopt(child: Child, what: &str) -> NsProcess {
        NsProcess {
            child,
            what: what.into(),
            stderr: None,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while it runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        let Some(f) = &self.stderr else {
            return String::new();
        };
        let mut f = match f.try_clone() {
            Ok(f) => f,
            Err(_) => return String::new(),
        };
        let mut s = String::new();
        let _ = f.rewind();
        let _ = f.read_to_string(&mut s);
        s
    }

    /// Waits until it holds a socket listening on `port` (`udp` or `tcp`).
    ///
    /// # Panics
    /// When it exits first (with its stderr) or after 5 s.
    #[track_caller]
    pub fn wait_listening(&mut self, proto: &str, port: u16) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if !self.is_running() {
                panic!(
                    "{} exited before listening on {proto} port {port}: {}",
                    self.what,
                    self.stderr().trim()
                );
            }
            if listens(self.pid(), proto, port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{} does not listen on {proto} port {port}", self.what);
    }

    /// Kills it now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NsProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// True when process `pid` owns a socket bound to `port` (TCP: listening).
pub(crate) fn listens(pid: u32, proto: &str, port: u16) -> bool {
    let mut inodes = HashSet::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in dir.flatten() {
            if let Ok(target) = std::fs::read_link(e.path()) {
                let t = target.to_string_lossy();
                if let Some(ino) = t.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']')) {
                    inodes.insert(ino.to_string());
                }
            }
        }
    }
    let want_state = if proto == "tcp" { "0A" } else { "07" };
    let port_hex = format!(":{port:04X}");
    [proto.to_string(), format!("{proto}6")]
        .iter()
        .any(|table| {
            std::fs::read_to_string(format!("/proc/{pid}/net/{table}"))
                .unwrap_or_default()
                .lines()
                .skip(1)
                .any(|line| {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    f.len() > 9
                        && f[1].ends_with(&port_hex)
                        && f[3] == want_state
                        && inodes.contains(f[9])
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iface_names_fit_and_parse() {
        let n = iface_name();
        assert!(n.len() <= 15);
        assert_eq!(pid_of_iface(&n), Some(std::process::id()));
        assert_eq!(pid_of_iface("clinet12340"), None);
        assert_eq!(pid_of_iface("eth0"), None);
    }

    #[test]
    fn nslookup_answers() {
        let out = "Server:\t\t198.51.100.2\nAddress:\t198.51.100.2:53\n\nName:\tlab.test\nAddress: 198.51.100.2\n\nName:\tlab.test\nAddress: 2001:db8::2\n\n";
        assert_eq!(
            parse_nslookup(out),
            vec![
                "198.51.100.2".parse::<IpAddr>().unwrap(),
                "2001:db8::2".parse().unwrap()
            ]
        );
        let none = "Server:\t\t198.51.100.2\nAddress:\t198.51.100.2:53\n\n** server can't find x.test: NXDOMAIN\n";
        assert!(parse_nslookup(none).is_empty());
    }
}
