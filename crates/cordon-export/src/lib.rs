//! `cordon export`: a cordon policy file as Kubernetes manifests.
//!
//! ```text
//! export(&PolicyFile, Flavor::Kubernetes | Flavor::Cilium, &Options)
//!     -> Export { documents, warnings }
//! ```
//!
//! Pure: no cluster, no Docker. [`selection`] turns `select:` and the
//! `cordon.policy` label into pod selectors (first match wins, as far as
//! label selectors can say it); [`peers`] turns the words of `to:` and
//! `from:` into peers; [`kubernetes`] and [`cilium`] build the objects;
//! [`output`] prints them, sorted, as multi-document YAML or as JSON.
//! What a target cannot express becomes a located [`Warning`], and the
//! exported policy fails closed there (no rule rather than a wider one).

pub mod cilium;
pub mod kubernetes;
pub mod output;
pub mod peers;
pub mod selection;

use cordon_policy::{Loc, PolicyFile};

/// Which kind of manifest to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `networking.k8s.io/v1` NetworkPolicy.
    Kubernetes,
    /// `cilium.io/v2` CiliumNetworkPolicy.
    Cilium,
}

/// Choices the operator makes about the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `metadata.namespace` of every object; `None` leaves it out (the
    /// namespace `kubectl apply` is pointed at).
    pub namespace: Option<String>,
    /// The pod label that stands for a Compose project
    /// (`select: {compose: {project: P}}`).
    pub project_label: String,
    /// The pod label that stands for a Compose service.
    pub service_label: String,
}

/// The label a Compose project becomes by default.
pub const DEFAULT_PROJECT_LABEL: &str = "app.kubernetes.io/part-of";
/// The label a Compose service becomes by default.
pub const DEFAULT_SERVICE_LABEL: &str = "app.kubernetes.io/name";

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: None,
            project_label: DEFAULT_PROJECT_LABEL.to_string(),
            service_label: DEFAULT_SERVICE_LABEL.to_string(),
        }
    }
}

/// Something of the policy the exported manifests do not carry over,
/// located in the policy file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Warning {
    /// The policy file, as the user named it.
    pub file: String,
    /// Where (the rule, or the policy's `name:`).
    pub loc: Loc,
    /// What was dropped or changed, one line.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: warning: {}",
            self.file, self.loc.line, self.loc.col, self.message
        )
    }
}

/// One exported object.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// `metadata.name`, the sort key of the output.
    pub name: String,
    /// The object, as the API server reads it.
    pub value: serde_json::Value,
    /// What of the policy this object does not carry (printed as YAML
    /// comments above it).
    pub notes: Vec<String>,
}

/// The result of an export.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// The objects, sorted by name.
    pub documents: Vec<Document>,
    /// Every warning, in file order.
    pub warnings: Vec<Warning>,
}

/// Collects warnings located in one file.
#[derive(Debug)]
pub struct Warnings {
    file: String,
    list: Vec<Warning>,
}

impl Warnings {
    /// An empty list for `file`.
    pub fn new(file: &str) -> Self {
        Warnings {
            file: file.to_string(),
            list: Vec::new(),
        }
    }

    /// Adds a warning at `loc`; returns its message, for a note.
    pub fn push(&mut self, loc: Loc, message: impl Into<String>) -> String {
        let message = message.into();
        self.list.push(Warning {
            file: self.file.clone(),
            loc,
            message: message.clone(),
        });
        message
    }

    /// The warnings, sorted by place, each once.
    pub fn into_sorted(mut self) -> Vec<Warning> {
        self.list.sort();
        self.list.dedup();
        self.list
    }
}

/// The annotation that lists, on an object, what of its policy was not
/// exported (the same text as the YAML comments, kept by the API server).
pub const NOT_EXPORTED: &str = "cordon/not-exported";

/// Exports a policy file.
pub fn export(file: &PolicyFile, flavor: Flavor, opts: &Options) -> Export {
    let mut warnings = Warnings::new(&file.source);
    name_clashes(file, &mut warnings);
    server_names(file, &mut warnings);
    let plan = selection::plan(file, opts, &mut warnings);
    let mut documents = match flavor {
        Flavor::Kubernetes => kubernetes::build(file, &plan, opts, &mut warnings),
        Flavor::Cilium => cilium::build(file, &plan, opts, &mut warnings),
    };
    for d in &mut documents {
        if !d.notes.is_empty() {
            d.value["metadata"]["annotations"] =
                serde_json::json!({ NOT_EXPORTED: d.notes.join("; ") });
        }
    }
    documents.sort_by(|a, b| a.name.cmp(&b.name));
    Export {
        documents,
        warnings: warnings.into_sorted(),
    }
}

/// A Kubernetes object name for a cordon name: `_` becomes `-`, and a
/// name ending in `-` or `_` gets an `x` (a name part must end in a letter
/// or digit there). Two policies whose names differ only so are named in a
/// warning ([`export`]).
pub fn object_name(name: &str) -> String {
    let mut out = format!("cordon-{}", name.replace('_', "-"));
    if out.ends_with('-') {
        out.push('x');
    }
    out
}

/// Warns about rules with `match: server-name`: no target checks the
/// server name, so their names are exported as any DNS-name rule's.
fn server_names(file: &PolicyFile, warnings: &mut Warnings) {
    let bodies = std::iter::once(&file.default).chain(file.policies.iter().map(|p| &p.body));
    for r in bodies.flat_map(|b| &b.egress).filter(|r| r.server_name) {
        warnings.push(
            r.loc,
            "`match: server-name` is not exported: no target checks the TLS server name or HTTP Host (cordon's L7 proxy); the rule's names are exported as for any DNS-name rule",
        );
    }
}

/// Warns about policies whose objects would share a name.
fn name_clashes(file: &PolicyFile, warnings: &mut Warnings) {
    let mut seen: std::collections::BTreeMap<String, &str> = Default::default();
    for p in &file.policies {
        if let Some(other) = seen.insert(object_name(&p.name), &p.name) {
            warnings.push(
                p.loc,
                format!(
                    "policy `{}` and policy `{other}` both become objects named `{}`; the later replaces the earlier: rename one",
                    p.name,
                    object_name(&p.name)
                ),
            );
        }
    }
}
