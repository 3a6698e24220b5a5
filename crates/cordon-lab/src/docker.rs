//! Lab containers and networks through the Docker Engine API.

use std::collections::HashMap;
use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkCreateRequest, NetworkingConfig, PortBinding,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use bollard::Docker;
use futures_util::StreamExt;

use crate::{Lab, IMAGE};

/// Connects to the local dockerd, negotiating the API version.
pub async fn connect() -> Docker {
    let d = Docker::connect_with_local_defaults().expect("Docker client");
    d.negotiate_version().await.expect("Docker answers")
}

/// True when a dockerd answers on the local socket.
pub fn reachable() -> bool {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return false;
    };
    rt.block_on(async {
        let Ok(d) = Docker::connect_with_local_defaults() else {
            return false;
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(5), d.ping()).await,
            Ok(Ok(_))
        )
    })
}

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Name suffix; the container is `cl-<name>-<tag>`.
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
}

/// A running lab container.
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

impl Lab {
    /// A user-defined bridge network `cl-<name>-<tag>` with these subnets.
    pub fn network(&self, name: &str, subnet4: &str, subnet6: Option<&str>) -> String {
        let full = format!("cl-{name}-{}", self.tag());
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
            name: full.clone(),
            driver: Some("bridge".into()),
            enable_ipv6: Some(subnet6.is_some()),
            ipam: Some(Ipam {
                config: Some(config),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.rt
            .block_on(self.docker.create_network(req))
            .unwrap_or_else(|e| panic!("create network {full}: {e}"));
        self.owned.borrow_mut().networks.push(full.clone());
        full
    }

    /// Creates and starts a container from the lab image.
    pub fn run(&self, spec: Run) -> Ctr {
        let name = format!("cl-{}-{}", spec.name, self.tag());
        let network = spec.network.clone().unwrap_or_else(|| "bridge".into());
        let mut bindings = HashMap::new();
        let mut exposed = Vec::new();
        for (port, host) in &spec.publish {
            bindings.insert(
                format!("{port}/tcp"),
                Some(vec![PortBinding {
                    host_ip: Some("0.0.0.0".into()),
                    host_port: Some(host.to_string()),
                }]),
            );
            exposed.push(format!("{port}/tcp"));
        }
        let cmd = match &spec.serve {
            Some((port, banner)) => format!("nc -ll -p {port} -e echo {banner}"),
            None => "sleep 3600".into(),
        };
        let endpoint = EndpointSettings {
            ipam_config: spec.ip4.as_ref().map(|ip| EndpointIpamConfig {
                ipv4_address: Some(ip.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(IMAGE.into()),
            cmd: Some(vec!["sh".into(), "-c".into(), cmd]),
            labels: Some(spec.labels.iter().cloned().collect()),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            host_config: Some(HostConfig {
                network_mode: Some(network.clone()),
                port_bindings: (!bindings.is_empty()).then_some(bindings),
                cap_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.clone()),
                dns: Some(if spec.dns.is_empty() {
                    // Never the machine's resolver: a lab address nobody serves.
                    vec!["198.51.100.53".into()]
                } else {
                    spec.dns.clone()
                }),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(network.clone(), endpoint)])),
            }),
            ..Default::default()
        };
        let d = &self.docker;
        let created = self
            .rt
            .block_on(d.create_container(
                Some(CreateContainerOptionsBuilder::new().name(&name).build()),
                body,
            ))
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
        self.owned.borrow_mut().containers.push(created.id.clone());
        self.rt
            .block_on(d.start_container(&created.id, None))
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let info = self
            .rt
            .block_on(d.inspect_container(&created.id, None))
            .unwrap_or_else(|e| panic!("inspect {name}: {e}"));
        let ep = info
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(&network))
            .unwrap_or_else(|| panic!("{name} has no endpoint on {network}"));
        let ctr = Ctr {
            name,
            id: created.id,
            ip4: ep.ip_address.unwrap_or_default(),
            ip6: ep.global_ipv6_address.filter(|a| !a.is_empty()),
        };
        if let Some((port, _)) = &spec.serve {
            self.wait_serving(&ctr, *port);
        }
        if ctr.ip6.is_some() {
            // IPv6 is usable once duplicate address detection is over.
            for _ in 0..100 {
                let (_, out) = self.exec(&ctr, "ip -6 addr");
                if !out.contains("tentative") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        ctr
    }

    fn wait_serving(&self, ctr: &Ctr, port: u16) {
        for _ in 0..50 {
            let (_, out) = self.exec(ctr, "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null");
            if out.contains(&format!(":{port:04X} ")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} does not serve port {port}", ctr.name);
    }

    /// Runs `sh -c cmd` in the container; returns the exit code and the
    /// output (stdout and stderr).
    pub fn exec(&self, ctr: &Ctr, cmd: &str) -> (i64, String) {
        let d = &self.docker;
        self.rt.block_on(async {
            let exec = d
                .create_exec(
                    &ctr.id,
                    CreateExecOptions {
                        cmd: Some(vec!["sh", "-c", cmd]),
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        ..Default::default()
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("exec in {}: {e}", ctr.name));
            let mut text = String::new();
            if let StartExecResults::Attached { mut output, .. } =
                d.start_exec(&exec.id, None).await.expect("start exec")
            {
                let collect = async {
                    while let Some(Ok(chunk)) = output.next().await {
                        text.push_str(&chunk.to_string());
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(20), collect).await;
            }
            let code = d
                .inspect_exec(&exec.id)
                .await
                .ok()
                .and_then(|i| i.exit_code)
                .unwrap_or(-1);
            (code, text)
        })
    }

    /// True when a TCP connection from the container to `ip`:`port`
    /// returns `banner` (a connection that merely opens is not enough).
    pub fn reaches(&self, ctr: &Ctr, ip: &str, port: u16, banner: &str) -> bool {
        let (_, out) = self.exec(ctr, &format!("echo | nc -w 2 {ip} {port} 2>&1"));
        out.contains(banner)
    }

    /// True when the container resolves `name` through `server`.
    pub fn resolves(&self, ctr: &Ctr, name: &str, server: &str) -> bool {
        let (code, out) = self.exec(
            ctr,
            &format!("timeout 5 nslookup -type=a {name} {server} 2>&1"),
        );
        code == 0 && out.contains("Address") && !out.contains("timed out")
    }
}

/// Removes containers (forced) and networks.
pub async fn remove(d: &Docker, containers: &[String], networks: &[String]) {
    let force = RemoveContainerOptionsBuilder::new().force(true).build();
    for c in containers.iter().rev() {
        if let Err(e) = d.remove_container(c, Some(force.clone())).await {
            eprintln!("lab cleanup: container {c}: {e}");
        }
    }
    for n in networks {
        if let Err(e) = d.remove_network(n).await {
            eprintln!("lab cleanup: network {n}: {e}");
        }
    }
}
