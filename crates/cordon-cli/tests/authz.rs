//! `cordon authz` as the authorization plugin of a real dockerd.
//!
//! A second dockerd (its own socket, data root, exec root, pidfile and
//! bridge; `--iptables=false` so it leaves the host's firewall alone)
//! starts with `--authorization-plugin=cordon-test-<pid>`, served by
//! `cordon authz` on `/run/docker/plugins/cordon-test-<pid>.sock`. The
//! attacks are the API calls that would give a container of a restrictive
//! policy a way around cordon:
//!
//! - positive controls: the same `--network host` create succeeds on the
//!   host's dockerd (no plugin), and through the plugin under an open
//!   policy; a bridge container of the restrictive policy is created;
//! - refused, with the plugin's message: `--network host`, a macvlan
//!   network (as the mode, and by `network connect`), `container:X` where
//!   X has another restrictive policy, `--privileged`, `--cap-add
//!   SYS_ADMIN` (`NET_ADMIN` is allowed), `docker exec --privileged`;
//! - fail closed: with the plugin stopped dockerd refuses even a listing,
//!   and answers again once the plugin is back.
//!
//! Needs root, nft and Docker; without them it prints one `skipped:` line
//! (and fails under CI=true).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, HostConfig, NetworkConnectRequest, NetworkCreateRequest,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use bollard::Docker;
use cordon_lab::docker::block_on;
use cordon_lab::{lab_or_skip, ContainerOpts, SecondDocker, TestContainer, TEST_IMAGE};

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

/// The second dockerd's socket.
const SOCK: &str = "/run/cordon-test-authz-docker.sock";
/// Its default bridge.
const BRIDGE_ADDR: &str = "10.133.0.1/24";

const POLICY: &str = "\
version: 1
default:
  egress:
    - to: [any]
policies:
  - name: locked
    select: { label: { tier: locked } }
    egress: []
  - name: other
    select: { label: { tier: other } }
    egress:
      - to: [internet]
";

/// `cordon authz`, killed on drop.
struct Plugin {
    child: Child,
    socket: String,
}

impl Plugin {
    fn start(policy: &str, socket: &str) -> Plugin {
        let child = Command::new(CORDON)
            .args(["authz", "-c", policy, "--socket", socket])
            .env("DOCKER_HOST", format!("unix://{SOCK}"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start cordon authz");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(socket).is_err() {
            assert!(Instant::now() < deadline, "cordon authz did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Plugin {
            child,
            socket: socket.to_string(),
        }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A veth pair (the macvlan parent), deleted on drop.
struct Veth(String);

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).output();
    }
}

fn labels(tier: Option<&str>) -> Option<std::collections::HashMap<String, String>> {
    tier.map(|t| [("tier".to_string(), t.to_string())].into())
}

/// Creates (never starts) a container; its id, or Docker's error.
fn create(d: &Docker, name: &str, tier: Option<&str>, host: HostConfig) -> Result<String, String> {
    let body = ContainerCreateBody {
        image: Some(TEST_IMAGE.into()),
        cmd: Some(vec!["sleep".into(), "3600".into()]),
        labels: labels(tier),
        host_config: Some(host),
        ..Default::default()
    };
    block_on(d.create_container(
        Some(CreateContainerOptionsBuilder::new().name(name).build()),
        body,
    ))
    .map(|r| r.id)
    .map_err(|e| e.to_string())
}

fn mode(m: &str) -> HostConfig {
    HostConfig {
        network_mode: Some(m.into()),
        ..Default::default()
    }
}

#[track_caller]
fn refused(r: Result<String, String>, plugin: &str, want: &str) {
    match r {
        Ok(id) => panic!("created {id}; expected the plugin to refuse ({want})"),
        Err(e) => {
            assert!(
                e.contains(&format!("authorization denied by plugin {plugin}")),
                "not the plugin's refusal: {e}"
            );
            assert!(e.contains(want), "{e:?} lacks {want:?}");
        }
    }
}

#[test]
fn the_plugin_refuses_what_cordon_cannot_enforce() {
    lab_or_skip!();
    let _lock = cordon_lab::lock();
    cordon_lab::ensure_test_image();
    let pid = std::process::id();
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).expect("write policy");
    let policy = policy.to_str().expect("utf-8").to_string();

    // Control without the plugin: the host's own dockerd creates a
    // host-network container of policy locked.
    let unguarded = TestContainer::create(
        &ContainerOpts::new("az-host")
            .network_name("host")
            .label("tier", "locked"),
    );
    drop(unguarded);

    let name = format!("cordon-test-{pid}");
    let socket = format!("/run/docker/plugins/{name}.sock");
    // Declared before the dockerd, so it outlives it: the dockerd's
    // clean-up goes through the plugin.
    let mut plugin = Plugin::start(&policy, &socket);
    let authz = format!("--authorization-plugin={name}");
    let dockerd = SecondDocker::start(SOCK, BRIDGE_ADDR, &["--iptables=false", &authz]);
    let d = dockerd.client();
    block_on(cordon_lab::image::ensure(d, TEST_IMAGE))
        .expect("load the test image into the second dockerd (through the plugin)");

    // A bridge network, and a macvlan one on a veth parent.
    let bridge_net = format!("cl-az-br-{pid}");
    block_on(d.create_network(NetworkCreateRequest {
        name: bridge_net.clone(),
        driver: Some("bridge".into()),
        ..Default::default()
    }))
    .expect("create a bridge network");
    let parent = Veth(format!("cl-az{pid}"));
    cordon_lab::sh(
        "ip",
        &[
            "link",
            "add",
            &parent.0,
            "type",
            "veth",
            "peer",
            "name",
            &format!("cl-azp{pid}"),
        ],
    );
    let mv_net = format!("cl-az-mv-{pid}");
    let macvlan = block_on(d.create_network(NetworkCreateRequest {
        name: mv_net.clone(),
        driver: Some("macvlan".into()),
        options: Some([("parent".to_string(), parent.0.clone())].into()),
        ..Default::default()
    }));
    if let Err(e) = &macvlan {
        eprintln!("note: no macvlan network on this host ({e}); the macvlan part is not run");
    }

    // --network host.
    refused(
        create(d, "az-host-locked", Some("locked"), mode("host")),
        &name,
        "would get policy locked, which cordon cannot enforce with --network host",
    );
    create(d, "az-host-open", None, mode("host"))
        .expect("control: an open policy may use the host's network");

    // A normal bridge container of the restrictive policy is allowed.
    let boxed = create(d, "az-box", Some("locked"), mode(&bridge_net))
        .expect("control: a bridge container of policy locked");
    create(d, "az-default", Some("locked"), HostConfig::default())
        .expect("control: the default bridge");

    // container:X where X's policy is another restrictive one.
    refused(
        create(
            d,
            "az-side",
            Some("other"),
            mode(&format!("container:{boxed}")),
        ),
        &name,
        "policy locked governs",
    );
    create(
        d,
        "az-side-ok",
        Some("locked"),
        mode(&format!("container:{boxed}")),
    )
    .expect("control: the same policy may share the namespace");

    // --privileged.
    refused(
        create(
            d,
            "az-priv",
            Some("locked"),
            HostConfig {
                network_mode: Some(bridge_net.clone()),
                privileged: Some(true),
                ..Default::default()
            },
        ),
        &name,
        "--privileged",
    );

    // Capabilities: SYS_ADMIN reaches outside the container's network
    // namespace; NET_ADMIN acts inside it only.
    let caps = |c: &str| HostConfig {
        network_mode: Some(bridge_net.clone()),
        cap_add: Some(vec![c.into()]),
        ..Default::default()
    };
    refused(
        create(d, "az-sysadmin", Some("locked"), caps("SYS_ADMIN")),
        &name,
        "with capabilities SYS_ADMIN",
    );
    create(d, "az-netadmin", Some("locked"), caps("NET_ADMIN"))
        .expect("control: NET_ADMIN in its own namespace is fine");

    // docker exec --privileged in a running container of the policy.
    block_on(d.start_container(&boxed, None)).expect("start az-box");
    let exec = |privileged: bool| {
        block_on(d.create_exec(
            &boxed,
            bollard::exec::CreateExecOptions::<String> {
                cmd: Some(vec!["true".into()]),
                privileged: Some(privileged),
                ..Default::default()
            },
        ))
        .map(|r| r.id)
        .map_err(|e| e.to_string())
    };
    exec(false).expect("control: a plain exec");
    refused(exec(true), &name, "a privileged exec");

    // macvlan: as the network mode, and by connecting a container to it.
    if macvlan.is_ok() {
        refused(
            create(d, "az-mv", Some("locked"), mode(&mv_net)),
            &name,
            "its driver is macvlan",
        );
        create(d, "az-mv-open", None, mode(&mv_net))
            .expect("control: an open policy may use macvlan");
        let connect = block_on(d.connect_network(
            &mv_net,
            NetworkConnectRequest {
                container: boxed.clone(),
                ..Default::default()
            },
        ))
        .map(|()| String::new())
        .map_err(|e| e.to_string());
        refused(connect, &name, "cannot enforce on network");
    }

    // Fail closed: with the plugin down dockerd refuses every request;
    // with it back, dockerd answers again.
    drop(plugin);
    let t = Instant::now();
    let down =
        block_on(d.list_containers(None::<bollard::query_parameters::ListContainersOptions>));
    eprintln!(
        "with the plugin down, dockerd answered in {:?}: {down:?}",
        t.elapsed()
    );
    assert!(
        down.is_err(),
        "dockerd must refuse while its plugin is down"
    );
    plugin = Plugin::start(&policy, &socket);
    block_on(d.list_containers(None::<bollard::query_parameters::ListContainersOptions>))
        .expect("dockerd answers again once the plugin is back");

    // Clean up in order: containers, then the networks (through the plugin).
    for c in [
        "az-side-ok",
        "az-host-open",
        "az-mv-open",
        "az-default",
        "az-netadmin",
        "az-box",
    ] {
        let force = RemoveContainerOptionsBuilder::new().force(true).build();
        let _ = block_on(d.remove_container(c, Some(force)));
    }
    drop(dockerd);
    drop(plugin);
    drop(parent);
}
