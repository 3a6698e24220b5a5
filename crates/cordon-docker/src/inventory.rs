//! Collecting the [`Inventory`]: Docker's networks and running containers,
//! with each endpoint's host-side interface.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use bollard::models::{ContainerInspectResponse, EndpointSettings, PortMap};
use bollard::query_parameters::{ListContainersOptions, ListNetworksOptions};
use bollard::Docker;
use cordon_inventory::{
    Container, Endpoint, Inventory, Network, PublishedPort, Shown, INVENTORY_VERSION,
};
use futures_util::stream::{self, StreamExt};
use ipnet::IpNet;

use crate::error::{status_of, DockerError};
use crate::masquerade;
use crate::veth::find_host_ifaces;

/// How many container inspections run at once.
const INSPECT_CONCURRENCY: usize = 16;

/// The network option that names a bridge network's Linux bridge.
const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";

/// Lists Docker's networks and running containers, inspects the containers
/// (16 at a time) and finds each endpoint's host-side veth (see
/// [`crate::veth`]). Marks the networks cordon must masquerade because
/// their daemon runs with `--iptables=false` (see [`crate::masquerade`]).
///
/// Containers are sorted by name, networks by name, endpoints by network
/// and published ports by port, so the same host gives the same output. A
/// container that stops or disappears between the listing and its
/// inspection is left out, not an error.
///
/// Must run inside a tokio runtime (bollard needs one); the namespace work
/// runs on a dedicated thread, never on a runtime worker.
pub async fn collect(docker: &Docker) -> Result<Inventory, DockerError> {
    let listed = docker
        .list_containers(None::<ListContainersOptions>)
        .await
        .map_err(|e| DockerError::api("list containers", &e))?;
    let ids: Vec<String> = listed.into_iter().filter_map(|c| c.id).collect();

    let inspected: Vec<Result<Option<ContainerInspectResponse>, DockerError>> = stream::iter(ids)
        .map(|id| async move {
            match docker.inspect_container(&id, None).await {
                Ok(resp) => Ok(Some(resp)),
                Err(err) if status_of(&err) == Some(404) => {
                    tracing::debug!(container = %id, "container vanished before inspection");
                    Ok(None)
                }
                Err(err) => Err(DockerError::api(format!("inspect container {id}"), &err)),
            }
        })
        .buffer_unordered(INSPECT_CONCURRENCY)
        .collect()
        .await;

    let cordon_masquerades = match masquerade::detect(docker).await {
        Ok(settings) => settings.cordon_masquerades(),
        Err(reason) => {
            tracing::warn!(
                "cannot tell whether dockerd manages iptables ({reason}); assuming it does, so cordon masquerades nothing"
            );
            false
        }
    };

    // Listed after the containers: every network a container was attached
    // to then still exists (Docker refuses to remove a network in use).
    let mut networks: Vec<Network> = docker
        .list_networks(None::<ListNetworksOptions>)
        .await
        .map_err(|e| DockerError::api("list networks", &e))?
        .iter()
        .map(|n| network_from(n, cordon_masquerades))
        .collect();
    networks.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));

    let mut containers = Vec::new();
    for resp in inspected {
        let Some(resp) = resp? else { continue };
        if let Some(mut c) = container_from(&resp, &networks) {
            mark_image_labels(docker, resp.image.as_deref().unwrap_or(""), &mut c).await?;
            containers.push(c);
        }
    }
    containers.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));

    let containers =
        tokio::task::spawn_blocking(move || find_host_ifaces(&mut containers).map(|()| containers))
            .await
            .map_err(|e| DockerError::HostLinks {
                reason: format!("the interface lookup failed: {e}"),
            })??;

    Ok(Inventory {
        version: INVENTORY_VERSION,
        networks,
        containers,
    })
}

/// A Docker network as cordon sees it. `cordon_masquerades`: its daemon
/// installs no NAT (see [`crate::masquerade`]).
pub fn network_from(n: &bollard::models::Network, cordon_masquerades: bool) -> Network {
    let id = n.id.clone().unwrap_or_default();
    let name = n.name.clone().unwrap_or_default();
    let driver = n.driver.clone().unwrap_or_default();
    let subnets = n
        .ipam
        .as_ref()
        .and_then(|ipam| ipam.config.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|cfg| cfg.subnet.as_deref())
        .filter_map(|s| match s.parse::<IpNet>() {
            Ok(net) => Some(net),
            Err(_) => {
                tracing::warn!(network = %Shown(&name), subnet = %Shown(s), "ignoring a subnet that is not a CIDR");
                None
            }
        })
        .collect();
    let internal = n.internal.unwrap_or(false);
    Network {
        bridge: bridge_name(&name, &driver, &id, n.options.as_ref()),
        default_bridge: name == "bridge" && driver == "bridge",
        masquerade: masquerade::network_masquerade(
            cordon_masquerades,
            &driver,
            internal,
            n.options.as_ref(),
        ),
        internal,
        ipv6: n.enable_ipv6.unwrap_or(false),
        subnets,
        id,
        name,
        driver,
    }
}

/// The Linux bridge of a `bridge` network: the
/// `com.docker.network.bridge.name` option when set, else `docker0` for the
/// default network and `br-<first 12 hex digits of the id>` for the others.
/// `None` for other drivers.
pub(crate) fn bridge_name(
    name: &str,
    driver: &str,
    id: &str,
    options: Option<&HashMap<String, String>>,
) -> Option<String> {
    if driver != "bridge" {
        return None;
    }
    if let Some(explicit) = options
        .and_then(|o| o.get(BRIDGE_NAME_OPTION))
        .filter(|s| !s.is_empty())
    {
        return Some(explicit.clone());
    }
    if name == "bridge" {
        return Some("docker0".into());
    }
    Some(format!("br-{}", &id[..id.len().min(12)]))
}

/// A running container as cordon sees it (without host interfaces);
/// `None` when it is not running (any more).
pub fn container_from(resp: &ContainerInspectResponse, networks: &[Network]) -> Option<Container> {
    let id = resp.id.clone()?;
    if resp.state.as_ref().and_then(|s| s.running) == Some(false) {
        tracing::debug!(container = %id, "container stopped before inspection");
        return None;
    }
    let config = resp.config.as_ref();
    let settings = resp.network_settings.as_ref();
    let mut endpoints: Vec<Endpoint> = settings
        .and_then(|s| s.networks.as_ref())
        .into_iter()
        .flatten()
        .map(|(net, ep)| endpoint_from(net, ep, networks))
        .collect();
    endpoints.sort_by(|a, b| a.network.cmp(&b.network));
    Some(Container {
        name: resp
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        image: config.and_then(|c| c.image.clone()).unwrap_or_default(),
        labels: config
            .and_then(|c| c.labels.as_ref())
            .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        // Filled by `mark_image_labels`, which asks Docker about the image.
        image_labels: Default::default(),
        pid: resp
            .state
            .as_ref()
            .and_then(|s| s.pid)
            .filter(|&p| p > 0)
            .and_then(|p| u32::try_from(p).ok()),
        network_mode: resp
            .host_config
            .as_ref()
            .and_then(|h| h.network_mode.clone())
            .unwrap_or_default(),
        endpoints,
        ports: settings
            .and_then(|s| s.ports.as_ref())
            .map(published_ports)
            .unwrap_or_default(),
        id,
    })
}

/// Fills [`Container::image_labels`] for a container of image `image_id`
/// (`ContainerInspectResponse.Image`): the labels it carries because its
/// image has them, key and value alike. A container without labels needs
/// no lookup. When Docker no longer knows the image, every label counts as
/// the image's (none selects a policy), which fails safe.
pub(crate) async fn mark_image_labels(
    docker: &Docker,
    image_id: &str,
    c: &mut Container,
) -> Result<(), DockerError> {
    if c.labels.is_empty() {
        return Ok(());
    }
    match crate::images::labels(docker, image_id).await? {
        Some(image_labels) => {
            c.image_labels = cordon_inventory::image_given(&c.labels, &image_labels);
        }
        None => {
            tracing::warn!(
                container = %Shown(&c.name),
                image = %Shown(image_id),
                "the container's image is gone; none of its labels selects a policy"
            );
            c.image_labels = c.labels.keys().cloned().collect();
        }
    }
    Ok(())
}

/// One entry of `NetworkSettings.Networks`. `host_iface` is left for
/// [`find_host_ifaces`].
fn endpoint_from(network: &str, ep: &EndpointSettings, networks: &[Network]) -> Endpoint {
    let network_id = ep.network_id.clone().unwrap_or_default();
    let known = networks
        .iter()
        .find(|n| !network_id.is_empty() && n.id == network_id)
        .or_else(|| networks.iter().find(|n| n.name == network));
    Endpoint {
        network: network.to_string(),
        network_id,
        ipv4: non_empty(&ep.ip_address).and_then(|s| s.parse::<Ipv4Addr>().ok()),
        ipv6: non_empty(&ep.global_ipv6_address).and_then(|s| s.parse::<Ipv6Addr>().ok()),
        mac: non_empty(&ep.mac_address).map(str::to_ascii_lowercase),
        host_iface: None,
        bridge: known.and_then(|n| n.bridge.clone()),
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// `NetworkSettings.Ports`: one entry per host binding; exposed ports
/// without a binding are not published and are left out.
pub(crate) fn published_ports(ports: &PortMap) -> Vec<PublishedPort> {
    let mut out: Vec<PublishedPort> = Vec::new();
    for (key, bindings) in ports {
        let Some((container_port, proto)) = parse_port_key(key) else {
            tracing::warn!(port = %Shown(key), "ignoring a port Docker reports in an unknown form");
            continue;
        };
        for b in bindings.iter().flatten() {
            out.push(PublishedPort {
                container_port,
                proto: proto.clone(),
                host_ip: non_empty(&b.host_ip).map(str::to_string),
                host_port: non_empty(&b.host_port)
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
            });
        }
    }
    out.sort_by(|a, b| {
        (a.container_port, &a.proto, &a.host_ip, a.host_port).cmp(&(
            b.container_port,
            &b.proto,
            &b.host_ip,
            b.host_port,
        ))
    });
    out.dedup();
    out
}

/// `22/tcp` → (22, `tcp`); a bare `22` is TCP, as in Docker.
pub(crate) fn parse_port_key(key: &str) -> Option<(u16, String)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let port = port.trim().parse().ok()?;
    let proto = proto.trim().to_ascii_lowercase();
    matches!(proto.as_str(), "tcp" | "udp" | "sctp").then_some((port, proto))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{
        ContainerConfig, ContainerState, HostConfig, Ipam, IpamConfig, NetworkSettings, PortBinding,
    };

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn opts(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn bridge_names() {
        let named = opts(&[(BRIDGE_NAME_OPTION, "docker0")]);
        assert_eq!(
            bridge_name("bridge", "bridge", ID, Some(&named)).as_deref(),
            Some("docker0")
        );
        let custom = opts(&[(BRIDGE_NAME_OPTION, "mybr")]);
        assert_eq!(
            bridge_name("bridge", "bridge", ID, Some(&custom)).as_deref(),
            Some("mybr")
        );
        assert_eq!(
            bridge_name("bridge", "bridge", ID, None).as_deref(),
            Some("docker0")
        );
        assert_eq!(
            bridge_name("app", "bridge", ID, None).as_deref(),
            Some("br-0123456789ab")
        );
        let empty = opts(&[(BRIDGE_NAME_OPTION, "")]);
        assert_eq!(
            bridge_name("app", "bridge", ID, Some(&empty)).as_deref(),
            Some("br-0123456789ab")
        );
        assert_eq!(
            bridge_name("app", "bridge", ID, Some(&custom)).as_deref(),
            Some("mybr")
        );
        assert_eq!(bridge_name("host", "host", ID, None), None);
        assert_eq!(bridge_name("mv", "macvlan", ID, Some(&custom)), None);
    }

    #[test]
    fn network_conversion() {
        let n = bollard::models::Network {
            id: Some(ID.into()),
            name: Some("app".into()),
            driver: Some("bridge".into()),
            internal: Some(true),
            enable_ipv6: Some(true),
            ipam: Some(Ipam {
                config: Some(vec![
                    IpamConfig {
                        subnet: Some("10.231.5.0/24".into()),
                        ..Default::default()
                    },
                    IpamConfig {
                        subnet: Some("2001:db8:231::/64".into()),
                        ..Default::default()
                    },
                    IpamConfig {
                        subnet: Some("garbage".into()),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = network_from(&n, true);
        assert_eq!(
            got,
            Network {
                id: ID.into(),
                name: "app".into(),
                driver: "bridge".into(),
                bridge: Some("br-0123456789ab".into()),
                subnets: vec![
                    "10.231.5.0/24".parse().unwrap(),
                    "2001:db8:231::/64".parse().unwrap()
                ],
                default_bridge: false,
                internal: true,
                ipv6: true,
                masquerade: false,
            }
        );
        let mut external = n.clone();
        external.internal = Some(false);
        assert!(network_from(&external, true).masquerade);
        assert!(!network_from(&external, false).masquerade);
        let default = bollard::models::Network {
            name: Some("bridge".into()),
            driver: Some("bridge".into()),
            ..Default::default()
        };
        assert!(network_from(&default, false).default_bridge);
        let not_bridge = bollard::models::Network {
            name: Some("bridge".into()),
            driver: Some("macvlan".into()),
            ..Default::default()
        };
        assert!(!network_from(&not_bridge, false).default_bridge);
    }

    #[test]
    fn port_keys() {
        assert_eq!(parse_port_key("22/tcp"), Some((22, "tcp".into())));
        assert_eq!(parse_port_key("53/UDP"), Some((53, "udp".into())));
        assert_eq!(parse_port_key("9/sctp"), Some((9, "sctp".into())));
        assert_eq!(parse_port_key("8080"), Some((8080, "tcp".into())));
        assert_eq!(parse_port_key("70000/tcp"), None);
        assert_eq!(parse_port_key("x/tcp"), None);
        assert_eq!(parse_port_key("22/icmp"), None);
    }

    #[test]
    fn ports_one_per_binding() {
        let mut map = PortMap::new();
        map.insert(
            "22/tcp".into(),
            Some(vec![
                PortBinding {
                    host_ip: Some("::".into()),
                    host_port: Some("49153".into()),
                },
                PortBinding {
                    host_ip: Some("0.0.0.0".into()),
                    host_port: Some("49153".into()),
                },
            ]),
        );
        map.insert("80/tcp".into(), None); // exposed, not published
        map.insert(
            "53/udp".into(),
            Some(vec![PortBinding {
                host_ip: Some("".into()),
                host_port: Some("5353".into()),
            }]),
        );
        let got = published_ports(&map);
        assert_eq!(
            got,
            vec![
                PublishedPort {
                    container_port: 22,
                    proto: "tcp".into(),
                    host_ip: Some("0.0.0.0".into()),
                    host_port: 49153,
                },
                PublishedPort {
                    container_port: 22,
                    proto: "tcp".into(),
                    host_ip: Some("::".into()),
                    host_port: 49153,
                },
                PublishedPort {
                    container_port: 53,
                    proto: "udp".into(),
                    host_ip: None,
                    host_port: 5353,
                },
            ]
        );
    }

    fn inspect(networks: HashMap<String, EndpointSettings>) -> ContainerInspectResponse {
        ContainerInspectResponse {
            id: Some(ID.into()),
            name: Some("/web".into()),
            state: Some(ContainerState {
                running: Some(true),
                pid: Some(4242),
                ..Default::default()
            }),
            config: Some(ContainerConfig {
                image: Some("nginx:1.27".into()),
                labels: Some(opts(&[("app", "web"), ("cordon.policy", "web")])),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                network_mode: Some("app".into()),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                networks: Some(networks),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn container_conversion() {
        let nets = vec![Network {
            id: "netid".into(),
            name: "app".into(),
            driver: "bridge".into(),
            bridge: Some("br-netid".into()),
            ..Network::default()
        }];
        let mut eps = HashMap::new();
        eps.insert(
            "app".to_string(),
            EndpointSettings {
                network_id: Some("netid".into()),
                ip_address: Some("10.231.5.2".into()),
                global_ipv6_address: Some("2001:db8:231::2".into()),
                mac_address: Some("02:42:0A:E7:05:02".into()),
                ..Default::default()
            },
        );
        eps.insert(
            "zz-gone".to_string(),
            EndpointSettings {
                network_id: Some("other".into()),
                ip_address: Some("".into()),
                global_ipv6_address: Some("".into()),
                mac_address: Some("".into()),
                ..Default::default()
            },
        );
        let c = container_from(&inspect(eps), &nets).unwrap();
        assert_eq!(c.id, ID);
        assert_eq!(c.name, "web");
        assert_eq!(c.image, "nginx:1.27");
        assert_eq!(c.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(c.pid, Some(4242));
        assert_eq!(c.network_mode, "app");
        assert_eq!(
            c.endpoints,
            vec![
                Endpoint {
                    network: "app".into(),
                    network_id: "netid".into(),
                    ipv4: Some("10.231.5.2".parse().unwrap()),
                    ipv6: Some("2001:db8:231::2".parse().unwrap()),
                    mac: Some("02:42:0a:e7:05:02".into()),
                    host_iface: None,
                    bridge: Some("br-netid".into()),
                },
                Endpoint {
                    network: "zz-gone".into(),
                    network_id: "other".into(),
                    ..Endpoint::default()
                },
            ]
        );
    }

    #[test]
    fn stopped_container_is_left_out() {
        let mut resp = inspect(HashMap::new());
        resp.state = Some(ContainerState {
            running: Some(false),
            pid: Some(0),
            ..Default::default()
        });
        assert_eq!(container_from(&resp, &[]), None);
    }
}
