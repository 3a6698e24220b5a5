//! CORDON-2: can cordon enforce each container's policy at all? cordon
//! judges a container at its own veth port on a Docker bridge; a container
//! on the host's network, on a macvlan/ipvlan/overlay network, or inside
//! another container's network namespace has no such port. The judgement
//! is `cordon_inventory::enforcement`, the same function `cordon status`
//! uses.

use cordon_inventory::{Container, Enforcement, Inventory, Unenforced};

use crate::checks::{automated, container_object, Check, Meta};
use crate::coverage::coverage;
use crate::facts::Facts;
use crate::model::{Outcome, Severity, Status};

/// The check.
pub fn check() -> Check {
    automated(
        6,
        Severity::High,
        Meta {
            id: "CORDON-2",
            title: "Ensure cordon can enforce each container's policy (no host network, no non-bridge network, no shared network namespace)",
            source: "container inspect HostConfig.NetworkMode, NetworkSettings.Networks; Docker's network list (drivers); the cordon policy",
            remediation: "run the container on a bridge network, not --network host, macvlan/ipvlan/overlay or container:X; enable cordon's authorization plugin to refuse such containers (docs/authz.md)",
        },
        evaluate,
    )
}

fn evaluate(f: &Facts) -> Vec<Outcome> {
    let networks = f.cordon.networks.clone().unwrap_or_default();
    let converted: Vec<Option<Container>> = f
        .containers
        .iter()
        .map(|facts| {
            let mut c = cordon_docker::inventory::container_from(&facts.inspect, &networks)?;
            // Labels the image gave select no policy (as in the daemon).
            c.image_labels = f
                .images
                .get(facts.image_id())
                .and_then(|i| i.inspect.config.as_ref())
                .and_then(|cfg| cfg.labels.as_ref())
                .map(|il| cordon_inventory::image_given(&c.labels, il))
                .unwrap_or_default();
            Some(c)
        })
        .collect();
    let inv = Inventory {
        networks,
        containers: converted.iter().flatten().cloned().collect(),
        ..Inventory::default()
    };
    let policy_of = |c: &Container| {
        f.cordon
            .policy
            .as_ref()
            .map(|p| coverage(p, &c.name, &c.image, &c.labels, &c.image_labels).policy)
    };
    f.containers
        .iter()
        .zip(&converted)
        .map(|(facts, c)| {
            let obj = container_object(facts);
            let Some(c) = c else {
                return Outcome::new(obj, Status::NotApplicable, "not running");
            };
            let own = policy_of(c);
            let own_text = own
                .as_ref()
                .map(|p| format!("its policy {p}: "))
                .unwrap_or_default();
            match cordon_inventory::enforcement(c, &inv) {
                Enforcement::Enforced if c.network_mode == "none" => {
                    Outcome::new(obj, Status::Pass, "no network (--network none)")
                }
                Enforcement::Enforced => Outcome::new(
                    obj,
                    Status::Pass,
                    format!("{own_text}enforced at its bridge port(s)"),
                ),
                Enforcement::Unenforced {
                    reason: Unenforced::Driver { .. } | Unenforced::NoManagedEndpoint { .. },
                } if f.cordon.networks.is_none() => Outcome::new(
                    obj,
                    Status::NotApplicable,
                    "Docker's networks could not be listed",
                ),
                Enforcement::Unenforced {
                    reason: Unenforced::SharedNetns { container, name: None, .. },
                } => Outcome::new(
                    obj,
                    Status::Fail,
                    format!(
                        "{own_text}NOT enforced: shares the network namespace of container {container} (not among the audited containers), whose policy governs its traffic"
                    ),
                ),
                Enforcement::Unenforced { reason } => {
                    let mut why = format!("{own_text}NOT enforced: {reason}");
                    if let Unenforced::SharedNetns { id: Some(id), .. } = &reason {
                        let governing = inv
                            .containers
                            .iter()
                            .find(|x| x.id == *id)
                            .and_then(policy_of);
                        match (governing, &own) {
                            (Some(g), Some(o)) if g != *o => why.push_str(&format!(
                                " (policy {g}); WARNING: its own policy {o} differs"
                            )),
                            (Some(g), _) => why.push_str(&format!(" (policy {g})")),
                            _ => {}
                        }
                    }
                    Outcome::new(obj, Status::Fail, why)
                }
            }
        })
        .collect()
}
