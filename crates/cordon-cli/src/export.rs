//! `cordon export kubernetes|cilium`: print the policy as NetworkPolicy or
//! CiliumNetworkPolicy manifests (docs/kubernetes.md). What the target
//! cannot express is printed on stderr as `FILE:LINE:COL: warning: ...`;
//! exit codes as for `cordon check`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use cordon_export::{Flavor, Options};

use crate::{load, CmdResult, Failure};

/// Which manifests to print.
#[derive(Clone, Copy, ValueEnum)]
pub enum Target {
    /// networking.k8s.io/v1 NetworkPolicy.
    Kubernetes,
    /// cilium.io/v2 CiliumNetworkPolicy.
    Cilium,
}

/// Output formats of `cordon export`.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    /// Multi-document YAML.
    Yaml,
    /// One JSON `List` of the objects.
    Json,
}

/// The arguments of `cordon export`.
#[derive(Args)]
pub struct ExportArgs {
    /// kubernetes (NetworkPolicy) or cilium (CiliumNetworkPolicy).
    #[arg(value_enum)]
    target: Target,
    /// Policy file (default /etc/cordon/cordon.yaml, else the embedded default).
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// The namespace of every object (default: none written, kubectl's current one).
    #[arg(long)]
    namespace: Option<String>,
    /// The pod label a Compose project becomes.
    #[arg(long, default_value = cordon_export::DEFAULT_PROJECT_LABEL)]
    project_label: String,
    /// The pod label a Compose service becomes.
    #[arg(long, default_value = cordon_export::DEFAULT_SERVICE_LABEL)]
    service_label: String,
    /// yaml or json.
    #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
    output: Output,
}

/// True for a Kubernetes namespace name (an RFC 1123 label).
fn valid_namespace(ns: &str) -> bool {
    !ns.is_empty()
        && ns.len() <= 63
        && ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !ns.starts_with('-')
        && !ns.ends_with('-')
}

/// Runs `cordon export`.
pub fn run(args: ExportArgs) -> CmdResult {
    if let Some(ns) = args.namespace.as_deref().filter(|ns| !valid_namespace(ns)) {
        return Err(Failure::env(format!(
            "cordon export: --namespace {ns}: not a namespace name (lower-case letters, digits and `-`, at most 63)"
        )));
    }
    let policy = load::policy(args.config.as_deref())?;
    let flavor = match args.target {
        Target::Kubernetes => Flavor::Kubernetes,
        Target::Cilium => Flavor::Cilium,
    };
    let opts = Options {
        namespace: args.namespace,
        project_label: args.project_label,
        service_label: args.service_label,
    };
    let export = cordon_export::export(&policy, flavor, &opts);
    for w in &export.warnings {
        eprintln!("{w}");
    }
    print!(
        "{}",
        match args.output {
            Output::Yaml => cordon_export::output::yaml(&export.documents),
            Output::Json => cordon_export::output::json(&export.documents),
        }
    );
    Ok(())
}
