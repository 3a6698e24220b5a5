//! `cordon set add|del|list`: named sets changed live, in place.
//!
//! The kernel's set is brought to `(file ∪ added) − removed` in one
//! transaction (only elements change, no rule is rewritten), then the edit
//! is recorded so the next `apply` keeps it.

use std::path::Path;

use clap::Subcommand;
use cordon_compiler::words::split_aggregate;
use cordon_dataplane::{check_environment, Nft, StateDir};
use ipnet::IpNet;

use crate::{load, CmdResult, Failure};

/// What to do with a set.
#[derive(Subcommand)]
pub enum SetOp {
    /// Add addresses or CIDRs to a set.
    Add {
        /// The set's name, as in `sets:`.
        set: String,
        /// Addresses or CIDRs.
        #[arg(required = true)]
        addrs: Vec<String>,
    },
    /// Remove addresses or CIDRs from a set.
    Del {
        /// The set's name.
        set: String,
        /// Addresses or CIDRs, as they were added or listed.
        #[arg(required = true)]
        addrs: Vec<String>,
    },
    /// List a set's members.
    List {
        /// The set's name.
        set: String,
    },
}

fn parse_addrs(set: &str, addrs: &[String]) -> Result<Vec<IpNet>, Failure> {
    addrs
        .iter()
        .map(|a| {
            if let Ok(n) = a.parse::<IpNet>() {
                if n.trunc() != n {
                    return Err(Failure::invalid(format!(
                        "cordon set {set}: `{a}` has host bits set; did you mean `{}`?",
                        n.trunc()
                    )));
                }
                return Ok(n);
            }
            a.parse::<std::net::IpAddr>().map(IpNet::from).map_err(|_| {
                Failure::invalid(format!(
                    "cordon set {set}: `{a}` is not an IP address or CIDR"
                ))
            })
        })
        .collect()
}

/// Runs a set command.
pub fn run(config: Option<&Path>, op: SetOp) -> CmdResult {
    let policy = load::policy(config)?;
    let name = match &op {
        SetOp::Add { set, .. } | SetOp::Del { set, .. } | SetOp::List { set } => set.clone(),
    };
    let Some(def) = policy.set(&name) else {
        let known: Vec<&str> = policy.sets.iter().map(|s| s.name.as_str()).collect();
        return Err(Failure::invalid(format!(
            "cordon set: {} defines no set `{name}` (sets: {})",
            policy.source,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    };
    check_environment().map_err(Failure::env)?;
    let state = StateDir::default();
    let mut overrides = state.set_overrides().map_err(Failure::env)?;
    let nft = Nft::host();
    let installed = nft.installed().map_err(Failure::env)?;
    let prefix = format!("set_{name}");

    match op {
        SetOp::List { .. } => {
            let members = if installed {
                nft.list_set(&prefix).map_err(Failure::env)?
            } else {
                overrides.effective(&name, &def.addrs)
            };
            for m in members {
                println!("{m}");
            }
            return Ok(());
        }
        SetOp::Add { addrs, .. } => {
            for n in parse_addrs(&name, &addrs)? {
                overrides.add(&name, n);
            }
        }
        SetOp::Del { addrs, .. } => {
            let before = overrides.effective(&name, &def.addrs);
            for n in parse_addrs(&name, &addrs)? {
                if !before.contains(&n) {
                    return Err(Failure::invalid(format!(
                        "cordon set {name}: `{n}` is not a member (see `cordon set list {name}`)"
                    )));
                }
                overrides.remove(&name, n);
            }
        }
    }
    if installed {
        let (v4, v6) = split_aggregate(&overrides.effective(&name, &def.addrs));
        let target: Vec<IpNet> = v4.into_iter().chain(v6).collect();
        let current = nft.list_set(&prefix).map_err(Failure::env)?;
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
            .map_err(Failure::env)?;
    }
    state.save_set_overrides(&overrides).map_err(Failure::env)?;
    println!(
        "set {name}: {} member(s){}",
        overrides.effective(&name, &def.addrs).len(),
        if installed {
            ""
        } else {
            " (recorded; cordon is not applied, the next apply uses it)"
        }
    );
    Ok(())
}
