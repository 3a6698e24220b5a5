//! Lab networks and containers through the Docker Engine API (bollard),
//! callable from plain `#[test]` functions: every call runs on a tokio
//! runtime the lab owns ([`block_on`]).
//!
//! Every container and network is named `cl-<prefix>-<pid>-<n>`, carries
//! the creating process's id under the label [`PID_LABEL`], and is removed
//! when its guard drops; the first Docker use of a process also removes
//! what killed test runs left behind.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointIpamConfig, EndpointSettings,
    HostConfig, Ipam, IpamConfig, NetworkCreateRequest, NetworkDisconnectRequest, NetworkingConfig,
    PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use crate::netns::{debug_probe, parse_nslookup};
use crate::{addr, probe, warn, PID_LABEL, PROBE_TIMEOUT_S};

/// The image lab containers run: busybox only, imported from the host's
/// `/bin/busybox` (see [`image`](crate::image)).
pub const TEST_IMAGE: &str = "cordon-test-bb:latest";

/// How long an exec may run unless told otherwise.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(10);

/// The lab's tokio runtime (multi-threaded, never shut down).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cordon-lab")
            .enable_all()
            .build()
            .expect("cordon-lab: cannot build a tokio runtime")
    })
}

/// Runs a future to completion on the lab's runtime, from synchronous
/// code; also from inside another runtime (a `#[tokio::test]`, a guard
/// dropped in async code), on a helper thread.
pub fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(|| runtime().block_on(fut))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    } else {
        runtime().block_on(fut)
    }
}

fn connection() -> &'static Result<Docker, String> {
    static DOCKER: OnceLock<Result<Docker, String>> = OnceLock::new();
    DOCKER.get_or_init(|| {
        block_on(async {
            let d = Docker::connect_with_local_defaults()
                .map_err(|e| format!("Docker is not reachable ({e}); start dockerd"))?;
            let d = tokio::time::timeout(Duration::from_secs(5), d.negotiate_version())
                .await
                .map_err(|_| "dockerd does not answer (timeout); restart it".to_string())?
                .map_err(|e| format!("dockerd does not answer ({e}); start dockerd"))?;
            Ok(d)
        })
    })
}

/// The lab's Docker client, connected to the local dockerd.
///
/// # Panics
/// When dockerd cannot be reached.
#[track_caller]
pub fn client() -> &'static Docker {
    match connection() {
        Ok(d) => d,
        Err(e) => panic!("cordon-lab: {e}"),
    }
}

/// Why Docker lab tests cannot run, if so.
pub(crate) fn unavailable() -> Option<String> {
    let d = match connection() {
        Ok(d) => d,
        Err(e) => return Some(e.clone()),
    };
    let have_image = block_on(d.inspect_image(TEST_IMAGE)).is_ok();
    if !have_image && !std::path::Path::new("/bin/busybox").exists() {
        return Some(format!(
            "no image {TEST_IMAGE} and no /bin/busybox to build it (apt-get install busybox-static)"
        ));
    }
    None
}

/// Makes sure [`TEST_IMAGE`] exists (and is current), importing it from
/// `/bin/busybox` when not; once per process.
///
/// # Panics
/// When it cannot be built.
#[track_caller]
pub fn ensure_test_image() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let d = client();
    if let Err(e) = DONE.get_or_init(|| block_on(crate::image::ensure(d, TEST_IMAGE))) {
        panic!("cordon-lab: {e}");
    }
}

/// The client, the image, and (once per process) the removal of lab
/// objects left by processes that no longer exist.
#[track_caller]
fn ready() -> &'static Docker {
    static SWEPT: OnceLock<()> = OnceLock::new();
    let d = client();
    ensure_test_image();
    SWEPT.get_or_init(|| block_on(sweep_stale(d)));
    d
}

async fn sweep_stale(d: &Docker) {
    let filters = HashMap::from([("label", vec![PID_LABEL])]);
    let stale = |labels: Option<&HashMap<String, String>>| {
        labels
            .and_then(|l| l.get(PID_LABEL))
            .and_then(|p| p.parse::<u32>().ok())
            .is_some_and(|p| !crate::pid_alive(p))
    };
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    for c in d.list_containers(Some(opts)).await.unwrap_or_default() {
        if stale(c.labels.as_ref()) {
            if let Some(id) = c.id {
                warn(&format!("removing stale container {:?}", c.names));
                remove_container(d, &id).await;
            }
        }
    }
    let opts = ListNetworksOptionsBuilder::new().filters(&filters).build();
    for n in d.list_networks(Some(opts)).await.unwrap_or_default() {
        if stale(n.labels.as_ref()) {
            if let Some(id) = n.id {
                warn(&format!("removing stale network {:?}", n.name));
                remove_network(d, &id).await;
            }
        }
    }
}

/// Containers and networks of this process that still exist (when Docker
/// is reachable at all).
pub(crate) fn leftovers() -> Vec<String> {
    let Ok(d) = connection() else {
        return Vec::new();
    };
    let label = format!("{PID_LABEL}={}", std::process::id());
    let filters = HashMap::from([("label", vec![label.as_str()])]);
    let mut found = Vec::new();
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    for c in block_on(d.list_containers(Some(opts))).unwrap_or_default() {
        found.push(format!("container {:?}", c.names.unwrap_or_default()));
    }
    let opts = ListNetworksOptionsBuilder::new().filters(&filters).build();
    for n in block_on(d.list_networks(Some(opts))).unwrap_or_default() {
        found.push(format!("network {}", n.name.unwrap_or_default()));
    }
    found
}

async fn remove_container(d: &Docker, id: &str) {
    let opts = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match d.remove_container(id, Some(opts)).await {
        Ok(()) => {}
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(e) => warn(&format!("cannot remove container {id}: {e}")),
    }
}

async fn remove_network(d: &Docker, id: &str) {
    let err = match d.remove_network(id).await {
        Ok(()) => return,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => return,
        Err(e) => e,
    };
    // Still in use: a container outlived its network's guard. Detach it
    // (its own guard removes it) and try again.
    if let Ok(n) = d.inspect_network(id, None).await {
        for c in n.containers.unwrap_or_default().into_keys() {
            let req = NetworkDisconnectRequest {
                container: c,
                force: Some(true),
            };
            let _ = d.disconnect_network(id, req).await;
        }
        if d.remove_network(id).await.is_ok() {
            return;
        }
    }
    warn(&format!("cannot remove network {id}: {err}"));
}

/// A user-defined Docker bridge network, removed on drop.
#[derive(Debug)]
pub struct TestNetwork {
    name: String,
    id: String,
    subnet4: String,
    subnet6: Option<String>,
    gateway4: Option<String>,
    gateway6: Option<String>,
}

impl TestNetwork {
    /// Creates network `cl-<prefix>-<pid>-<n>` (driver `bridge`) on
    /// `subnet4` (e.g. `10.201.0.0/24`) and, with IPv6 enabled, `subnet6`
    /// (e.g. `2001:db8:201::/64`).
    ///
    /// # Panics
    /// When the [`guard`](crate::guard) refuses a subnet, or Docker refuses
    /// (e.g. the subnet overlaps another network).
    #[track_caller]
    pub fn create(prefix: &str, subnet4: &str, subnet6: Option<&str>) -> TestNetwork {
        crate::guard::ensure_clear(
            &[Some(subnet4), subnet6]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>(),
        );
        let d = ready();
        let name = crate::unique_name(prefix);
        let mut config = vec![IpamConfig {
            subnet: Some(subnet4.into()),
            ..Default::default()
        }];
        if let Some(s6) = subnet6 {
            config.push(IpamConfig {
                subnet: Some(s6.into()),
                ..Default::default()
            });
        }
        let req = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            enable_ipv6: Some(subnet6.is_some()),
            ipam: Some(Ipam {
                config: Some(config),
                ..Default::default()
            }),
            labels: Some(HashMap::from([(
                PID_LABEL.to_string(),
                std::process::id().to_string(),
            )])),
            ..Default::default()
        };
        let created = block_on(d.create_network(req))
            .unwrap_or_else(|e| panic!("cannot create network {name}: {e}"));
        let mut net = TestNetwork {
            name,
            id: created.id,
            subnet4: subnet4.into(),
            subnet6: subnet6.map(Into::into),
            gateway4: None,
            gateway6: None,
        };
        // Docker 20.10 does not report gateways it chose; the bridge has them.
        for (ip, scope) in iface_addrs(&net.bridge()) {
            match ip {
                IpAddr::V4(_) if net.gateway4.is_none() => net.gateway4 = Some(ip.to_string()),
                IpAddr::V6(_) if scope == "global" && net.gateway6.is_none() => {
                    net.gateway6 = Some(ip.to_string())
                }
                _ => {}
            }
        }
        net
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its Linux bridge on the host, `br-<first 12 of id>`.
    pub fn bridge(&self) -> String {
        format!("br-{}", &self.id[..12.min(self.id.len())])
    }

    /// Its IPv4 subnet.
    pub fn subnet4(&self) -> &str {
        &self.subnet4
    }

    /// Its IPv6 subnet, if IPv6 is on.
    pub fn subnet6(&self) -> Option<&str> {
        self.subnet6.as_deref()
    }

    /// The bridge's IPv4 address (the containers' gateway).
    pub fn gateway4(&self) -> Option<&str> {
        self.gateway4.as_deref()
    }

    /// The bridge's IPv6 address, if IPv6 is on.
    pub fn gateway6(&self) -> Option<&str> {
        self.gateway6.as_deref()
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        if let Ok(d) = connection() {
            block_on(remove_network(d, &self.id));
        }
    }
}

/// A published port: `container_port` on the host's `host_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// The container's port.
    pub container_port: u16,
    /// The host's port.
    pub host_port: u16,
    /// The host address it binds (`0.0.0.0` when `None`).
    pub host_ip: Option<String>,
    /// UDP instead of TCP.
    pub udp: bool,
}

/// What [`TestContainer::run`] starts. Build with [`ContainerOpts::new`]
/// and the chained setters.
#[derive(Debug, Clone, Default)]
pub struct ContainerOpts {
    /// Name prefix; the container is `cl-<name>-<pid>-<n>`.
    pub name: String,
    /// A network name, or a network mode (`host`, `none`, `container:ID`);
    /// Docker's default `bridge` when `None`.
    pub network: Option<String>,
    /// A fixed IPv4 address (user-defined networks only).
    pub ip4: Option<String>,
    /// A fixed IPv6 address (user-defined IPv6 networks only).
    pub ip6: Option<String>,
    /// Labels.
    pub labels: Vec<(String, String)>,
    /// Published ports.
    pub publish: Vec<Publish>,
    /// Added capabilities, e.g. `NET_ADMIN`.
    pub cap_add: Vec<String>,
    /// DNS servers (lab addresses). When empty the container gets
    /// 198.51.100.53, a lab address no one serves: never the machine's
    /// resolver.
    pub dns: Vec<String>,
    /// The command; `sleep 3600` when `None`.
    pub cmd: Option<Vec<String>>,
    /// TCP banner servers inside the container: (port, banner), started in
    /// the background before the command; `run` returns once they listen.
    pub serve_tcp: Vec<(u16, String)>,
    /// Another image than [`TEST_IMAGE`].
    pub image: Option<String>,
    /// Security knobs of `HostConfig` (privileged, namespaces, mounts,
    /// limits, user): all off by default.
    pub hardening: HostKnobs,
}

/// The `HostConfig` security and resource knobs a lab container can be
/// given (audit tests build both faulty and hardened containers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostKnobs {
    /// `--privileged`.
    pub privileged: bool,
    /// `--pid`, e.g. `host`.
    pub pid_mode: Option<String>,
    /// `-v SRC:DST[:ro]` binds.
    pub binds: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--memory` in bytes.
    pub memory: Option<i64>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--user`.
    pub user: Option<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--security-opt`, e.g. `no-new-privileges`, `seccomp=unconfined`.
    pub security_opt: Vec<String>,
}

impl ContainerOpts {
    /// A container named after `name` on the default bridge, running
    /// `sleep 3600`.
    pub fn new(name: &str) -> ContainerOpts {
        ContainerOpts {
            name: name.into(),
            ..Default::default()
        }
    }

    /// On this lab network.
    pub fn network(self, net: &TestNetwork) -> ContainerOpts {
        self.network_name(net.name())
    }

    /// On the network of this name (e.g. `bridge`).
    pub fn network_name(mut self, net: &str) -> ContainerOpts {
        self.network = Some(net.into());
        self
    }

    /// With this IPv4 address.
    pub fn ip4(mut self, ip: &str) -> ContainerOpts {
        self.ip4 = Some(ip.into());
        self
    }

    /// With this IPv6 address.
    pub fn ip6(mut self, ip: &str) -> ContainerOpts {
        self.ip6 = Some(ip.into());
        self
    }

    /// With this label.
    pub fn label(mut self, key: &str, value: &str) -> ContainerOpts {
        self.labels.push((key.into(), value.into()));
        self
    }

    /// Publishing TCP `container_port` on host port `host_port` (all the
    /// host's IPv4 addresses, `0.0.0.0`).
    pub fn publish(mut self, container_port: u16, host_port: u16) -> ContainerOpts {
        self.publish.push(Publish {
            container_port,
            host_port,
            host_ip: None,
            udp: false,
        });
        self
    }

    /// Publishing TCP `container_port` on `host_ip`:`host_port` only.
    pub fn publish_on(mut self, host_ip: &str, container_port: u16, host_port: u16) -> Self {
        self.publish.push(Publish {
            container_port,
            host_port,
            host_ip: Some(host_ip.into()),
            udp: false,
        });
        self
    }

    /// Publishing UDP `container_port` on host port `host_port`.
    pub fn publish_udp(mut self, container_port: u16, host_port: u16) -> ContainerOpts {
        self.publish.push(Publish {
            container_port,
            host_port,
            host_ip: None,
            udp: true,
        });
        self
    }

    /// With this capability added (`NET_ADMIN`, …).
    pub fn cap_add(mut self, cap: &str) -> ContainerOpts {
        self.cap_add.push(cap.into());
        self
    }

    /// With this DNS server (a lab address).
    pub fn dns(mut self, server: &str) -> ContainerOpts {
        self.dns.push(server.into());
        self
    }

    /// Running this command instead of `sleep 3600`.
    pub fn cmd(mut self, argv: &[&str]) -> ContainerOpts {
        self.cmd = Some(argv.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Serving `banner` on TCP `port` (IPv4 and IPv6) with busybox `nc`.
    ///
    /// # Panics
    /// When the banner is not `[A-Za-z0-9._@+/-]+`.
    #[track_caller]
    pub fn serve_tcp(mut self, port: u16, banner: &str) -> ContainerOpts {
        crate::servers::check_banner(banner);
        self.serve_tcp.push((port, banner.into()));
        self
    }

    /// From another image.
    pub fn image(mut self, image: &str) -> ContainerOpts {
        self.image = Some(image.into());
        self
    }

    /// `--privileged`.
    pub fn privileged(mut self) -> ContainerOpts {
        self.hardening.privileged = true;
        self
    }

    /// `--pid MODE` (e.g. `host`).
    pub fn pid_mode(mut self, mode: &str) -> ContainerOpts {
        self.hardening.pid_mode = Some(mode.into());
        self
    }

    /// `-v BIND` (`SRC:DST[:ro]`).
    pub fn bind(mut self, bind: &str) -> ContainerOpts {
        self.hardening.binds.push(bind.into());
        self
    }

    /// `--cap-drop CAP` (`ALL` too).
    pub fn cap_drop(mut self, cap: &str) -> ContainerOpts {
        self.hardening.cap_drop.push(cap.into());
        self
    }

    /// `--memory BYTES`.
    pub fn memory(mut self, bytes: i64) -> ContainerOpts {
        self.hardening.memory = Some(bytes);
        self
    }

    /// `--pids-limit N`.
    pub fn pids_limit(mut self, n: i64) -> ContainerOpts {
        self.hardening.pids_limit = Some(n);
        self
    }

    /// `--user USER[:GROUP]`.
    pub fn user(mut self, user: &str) -> ContainerOpts {
        self.hardening.user = Some(user.into());
        self
    }

    /// `--read-only`.
    pub fn read_only(mut self) -> ContainerOpts {
        self.hardening.read_only = true;
        self
    }

    /// `--security-opt OPT`.
    pub fn security_opt(mut self, opt: &str) -> ContainerOpts {
        self.hardening.security_opt.push(opt.into());
        self
    }

    fn command(&self) -> Vec<String> {
        let main = self
            .cmd
            .clone()
            .unwrap_or_else(|| vec!["sleep".into(), "3600".into()]);
        if self.serve_tcp.is_empty() {
            return main;
        }
        let mut script = String::new();
        for (port, banner) in &self.serve_tcp {
            script.push_str(&format!("nc -ll -p {port} -e echo {banner} & "));
        }
        script.push_str("exec");
        for arg in &main {
            script.push(' ');
            script.push_str(&shell_quote(arg));
        }
        vec!["sh".into(), "-c".into(), script]
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What a command run in a container did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecResult {
    /// Its exit code; -1 when unknown (it timed out).
    pub exit_code: i64,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// True when it ran out of time (and may still be running).
    pub timed_out: bool,
}

impl ExecResult {
    /// True when it exited with 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0 && !self.timed_out
    }

    /// Stdout followed by stderr.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A running lab container, force-removed on drop.
#[derive(Debug)]
pub struct TestContainer {
    /// Its name, `cl-<prefix>-<pid>-<n>`.
    pub name: String,
    /// Its id.
    pub id: String,
    /// The network it was started on.
    pub network: String,
    /// Its IPv4 address there.
    pub ip4: String,
    /// Its global IPv6 address there, if any.
    pub ip6: Option<String>,
    /// Its MAC address there.
    pub mac: Option<String>,
    /// The host pid of its first process.
    pub pid: u32,
}

impl TestContainer {
    /// Creates a container from [`TEST_IMAGE`] (built first if missing)
    /// without starting it (`pid` 0, no addresses): for what Docker
    /// accepts but this host cannot run. Removed on drop like the others.
    ///
    /// # Panics
    /// When Docker refuses.
    #[track_caller]
    pub fn create(opts: &ContainerOpts) -> TestContainer {
        let d = ready();
        let name = crate::unique_name(&opts.name);
        let network = opts.network.clone().unwrap_or_else(|| "bridge".into());
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for p in &opts.publish {
            let key = format!("{}/{}", p.container_port, if p.udp { "udp" } else { "tcp" });
            bindings
                .entry(key)
                .or_default()
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into())),
                    host_port: Some(p.host_port.to_string()),
                });
        }
        let exposed: Vec<String> = bindings.keys().cloned().collect();
        let mut labels: HashMap<String, String> = opts.labels.iter().cloned().collect();
        labels.insert(PID_LABEL.into(), std::process::id().to_string());
        let endpoint = EndpointSettings {
            ipam_config: (opts.ip4.is_some() || opts.ip6.is_some()).then(|| EndpointIpamConfig {
                ipv4_address: opts.ip4.clone(),
                ipv6_address: opts.ip6.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        // Docker refuses DNS servers with the host's network (or none, or
        // another container's), and endpoints with another container's.
        let shared = network.starts_with("container:");
        let own_dns = !matches!(network.as_str(), "host" | "none") && !shared;
        let k = &opts.hardening;
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        let body = ContainerCreateBody {
            image: Some(opts.image.clone().unwrap_or_else(|| TEST_IMAGE.into())),
            user: k.user.clone(),
            cmd: Some(opts.command()),
            labels: Some(labels),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            host_config: Some(HostConfig {
                network_mode: Some(network.clone()),
                port_bindings: (!bindings.is_empty()).then_some(bindings),
                cap_add: (!opts.cap_add.is_empty()).then(|| opts.cap_add.clone()),
                dns: own_dns.then(|| {
                    if opts.dns.is_empty() {
                        vec!["198.51.100.53".into()]
                    } else {
                        opts.dns.clone()
                    }
                }),
                privileged: k.privileged.then_some(true),
                pid_mode: k.pid_mode.clone(),
                binds: list(&k.binds),
                cap_drop: list(&k.cap_drop),
                memory: k.memory,
                pids_limit: k.pids_limit,
                readonly_rootfs: k.read_only.then_some(true),
                security_opt: list(&k.security_opt),
                ..Default::default()
            }),
            networking_config: (!shared).then(|| NetworkingConfig {
                endpoints_config: Some(HashMap::from([(network.clone(), endpoint)])),
            }),
            ..Default::default()
        };
        let created = block_on(d.create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            body,
        ))
        .unwrap_or_else(|e| panic!("cannot create container {name}: {e}"));
        TestContainer {
            name,
            id: created.id,
            network,
            ip4: String::new(),
            ip6: None,
            mac: None,
            pid: 0,
        }
    }

    /// Creates and starts a container from [`TEST_IMAGE`] (built first if
    /// missing) and waits until its servers listen and its IPv6 address
    /// (if any) is usable.
    ///
    /// # Panics
    /// When Docker refuses or the container does not come up.
    #[track_caller]
    pub fn run(opts: ContainerOpts) -> TestContainer {
        // From here on the guard removes it, whatever fails next.
        let mut ctr = TestContainer::create(&opts);
        let d = ready();
        block_on(d.start_container(&ctr.id, None))
            .unwrap_or_else(|e| panic!("cannot start container {}: {e}", ctr.name));
        let info = ctr.inspect();
        ctr.pid = info
            .state
            .as_ref()
            .and_then(|s| s.pid)
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0)
            .unwrap_or_else(|| panic!("container {} is not running", ctr.name));
        if ctr.network.starts_with("container:") {
            // No endpoint of its own: it lives in the other's namespace.
            for (port, _) in &opts.serve_tcp {
                ctr.wait_listening(*port);
            }
            return ctr;
        }
        let ep = info
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(&ctr.network))
            .unwrap_or_else(|| panic!("{} has no endpoint on {}", ctr.name, ctr.network));
        ctr.ip4 = ep.ip_address.clone().unwrap_or_default();
        ctr.ip6 = ep.global_ipv6_address.clone().filter(|a| !a.is_empty());
        ctr.mac = ep.mac_address.clone().filter(|a| !a.is_empty());
        for (port, _) in &opts.serve_tcp {
            ctr.wait_listening(*port);
        }
        if ctr.ip6.is_some() {
            let gateway = ep.ipv6_gateway.and_then(|g| g.parse().ok());
            ctr.wait_ipv6_ready(gateway);
        }
        ctr
    }

    /// Waits until something in the container listens on TCP `port`.
    ///
    /// # Panics
    /// After 5 s.
    #[track_caller]
    pub fn wait_listening(&self, port: u16) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if any_listens(self.pid, port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{} does not listen on TCP port {port}", self.name);
    }

    /// Waits (up to 3 s) until IPv6 is usable: no global address of the
    /// container is tentative (duplicate address detection), nor the
    /// gateway's on the host (a new bridge starts its detection when its
    /// first port comes up).
    fn wait_ipv6_ready(&self, gateway: Option<std::net::Ipv6Addr>) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            let mine = format!("/proc/{}/net/if_inet6", self.pid);
            if !ipv6_tentative(&mine, None) && !ipv6_tentative("/proc/net/if_inet6", gateway) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Docker's view of the container now.
    ///
    /// # Panics
    /// When Docker does not know it.
    #[track_caller]
    pub fn inspect(&self) -> ContainerInspectResponse {
        block_on(client().inspect_container(&self.id, None))
            .unwrap_or_else(|e| panic!("cannot inspect {}: {e}", self.name))
    }

    /// Its network namespace, `/proc/<pid>/ns/net`.
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.pid))
    }

    /// Runs a command in the container (Docker exec), up to 10 s.
    #[track_caller]
    pub fn exec(&self, argv: &[&str]) -> ExecResult {
        exec_in(&self.id, argv, EXEC_TIMEOUT)
    }

    /// Runs a command in the container, up to `timeout`.
    #[track_caller]
    pub fn exec_timeout(&self, argv: &[&str], timeout: Duration) -> ExecResult {
        exec_in(&self.id, argv, timeout)
    }

    /// Runs `sh -c script` in the container, up to 10 s.
    #[track_caller]
    pub fn sh(&self, script: &str) -> ExecResult {
        exec_in(&self.id, &["sh", "-c", script], EXEC_TIMEOUT)
    }

    /// What a TCP server at `ip`:`port` sends to this container (busybox
    /// `nc -w T` in it), trimmed; `None` when the connection fails or times
    /// out or nothing comes back.
    #[track_caller]
    pub fn tcp_banner(&self, ip: &str, port: u16, timeout_s: u32) -> Option<String> {
        tcp_banner_in(&self.id, ip, port, timeout_s)
    }

    /// True when a TCP connection from this container to `ip`:`port`
    /// returns a banner within `timeout_s`: a connection that merely opens
    /// (a proxy whose backend is gone) does not count.
    #[track_caller]
    pub fn tcp_connect(&self, ip: &str, port: u16, timeout_s: u32) -> bool {
        self.tcp_banner(ip, port, timeout_s).is_some()
    }

    /// True when a TCP connection from this container to `ip`:`port`
    /// returns `banner` within 2 s.
    #[track_caller]
    pub fn reaches(&self, ip: &str, port: u16, banner: &str) -> bool {
        let got = self.tcp_banner(ip, port, PROBE_TIMEOUT_S);
        debug_probe(&self.name, ip, port, banner, &got);
        got.is_some_and(|g| g.contains(banner))
    }

    /// True when `ip` answers one ping from this container within 2 s.
    #[track_caller]
    pub fn ping(&self, ip: &str) -> bool {
        let ip = addr(ip);
        let t = PROBE_TIMEOUT_S.to_string();
        let deadline = (PROBE_TIMEOUT_S + 1).to_string();
        self.exec(&[
            "ping",
            "-c",
            "1",
            "-W",
            &t,
            "-w",
            &deadline,
            &ip.to_string(),
        ])
        .success()
    }

    /// True when a UDP echo server at `ip`:`port` returns the datagram sent
    /// from this container's network namespace (busybox has no UDP
    /// client: a thread of the test enters the namespace).
    #[track_caller]
    pub fn udp_echo(&self, ip: &str, port: u16) -> bool {
        let ip = addr(ip);
        let timeout = Duration::from_secs(PROBE_TIMEOUT_S.into());
        probe::in_netns(&self.netns_path(), || probe::udp_echo(ip, port, timeout))
            .unwrap_or_else(|e| panic!("cannot enter {}'s namespace: {e}", self.name))
    }

    /// The addresses `name` resolves to through the DNS server at `server`
    /// (a lab address), asked from this container (busybox `nslookup`);
    /// empty when it does not resolve.
    #[track_caller]
    pub fn resolve(&self, name: &str, server: &str) -> Vec<IpAddr> {
        resolve_in(&self.id, name, server)
    }

    /// The host side of its veth (the bridge port), e.g. `veth1a2b3c4`.
    ///
    /// # Panics
    /// When it cannot be found.
    #[track_caller]
    pub fn host_iface(&self) -> String {
        let r = self.exec(&["cat", "/sys/class/net/eth0/iflink"]);
        let index = r.stdout.trim().to_string();
        std::fs::read_dir("/sys/class/net")
            .into_iter()
            .flatten()
            .flatten()
            .find(|e| {
                std::fs::read_to_string(e.path().join("ifindex")).is_ok_and(|i| i.trim() == index)
            })
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .unwrap_or_else(|| panic!("no host interface with index {index:?} for {}", self.name))
    }

    /// Removes it now (force).
    pub fn remove(self) {
        drop(self);
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        if let Ok(d) = connection() {
            block_on(remove_container(d, &self.id));
        }
    }
}

/// True when a global IPv6 address in `table` (an `if_inet6` file) is
/// tentative: `addr`, or any when `None`.
fn ipv6_tentative(table: &str, addr: Option<std::net::Ipv6Addr>) -> bool {
    let want = addr.map(|a| {
        a.octets()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    });
    std::fs::read_to_string(table)
        .unwrap_or_default()
        .lines()
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let wanted = match want.as_deref() {
                Some(w) => f.first() == Some(&w),
                None => true,
            };
            wanted
                && f.len() >= 6
                && f[3] == "00"
                && u32::from_str_radix(f[4], 16).is_ok_and(|flags| flags & 0x40 != 0)
        })
}

/// The addresses of a host interface with their scopes (`ip -j addr`).
fn iface_addrs(iface: &str) -> Vec<(IpAddr, String)> {
    let Ok(out) = std::process::Command::new("ip")
        .args(["-j", "addr", "show", "dev", iface])
        .output()
    else {
        return Vec::new();
    };
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    json.as_array()
        .into_iter()
        .flatten()
        .flat_map(|link| link["addr_info"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| {
            let ip = a["local"].as_str()?.parse().ok()?;
            Some((ip, a["scope"].as_str().unwrap_or("").to_string()))
        })
        .collect()
}

/// True when something in the network namespace of `pid` listens on TCP
/// `port` (whichever process owns the socket).
fn any_listens(pid: u32, port: u16) -> bool {
    let port_hex = format!(":{port:04X}");
    ["tcp", "tcp6"].iter().any(|t| {
        std::fs::read_to_string(format!("/proc/{pid}/net/{t}"))
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1].ends_with(&port_hex) && f[3] == "0A"
            })
    })
}

/// Runs `argv` in container `id` (Docker exec) for up to `timeout`.
///
/// # Panics
/// When Docker refuses the exec (e.g. the container is gone).
#[track_caller]
pub fn exec_in(id: &str, argv: &[&str], timeout: Duration) -> ExecResult {
    let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
    block_on(exec_async(client(), id, argv, timeout))
        .unwrap_or_else(|e| panic!("exec in {id}: {e}"))
}

async fn exec_async(
    d: &Docker,
    id: &str,
    argv: Vec<String>,
    timeout: Duration,
) -> Result<ExecResult, bollard::errors::Error> {
    let exec = d
        .create_exec(
            id,
            CreateExecOptions {
                cmd: Some(argv),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await?;
    let mut result = ExecResult::default();
    if let StartExecResults::Attached { mut output, .. } = d.start_exec(&exec.id, None).await? {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let collect = async {
            while let Some(Ok(chunk)) = output.next().await {
                match chunk {
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        out.extend_from_slice(&message)
                    }
                    LogOutput::StdErr { message } => err.extend_from_slice(&message),
                    LogOutput::StdIn { .. } => {}
                }
            }
        };
        result.timed_out = tokio::time::timeout(timeout, collect).await.is_err();
        result.stdout = String::from_utf8_lossy(&out).into_owned();
        result.stderr = String::from_utf8_lossy(&err).into_owned();
    }
    result.exit_code = -1;
    if !result.timed_out {
        // The stream ends as the process does; its exit code may lag.
        // (Unknown when the container went away with it: `kill 1`.)
        for _ in 0..50 {
            let Ok(info) = d.inspect_exec(&exec.id).await else {
                break;
            };
            if info.running != Some(true) {
                result.exit_code = info.exit_code.unwrap_or(-1);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(result)
}

/// [`TestContainer::tcp_banner`] by container id.
#[track_caller]
pub fn tcp_banner_in(id: &str, ip: &str, port: u16, timeout_s: u32) -> Option<String> {
    let ip = addr(ip).to_string();
    let script = format!(
        "timeout -s KILL {} nc -w {timeout_s} {ip} {port} </dev/null",
        timeout_s + 1
    );
    let r = exec_in(
        id,
        &["sh", "-c", &script],
        Duration::from_secs((timeout_s + 5).into()),
    );
    let text = r.stdout.trim();
    (!r.timed_out && !text.is_empty()).then(|| text.to_string())
}

/// [`TestContainer::resolve`] by container id.
#[track_caller]
pub fn resolve_in(id: &str, name: &str, server: &str) -> Vec<IpAddr> {
    let server = addr(server).to_string();
    let r = exec_in(
        id,
        &["timeout", "5", "nslookup", name, &server],
        Duration::from_secs(8),
    );
    parse_nslookup(&r.stdout)
}
