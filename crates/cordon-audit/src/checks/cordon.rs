//! cordon's own checks: each container is covered by a cordon policy that
//! blocks private ranges and the metadata endpoint (as configured: the
//! policy file; in effect: cordon's `inet cordon` table is installed), and
//! each bridge network has a name cordon's unbound-bridge guard covers.

use std::collections::BTreeMap;

use super::{automated, container_object, per_container, Check, Meta};
use crate::coverage::coverage;
use crate::facts::{ContainerFacts, Facts};
use crate::model::{Object, Outcome, Severity, Status};

/// The Docker network option that names a network's bridge.
pub const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";

/// cordon's checks.
pub fn checks() -> Vec<Check> {
    vec![
        cordon_1(),
        crate::enforceable::check(),
        automated(
            6,
            Severity::Medium,
            Meta {
                id: "CORDON-3",
                title: "Ensure each bridge network has a bridge name cordon's unbound-bridge guard covers",
                source: "GET /networks: Driver, Options com.docker.network.bridge.name",
                remediation: "drop the com.docker.network.bridge.name option (or use a name starting with br- and two lowercase hex digits), so that the network is closed while cordon has not bound it",
            },
            bridge_names,
        ),
    ]
}

/// CORDON-3: cordon drops traffic of a bridge it has not bound yet (a
/// network created while its daemon is down) only when the bridge is named
/// as Docker names its bridges (`br-…`, `docker0`); a custom name
/// (`com.docker.network.bridge.name`) leaves such a network open until
/// the daemon returns.
fn bridge_names(f: &Facts) -> Vec<Outcome> {
    let mut out: Vec<Outcome> = f
        .networks
        .iter()
        .filter(|n| n.driver.as_deref() == Some("bridge"))
        .map(|n| {
            let name = n.name.clone().unwrap_or_default();
            let obj = Object::named("network", &name);
            let custom = n
                .options
                .as_ref()
                .and_then(|o| o.get(BRIDGE_NAME_OPTION))
                .filter(|b| !b.is_empty());
            match custom {
                Some(b) if !docker_named(b) => Outcome::new(
                    obj,
                    Status::Fail,
                    format!(
                        "bridge {b} ({BRIDGE_NAME_OPTION}): while cordon has not bound it (created while the daemon is down), its containers are not cut off"
                    ),
                ),
                Some(b) => Outcome::new(obj, Status::Pass, format!("bridge {b}")),
                None => Outcome::new(obj, Status::Pass, "Docker's own bridge name (br-…)"),
            }
        })
        .collect();
    if out.is_empty() {
        out.push(Outcome::new(
            Object::host(),
            Status::NotApplicable,
            "no bridge network",
        ));
    }
    out
}

/// The names cordon's unbound-bridge guard covers: `docker0`, and `br-`
/// followed by two lowercase hex digits (what Docker's `br-` and 12 hex
/// digits start with).
pub fn docker_named(bridge: &str) -> bool {
    bridge == "docker0"
        || bridge.strip_prefix("br-").is_some_and(|rest| {
            rest.len() >= 2
                && rest
                    .bytes()
                    .take(2)
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

fn cordon_1() -> Check {
    automated(
        6,
        Severity::Medium,
        Meta {
            id: "CORDON-1",
            title: "Ensure each container is covered by a cordon policy that blocks private ranges and metadata",
            source: "the cordon policy (-c FILE, /etc/cordon/cordon.yaml or the embedded default), container inspect name/image/labels/NetworkMode; in effect: nft list tables (inet cordon)",
            remediation: "select the container with a policy whose egress excludes private, metadata and any; run `cordon daemon` (or `cordon apply`)",
        },
        |f: &Facts| match f.cordon.policy {
            Some(_) => per_container(f, covered),
            None => Vec::new(),
        },
    )
}

fn covered(f: &Facts, c: &ContainerFacts) -> Outcome {
    let obj = container_object(c);
    let Some(policy) = f.cordon.policy.as_ref() else {
        return Outcome::new(obj, Status::NotApplicable, "no policy");
    };
    let mode = c.host_config().network_mode.clone().unwrap_or_default();
    if mode == "host" {
        let why = "uses the host's network: no cordon policy can apply to it";
        return Outcome::new(obj, Status::Fail, why);
    }
    if mode == "none" {
        return Outcome::new(obj, Status::Pass, "no network");
    }
    if let Some(other) = mode.strip_prefix("container:") {
        let why = format!("uses the network of container {other}: judged there");
        return Outcome::new(obj, Status::NotApplicable, why);
    }
    let cfg = c.config();
    let labels: BTreeMap<String, String> =
        cfg.labels.clone().unwrap_or_default().into_iter().collect();
    let image_labels = f
        .images
        .get(c.image_id())
        .and_then(|i| i.inspect.config.as_ref())
        .and_then(|cfg| cfg.labels.as_ref())
        .map(|il| cordon_inventory::image_given(&labels, il))
        .unwrap_or_default();
    let image = cfg.image.as_deref().unwrap_or("");
    let cov = coverage(policy, c.name(), image, &labels, &image_labels);
    let mut why = Vec::new();
    if !cov.opens_private.is_empty() {
        let words = cov.opens_private.join(", ");
        why.push(format!("egress opens private ranges ({words})"));
    }
    if !cov.opens_metadata.is_empty() {
        let words = cov.opens_metadata.join(", ");
        why.push(format!("egress opens metadata ({words})"));
    }
    if cov.audit_only {
        why.push("mode: audit (logs, drops nothing)".into());
    }
    let ev = if why.is_empty() {
        format!("policy {} blocks private ranges and metadata", cov.policy)
    } else {
        format!("policy {}: {}", cov.policy, why.join("; "))
    };
    let conf = format!("policy {} from {}", cov.policy, policy.source);
    let eff = match (f.cordon.table_installed, &f.cordon.table_error) {
        (Some(true), _) => "inet cordon table installed".to_string(),
        (Some(false), _) => "no inet cordon table: nothing is enforced".to_string(),
        (None, e) => format!("unknown ({})", e.as_deref().unwrap_or("not checked")),
    };
    // Configured to block but not enforced: the policy is not in effect.
    let not_enforced = cov.blocks() && f.cordon.table_installed == Some(false);
    Outcome::verdict(obj, cov.blocks(), ev).compare(conf, eff, not_enforced)
}
