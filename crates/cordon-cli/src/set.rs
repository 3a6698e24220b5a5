//! `cordon set add|del|list`: named sets changed live, in place.
//!
//! Through the running daemon when there is one (it applies the edit as
//! element changes of its next sync); otherwise directly: the kernel's set
//! is brought to `(file ∪ added) − removed` in one transaction (only
//! elements change, no rule is rewritten). Either way the edit is recorded
//! so the next `apply` keeps it.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use cordon_daemon::admin::{self, Request};
use cordon_daemon::sets::{self, Op};
use cordon_dataplane::{check_environment, Nft, StateDir};

use crate::{load, CmdResult, Failure, Format};

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
        /// text (one member a line) or json (an object with the set's
        /// name and members).
        #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
        output: Format,
    },
}

/// Runs a set command.
pub fn run(config: Option<&Path>, socket: Option<PathBuf>, op: SetOp) -> CmdResult {
    let mut json = false;
    let (name, op, addrs) = match op {
        SetOp::Add { set, addrs } => (set, Op::Add, addrs),
        SetOp::Del { set, addrs } => (set, Op::Del, addrs),
        SetOp::List { set, output } => {
            json = output == Format::Json;
            (set, Op::List, Vec::new())
        }
    };
    let path = socket.unwrap_or_else(admin::socket_path);
    let (policy, current) = load::policy_in_force(config, Some(&path))?;
    if let Some(note) = load::differs_note(config, current.as_ref()) {
        eprintln!("{note}");
    }
    let req = Request::Set {
        name: name.clone(),
        op,
        addrs: addrs.clone(),
    };
    if let Some(r) = admin::call(&path, &req).map_err(Failure::env)? {
        if r.code != 0 {
            return Err(Failure {
                code: r.code,
                message: r.message,
            });
        }
        print_result(op, &name, json, &r.message, r.members.unwrap_or_default());
        return Ok(());
    }

    // No daemon: directly.
    let state = StateDir::default();
    let overrides = state.set_overrides().map_err(Failure::env)?;
    let new =
        sets::edited(&policy, &overrides, &name, op, &addrs).map_err(|e| Failure::invalid(e.0))?;
    check_environment().map_err(Failure::env)?;
    let nft = Nft::host();
    let installed = nft.installed().map_err(Failure::env)?;
    let target = sets::members(&policy, &new, &name).map_err(|e| Failure::invalid(e.0))?;
    if op == Op::List {
        let members = if installed {
            nft.list_set(&cordon_ruleset::names::named_set_stem(&name))
                .map_err(Failure::env)?
        } else {
            target
        };
        print_result(
            op,
            &name,
            json,
            "",
            members.iter().map(ToString::to_string).collect(),
        );
        return Ok(());
    }
    if installed {
        sets::push_to_kernel(&nft, &target, &name).map_err(Failure::env)?;
    }
    state.save_set_overrides(&new).map_err(Failure::env)?;
    println!(
        "set {name}: {} member(s){}",
        target.len(),
        if installed {
            ""
        } else {
            " (recorded; cordon is not applied, the next apply uses it)"
        }
    );
    Ok(())
}

fn print_result(op: Op, set: &str, json: bool, message: &str, members: Vec<String>) {
    if json {
        let v = serde_json::json!({ "set": set, "members": members });
        println!("{v}");
    } else if op == Op::List {
        for m in members {
            println!("{m}");
        }
    } else {
        println!("{message}");
    }
}
