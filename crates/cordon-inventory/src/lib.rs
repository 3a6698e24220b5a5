//! What cordon knows of a Docker host: its bridge networks and its running
//! containers with their endpoints on those networks.
//!
//! This is plain data. `cordon-docker` fills it from the Docker Engine API;
//! `cordon inventory -o json` prints it and `cordon plan --inventory FILE`
//! reads it back, which is how the compiler is tested and benchmarked
//! without Docker.

mod enforcement;
mod shown;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use enforcement::{enforcement, shared_with, Enforcement, Unenforced, ENFORCED_DRIVER};
pub use shown::{escape, needs_escape, Shown};

/// The version written in [`Inventory::version`].
pub const INVENTORY_VERSION: u32 = 1;

/// Everything the compiler needs to know about a host.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// Format version, currently 1.
    #[serde(default = "default_version")]
    pub version: u32,
    /// Docker networks (all drivers; only `bridge` ones are enforced).
    #[serde(default)]
    pub networks: Vec<Network>,
    /// Running containers.
    #[serde(default)]
    pub containers: Vec<Container>,
}

fn default_version() -> u32 {
    INVENTORY_VERSION
}

/// A Docker network.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Docker's network id (64 hex digits).
    pub id: String,
    /// The network's name (`bridge` for the default one).
    pub name: String,
    /// The driver: `bridge`, `host`, `null`, `macvlan`, …
    pub driver: String,
    /// The Linux bridge on the host, for `bridge` networks: `docker0`,
    /// `br-<id12>`, or the name from `com.docker.network.bridge.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    /// The subnets of its IPAM configuration.
    #[serde(default)]
    pub subnets: Vec<IpNet>,
    /// True for the default `bridge` network, which is never `same-network`.
    #[serde(default)]
    pub default_bridge: bool,
    /// `--internal`: Docker gives it no route out.
    #[serde(default)]
    pub internal: bool,
    /// IPv6 enabled.
    #[serde(default)]
    pub ipv6: bool,
    /// cordon must masquerade this network's IPv4 traffic leaving the host,
    /// because Docker does not: its daemon runs with `"iptables": false`
    /// and the network is a non-internal bridge whose
    /// `com.docker.network.bridge.enable_ip_masquerade` is not false.
    /// See `docs/iptables-false.md`.
    #[serde(default)]
    pub masquerade: bool,
}

/// A running container.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Container {
    /// Docker's container id (64 hex digits).
    pub id: String,
    /// The name without Docker's leading `/`.
    pub name: String,
    /// The image reference the container was created with (`nginx:1.27`).
    #[serde(default)]
    pub image: String,
    /// All labels: those set at run time and those Docker merged in from
    /// the image.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The keys of `labels` whose key and value both come from the image
    /// (see [`image_given`]). Policy selection by label ignores them
    /// unless the policy file sets `trust_image_labels: true`.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub image_labels: BTreeSet<String>,
    /// The main process's pid on the host, when running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// `HostConfig.NetworkMode`: `bridge`, a network name, `host`, `none`,
    /// or `container:<id>`.
    #[serde(default)]
    pub network_mode: String,
    /// Its endpoints, one per network it is attached to.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// Published ports.
    #[serde(default)]
    pub ports: Vec<PublishedPort>,
}

impl Container {
    /// `com.docker.compose.project`, if any.
    pub fn compose_project(&self) -> Option<&str> {
        self.labels
            .get("com.docker.compose.project")
            .map(String::as_str)
    }

    /// `com.docker.compose.service`, if any.
    pub fn compose_service(&self) -> Option<&str> {
        self.labels
            .get("com.docker.compose.service")
            .map(String::as_str)
    }

    /// The first 12 hex digits of the id, as `docker ps` shows it.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    /// What policy selection looks at in this container.
    pub fn candidate(&self) -> cordon_policy::Candidate<'_> {
        cordon_policy::Candidate {
            name: &self.name,
            image: &self.image,
            labels: &self.labels,
            image_labels: &self.image_labels,
        }
    }
}

/// The keys of a container's `labels` that its image gave it: Docker
/// merges the image's labels (`LABEL` in a Dockerfile) into the
/// container's, so a label is the image's when the image has the same key
/// with the same value. A run-time `--label` that repeats the image's
/// value exactly cannot be told apart from it and counts as the image's.
pub fn image_given<'a>(
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
    image_labels: &std::collections::HashMap<String, String>,
) -> BTreeSet<String> {
    labels
        .into_iter()
        .filter(|(k, v)| image_labels.get(*k) == Some(*v))
        .map(|(k, _)| k.clone())
        .collect()
}

/// A container's attachment to one network.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// The network's name.
    pub network: String,
    /// The network's id.
    #[serde(default)]
    pub network_id: String,
    /// Its IPv4 address, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<Ipv4Addr>,
    /// Its global IPv6 address, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Addr>,
    /// The MAC Docker assigned, lower-case `aa:bb:cc:dd:ee:ff`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// The host-side interface of the endpoint (the veth on the bridge).
    /// `None` when it could not be found; such an endpoint is never let out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_iface: Option<String>,
    /// The bridge the endpoint is on (copied from its network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedPort {
    /// The container's own port.
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub proto: String,
    /// The host address it is bound to (`0.0.0.0`, `::`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// The host port.
    #[serde(default)]
    pub host_port: u16,
}

/// A JSON inventory that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ReadError {
    /// The file named by the user.
    pub file: String,
    /// What is wrong, including line and column when JSON knows them.
    pub message: String,
}

impl Inventory {
    /// Parses an inventory saved by `cordon inventory -o json`.
    pub fn from_json(file: &str, text: &str) -> Result<Self, ReadError> {
        let inv: Inventory = serde_json::from_str(text).map_err(|e| ReadError {
            file: file.to_string(),
            message: if e.line() > 0 {
                format!("line {} column {}: {e}", e.line(), e.column())
            } else {
                e.to_string()
            },
        })?;
        if inv.version != INVENTORY_VERSION {
            return Err(ReadError {
                file: file.to_string(),
                message: format!(
                    "inventory version {} is not supported (this cordon reads version {INVENTORY_VERSION})",
                    inv.version
                ),
            });
        }
        Ok(inv)
    }

    /// Pretty JSON, the form [`Inventory::from_json`] reads.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("inventory serialises")
    }

    /// The network with this name.
    pub fn network(&self, name: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let inv = Inventory {
            version: 1,
            networks: vec![Network {
                id: "n1".into(),
                name: "bridge".into(),
                driver: "bridge".into(),
                bridge: Some("docker0".into()),
                subnets: vec!["172.17.0.0/16".parse().unwrap()],
                default_bridge: true,
                ..Default::default()
            }],
            containers: vec![Container {
                id: "c".repeat(64),
                name: "web".into(),
                endpoints: vec![Endpoint {
                    network: "bridge".into(),
                    ipv4: Some("172.17.0.2".parse().unwrap()),
                    host_iface: Some("veth1".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let back = Inventory::from_json("x.json", &inv.to_json()).unwrap();
        assert_eq!(back, inv);
    }

    #[test]
    fn unknown_field_is_located() {
        let err = Inventory::from_json("x.json", "{\n \"containerz\": []}").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("x.json: line 2 column"), "{msg}");
        assert!(msg.contains("containerz"), "{msg}");
    }

    #[test]
    fn a_label_is_the_image_s_only_with_the_same_key_and_value() {
        let labels: BTreeMap<String, String> = [
            ("cordon.policy", "open"),
            ("app", "web"),
            ("maintainer", "me"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let image: std::collections::HashMap<String, String> =
            [("cordon.policy", "open"), ("app", "db"), ("version", "1")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        // `app` was overridden at run time, `maintainer` set at run time,
        // `version` is not on the container at all.
        assert_eq!(
            image_given(&labels, &image),
            BTreeSet::from(["cordon.policy".to_string()])
        );
        let c = Container {
            labels,
            image_labels: image_given(&BTreeMap::new(), &image),
            ..Default::default()
        };
        assert!(c.image_labels.is_empty());
        assert_eq!(c.candidate().labels.len(), 3);
    }

    #[test]
    fn image_labels_round_trip_and_are_optional_in_json() {
        let c = Container {
            id: "c".repeat(64),
            name: "x".into(),
            image_labels: BTreeSet::from(["cordon.policy".to_string()]),
            ..Default::default()
        };
        let inv = Inventory {
            version: 1,
            containers: vec![c],
            ..Default::default()
        };
        let back = Inventory::from_json("x.json", &inv.to_json()).unwrap();
        assert_eq!(back, inv);
        let old = Inventory::from_json(
            "x.json",
            "{\"containers\": [{\"id\": \"a\", \"name\": \"b\"}]}",
        )
        .unwrap();
        assert!(old.containers[0].image_labels.is_empty());
    }

    #[test]
    fn wrong_version_is_refused() {
        let err = Inventory::from_json("x.json", "{\"version\": 7}").unwrap_err();
        assert!(err.to_string().contains("version 7"), "{err}");
    }
}
