//! [`Lab`]: one owner for everything a test creates, plus the cordon binary
//! under test, built on the lab's guards.

use std::any::Any;
use std::cell::RefCell;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::docker::{exec_in, resolve_in, tcp_banner_in, EXEC_TIMEOUT};
use crate::netns::debug_probe;
use crate::{
    ContainerOpts, Dnsmasq, LabLock, Netns, NsProcess, SysctlGuard, TcpServer, TestContainer,
    TestNetwork, Uplink, PROBE_TIMEOUT_S,
};

/// What [`Lab::run`] starts.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Name prefix; the container is `cl-<name>-<pid>-<n>`.
    pub name: String,
    /// A network name; the default `bridge` when `None`.
    pub network: Option<String>,
    /// A fixed IPv4 address on that network.
    pub ip4: Option<String>,
    /// Labels.
    pub labels: Vec<(String, String)>,
    /// Published ports: (container port/tcp, host port).
    pub publish: Vec<(u16, u16)>,
    /// Added capabilities, e.g. `NET_ADMIN`.
    pub cap_add: Vec<String>,
    /// DNS servers (always lab addresses).
    pub dns: Vec<String>,
    /// A TCP server inside the container: (port, banner).
    pub serve: Option<(u16, String)>,
    /// The container's command, instead of the default (or the server).
    pub cmd: Option<Vec<String>>,
    /// The image, when not the lab image.
    pub image: Option<String>,
}

impl Run {
    /// A container named `name` on the default bridge.
    pub fn named(name: &str) -> Run {
        Run {
            name: name.into(),
            ..Default::default()
        }
    }
    /// On this network.
    pub fn on(mut self, network: &str) -> Run {
        self.network = Some(network.into());
        self
    }
    /// With this label.
    pub fn label(mut self, k: &str, v: &str) -> Run {
        self.labels.push((k.into(), v.into()));
        self
    }
    /// Publishing container port `port`/tcp on host port `host_port`.
    pub fn publish(mut self, port: u16, host_port: u16) -> Run {
        self.publish.push((port, host_port));
        self
    }
    /// Serving `banner` on TCP `port`.
    pub fn serve(mut self, port: u16, banner: &str) -> Run {
        self.serve = Some((port, banner.into()));
        self
    }
    /// With this DNS server.
    pub fn dns(mut self, server: &str) -> Run {
        self.dns.push(server.into());
        self
    }
    /// With this capability added.
    pub fn cap(mut self, cap: &str) -> Run {
        self.cap_add.push(cap.into());
        self
    }
    /// With this IPv4 address on its network.
    pub fn ip4(mut self, ip: &str) -> Run {
        self.ip4 = Some(ip.into());
        self
    }
    /// From this image (one made with [`crate::image::labelled`]) instead
    /// of the lab image.
    pub fn image(mut self, image: &str) -> Run {
        self.image = Some(image.into());
        self
    }
    /// Running `sh -c script` as its command.
    pub fn sh(mut self, script: &str) -> Run {
        self.cmd = Some(vec!["sh".into(), "-c".into(), script.into()]);
        self
    }

    fn opts(&self) -> ContainerOpts {
        let mut o = ContainerOpts::new(&self.name);
        if let Some(image) = &self.image {
            o = o.image(image);
        }
        o.network = self.network.clone();
        o.ip4 = self.ip4.clone();
        o.labels = self.labels.clone();
        for (port, host) in &self.publish {
            o = o.publish(*port, *host);
        }
        o.cap_add = self.cap_add.clone();
        o.dns = self.dns.clone();
        if let Some((port, banner)) = &self.serve {
            o = o.serve_tcp(*port, banner);
        }
        if let Some(cmd) = &self.cmd {
            let argv: Vec<&str> = cmd.iter().map(String::as_str).collect();
            o = o.cmd(&argv);
        }
        o
    }
}

/// A running lab container, as [`Lab::run`] reports it.
#[derive(Debug, Clone)]
pub struct Ctr {
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: String,
    /// Its IPv4 address on its network.
    pub ip4: String,
    /// Its global IPv6 address, if any.
    pub ip6: Option<String>,
}

/// A lab host made by [`Lab::netns`].
#[derive(Debug, Clone)]
pub struct Ns {
    /// The namespace's name.
    pub name: String,
    /// Its IPv4 address.
    pub ip4: String,
    /// Its IPv6 address, if it has one.
    pub ip6: Option<String>,
    /// The host's address on the link to it.
    pub host_ip4: String,
}

/// A lab: holds the [`lock`](crate::lock()) and owns what it creates
/// (namespaces, uplinks, servers, networks, containers, processes, sysctl
/// changes), removing it in reverse order on drop, also while a failed test
/// unwinds. It runs the cordon binary under test with a private state
/// directory and calls `cordon down` when it starts and ends (after
/// stopping the processes it spawned, such as a cordon daemon).
pub struct Lab {
    cordon: PathBuf,
    state: tempfile::TempDir,
    owned: RefCell<Vec<Box<dyn Any>>>,
    namespaces: RefCell<Vec<Netns>>,
    processes: RefCell<Vec<NsProcess>>,
    tag: String,
    _lock: LabLock,
}

impl Lab {
    /// A new lab; `cordon` is the binary under test. Waits for the lab
    /// lock, makes sure the test image exists, then removes any cordon
    /// tables left over.
    ///
    /// # Panics
    /// When Docker is unreachable or the image cannot be built.
    pub fn new(cordon: &str) -> Lab {
        let lock = crate::lock();
        crate::ensure_test_image();
        let lab = Lab {
            cordon: PathBuf::from(cordon),
            state: tempfile::tempdir().expect("lab state dir"),
            owned: RefCell::default(),
            namespaces: RefCell::default(),
            processes: RefCell::default(),
            tag: format!("{}-{}", std::process::id(), crate::next_seq()),
            _lock: lock,
        };
        let _ = lab.cordon(&["down"]);
        lab
    }

    fn own<T: Any>(&self, guard: T) {
        self.owned.borrow_mut().push(Box::new(guard));
    }

    pub(crate) fn with_ns<T>(&self, ns: &Ns, f: impl FnOnce(&Netns) -> T) -> T {
        let list = self.namespaces.borrow();
        let netns = list
            .iter()
            .find(|n| n.name() == ns.name)
            .unwrap_or_else(|| panic!("namespace {} is not this lab's", ns.name));
        f(netns)
    }

    /// A short unique suffix for names this lab creates.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Runs the cordon binary with the lab's own state directory.
    pub fn cordon(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run cordon")
    }

    /// Starts a long-running cordon command (the daemon), stopped when the
    /// lab drops.
    pub fn spawn_cordon(&self, args: &[&str]) {
        self.spawn(&mut self.command(args));
    }

    /// The cordon binary under test with the lab's own state directory and
    /// admin socket (`CORDON_STATE_DIR`, `CORDON_SOCKET`), not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.cordon);
        c.args(args)
            .env("CORDON_STATE_DIR", self.state.path())
            .env("CORDON_SOCKET", self.socket());
        c
    }

    /// The lab's state directory.
    pub fn state_dir(&self) -> &std::path::Path {
        self.state.path()
    }

    /// The admin socket the lab's daemon listens on.
    pub fn socket(&self) -> PathBuf {
        self.state.path().join("admin.sock")
    }

    /// Runs cordon and insists it succeeds; returns its stdout.
    pub fn cordon_ok(&self, args: &[&str]) -> String {
        let out = self.cordon(args);
        assert!(
            out.status.success(),
            "cordon {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A file in the lab's temporary directory with this content.
    pub fn file(&self, name: &str, content: &str) -> String {
        let p = self.state.path().join(name);
        std::fs::write(&p, content).expect("write lab file");
        p.display().to_string()
    }

    /// Starts a long-running process, killed when the lab drops.
    pub fn spawn(&self, cmd: &mut Command) {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn lab process");
        self.processes
            .borrow_mut()
            .push(NsProcess::adopt(child, "lab process"));
    }

    /// A TCP server on the host itself, bound to `addr`, answering each
    /// connection with `banner`.
    pub fn serve_host(&self, addr: &str, port: u16, banner: &str) {
        self.own(TcpServer::on_host(addr, port, banner));
    }

    /// The full `nft list ruleset` of the host.
    pub fn ruleset(&self) -> String {
        crate::sh("nft", &["list", "ruleset"])
    }

    /// A namespace joined to the host by a veth: the host side gets
    /// `host_ip4`/24 (and `host_ip6`/64), the namespace `ns_ip4` (and
    /// `ns_ip6`) with its default route via the host, so containers routed
    /// by the host reach it.
    pub fn netns(&self, short: &str, host_ip4: &str, ns_ip4: &str, v6: Option<(&str, &str)>) -> Ns {
        let netns = Netns::new(short);
        let mut up = Uplink::to_host(&netns, &format!("{host_ip4}/24"), &format!("{ns_ip4}/24"));
        if let Some((h6, n6)) = v6 {
            up = up.with(&format!("{h6}/64"), &format!("{n6}/64"));
        }
        let ns = Ns {
            name: netns.name().to_string(),
            ip4: ns_ip4.to_string(),
            ip6: v6.map(|(_, n)| n.to_string()),
            host_ip4: host_ip4.to_string(),
        };
        self.namespaces.borrow_mut().push(netns);
        self.own(up);
        ns
    }

    /// The usual pair of lab hosts: the internet, 198.51.100.2, serving
    /// `hello-inet` on port 80, and a LAN host, 10.`lan`.0.2, serving
    /// `hello-lan` on port 80; namespaces named after `tag`.
    pub fn internet_and_lan(&self, tag: &str, lan: u8) -> (Ns, Ns) {
        let inet = self.netns(&format!("inet{tag}"), "198.51.100.1", "198.51.100.2", None);
        self.serve(&inet, 80, "hello-inet");
        let lan = self.netns(
            &format!("lan{tag}"),
            &format!("10.{lan}.0.1"),
            &format!("10.{lan}.0.2"),
            None,
        );
        self.serve(&lan, 80, "hello-lan");
        (inet, lan)
    }

    /// A TCP server in `ns` on `port` (IPv4 and IPv6) answering each
    /// connection with `banner`.
    pub fn serve(&self, ns: &Ns, port: u16, banner: &str) {
        let server = self.with_ns(ns, |n| TcpServer::banner(n, port, banner));
        self.own(server);
    }

    /// A DNS server (dnsmasq) in `ns` answering `name` with `addr` and
    /// nothing else (no upstream, no host files).
    pub fn dns_server(&self, ns: &Ns, name: &str, addr: &str) {
        self.dns_records(ns, &[(name, addr)]);
    }

    /// A DNS server (dnsmasq) on the namespace's address answering each
    /// `(name, address)` record, for the name and its subdomains, TTL 0.
    pub fn dns_records(&self, ns: &Ns, records: &[(&str, &str)]) {
        let server = self.with_ns(ns, |n| Dnsmasq::start(n, &ns.ip4, records));
        self.own(server);
    }

    /// True when a TCP connection from `ns` to `ip`:`port` returns `banner`.
    pub fn ns_reaches(&self, ns: &Ns, ip: &str, port: u16, banner: &str) -> bool {
        self.with_ns(ns, |n| n.reaches(ip, port, banner))
    }

    /// Turns on IPv6 forwarding on the host; the old value comes back when
    /// the lab drops.
    pub fn ipv6_forwarding(&self) {
        self.own(SysctlGuard::set("net.ipv6.conf.all.forwarding", "1"));
    }

    /// A user-defined bridge network with these subnets; returns its name.
    pub fn network(&self, name: &str, subnet4: &str, subnet6: Option<&str>) -> String {
        let net = TestNetwork::create(name, subnet4, subnet6);
        let name = net.name().to_string();
        self.own(net);
        name
    }

    /// An image with the lab image's content and these labels (see
    /// [`crate::image::labelled`]), removed when the lab drops; returns its
    /// reference.
    pub fn labelled_image(&self, labels: &[(&str, &str)]) -> String {
        let name = format!("cordon-test-labelled:{}", self.tag);
        let img = crate::image::labelled(&name, labels);
        self.own(img);
        name
    }

    /// Creates and starts a container from the lab image.
    pub fn run(&self, spec: Run) -> Ctr {
        let c = TestContainer::run(spec.opts());
        let ctr = Ctr {
            name: c.name.clone(),
            id: c.id.clone(),
            ip4: c.ip4.clone(),
            ip6: c.ip6.clone(),
        };
        self.own(c);
        ctr
    }

    /// The network namespace of container `ctr`, `/proc/<pid>/ns/net`
    /// (to send from it as the container would, from a thread of the test).
    pub fn netns_of(&self, ctr: &Ctr) -> std::path::PathBuf {
        let i = crate::docker::block_on(crate::docker::client().inspect_container(&ctr.id, None))
            .unwrap_or_else(|e| panic!("cannot inspect {}: {e}", ctr.name));
        let pid = i.state.and_then(|s| s.pid).unwrap_or(0);
        assert!(pid > 0, "container {} is not running", ctr.name);
        std::path::PathBuf::from(format!("/proc/{pid}/ns/net"))
    }

    /// Runs `sh -c cmd` in the container; returns the exit code and the
    /// output (stdout, then stderr).
    pub fn exec(&self, ctr: &Ctr, cmd: &str) -> (i64, String) {
        let r = exec_in(&ctr.id, &["sh", "-c", cmd], EXEC_TIMEOUT);
        (r.exit_code, r.output())
    }

    /// True when a TCP connection from the container to `ip`:`port`
    /// returns `banner` (a connection that merely opens is not enough).
    pub fn reaches(&self, ctr: &Ctr, ip: &str, port: u16, banner: &str) -> bool {
        let got = tcp_banner_in(&ctr.id, ip, port, PROBE_TIMEOUT_S);
        debug_probe(&ctr.name, ip, port, banner, &got);
        got.is_some_and(|g| g.contains(banner))
    }

    /// True when the container resolves `name` through `server`.
    pub fn resolves(&self, ctr: &Ctr, name: &str, server: &str) -> bool {
        !resolve_in(&ctr.id, name, server).is_empty()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // The daemon first: it would restore the tables `cordon down`
        // removes.
        let mut processes = std::mem::take(&mut *self.processes.borrow_mut());
        while let Some(p) = processes.pop() {
            drop(p);
        }
        let _ = self.cordon(&["down"]);
        let mut owned = std::mem::take(&mut *self.owned.borrow_mut());
        while let Some(guard) = owned.pop() {
            drop(guard);
        }
        let mut namespaces = std::mem::take(&mut *self.namespaces.borrow_mut());
        while let Some(ns) = namespaces.pop() {
            drop(ns);
        }
    }
}
