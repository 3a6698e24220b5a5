//! The decision: a pure function of the request, the policy file and what
//! Docker said about the networks and containers the request names.
//!
//! A container whose policy restricts anything (every policy but a fully
//! open one: `mode: audit`, or egress `any` on all ports with ingress
//! unrestricted) is refused when it asks for what cordon cannot enforce:
//!
//! | asked for | why cordon cannot enforce it |
//! |---|---|
//! | `--network host` | its traffic is the host's own; there is no container port to judge |
//! | a network whose driver is not `bridge` (macvlan, ipvlan, overlay, plugins') | its frames leave through a parent interface, never a Docker bridge |
//! | `--network container:X`, X unknown, or X's policy not its own | it shares X's interfaces, so X's policy governs it |
//! | `--privileged`, `--cap-add ALL` | every capability and device: it can load kernel code or reconfigure the host |
//! | `--cap-add SYS_ADMIN` | mount, `setns`, BPF: routes out of its own namespace (e.g. cgroup v1 `release_agent`, which runs a program on the host) |
//! | `--cap-add SYS_MODULE` | loads kernel modules |
//! | `--cap-add SYS_PTRACE` with `--pid host` | injects code into a host process, which runs in the host's network namespace |
//! | `docker exec --privileged` | as `--privileged`, for the exec'd process |
//!
//! `NET_ADMIN` and `NET_RAW` are fine: they act in the container's own
//! network namespace, and cordon binds identity (port, MAC, address) on
//! the host, where the container cannot change it.

use std::collections::BTreeMap;

use cordon_inventory::{Container, Network};
use cordon_policy::{Body, Candidate, Mode, Peer, PolicyFile, Selection};

use crate::request::{Action, Create};

/// What Docker said about the networks and containers a request names,
/// keyed by the reference the request used (a name, an id, an id prefix).
/// A reference Docker does not know is absent.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// Networks.
    pub networks: BTreeMap<String, Network>,
    /// Containers (running or not).
    pub containers: BTreeMap<String, Container>,
}

/// The references a decision needs looked up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Network references.
    pub networks: Vec<String>,
    /// Container references.
    pub containers: Vec<String>,
}

/// The plugin's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let it through.
    Allow,
    /// Refuse, with the message the Docker client shows.
    Deny(String),
}

/// Network modes that attach to no network by name.
fn builtin_mode(mode: &str) -> bool {
    matches!(mode, "" | "default" | "none" | "host") || mode.starts_with("container:")
}

/// What `decide` will look up for `action`.
pub fn needs(action: &Action) -> Needs {
    let mut n = Needs::default();
    match action {
        Action::Create(c) => {
            if !builtin_mode(&c.network_mode) {
                n.networks.push(c.network_mode.clone());
            }
            n.networks.extend(c.endpoints.iter().cloned());
            if let Some(x) = c.network_mode.strip_prefix("container:") {
                n.containers.push(x.to_string());
            }
        }
        Action::Connect { network, container } => {
            n.networks.push(network.clone());
            n.containers.push(container.clone());
        }
        Action::PrivilegedExec { container } => n.containers.push(container.clone()),
        Action::Other => {}
    }
    n.networks.sort();
    n.networks.dedup();
    n
}

/// True when the policy restricts nothing: `mode: audit`, or unrestricted
/// ingress with an egress rule to `any` on every port.
pub fn is_open(body: &Body) -> bool {
    body.mode == Mode::Audit
        || (body.ingress.is_none()
            && body
                .egress
                .iter()
                .any(|r| r.ports.is_empty() && r.peers.contains(&Peer::Any)))
}

/// The policy a container with this name, image and labels gets: its name
/// as `cordon status` shows it, and whether it restricts anything.
pub fn policy_for(
    file: &PolicyFile,
    name: &str,
    image: &str,
    labels: &BTreeMap<String, String>,
) -> (String, bool) {
    let name = name.trim_start_matches('/');
    // A create request carries only the run-time labels (Docker merges
    // the image's later), exactly the ones that select a policy.
    let none = std::collections::BTreeSet::new();
    match file.select(&Candidate {
        name,
        image,
        labels,
        image_labels: &none,
    }) {
        Selection::Policy(p) => (p.name.clone(), !is_open(&p.body)),
        Selection::Default => ("default".into(), !is_open(&file.default)),
        Selection::UnknownLabel(l) => (format!("unknown policy {l}"), true),
    }
}

/// The capabilities of a create request that break enforcement, as
/// `CAP_`-less upper-case names.
pub fn unenforceable_caps(cap_add: &[String], pid_mode: &str) -> Vec<String> {
    let mut out: Vec<String> = cap_add
        .iter()
        .map(|c| {
            let c = c.trim().to_ascii_uppercase();
            c.strip_prefix("CAP_").map(str::to_string).unwrap_or(c)
        })
        .filter(|c| match c.as_str() {
            "ALL" | "SYS_ADMIN" | "SYS_MODULE" => true,
            "SYS_PTRACE" => pid_mode == "host",
            _ => false,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Decides `action` for the policy `file`, with `known` holding what
/// [`needs`] asked for.
pub fn decide(action: &Action, file: &PolicyFile, known: &Known) -> Decision {
    match action {
        Action::Other => Decision::Allow,
        Action::Create(c) => create(c, file, known),
        Action::Connect { network, container } => {
            let Some(net) = known.networks.get(network) else {
                return Decision::Deny(format!(
                    "network {network} is not known to Docker; refusing to connect to it"
                ));
            };
            let Err(why) = network_ok(net) else {
                return Decision::Allow;
            };
            let Some(ctr) = known.containers.get(container) else {
                return Decision::Deny(format!(
                    "container {container} is not known to Docker; refusing to connect it to network {network}"
                ));
            };
            match policy_for(file, &ctr.name, &ctr.image, &ctr.labels) {
                (policy, true) => Decision::Deny(format!(
                    "container {} has policy {policy}, which cordon cannot enforce on network {}: {why}",
                    ctr.name, net.name
                )),
                (_, false) => Decision::Allow,
            }
        }
        Action::PrivilegedExec { container } => {
            let Some(ctr) = known.containers.get(container) else {
                return Decision::Deny(format!(
                    "container {container} is not known to Docker; refusing a privileged exec"
                ));
            };
            let (policy, restrictive) = policy_for(file, &ctr.name, &ctr.image, &ctr.labels);
            if restrictive {
                Decision::Deny(format!(
                    "container {} has policy {policy}; a privileged exec would get every capability and could leave that policy's reach",
                    ctr.name
                ))
            } else {
                Decision::Allow
            }
        }
    }
}

/// Ok when cordon enforces on `net`; else why not.
fn network_ok(net: &Network) -> Result<(), String> {
    match net.driver.as_str() {
        "bridge" | "null" => Ok(()),
        "host" => Err("it is the host's network; its traffic would be the host's own".into()),
        d => Err(format!(
            "its driver is {d}; cordon enforces only on bridge networks"
        )),
    }
}

/// For a create without `?name=`, Docker picks a name the plugin cannot
/// know, and the daemon selects with it: a restrictive policy that selects
/// by name, comes before `selected` in the file (first match wins) and
/// whose other criteria match could be the one. `None` when a
/// `cordon.policy` label decides.
pub fn unnamed_could_get(
    file: &PolicyFile,
    selected: &str,
    image: &str,
    labels: &BTreeMap<String, String>,
) -> Option<String> {
    if labels.contains_key("cordon.policy") {
        return None;
    }
    file.policies
        .iter()
        .take_while(|p| p.name != selected)
        .filter(|p| p.select.name.is_some() && !is_open(&p.body))
        .find(|p| {
            let mut rest = p.select.clone();
            rest.name = None;
            rest.is_empty()
                || rest.matches(&Candidate {
                    name: "",
                    image,
                    labels,
                    image_labels: &std::collections::BTreeSet::new(),
                })
        })
        .map(|p| p.name.clone())
}

fn create(c: &Create, file: &PolicyFile, known: &Known) -> Decision {
    let (mut policy, mut restrictive) = policy_for(file, &c.name, &c.image, &c.labels);
    if !restrictive && c.name.is_empty() {
        if let Some(p) = unnamed_could_get(file, &policy, &c.image, &c.labels) {
            policy = format!("{p} (it selects by name, and Docker would pick the name)");
            restrictive = true;
        }
    }
    if !restrictive {
        return Decision::Allow;
    }
    let who = if c.name.is_empty() {
        format!("a container of image {}", c.image)
    } else {
        format!("container {}", c.name.trim_start_matches('/'))
    };
    let deny = |why: String| {
        Decision::Deny(format!(
            "{who} would get policy {policy}, which cordon cannot enforce {why}; use a bridge network and no extra privileges, or select it with a policy that allows everything"
        ))
    };
    if c.privileged {
        return deny(
            "on a privileged container (--privileged: every capability and device)".into(),
        );
    }
    let caps = unenforceable_caps(&c.cap_add, &c.pid_mode);
    if !caps.is_empty() {
        let pid = if caps.iter().any(|x| x == "SYS_PTRACE") {
            " with --pid host"
        } else {
            ""
        };
        return deny(format!(
            "with capabilities {}{pid} (they reach outside the container's network namespace)",
            caps.join(", ")
        ));
    }
    let mode = c.network_mode.as_str();
    if mode == "host" {
        return deny("with --network host (its traffic would be the host's own)".into());
    }
    if let Some(x) = mode.strip_prefix("container:") {
        let Some(owner) = known.containers.get(x) else {
            return deny(format!(
                "with --network container:{x}: that container is not known to Docker"
            ));
        };
        if owner.network_mode == "host" || owner.network_mode.starts_with("container:") {
            return deny(format!(
                "with --network container:{x}: {} itself uses network mode {}",
                owner.name, owner.network_mode
            ));
        }
        let (theirs, _) = policy_for(file, &owner.name, &owner.image, &owner.labels);
        if theirs != policy {
            return deny(format!(
                "with --network container:{x}: it would share {}'s network namespace, where policy {theirs} governs",
                owner.name
            ));
        }
    }
    let named = (!builtin_mode(mode)).then_some(mode);
    for net in named
        .into_iter()
        .chain(c.endpoints.iter().map(String::as_str))
    {
        let Some(n) = known.networks.get(net) else {
            return deny(format!("on network {net}: Docker does not know it"));
        };
        if let Err(why) = network_ok(n) {
            return deny(format!("on network {}: {why}", n.name));
        }
    }
    Decision::Allow
}
