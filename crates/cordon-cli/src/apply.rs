//! `cordon plan`, `inventory`, `apply` and `down`.

use std::path::Path;

use cordon_compiler::{compile, Compiled};
use cordon_dataplane::{check_environment, BrNetfilter, Nft, StateDir};
use cordon_inventory::{Inventory, Shown};
use cordon_policy::PolicyFile;
use cordon_ruleset::{json, text};

use crate::{load, CmdResult, Failure, Format};

/// Compiles the policy for an inventory with the recorded live set edits.
pub fn build(policy: &PolicyFile, inv: &Inventory, state: &StateDir) -> Result<Compiled, Failure> {
    let overrides = state.set_overrides().map_err(Failure::env)?;
    Ok(compile(policy, inv, &overrides))
}

/// `cordon plan`.
pub fn plan(config: Option<&Path>, inventory: Option<&Path>, output: Format) -> CmdResult {
    let (policy, _) = load::policy_in_force(config, None)?;
    let inv = load::inventory(inventory)?;
    let compiled = build(&policy, &inv, &StateDir::default())?;
    match output {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json::replace(&compiled.ruleset)).expect("JSON")
        ),
        Format::Text => {
            println!("# cordon plan for {}", policy.source);
            for a in &compiled.assignments {
                let addrs: Vec<String> = a.addresses.iter().map(ToString::to_string).collect();
                println!(
                    "# container {} -> policy {} [{}]",
                    Shown(&a.container),
                    Shown(&a.policy.to_string()),
                    addrs.join(", ")
                );
            }
            for w in &compiled.warnings {
                println!("# warning: {w}");
            }
            print!("{}", text::render(&compiled.ruleset));
        }
    }
    Ok(())
}

/// `cordon inventory`.
pub fn inventory(output: Format) -> CmdResult {
    let inv = load::inventory(None)?;
    match output {
        Format::Json => println!("{}", inv.to_json()),
        Format::Text => {
            println!(
                "{:<24} {:<14} {:<18} ADDRESSES",
                "CONTAINER", "ID", "INTERFACES"
            );
            for c in &inv.containers {
                let ifaces: Vec<&str> = c
                    .endpoints
                    .iter()
                    .map(|e| e.host_iface.as_deref().unwrap_or("?"))
                    .collect();
                let addrs: Vec<String> = c
                    .endpoints
                    .iter()
                    .flat_map(|e| {
                        e.ipv4
                            .map(|a| a.to_string())
                            .into_iter()
                            .chain(e.ipv6.map(|a| a.to_string()))
                    })
                    .collect();
                println!(
                    "{:<24} {:<14} {:<18} {}",
                    Shown(&c.name),
                    Shown(c.short_id()),
                    Shown(&ifaces.join(",")),
                    addrs.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// Compiles and installs once.
pub fn install(policy: &PolicyFile, inv: &Inventory) -> Result<Compiled, Failure> {
    let compiled = build(policy, inv, &StateDir::default())?;
    install_compiled(&compiled)?;
    Ok(compiled)
}

/// Installs a compiled ruleset: checked by the kernel first, br_netfilter
/// switched on (recording what it changed), then one transaction. Shared
/// by `apply` and the daemon.
pub fn install_compiled(compiled: &Compiled) -> Result<(), Failure> {
    cordon_dataplane::install_whole(&Nft::host(), &StateDir::default(), &compiled.ruleset, None)
        .map_err(Failure::env)
}

/// `cordon apply`. While a daemon runs, the file goes to it as a reload
/// (installing behind its back would be undone at its next reconcile).
pub fn apply(config: Option<&Path>, inventory: Option<&Path>) -> CmdResult {
    let socket = cordon_daemon::admin::socket_path();
    if load::daemon_policy(&socket)?.is_some() {
        if inventory.is_some() {
            return Err(Failure::env(format!(
                "cordon apply: a cordon daemon is running (admin socket {}); it follows Docker itself, so --inventory cannot be applied; stop it first or drop --inventory",
                socket.display()
            )));
        }
        let (policy, source) = load::to_install(config)?;
        eprintln!(
            "a cordon daemon is running: handing {} to it as a reload",
            policy.source
        );
        return crate::daemon::reload_file(Some(source.path), socket);
    }
    // A bad policy fails before anything else is looked at or changed.
    let (policy, source) = load::to_install(config)?;
    check_environment().map_err(Failure::env)?;
    let inv = load::inventory(inventory)?;
    let compiled = install(&policy, &inv)?;
    StateDir::default()
        .save_in_force(&source)
        .map_err(Failure::env)?;
    for w in &compiled.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "applied {}: {} containers, {} policies",
        policy.source,
        compiled.assignments.len(),
        policy.policies.len()
    );
    Ok(())
}

/// `cordon down`.
pub fn down() -> CmdResult {
    check_environment().map_err(Failure::env)?;
    // A running daemon would put the tables straight back.
    let socket = cordon_daemon::admin::socket_path();
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        return Err(Failure::env(format!(
            "cordon down: a cordon daemon is running (admin socket {}); stop it first (systemctl stop cordon), then run cordon down",
            socket.display()
        )));
    }
    let nft = Nft::host();
    let was = nft.installed().map_err(Failure::env)?;
    nft.remove().map_err(Failure::env)?;
    let state = StateDir::default();
    let saved = state.saved_sysctls().map_err(Failure::env)?;
    BrNetfilter::default()
        .restore(&saved)
        .map_err(Failure::env)?;
    state.clear_sysctls().map_err(Failure::env)?;
    if was {
        println!("removed cordon's nftables tables");
    } else {
        println!("cordon was not installed; nothing to remove");
    }
    Ok(())
}
