//! `cordon verify`: probe from inside a container's network namespace and
//! compare each outcome with what the policy says.
//!
//! ```text
//! verify(policy, inventory, overrides, nft, "web-1", ["198.51.100.2:80/tcp"], opts) -> Report
//! ```
//!
//! - [`target`]: the `ADDR:PORT/tcp|udp`, `ADDR/icmp` syntax;
//!   [`derive`] the probe set used when none is given.
//! - [`facts`]: what the evaluation needs from the kernel (addresses the
//!   DNS proxy opened, the host's own addresses).
//! - [`probe`]: TCP, UDP and ICMP probes run by cordon's own threads inside
//!   the container's network namespace (`setns`): nothing runs in the
//!   container, so a distroless container works.
//! - [`report`]: the comparison, as a table or JSON.
//!
//! What the policy says comes from
//! [`cordon_compiler::evaluate`], a pure mirror of the ruleset the compiler
//! emits; the kernel stays the source of truth, and a disagreement means
//! the kernel's ruleset is not what the policy says (changed behind
//! cordon's back, cordon not running), or that something else on the path
//! decides (Docker's own rules, a target that is down). See
//! `docs/verify.md`.

pub mod derive;
pub mod facts;
pub mod icmp;
pub mod observed;
pub mod probe;
pub mod report;
pub mod target;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use cordon_compiler::evaluate::{EvalError, Evaluator, Facts, Flow};
use cordon_compiler::SetOverrides;
use cordon_dataplane::{Nft, NftError};
use cordon_inventory::{Container, Inventory};
use cordon_policy::PolicyFile;

pub use observed::Observed;
pub use report::{Report, Row};
pub use target::{Target, TargetError};

/// How to probe.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How long each probe waits.
    pub timeout: Duration,
    /// The most probes at a time.
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(2),
            concurrency: probe::DEFAULT_CONCURRENCY,
        }
    }
}

/// Why verification could not run (all environment problems or misuse).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No running container has that name or id.
    #[error("no running container {0}; name one that `docker ps` lists")]
    UnknownContainer(String),
    /// cordon does not filter the container's traffic, so there is nothing
    /// to compare.
    #[error("{0}")]
    NotEnforced(EvalError),
    /// The container has no process to take the namespace from.
    #[error("container {0} has no running process; start it first")]
    NotRunning(String),
    /// The probes could not run.
    #[error("container {container}: {error}")]
    Probe {
        /// The container's name.
        container: String,
        /// Why.
        error: std::io::Error,
    },
    /// cordon's DNS sets could not be read.
    #[error("cannot read cordon's DNS sets from the kernel: {0}")]
    Nft(NftError),
    /// The host's addresses could not be listed.
    #[error("cannot list the host's addresses: {0}")]
    Host(nix::Error),
}

/// Probes `targets` (or the derived set when empty) from container
/// `container` (a name or an id) and compares each outcome with what
/// `policy` says for the containers of `inv`, the live set edits
/// `overrides` and what the kernel's DNS sets hold now (read with `nft`).
///
/// # Errors
/// See [`VerifyError`]; a disagreement is not an error but a [`Report`]
/// whose `agree` is false.
pub fn verify(
    policy: &PolicyFile,
    inv: &Inventory,
    overrides: &SetOverrides,
    nft: &Nft,
    container: &str,
    targets: &[Target],
    opts: Options,
) -> Result<Report, VerifyError> {
    let host_ifaces = facts::host_addresses().map_err(VerifyError::Host)?;
    let host: Vec<IpAddr> = host_ifaces.iter().map(|(_, a)| *a).collect();
    let mut notes = Vec::new();
    let learned = if nft.installed().map_err(VerifyError::Nft)? {
        facts::learned(policy, nft).map_err(VerifyError::Nft)?
    } else {
        notes.push(
            "cordon's ruleset is not installed (no table inet cordon): nothing enforces the policy; run cordon apply or the daemon"
                .to_string(),
        );
        BTreeMap::new()
    };
    let ev = Evaluator::new(Facts {
        policy,
        inventory: inv,
        overrides,
        learned: &learned,
        host: &host,
    });
    let idx = ev
        .find(container)
        .ok_or_else(|| VerifyError::UnknownContainer(container.to_string()))?;
    let c = &inv.containers[idx];
    let pid = c
        .pid
        .filter(|p| *p > 0)
        .ok_or_else(|| VerifyError::NotRunning(c.name.clone()))?;
    let targets: Vec<Target> = if targets.is_empty() {
        let derived = derive::derive(
            ev.egress_rules(idx),
            policy,
            overrides,
            gateway(c, &host_ifaces),
        );
        notes.push(format!(
            "no targets given: probed {} derived from policy {} (the metadata endpoint, a private address, the host)",
            derived.len(),
            ev.policy_of(idx)
        ));
        derived
    } else {
        targets.to_vec()
    };
    let flows: Vec<Flow> = targets.iter().map(|t| t.0).collect();
    let expected = flows
        .iter()
        .map(|f| ev.egress_of(idx, f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(VerifyError::NotEnforced)?;
    let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let observed =
        probe::probe_all(&netns, &flows, opts.timeout, opts.concurrency).map_err(|error| {
            VerifyError::Probe {
                container: c.name.clone(),
                error,
            }
        })?;
    if observed.contains(&Observed::NoReply) {
        notes.push(
            "no reply: a UDP or ICMP probe got nothing back, counted as blocked (a UDP service may also simply not answer)"
                .to_string(),
        );
    }
    let rows = targets
        .iter()
        .zip(&expected)
        .zip(observed)
        .map(|((t, e), o)| Row::new(t, e, o))
        .collect();
    Ok(Report::new(
        &c.name,
        &c.id,
        &ev.policy_of(idx).to_string(),
        rows,
        notes,
    ))
}

/// The host's IPv4 address on the bridge of the container's first
/// endpoint: its gateway.
fn gateway(c: &Container, host: &[(String, IpAddr)]) -> Option<IpAddr> {
    let bridge = c.endpoints.iter().find_map(|e| e.bridge.as_deref())?;
    host.iter()
        .find(|(name, a)| name == bridge && a.is_ipv4())
        .map(|(_, a)| *a)
}
