//! `cordon audit`: the CIS Docker Benchmark for this host and its running
//! containers (see crates/cordon-audit and docs/audit.md).

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use cordon_audit::gather::{gather, GatherError, Scope};
use cordon_audit::{render, Severity};

use crate::{load, CmdResult, Failure};

/// `cordon audit` arguments.
#[derive(Args)]
pub struct AuditArgs {
    /// Policy file the cordon coverage check measures containers against
    /// (default /etc/cordon/cordon.yaml, else the embedded default).
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// text (a table, colour on a terminal; `table` is an alias), json
    /// (schema in docs/audit.md) or sarif (SARIF 2.1.0).
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: Output,
    /// Exit 1 when a finding is at or above this severity.
    #[arg(long = "fail-on", value_enum, default_value = "high")]
    fail_on: Level,
    /// Audit only these containers (names or ids); default every running one.
    #[arg(long = "container", num_args = 1.., value_name = "NAME")]
    containers: Vec<String>,
    /// In the table, also list passed, manual and not-applicable results.
    #[arg(long)]
    all: bool,
}

/// Output formats of `cordon audit`.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    /// For people: a table.
    #[value(name = "text", alias = "table")]
    Text,
    /// For programs.
    Json,
    /// For code-scanning tools.
    Sarif,
}

/// `--fail-on` levels.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Level {
    /// Any finding.
    Low,
    /// Medium and above.
    Medium,
    /// High and critical.
    High,
    /// Critical only.
    Critical,
    /// Never exit 1 for findings.
    None,
}

/// Runs the audit and prints the report.
pub fn run(args: AuditArgs) -> CmdResult {
    let (policy, _) = load::policy_in_force(args.config.as_deref(), None)?;
    // Whether cordon's table is in the kernel: only root can ask.
    let table = if cordon_dataplane::is_root() {
        Some(
            cordon_dataplane::Nft::host()
                .installed()
                .map_err(|e| e.to_string()),
        )
    } else {
        Some(Err("not root: cannot list nftables tables".to_string()))
    };
    let scope = Scope {
        containers: args.containers,
        policy: Some(policy),
        table_installed: table,
    };
    let mut warnings = Vec::new();
    let facts = load::runtime()?.block_on(async {
        let docker = cordon_docker::connect().await.map_err(Failure::env)?;
        gather(&docker, scope, &mut warnings)
            .await
            .map_err(|e| match e {
                GatherError::NoContainer(..) => Failure::invalid(format!("cordon audit: {e}")),
                GatherError::Api(_) => Failure::env(format!("cordon audit: {e}")),
            })
    })?;
    let report = cordon_audit::audit(&facts, warnings);
    let text = match args.output {
        Output::Text => {
            // Colour on a terminal, unless NO_COLOR is set.
            let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            render::table::render(&report, colour, args.all)
        }
        Output::Json => render::json::render(&report),
        Output::Sarif => render::sarif::render(&report),
    };
    println!("{}", text.trim_end());
    let level = match args.fail_on {
        Level::Low => Severity::Low,
        Level::Medium => Severity::Medium,
        Level::High => Severity::High,
        Level::Critical => Severity::Critical,
        Level::None => return Ok(()),
    };
    let failing: Vec<_> = report.failures_at_or_above(level).collect();
    match failing.first() {
        None => Ok(()),
        Some(first) => Err(Failure::invalid(format!(
            "cordon audit: {} finding(s) at or above {} (worst: {} on {}); fix them or raise --fail-on",
            failing.len(),
            level.as_str(),
            first.id,
            first.object.label()
        ))),
    }
}
