//! Whether cordon can enforce a container's policy at all, from the
//! container's network mode and the drivers of its networks: a pure
//! function of the inventory.
//!
//! cordon enforces at a container's own veth port on a Docker bridge
//! (`docs/design.md`, "Identity"). A container without such a port —
//! on the host's network, on a macvlan/ipvlan/overlay network, or in
//! another container's network namespace — sends traffic cordon's rules
//! never see as that container's.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Container, Inventory};

/// Whether a container's own policy is enforced.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Enforcement {
    /// Every interface it has is a port cordon judges (or it has none:
    /// `--network none`).
    #[default]
    Enforced,
    /// Some of its traffic escapes its policy.
    Unenforced {
        /// Why.
        reason: Unenforced,
    },
}

/// Why a container's policy is not enforced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Unenforced {
    /// `--network host`: its traffic is the host's own.
    HostNetwork,
    /// An endpoint on a network whose driver is not `bridge` (macvlan,
    /// ipvlan, overlay, a plugin's): its frames never cross a Docker
    /// bridge.
    Driver {
        /// The network's name.
        network: String,
        /// Its driver.
        driver: String,
    },
    /// `--network container:X`: it shares X's network namespace, so X's
    /// interfaces, addresses and policy are its own.
    SharedNetns {
        /// X as the network mode names it (an id or a name).
        container: String,
        /// X's name, when X is a known running container.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// X's id, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// No endpoint on a network cordon manages (an unknown network, or no
    /// endpoint at all while its mode is neither `none` nor the above).
    NoManagedEndpoint {
        /// The unknown network, when there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        network: Option<String>,
    },
}

impl Unenforced {
    /// A short, stable label for metrics: `host-network`,
    /// `driver-<driver>`, `container-netns`, `no-managed-endpoint`.
    pub fn label(&self) -> String {
        match self {
            Unenforced::HostNetwork => "host-network".into(),
            Unenforced::Driver { driver, .. } => format!("driver-{driver}"),
            Unenforced::SharedNetns { .. } => "container-netns".into(),
            Unenforced::NoManagedEndpoint { .. } => "no-managed-endpoint".into(),
        }
    }
}

impl fmt::Display for Unenforced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unenforced::HostNetwork => {
                write!(f, "uses the host's network; cordon cannot tell it from the host")
            }
            Unenforced::Driver { network, driver } => write!(
                f,
                "network {network} has driver {driver}; cordon enforces only on bridge networks"
            ),
            Unenforced::SharedNetns {
                container, name, ..
            } => match name {
                Some(n) => write!(
                    f,
                    "shares the network namespace of container {n}; that container's policy governs its traffic"
                ),
                None => write!(
                    f,
                    "shares the network namespace of container {container}, which cordon does not know"
                ),
            },
            Unenforced::NoManagedEndpoint { network: Some(n) } => {
                write!(f, "network {n} is not a network cordon manages")
            }
            Unenforced::NoManagedEndpoint { network: None } => {
                write!(f, "has no endpoint on a network cordon manages")
            }
        }
    }
}

impl Enforcement {
    /// True for [`Enforcement::Enforced`].
    pub fn is_enforced(&self) -> bool {
        matches!(self, Enforcement::Enforced)
    }

    /// The reason, when unenforced.
    pub fn reason(&self) -> Option<&Unenforced> {
        match self {
            Enforcement::Enforced => None,
            Enforcement::Unenforced { reason } => Some(reason),
        }
    }
}

/// The driver cordon enforces on.
pub const ENFORCED_DRIVER: &str = "bridge";

/// Whether cordon can enforce `c`'s policy, given the networks and
/// containers of `inv`. The first reason found wins, in this order: host
/// network, shared namespace, an endpoint on another driver, an endpoint
/// on an unknown network, no endpoint at all.
pub fn enforcement(c: &Container, inv: &Inventory) -> Enforcement {
    let unenforced = |reason| Enforcement::Unenforced { reason };
    let mode = c.network_mode.as_str();
    if mode == "host" {
        return unenforced(Unenforced::HostNetwork);
    }
    if let Some(target) = mode.strip_prefix("container:") {
        let x = shared_with(target, inv);
        return unenforced(Unenforced::SharedNetns {
            container: target.to_string(),
            name: x.map(|x| x.name.clone()),
            id: x.map(|x| x.id.clone()),
        });
    }
    for ep in &c.endpoints {
        let net = inv
            .networks
            .iter()
            .find(|n| !ep.network_id.is_empty() && n.id == ep.network_id)
            .or_else(|| inv.network(&ep.network));
        match net {
            Some(n) if n.driver == "host" => return unenforced(Unenforced::HostNetwork),
            // `--network none`: Docker lists an endpoint on `none` (driver
            // `null`) that has no interface but loopback.
            Some(n) if n.driver == "null" => {}
            Some(n) if n.driver != ENFORCED_DRIVER => {
                return unenforced(Unenforced::Driver {
                    network: n.name.clone(),
                    driver: n.driver.clone(),
                })
            }
            Some(n) if n.bridge.is_some() => {}
            _ => {
                return unenforced(Unenforced::NoManagedEndpoint {
                    network: Some(ep.network.clone()),
                })
            }
        }
    }
    if c.endpoints.is_empty() && mode != "none" {
        return unenforced(Unenforced::NoManagedEndpoint { network: None });
    }
    Enforcement::Enforced
}

/// The running container `target` (an id, an id prefix of at least 12
/// digits, or a name) names, if it is in the inventory.
pub fn shared_with<'a>(target: &str, inv: &'a Inventory) -> Option<&'a Container> {
    let target = target.trim_start_matches('/');
    inv.containers
        .iter()
        .find(|c| c.id == target)
        .or_else(|| inv.containers.iter().find(|c| c.name == target))
        .or_else(|| {
            (target.len() >= 12)
                .then(|| inv.containers.iter().find(|c| c.id.starts_with(target)))
                .flatten()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Endpoint, Network};

    fn inv() -> Inventory {
        let net = |id: &str, name: &str, driver: &str, bridge: Option<&str>| Network {
            id: id.into(),
            name: name.into(),
            driver: driver.into(),
            bridge: bridge.map(Into::into),
            ..Network::default()
        };
        Inventory {
            networks: vec![
                net("b1", "bridge", "bridge", Some("docker0")),
                net("a1", "app", "bridge", Some("br-a1")),
                net("h1", "host", "host", None),
                net("n1", "none", "null", None),
                net("m1", "lan", "macvlan", None),
                net("i1", "l3", "ipvlan", None),
                net("o1", "swarm", "overlay", None),
            ],
            containers: vec![ctr("x", &"f".repeat(64), "app", &["app"])],
            ..Inventory::default()
        }
    }

    fn ctr(name: &str, id: &str, mode: &str, nets: &[&str]) -> Container {
        Container {
            id: id.into(),
            name: name.into(),
            network_mode: mode.into(),
            endpoints: nets
                .iter()
                .map(|n| Endpoint {
                    network: (*n).into(),
                    ..Endpoint::default()
                })
                .collect(),
            ..Container::default()
        }
    }

    fn reason(c: &Container) -> Option<Unenforced> {
        enforcement(c, &inv()).reason().cloned()
    }

    #[test]
    fn bridge_endpoints_are_enforced() {
        assert_eq!(reason(&ctr("a", "1", "app", &["app"])), None);
        assert_eq!(reason(&ctr("a", "1", "bridge", &["bridge", "app"])), None);
        assert_eq!(reason(&ctr("a", "1", "default", &["bridge"])), None);
    }

    #[test]
    fn network_none_is_enforced() {
        assert_eq!(reason(&ctr("a", "1", "none", &[])), None);
        assert_eq!(reason(&ctr("a", "1", "none", &["none"])), None);
    }

    #[test]
    fn host_network_is_unenforced() {
        assert_eq!(
            reason(&ctr("a", "1", "host", &["host"])),
            Some(Unenforced::HostNetwork)
        );
        // The host network reached by name or id rather than the mode.
        assert_eq!(
            reason(&ctr("a", "1", "h1", &["host"])),
            Some(Unenforced::HostNetwork)
        );
    }

    #[test]
    fn other_drivers_are_unenforced() {
        for (net, driver) in [("lan", "macvlan"), ("l3", "ipvlan"), ("swarm", "overlay")] {
            let r = reason(&ctr("a", "1", "app", &["app", net]));
            assert_eq!(
                r,
                Some(Unenforced::Driver {
                    network: net.into(),
                    driver: driver.into()
                })
            );
            assert_eq!(r.unwrap().label(), format!("driver-{driver}"));
        }
    }

    #[test]
    fn shared_namespace_names_the_owner() {
        let id = "f".repeat(64);
        for target in [id.clone(), "x".to_string(), id[..12].to_string()] {
            let r = reason(&ctr("a", "1", &format!("container:{target}"), &[]));
            assert_eq!(
                r,
                Some(Unenforced::SharedNetns {
                    container: target.clone(),
                    name: Some("x".into()),
                    id: Some(id.clone()),
                }),
                "{target}"
            );
        }
        let unknown = reason(&ctr("a", "1", "container:nope", &[])).unwrap();
        assert!(unknown.to_string().contains("does not know"), "{unknown}");
        assert_eq!(unknown.label(), "container-netns");
    }

    #[test]
    fn unknown_network_and_no_endpoint_are_unenforced() {
        assert_eq!(
            reason(&ctr("a", "1", "new", &["new"])),
            Some(Unenforced::NoManagedEndpoint {
                network: Some("new".into())
            })
        );
        assert_eq!(
            reason(&ctr("a", "1", "app", &[])),
            Some(Unenforced::NoManagedEndpoint { network: None })
        );
    }

    #[test]
    fn json_form_is_tagged() {
        let e = Enforcement::Unenforced {
            reason: Unenforced::Driver {
                network: "lan".into(),
                driver: "macvlan".into(),
            },
        };
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"state": "unenforced", "reason": {"kind": "driver", "network": "lan", "driver": "macvlan"}})
        );
        assert_eq!(
            serde_json::to_value(Enforcement::Enforced).unwrap(),
            serde_json::json!({"state": "enforced"})
        );
    }
}
