//! `cordon set add|del|list`: the edits of a named set, validated against
//! the policy and recorded as additions and removals against the file
//! (`(file ∪ added) − removed`). Shared by the daemon, which applies them
//! as element changes of its next sync, and by the CLI when no daemon runs.

use cordon_compiler::words::split_aggregate;
use cordon_compiler::SetOverrides;
use cordon_dataplane::{Nft, NftError};
use cordon_policy::PolicyFile;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// What to do with a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Add members.
    Add,
    /// Remove members.
    Del,
    /// List members.
    List,
}

/// A set edit a user got wrong; nothing was changed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SetError(pub String);

/// Parses addresses and CIDRs; host bits are an error with a suggestion.
pub fn parse_addrs(set: &str, addrs: &[String]) -> Result<Vec<IpNet>, SetError> {
    addrs
        .iter()
        .map(|a| {
            if let Ok(n) = a.parse::<IpNet>() {
                if n.trunc() != n {
                    return Err(SetError(format!(
                        "cordon set {set}: `{a}` has host bits set; did you mean `{}`?",
                        n.trunc()
                    )));
                }
                return Ok(n);
            }
            a.parse::<std::net::IpAddr>().map(IpNet::from).map_err(|_| {
                SetError(format!(
                    "cordon set {set}: `{a}` is not an IP address or CIDR"
                ))
            })
        })
        .collect()
}

/// The file's definition of set `name`, or an error listing the sets.
pub fn definition<'p>(policy: &'p PolicyFile, name: &str) -> Result<&'p [IpNet], SetError> {
    match policy.set(name) {
        Some(def) => Ok(&def.addrs),
        None => {
            let known: Vec<&str> = policy.sets.iter().map(|s| s.name.as_str()).collect();
            Err(SetError(format!(
                "cordon set: {} defines no set `{name}` (sets: {})",
                policy.source,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )))
        }
    }
}

/// `overrides` with the edit applied. Removing a non-member is an error.
pub fn edited(
    policy: &PolicyFile,
    overrides: &SetOverrides,
    name: &str,
    op: Op,
    addrs: &[String],
) -> Result<SetOverrides, SetError> {
    let def = definition(policy, name)?;
    let nets = parse_addrs(name, addrs)?;
    let mut out = overrides.clone();
    match op {
        Op::List => {}
        Op::Add => nets.into_iter().for_each(|n| out.add(name, n)),
        Op::Del => {
            let before = overrides.effective(name, def);
            for n in nets {
                if !before.contains(&n) {
                    return Err(SetError(format!(
                        "cordon set {name}: `{n}` is not a member (see `cordon set list {name}`)"
                    )));
                }
                out.remove(name, n);
            }
        }
    }
    Ok(out)
}

/// The members set `name` should have, as the kernel holds them
/// (aggregated, IPv4 first).
pub fn members(
    policy: &PolicyFile,
    overrides: &SetOverrides,
    name: &str,
) -> Result<Vec<IpNet>, SetError> {
    let def = definition(policy, name)?;
    let (v4, v6) = split_aggregate(&overrides.effective(name, def));
    Ok(v4.into_iter().chain(v6).collect())
}

/// Brings the kernel's set `name` to its members in one transaction,
/// touching only its elements (used when no daemon runs).
pub fn push_to_kernel(nft: &Nft, target: &[IpNet], name: &str) -> Result<(), NftError> {
    let prefix = cordon_ruleset::names::named_set_stem(name);
    let current = nft.list_set(&prefix)?;
    let remove: Vec<IpNet> = current
        .iter()
        .filter(|n| !target.contains(n))
        .copied()
        .collect();
    let add: Vec<IpNet> = target
        .iter()
        .filter(|n| !current.contains(n))
        .copied()
        .collect();
    nft.replace_elements(&prefix, &remove, &add)
}
