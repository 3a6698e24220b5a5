//! Integration tests against a real dockerd, as root.
//!
//! The test image `cordon-test-bb:latest` is imported from the host's
//! `/bin/busybox` when it does not exist. Without root, without a reachable
//! Docker or without either the image or busybox, each test prints one line
//! `skipped: <reason>` to stderr and passes; with `CI=true` it fails
//! instead, so CI never silently skips them.
//!
//! Every test names its objects `cordon-t-…-<pid>` and removes them even when
//! it fails, through a [`Cleanup`] guard.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, HostConfig, Ipam, IpamConfig,
    NetworkCreateRequest, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
};
use bollard::Docker;
use cordon_inventory::{Container, Endpoint, Inventory};

const IMAGE: &str = "cordon-test-bb:latest";

/// Skips (one line on stderr) or, under `CI=true`, fails.
///
/// The line is written to the stderr handle rather than with `eprintln!`,
/// which the test harness would capture and hide.
fn skip(reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason} (CI=true: Docker tests must run, not skip)");
    }
    let _ = writeln!(std::io::stderr(), "skipped: {reason}");
}

/// A connected client, or `None` after [`skip`].
async fn docker_or_skip() -> Option<Docker> {
    if !nix::unistd::geteuid().is_root() {
        skip("not root (entering containers' network namespaces needs root)");
        return None;
    }
    let docker = match cordon_docker::connect().await {
        Ok(docker) => docker,
        Err(err) => {
            skip(&err.to_string());
            return None;
        }
    };
    if docker.inspect_image(IMAGE).await.is_err() {
        if let Err(reason) = cordon_lab::image::ensure(&docker, IMAGE).await {
            skip(&reason);
            return None;
        }
    }
    Some(docker)
}

/// Removes the containers and networks it names when dropped, on a fresh
/// runtime in its own thread (so it works from inside a test's runtime and
/// while unwinding).
#[derive(Default)]
struct Cleanup {
    containers: Vec<String>,
    networks: Vec<String>,
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let containers = std::mem::take(&mut self.containers);
        let networks = std::mem::take(&mut self.networks);
        let images = std::mem::take(&mut self.images);
        if containers.is_empty() && networks.is_empty() && images.is_empty() {
            return;
        }
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            rt.block_on(async {
                let Ok(docker) = cordon_docker::connect().await else {
                    eprintln!("cleanup: Docker unreachable; left {containers:?} {networks:?}");
                    return;
                };
                let force = RemoveContainerOptionsBuilder::new().force(true).build();
                for c in containers.iter().rev() {
                    if let Err(err) = docker.remove_container(c, Some(force.clone())).await {
                        eprintln!("cleanup: container {c}: {err}");
                    }
                }
                for n in &networks {
                    if let Err(err) = docker.remove_network(n).await {
                        eprintln!("cleanup: network {n}: {err}");
                    }
                }
                let force = RemoveImageOptionsBuilder::new().force(true).build();
                for i in &images {
                    if let Err(err) = docker.remove_image(i, Some(force.clone()), None).await {
                        eprintln!("cleanup: image {i}: {err}");
                    }
                }
            });
        });
        let _ = done.join();
    }
}

/// Creates and starts a `sleep 300` container; registered for cleanup
/// before it is started.
async fn run(
    docker: &Docker,
    guard: &mut Cleanup,
    name: &str,
    host_config: HostConfig,
    labels: &[(&str, &str)],
    exposed: &[&str],
) -> ContainerInspectResponse {
    run_image(docker, guard, IMAGE, name, host_config, labels, exposed).await
}

/// [`run`] with another image.
async fn run_image(
    docker: &Docker,
    guard: &mut Cleanup,
    image: &str,
    name: &str,
    host_config: HostConfig,
    labels: &[(&str, &str)],
    exposed: &[&str],
) -> ContainerInspectResponse {
    let body = ContainerCreateBody {
        image: Some(image.into()),
        cmd: Some(vec!["sleep".into(), "300".into()]),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        exposed_ports: (!exposed.is_empty())
            .then(|| exposed.iter().map(|p| p.to_string()).collect()),
        host_config: Some(host_config),
        ..Default::default()
    };
    let created = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(name).build()),
            body,
        )
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
    guard.containers.push(created.id.clone());
    docker
        .start_container(&created.id, None)
        .await
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    docker
        .inspect_container(&created.id, None)
        .await
        .unwrap_or_else(|e| panic!("inspect {name}: {e}"))
}

/// Creates a dual-stack bridge network in 10.231.X.0/24 and
/// 2001:db8:231:X::/64, trying another X when the pool is taken.
async fn create_network(docker: &Docker, guard: &mut Cleanup, name: &str) -> (String, u8) {
    let first = (std::process::id() % 200) as u8 + 20;
    let mut last_err = String::new();
    for attempt in 0..20u8 {
        let x = 20 + (first - 20 + attempt * 7) % 220;
        let req = NetworkCreateRequest {
            name: name.into(),
            driver: Some("bridge".into()),
            enable_ipv6: Some(true),
            ipam: Some(Ipam {
                config: Some(vec![
                    IpamConfig {
                        subnet: Some(format!("10.231.{x}.0/24")),
                        ..Default::default()
                    },
                    IpamConfig {
                        subnet: Some(format!("2001:db8:231:{x:x}::/64")),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        match docker.create_network(req).await {
            Ok(resp) => {
                guard.networks.push(resp.id.clone());
                return (resp.id, x);
            }
            Err(err) => last_err = err.to_string(),
        }
    }
    panic!("cannot create network {name}: {last_err}");
}

fn find<'a>(inv: &'a Inventory, id: &str) -> &'a Container {
    inv.containers
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("container {id} missing from {:#?}", inv.containers))
}

/// The endpoint matches what `inspect` says, and its host interface exists
/// and is a port of `bridge`.
fn check_endpoint(ep: &Endpoint, inspect: &ContainerInspectResponse, bridge: &str) {
    let settings = &inspect
        .network_settings
        .as_ref()
        .unwrap()
        .networks
        .as_ref()
        .unwrap()[&ep.network];
    assert_eq!(ep.network_id, settings.network_id.clone().unwrap());
    assert_eq!(
        ep.ipv4.map(|a| a.to_string()),
        settings.ip_address.clone().filter(|s| !s.is_empty())
    );
    assert_eq!(
        ep.ipv6.map(|a| a.to_string()),
        settings
            .global_ipv6_address
            .clone()
            .filter(|s| !s.is_empty())
    );
    assert_eq!(
        ep.mac,
        settings
            .mac_address
            .as_ref()
            .map(|m| m.to_ascii_lowercase())
    );
    assert_eq!(ep.bridge.as_deref(), Some(bridge));
    let iface = ep.host_iface.as_deref().expect("host_iface found");
    let sys = Path::new("/sys/class/net").join(iface);
    assert!(sys.exists(), "{} does not exist", sys.display());
    let master = std::fs::read_link(sys.join("master"))
        .unwrap_or_else(|e| panic!("{iface} has no master: {e}"));
    assert_eq!(
        master.file_name().and_then(|n| n.to_str()),
        Some(bridge),
        "{iface} is not on {bridge}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_defined_network() {
    let Some(docker) = docker_or_skip().await else {
        return;
    };
    let pid = std::process::id();
    let mut guard = Cleanup::default();
    let net_name = format!("cordon-t-inv-{pid}");
    let (net_id, x) = create_network(&docker, &mut guard, &net_name).await;

    let mut bindings = HashMap::new();
    bindings.insert(
        "22/tcp".to_string(),
        Some(vec![PortBinding {
            host_ip: None,
            host_port: Some("0".into()),
        }]),
    );
    let inspect = run(
        &docker,
        &mut guard,
        &format!("cordon-t-inv-c-{pid}"),
        HostConfig {
            network_mode: Some(net_name.clone()),
            port_bindings: Some(bindings),
            ..Default::default()
        },
        &[("app", "sftp"), ("cordon.test", "inventory")],
        &["22/tcp"],
    )
    .await;
    let id = inspect.id.clone().unwrap();

    let inv = cordon_docker::collect(&docker).await.expect("collect");

    // Stable order.
    let names: Vec<&str> = inv.containers.iter().map(|c| c.name.as_str()).collect();
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "{names:?}");
    let nets: Vec<&str> = inv.networks.iter().map(|n| n.name.as_str()).collect();
    assert!(nets.windows(2).all(|w| w[0] <= w[1]), "{nets:?}");

    let net = inv.network(&net_name).expect("network listed");
    let bridge = format!("br-{}", &net_id[..12]);
    assert_eq!(net.id, net_id);
    assert_eq!(net.driver, "bridge");
    assert_eq!(net.bridge.as_deref(), Some(bridge.as_str()));
    assert!(!net.default_bridge);
    assert!(net.ipv6);
    assert!(!net.internal);
    let want: Vec<ipnet::IpNet> = vec![
        format!("10.231.{x}.0/24").parse().unwrap(),
        format!("2001:db8:231:{x:x}::/64").parse().unwrap(),
    ];
    for subnet in &want {
        assert!(
            net.subnets.contains(subnet),
            "{subnet} not in {:?}",
            net.subnets
        );
    }

    let c = find(&inv, &id);
    assert_eq!(c.name, format!("cordon-t-inv-c-{pid}"));
    assert_eq!(c.image, IMAGE);
    assert_eq!(c.labels.get("app").map(String::as_str), Some("sftp"));
    assert_eq!(
        c.labels.get("cordon.test").map(String::as_str),
        Some("inventory")
    );
    let state_pid = inspect.state.as_ref().unwrap().pid.unwrap();
    assert_eq!(c.pid, Some(state_pid as u32));
    assert_eq!(c.network_mode, net_name);
    assert_eq!(c.endpoints.len(), 1, "{:?}", c.endpoints);
    let ep = &c.endpoints[0];
    assert_eq!(ep.network, net_name);
    assert!(
        ep.ipv4.is_some() && ep.ipv6.is_some() && ep.mac.is_some(),
        "{ep:?}"
    );
    check_endpoint(ep, &inspect, &bridge);

    // The published port, with the host port Docker picked.
    assert!(!c.ports.is_empty(), "no published port");
    for p in &c.ports {
        assert_eq!((p.container_port, p.proto.as_str()), (22, "tcp"));
        assert_ne!(p.host_port, 0);
    }
    let reported = inspect
        .network_settings
        .as_ref()
        .unwrap()
        .ports
        .as_ref()
        .unwrap()["22/tcp"]
        .as_ref()
        .unwrap()
        .len();
    assert_eq!(c.ports.len(), reported);

    // The inventory survives its JSON round trip (what `--inventory` reads).
    assert_eq!(Inventory::from_json("x.json", &inv.to_json()).unwrap(), inv);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_bridge() {
    let Some(docker) = docker_or_skip().await else {
        return;
    };
    let pid = std::process::id();
    let mut guard = Cleanup::default();
    let inspect = run(
        &docker,
        &mut guard,
        &format!("cordon-t-def-{pid}"),
        HostConfig {
            network_mode: Some("bridge".into()),
            ..Default::default()
        },
        &[("cordon.test", "default")],
        &[],
    )
    .await;
    let id = inspect.id.clone().unwrap();
    let docker_net = docker
        .inspect_network("bridge", None)
        .await
        .expect("inspect bridge");
    let want_bridge = docker_net
        .options
        .as_ref()
        .and_then(|o| o.get("com.docker.network.bridge.name").cloned())
        .unwrap_or_else(|| "docker0".into());

    let inv = cordon_docker::collect(&docker).await.expect("collect");

    let net = inv.network("bridge").expect("default network listed");
    assert!(net.default_bridge);
    assert_eq!(net.bridge.as_deref(), Some(want_bridge.as_str()));
    assert!(!net.subnets.is_empty());

    let c = find(&inv, &id);
    assert_eq!(c.name, format!("cordon-t-def-{pid}"));
    assert_eq!(c.network_mode, "bridge");
    assert!(c.ports.is_empty());
    assert_eq!(c.endpoints.len(), 1, "{:?}", c.endpoints);
    let ep = &c.endpoints[0];
    assert_eq!(ep.network, "bridge");
    check_endpoint(ep, &inspect, &want_bridge);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_and_host_namespaces() {
    let Some(docker) = docker_or_skip().await else {
        return;
    };
    let pid = std::process::id();
    let mut guard = Cleanup::default();
    let owner = run(
        &docker,
        &mut guard,
        &format!("cordon-t-own-{pid}"),
        HostConfig::default(),
        &[],
        &[],
    )
    .await;
    let owner_id = owner.id.clone().unwrap();
    let sharer = run(
        &docker,
        &mut guard,
        &format!("cordon-t-shr-{pid}"),
        HostConfig {
            network_mode: Some(format!("container:{owner_id}")),
            ..Default::default()
        },
        &[],
        &[],
    )
    .await;
    let hostnet = run(
        &docker,
        &mut guard,
        &format!("cordon-t-hst-{pid}"),
        HostConfig {
            network_mode: Some("host".into()),
            ..Default::default()
        },
        &[],
        &[],
    )
    .await;

    let inv = cordon_docker::collect(&docker).await.expect("collect");

    // The owner is found as usual.
    let o = find(&inv, &owner_id);
    assert_eq!(o.endpoints.len(), 1);
    assert!(o.endpoints[0].host_iface.is_some(), "{:?}", o.endpoints);

    // The sharer's endpoints are as Docker reports them (none).
    let s = find(&inv, sharer.id.as_deref().unwrap());
    assert_eq!(s.network_mode, format!("container:{owner_id}"));
    let reported = sharer
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map_or(0, |n| n.len());
    assert_eq!(s.endpoints.len(), reported);
    assert!(s.endpoints.iter().all(|e| e.host_iface.is_none()));

    // The host-network container has no veth to find.
    let h = find(&inv, hostnet.id.as_deref().unwrap());
    assert_eq!(h.network_mode, "host");
    assert!(h.pid.is_some());
    assert!(h.endpoints.iter().all(|e| e.host_iface.is_none()));
    assert!(h.endpoints.iter().all(|e| e.bridge.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exited_container_namespace_is_tolerated() {
    // A container whose process is gone by the time its namespace is
    // entered keeps host_iface None; collect() does not fail. Simulated by
    // resolving a stale pid.
    let Some(docker) = docker_or_skip().await else {
        return;
    };
    let mut inv = cordon_docker::collect(&docker).await.expect("collect");
    let mut ghost = Container {
        id: "f".repeat(64),
        name: "ghost".into(),
        pid: Some(u32::MAX - 1),
        endpoints: vec![Endpoint {
            network: "bridge".into(),
            mac: Some("02:42:ac:11:ff:ff".into()),
            bridge: Some("docker0".into()),
            ..Endpoint::default()
        }],
        ..Container::default()
    };
    ghost.endpoints[0].host_iface = Some("stale".into());
    inv.containers.push(ghost);
    cordon_docker::veth::find_host_ifaces(&mut inv.containers).expect("find");
    assert_eq!(inv.containers.last().unwrap().endpoints[0].host_iface, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_image_can_be_built_from_busybox() {
    // What a fresh machine does when cordon-test-bb is missing, on a
    // throw-away tag.
    let Some(docker) = docker_or_skip().await else {
        return;
    };
    let pid = std::process::id();
    let image = format!("cordon-t-img-{pid}:latest");
    let mut guard = Cleanup::default();
    guard.images.push(image.clone());
    cordon_lab::image::ensure(&docker, &image)
        .await
        .expect("build");
    let inspect = run_image(
        &docker,
        &mut guard,
        &image,
        &format!("cordon-t-img-c-{pid}"),
        HostConfig::default(),
        &[],
        &[],
    )
    .await;
    assert_eq!(inspect.state.and_then(|s| s.running), Some(true));
}

/// The daemon is found where it really runs: its binary is what
/// `/proc/<pid>/exe` points to (Debian's `/usr/sbin/dockerd`, not an
/// assumed `/usr/bin/dockerd`), and its containerd socket is one that
/// exists (Docker's own managed containerd under `/run/docker/containerd/`
/// when it started one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_is_found_where_it_runs() {
    use std::os::unix::fs::FileTypeExt;
    let Some(docker) = docker_or_skip().await else {
        return;
    };
    let d = cordon_docker::dockerd::find(&docker)
        .await
        .expect("the daemon this test talks to is found");
    let exe = d.exe.clone().expect("root reads /proc/<pid>/exe");
    assert!(exe.ends_with("/dockerd"), "{exe}");
    assert!(Path::new(&exe).is_file(), "{exe} exists");
    let link = std::fs::read_link(format!("/proc/{}/exe", d.pid)).unwrap();
    assert_eq!(Path::new(&exe), link, "the binary is the exe link");
    let sock = std::fs::metadata(&d.containerd_socket)
        .unwrap_or_else(|e| panic!("{}: {e}", d.containerd_socket));
    assert!(sock.file_type().is_socket(), "{}", d.containerd_socket);
}
