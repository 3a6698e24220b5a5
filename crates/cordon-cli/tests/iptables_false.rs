//! cordon masquerades for a dockerd started with `--iptables=false`.
//!
//! A second dockerd, with its own socket, data and exec roots, no default
//! bridge and `--iptables=false`, runs beside the host's own for the test's
//! duration; a guard stops it and removes everything it made, also when the
//! test fails. Its user-defined network reaches a lab "internet" namespace
//! (198.51.100.2) that has no route back to the container subnet, so
//! without NAT no connection can complete:
//!
//! - controls: with a route back, the container reaches the server (the
//!   path works); without it, it does not (Docker installed no NAT);
//! - `cordon apply` marks the network `masquerade: true` and the container
//!   reaches the server; a policy that denies it still blocks it;
//! - `cordon down` removes the nat chain with cordon's tables.
//!
//! Needs root, nft and Docker; without them it prints one `skipped:` line
//! (and fails under CI=true).

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, Ipam, IpamConfig, NetworkCreateRequest,
    NetworkingConfig,
};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use bollard::Docker;
use cordon_lab::docker::block_on;
use cordon_lab::{lab_or_skip, Netns, SecondDocker, TcpServer, Uplink};
use futures_util::StreamExt;

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

/// The second dockerd's socket.
const SOCK: &str = "/run/cordon-test-docker.sock";
/// The user-defined network of the second dockerd.
const SUBNET: &str = "10.131.0.0/24";
/// The lab internet server.
const SERVER: &str = "198.51.100.2";
const BANNER: &str = "hello-inet";

/// The default bridge the test gives the second dockerd, and its address.
const DEFAULT_BRIDGE_ADDR: &str = "10.132.0.1/24";

/// `iptables` rules accepting forwarded traffic of one bridge: the host's
/// own dockerd set the `FORWARD` policy to `DROP`, which a host whose only
/// dockerd runs with `--iptables=false` would not have. Deleted on drop.
struct ForwardAccept {
    rules: Vec<Vec<String>>,
}

impl ForwardAccept {
    fn bridge(bridge: &str) -> ForwardAccept {
        let mut me = ForwardAccept { rules: Vec::new() };
        for dir in ["-i", "-o"] {
            let rule: Vec<String> = [
                "FORWARD",
                dir,
                bridge,
                "-m",
                "comment",
                "--comment",
                "cordon-test",
                "-j",
                "ACCEPT",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let mut insert = vec!["-I".to_string()];
            insert.extend(rule.iter().cloned());
            cordon_lab::sh(
                "iptables",
                &insert.iter().map(String::as_str).collect::<Vec<_>>(),
            );
            me.rules.push(rule);
        }
        me
    }
}

impl Drop for ForwardAccept {
    fn drop(&mut self) {
        for rule in &self.rules {
            let mut del = vec!["-D"];
            del.extend(rule.iter().map(String::as_str));
            let _ = Command::new("iptables").args(&del).status();
        }
    }
}

/// Runs `cordon down` on drop, so a failed test leaves no ruleset behind.
struct CordonDown<'a> {
    state: &'a Path,
}

impl Drop for CordonDown<'_> {
    fn drop(&mut self) {
        let _ = cordon(self.state, &["down"]);
    }
}

/// Runs the cordon binary against the second dockerd.
fn cordon(state: &Path, args: &[&str]) -> Output {
    Command::new(CORDON)
        .args(args)
        .env("DOCKER_HOST", format!("unix://{SOCK}"))
        .env("CORDON_STATE_DIR", state)
        .output()
        .expect("run cordon")
}

#[track_caller]
fn cordon_ok(state: &Path, args: &[&str]) -> String {
    let out = cordon(state, args);
    assert!(
        out.status.success(),
        "cordon {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Creates a bridge network on the second dockerd; returns its id.
fn create_network(d: &Docker) -> String {
    let req = NetworkCreateRequest {
        name: format!("cl-ipf-{}", std::process::id()),
        driver: Some("bridge".into()),
        ipam: Some(Ipam {
            config: Some(vec![IpamConfig {
                subnet: Some(SUBNET.into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    block_on(d.create_network(req))
        .expect("create the network")
        .id
}

/// Starts a sleeping container on `network`; returns its id.
fn run_container(d: &Docker, network: &str, labels: &[(&str, &str)]) -> String {
    let name = format!("cl-ipf-{}", std::process::id());
    let body = ContainerCreateBody {
        image: Some(cordon_lab::TEST_IMAGE.into()),
        cmd: Some(vec!["sleep".into(), "3600".into()]),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        host_config: Some(HostConfig {
            network_mode: Some(network.into()),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.to_string(),
                EndpointSettings::default(),
            )])),
        }),
        ..Default::default()
    };
    let id = block_on(d.create_container(
        Some(CreateContainerOptionsBuilder::new().name(&name).build()),
        body,
    ))
    .expect("create the container")
    .id;
    block_on(d.start_container(&id, None)).expect("start the container");
    id
}

/// What the lab server sends to the container, or `None` within 2 s.
fn banner_from(d: &Docker, id: &str) -> Option<String> {
    let script = format!("timeout -s KILL 3 nc -w 2 {SERVER} 80 </dev/null");
    let out = block_on(async {
        let exec = d
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(vec!["sh".to_string(), "-c".to_string(), script]),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .expect("create exec");
        let mut text = Vec::new();
        if let StartExecResults::Attached { mut output, .. } =
            d.start_exec(&exec.id, None).await.expect("start exec")
        {
            let read = async {
                while let Some(Ok(chunk)) = output.next().await {
                    if let LogOutput::StdOut { message } = chunk {
                        text.extend_from_slice(&message);
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(8), read).await;
        }
        String::from_utf8_lossy(&text).trim().to_string()
    });
    (!out.is_empty()).then_some(out)
}

fn reaches(d: &Docker, id: &str) -> bool {
    banner_from(d, id).is_some_and(|b| b.contains(BANNER))
}

fn inet_table_has_postrouting() -> bool {
    Command::new("nft")
        .args(["list", "chain", "inet", "cordon", "postrouting"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn cordon_masquerades_for_a_dockerd_without_iptables() {
    lab_or_skip!();
    let _lock = cordon_lab::lock();
    let docker0 = Path::new("/sys/class/net/docker0").exists();
    assert!(
        !inet_table_has_postrouting(),
        "cordon's tables are installed already; run cordon down first"
    );
    let state = tempfile::tempdir().expect("state dir");
    let dockerd = SecondDocker::start(SOCK, DEFAULT_BRIDGE_ADDR, &["--iptables=false"]);
    let d = dockerd.client();
    block_on(cordon_lab::image::ensure(d, cordon_lab::TEST_IMAGE))
        .expect("load the test image into the second dockerd");

    // The lab internet, with no route back to the container subnet.
    let inet = Netns::new("inet");
    let _up = Uplink::to_host(&inet, "198.51.100.1/24", "198.51.100.2/24");
    inet.exec_ok(&["ip", "route", "del", "default"]);
    let _server = TcpServer::banner(&inet, 80, BANNER);

    let net = create_network(d);
    let bridge = format!("br-{}", &net[..12]);
    let _fwd = ForwardAccept::bridge(&bridge);
    let ctr = run_container(d, &net, &[("app", "probe")]);

    // (a) Controls. With a route back the path works; without one nothing
    // answers: this dockerd installed no NAT.
    inet.exec_ok(&["ip", "route", "add", SUBNET, "via", "198.51.100.1"]);
    assert!(
        reaches(d, &ctr),
        "control: with a route back the container must reach the lab server"
    );
    inet.exec_ok(&["ip", "route", "del", SUBNET]);
    assert!(
        !reaches(d, &ctr),
        "control: without NAT and without a route back it must not"
    );

    // The daemon is identified and its network marked.
    let inventory = cordon_ok(state.path(), &["inventory", "-o", "json"]);
    let inv: serde_json::Value = serde_json::from_str(&inventory).expect("inventory JSON");
    let network = inv["networks"]
        .as_array()
        .expect("networks")
        .iter()
        .find(|n| n["id"] == net.as_str())
        .expect("the test network in the inventory");
    assert_eq!(network["masquerade"], true, "{inventory}");
    assert_eq!(network["bridge"], bridge.as_str(), "{inventory}");
    // The host's own dockerd manages iptables: none of its networks is
    // marked, so two daemons on one host are told apart.
    let host_inv = Command::new(CORDON)
        .args(["inventory", "-o", "json"])
        .env_remove("DOCKER_HOST")
        .output()
        .expect("run cordon");
    assert!(host_inv.status.success());
    let host_inv: serde_json::Value =
        serde_json::from_slice(&host_inv.stdout).expect("inventory JSON");
    assert!(
        host_inv["networks"]
            .as_array()
            .expect("networks")
            .iter()
            .all(|n| n["masquerade"] == false),
        "{host_inv}"
    );

    // (b) cordon masquerades: the container reaches the server.
    let _down = CordonDown {
        state: state.path(),
    };
    cordon_ok(state.path(), &["apply"]);
    let rules = cordon_lab::sh("nft", &["list", "table", "inet", "cordon"]);
    assert!(rules.contains("10.131.0.0/24"), "{rules}");
    assert!(
        rules.contains("ip saddr @masq4 oifname != @bridges masquerade"),
        "{rules}"
    );
    assert!(
        reaches(d, &ctr),
        "with cordon's masquerading the container must reach the lab server"
    );

    // (c) cordon's filter still judges every packet.
    let deny = state.path().join("deny.yaml");
    std::fs::write(
        &deny,
        "version: 1\npolicies:\n  - name: probe\n    select: { label: { app: probe } }\n    egress: []\n",
    )
    .expect("write policy");
    cordon_ok(
        state.path(),
        &["apply", "-c", deny.to_str().expect("utf-8")],
    );
    assert!(
        !reaches(d, &ctr),
        "a policy that denies it must still block it"
    );

    // (d) cordon down removes the nat chain with cordon's tables.
    cordon_ok(state.path(), &["down"]);
    assert!(!inet_table_has_postrouting(), "the nat chain must be gone");
    let tables = cordon_lab::sh("nft", &["list", "tables"]);
    assert!(!tables.contains("cordon"), "{tables}");
    assert!(
        !reaches(d, &ctr),
        "without cordon the container is back to no NAT"
    );
    drop(dockerd);
    assert_eq!(
        Path::new("/sys/class/net/docker0").exists(),
        docker0,
        "the second dockerd must leave the host's docker0 alone"
    );
}
