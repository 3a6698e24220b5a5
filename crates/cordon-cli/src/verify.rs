//! `cordon verify CONTAINER [TARGET...]`: probe from inside the container's
//! network namespace and compare each outcome with what the policy says.
//! Exit 0 when all agree, 1 on any disagreement, 2 for a malformed target,
//! an unknown container or an environment problem.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use cordon_dataplane::{check_environment, Nft, StateDir};
use cordon_verify::{Options, Target};

use crate::{load, CmdResult, Failure, Format};

/// The arguments of `cordon verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// The container, by name or id.
    container: String,
    /// What to probe: ADDR:PORT (TCP), ADDR:PORT/tcp, ADDR:PORT/udp, ADDR/icmp,
    /// [IPV6]:PORT/tcp. Without targets, a probe set derived from the
    /// policy (its concrete addresses, the metadata endpoint, a private
    /// address, the host).
    targets: Vec<String>,
    /// Policy file (the one cordon enforces).
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// text (a table) or json.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: Format,
    /// Seconds each probe waits for an answer.
    #[arg(long, default_value_t = 2.0)]
    timeout: f64,
}

/// Runs `cordon verify`.
pub fn run(args: VerifyArgs) -> CmdResult {
    let targets = args
        .targets
        .iter()
        .map(|t| t.parse::<Target>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::env(format!("cordon verify: {e}")))?;
    if !(args.timeout > 0.0 && args.timeout <= 60.0) {
        return Err(Failure::env(
            "cordon verify: --timeout must be a number of seconds between 0 and 60",
        ));
    }
    let (policy, current) = load::policy_in_force(args.config.as_deref(), None)?;
    if let Some(note) = load::differs_note(args.config.as_deref(), current.as_ref()) {
        eprintln!("{note}");
    }
    check_environment().map_err(|e| Failure::env(format!("cordon verify: {e}")))?;
    let inv = load::inventory(None)?;
    let overrides = StateDir::default()
        .set_overrides()
        .map_err(|e| Failure::env(format!("cordon verify: {e}")))?;
    let opts = Options {
        timeout: Duration::from_secs_f64(args.timeout),
        ..Options::default()
    };
    let report = cordon_verify::verify(
        &policy,
        &inv,
        &overrides,
        &Nft::host(),
        &args.container,
        &targets,
        opts,
    )
    .map_err(|e| Failure::env(format!("cordon verify: {e}")))?;
    match args.output {
        Format::Text => print!("{}", report.text()),
        Format::Json => println!("{}", report.json()),
    }
    let bad: Vec<_> = report.disagreements().collect();
    match bad.first() {
        None => Ok(()),
        Some(first) => Err(Failure::invalid(format!(
            "cordon verify: {} of {} probes from container {} disagree with policy {} (first: {} expected {}, observed {}); the kernel does not enforce what {} says: compare cordon plan with nft list table inet cordon, or run cordon apply",
            bad.len(),
            report.rows.len(),
            report.container,
            report.policy,
            first.target,
            first.expected,
            first.observed,
            policy.source
        ))),
    }
}
