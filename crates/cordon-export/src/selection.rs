//! Which pods each exported policy selects.
//!
//! cordon's selection is "the `cordon.policy` label, else the first policy
//! whose `select` matches, else `default`". Kubernetes policies add up
//! instead, so every policy becomes up to two selectors: pods labelled
//! `cordon.policy=NAME`, and pods without that label that match its
//! `select` labels and no earlier policy's. `default` selects the pods no
//! policy does, and the pods whose `cordon.policy` names no policy are
//! isolated with no rule (cordon gives them no network). Name and image
//! globs have no label equivalent: they are dropped with a warning.

use std::collections::BTreeMap;

use cordon_policy::{Loc, PolicyFile};
use serde::Serialize;

use crate::{Options, Warnings};

/// The label that names a pod's policy, as on Docker.
pub const POLICY_LABEL: &str = "cordon.policy";

/// A label selector: every label and every expression must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sel {
    /// Labels that must be present with these values.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Further requirements.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<Expr>,
}

/// One `matchExpressions` requirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expr {
    /// The label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: &'static str,
    /// The values (sorted), for `In` and `NotIn`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl Expr {
    fn new(key: &str, operator: &'static str, mut values: Vec<String>) -> Self {
        values.sort();
        values.dedup();
        Expr {
            key: key.to_string(),
            operator,
            values,
        }
    }
}

impl Sel {
    /// Pods labelled `key=value`.
    pub fn label(key: &str, value: &str) -> Self {
        Sel {
            match_labels: BTreeMap::from([(key.to_string(), value.to_string())]),
            match_expressions: Vec::new(),
        }
    }

    /// As a Kubernetes `LabelSelector`.
    pub fn to_k8s(&self) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
            LabelSelector, LabelSelectorRequirement,
        };
        LabelSelector {
            match_labels: (!self.match_labels.is_empty()).then(|| self.match_labels.clone()),
            match_expressions: (!self.match_expressions.is_empty()).then(|| {
                self.match_expressions
                    .iter()
                    .map(|e| LabelSelectorRequirement {
                        key: e.key.clone(),
                        operator: e.operator.to_string(),
                        values: (!e.values.is_empty()).then(|| e.values.clone()),
                    })
                    .collect()
            }),
        }
    }
}

/// The pods of one policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyPods {
    /// The policy's name.
    pub name: String,
    /// Where its `name:` is.
    pub loc: Loc,
    /// Pods labelled `cordon.policy=NAME`.
    pub by_label: Sel,
    /// Pods its `select` takes; `None` when only the label selects it.
    pub by_select: Option<Sel>,
    /// What of its selection was dropped.
    pub notes: Vec<String>,
}

/// The selectors of a whole file.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// One per policy, in file order.
    pub policies: Vec<PolicyPods>,
    /// The pods `default` governs.
    pub default: Sel,
    /// Pods whose `cordon.policy` label names no policy.
    pub unknown: Sel,
}

impl Plan {
    /// The selectors (either of which selects) of the pods of policy `name`.
    pub fn pods_of(&self, name: &str) -> Vec<Sel> {
        self.policies
            .iter()
            .filter(|p| p.name == name)
            .flat_map(|p| std::iter::once(p.by_label.clone()).chain(p.by_select.clone()))
            .collect()
    }
}

/// The labels a policy's `select` becomes, with what was dropped.
fn labels_of(
    p: &cordon_policy::Policy,
    opts: &Options,
    warnings: &mut Warnings,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut labels = p.select.labels.clone();
    if let Some(project) = &p.select.compose_project {
        labels.insert(opts.project_label.clone(), project.clone());
    }
    if let Some(service) = &p.select.compose_service {
        labels.insert(opts.service_label.clone(), service.clone());
    }
    let mut notes = Vec::new();
    let globs = [("name", &p.select.name), ("image", &p.select.image)];
    for (what, glob) in globs {
        let Some(glob) = glob else { continue };
        let rest = if labels.is_empty() {
            format!("only pods labelled {POLICY_LABEL}={} get it", p.name)
        } else {
            "its remaining labels select it".to_string()
        };
        notes.push(warnings.push(
            p.loc,
            format!(
                "policy `{}`: `select: {{{what}: \"{glob}\"}}` has no pod-selector equivalent and is dropped; {rest}",
                p.name
            ),
        ));
    }
    (labels, notes)
}

/// How a later selector `mine` must exclude an earlier one `theirs`.
enum Exclusion {
    /// The two never select the same pod.
    Disjoint,
    /// Every pod of `mine` is one of `theirs`: `mine` never applies.
    Shadowed,
    /// `mine` must add this requirement.
    Require(Expr),
    /// Not expressible as one more requirement.
    Inexpressible,
}

fn exclusion(mine: &BTreeMap<String, String>, theirs: &BTreeMap<String, String>) -> Exclusion {
    if theirs
        .iter()
        .any(|(k, v)| mine.get(k).is_some_and(|m| m != v))
    {
        return Exclusion::Disjoint;
    }
    let rest: Vec<_> = theirs
        .iter()
        .filter(|(k, _)| !mine.contains_key(*k))
        .collect();
    match rest.as_slice() {
        [] => Exclusion::Shadowed,
        [(k, v)] => Exclusion::Require(Expr::new(k, "NotIn", vec![(*v).clone()])),
        _ => Exclusion::Inexpressible,
    }
}

/// Removes repeated requirements, keeping the first of each.
fn dedup(exprs: &mut Vec<Expr>) {
    let mut seen = Vec::new();
    exprs.retain(|e| {
        let new = !seen.contains(e);
        seen.push(e.clone());
        new
    });
}

/// The selectors of every policy, the default and unknown labels.
pub fn plan(file: &PolicyFile, opts: &Options, warnings: &mut Warnings) -> Plan {
    let no_label = || Expr::new(POLICY_LABEL, "DoesNotExist", Vec::new());
    let mut policies = Vec::new();
    let mut earlier: Vec<(String, Loc, BTreeMap<String, String>)> = Vec::new();
    for p in &file.policies {
        let (labels, mut notes) = labels_of(p, opts, warnings);
        let mut by_select = None;
        if !labels.is_empty() {
            let mut exprs = vec![no_label()];
            let mut shadowed = false;
            for (other, _, theirs) in &earlier {
                match exclusion(&labels, theirs) {
                    Exclusion::Disjoint => {}
                    Exclusion::Shadowed => shadowed = true,
                    Exclusion::Require(e) => exprs.push(e),
                    Exclusion::Inexpressible => notes.push(warnings.push(
                        p.loc,
                        format!(
                            "policy `{}`: pods that also match the labels of the earlier policy `{other}` get both policies (a label selector cannot exclude them)",
                            p.name
                        ),
                    )),
                }
            }
            dedup(&mut exprs);
            if !shadowed {
                by_select = Some(Sel {
                    match_labels: labels.clone(),
                    match_expressions: exprs,
                });
            }
            earlier.push((p.name.clone(), p.loc, labels));
        }
        policies.push(PolicyPods {
            name: p.name.clone(),
            loc: p.loc,
            by_label: Sel::label(POLICY_LABEL, &p.name),
            by_select,
            notes,
        });
    }
    let mut default = Sel {
        match_labels: BTreeMap::new(),
        match_expressions: vec![no_label()],
    };
    let empty = BTreeMap::new();
    for (name, loc, labels) in &earlier {
        match exclusion(&empty, labels) {
            Exclusion::Require(e) => default.match_expressions.push(e),
            _ => {
                warnings.push(
                    *loc,
                    format!("policy `{name}`: its pods also get the default's rules (a label selector cannot exclude several labels at once)"),
                );
            }
        }
    }
    dedup(&mut default.match_expressions);
    let mut unknown = Sel {
        match_labels: BTreeMap::new(),
        match_expressions: vec![Expr::new(POLICY_LABEL, "Exists", Vec::new())],
    };
    if !file.policies.is_empty() {
        let names = file.policies.iter().map(|p| p.name.clone()).collect();
        unknown
            .match_expressions
            .push(Expr::new(POLICY_LABEL, "NotIn", names));
    }
    Plan {
        policies,
        default,
        unknown,
    }
}

/// One object to export: a selector and the body it gets.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// `metadata.name`.
    pub name: String,
    /// The pods it governs.
    pub pods: Sel,
    /// Their rules.
    pub body: &'a cordon_policy::Body,
    /// What is named in warnings (`policy `web``, `the default`).
    pub what: String,
    /// Where its `mode` is reported.
    pub loc: Loc,
    /// What of its selection was dropped.
    pub notes: Vec<String>,
}

/// The body of pods whose `cordon.policy` names no policy: nothing.
static NOTHING: std::sync::LazyLock<cordon_policy::Body> =
    std::sync::LazyLock::new(|| cordon_policy::Body {
        ingress: Some(Vec::new()),
        ..Default::default()
    });

impl Plan {
    /// Every object to export, in file order: each policy (by label, then
    /// by `select`), the default, and the fail-closed one for unknown
    /// `cordon.policy` labels.
    pub fn targets<'a>(&self, file: &'a PolicyFile) -> Vec<Target<'a>> {
        let mut out = Vec::new();
        for (pods, p) in self.policies.iter().zip(&file.policies) {
            let base = crate::object_name(&p.name);
            let what = format!("policy `{}`", p.name);
            out.push(Target {
                name: format!("{base}.by-label"),
                pods: pods.by_label.clone(),
                body: &p.body,
                what: what.clone(),
                loc: p.loc,
                notes: pods.notes.clone(),
            });
            if let Some(sel) = &pods.by_select {
                out.push(Target {
                    name: base,
                    pods: sel.clone(),
                    body: &p.body,
                    what,
                    loc: p.loc,
                    notes: pods.notes.clone(),
                });
            }
        }
        let default_loc = file
            .default
            .egress
            .iter()
            .chain(file.default.ingress.iter().flatten())
            .map(|r| r.loc)
            .min()
            .unwrap_or(Loc { line: 1, col: 1 });
        out.push(Target {
            name: crate::object_name("default"),
            pods: self.default.clone(),
            body: &file.default,
            what: "the default".to_string(),
            loc: default_loc,
            notes: Vec::new(),
        });
        out.push(Target {
            name: "cordon.unknown-policy".to_string(),
            pods: self.unknown.clone(),
            body: &NOTHING,
            what: format!("pods whose {POLICY_LABEL} label names no policy"),
            loc: Loc { line: 1, col: 1 },
            notes: Vec::new(),
        });
        out
    }
}
