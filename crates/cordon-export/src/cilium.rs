//! `cilium.io/v2` CiliumNetworkPolicy objects, through serde types of our
//! own (the CRD has no maintained Rust types).
//!
//! Cilium has words NetworkPolicy lacks: `host` becomes the `host` entity,
//! `any` the `all` entity, DNS names `toFQDNs` (with the rule toward the
//! cluster's DNS that `toFQDNs` needs, its proxy allowing only those
//! names). Each kind of peer gets a rule of its own with the same ports,
//! since Cilium does not combine `toFQDNs` with other peers in one rule.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use cordon_policy::{Mode, PolicyFile, Rule};

use crate::kubernetes::meta;
use crate::peers::{self, Out, PortRange};
use crate::selection::{Plan, Sel};
use crate::{Document, Options, Warnings};

/// A CiliumNetworkPolicy.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CiliumNetworkPolicy {
    /// `cilium.io/v2`.
    pub api_version: &'static str,
    /// `CiliumNetworkPolicy`.
    pub kind: &'static str,
    /// Name, namespace, labels.
    pub metadata: ObjectMeta,
    /// The policy.
    pub spec: Spec,
}

/// `spec` of a CiliumNetworkPolicy.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// The endpoints (pods) it governs.
    pub endpoint_selector: Sel,
    /// Which directions are allowlists.
    pub enable_default_deny: DefaultDeny,
    /// Egress allow rules.
    pub egress: Vec<EgressRule>,
    /// Ingress allow rules, when ingress is an allowlist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Vec<IngressRule>>,
}

/// `enableDefaultDeny`.
#[derive(Debug, Clone, Serialize)]
pub struct DefaultDeny {
    /// Egress is an allowlist.
    pub egress: bool,
    /// Ingress is an allowlist.
    pub ingress: bool,
}

/// One egress rule.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EgressRule {
    /// Address blocks.
    #[serde(rename = "toCIDRSet", skip_serializing_if = "Vec::is_empty")]
    pub to_cidr_set: Vec<CidrRule>,
    /// Pods of the namespace.
    #[serde(rename = "toEndpoints", skip_serializing_if = "Vec::is_empty")]
    pub to_endpoints: Vec<Sel>,
    /// Entities: `host`, `all`.
    #[serde(rename = "toEntities", skip_serializing_if = "Vec::is_empty")]
    pub to_entities: Vec<String>,
    /// DNS names.
    #[serde(rename = "toFQDNs", skip_serializing_if = "Vec::is_empty")]
    pub to_fqdns: Vec<Fqdn>,
    /// Ports; empty for all.
    #[serde(rename = "toPorts", skip_serializing_if = "Vec::is_empty")]
    pub to_ports: Vec<PortRule>,
}

/// One ingress rule.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct IngressRule {
    /// Address blocks.
    #[serde(rename = "fromCIDRSet", skip_serializing_if = "Vec::is_empty")]
    pub from_cidr_set: Vec<CidrRule>,
    /// Pods of the namespace.
    #[serde(rename = "fromEndpoints", skip_serializing_if = "Vec::is_empty")]
    pub from_endpoints: Vec<Sel>,
    /// Entities: `host`, `all`.
    #[serde(rename = "fromEntities", skip_serializing_if = "Vec::is_empty")]
    pub from_entities: Vec<String>,
    /// Ports; empty for all.
    #[serde(rename = "toPorts", skip_serializing_if = "Vec::is_empty")]
    pub to_ports: Vec<PortRule>,
}

/// A CIDR with exceptions.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CidrRule {
    /// The block.
    pub cidr: String,
    /// Parts excluded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
}

/// A DNS name or pattern.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct Fqdn {
    /// An exact name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_name: Option<String>,
    /// A pattern, `*.suffix`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_pattern: Option<String>,
}

/// Ports, and L7 rules on them.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PortRule {
    /// The ports.
    pub ports: Vec<PortProtocol>,
    /// L7 rules (the DNS proxy's allowlist).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<L7Rules>,
}

/// One port or range.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PortProtocol {
    /// The first port, as a string.
    pub port: String,
    /// The last port of a range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_port: Option<i32>,
    /// `TCP`, `UDP` or `ANY`.
    pub protocol: String,
}

/// L7 rules.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct L7Rules {
    /// Names the DNS proxy lets through.
    pub dns: Vec<Fqdn>,
}

/// The labels of the cluster's DNS pods (kube-dns or CoreDNS in
/// kube-system), as Cilium names them.
pub fn cluster_dns() -> Sel {
    Sel {
        match_labels: BTreeMap::from([
            (
                "k8s:io.kubernetes.pod.namespace".to_string(),
                "kube-system".to_string(),
            ),
            ("k8s:k8s-app".to_string(), "kube-dns".to_string()),
        ]),
        match_expressions: Vec::new(),
    }
}

fn port_rules(ports: &Option<Vec<PortRange>>) -> Vec<PortRule> {
    match ports {
        None => Vec::new(),
        Some(list) => vec![PortRule {
            ports: list
                .iter()
                .map(|p| PortProtocol {
                    port: p.lo.to_string(),
                    end_port: (p.hi > p.lo).then_some(p.hi.into()),
                    protocol: p.protocol.to_string(),
                })
                .collect(),
            rules: None,
        }],
    }
}

fn fqdn(name: &str, wildcard: bool) -> Fqdn {
    if wildcard {
        Fqdn {
            match_name: None,
            match_pattern: Some(format!("*.{name}")),
        }
    } else {
        Fqdn {
            match_name: Some(name.to_string()),
            match_pattern: None,
        }
    }
}

/// The pieces of one cordon rule, one Cilium rule per kind of peer.
struct Pieces {
    cidrs: Vec<CidrRule>,
    endpoints: Vec<Sel>,
    entities: Vec<String>,
    fqdns: Vec<Fqdn>,
    ports: Vec<PortRule>,
}

fn pieces(
    file: &PolicyFile,
    plan: &Plan,
    r: &Rule,
    w: &mut Warnings,
    notes: &mut Vec<String>,
) -> Option<Pieces> {
    let (ports, icmp) = peers::ports(r);
    if icmp {
        notes.push(w.push(r.loc, peers::ICMP_DROPPED));
    }
    if ports.as_ref().is_some_and(Vec::is_empty) {
        return None;
    }
    let mut p = Pieces {
        cidrs: Vec::new(),
        endpoints: Vec::new(),
        entities: Vec::new(),
        fqdns: Vec::new(),
        ports: port_rules(&ports),
    };
    for out in peers::map_rule(file, plan, r) {
        match out {
            Out::Cidr { cidr, except } => p.cidrs.push(CidrRule {
                cidr: cidr.to_string(),
                except: except.iter().map(ToString::to_string).collect(),
            }),
            Out::Pods(sel) => p.endpoints.push(sel),
            Out::Everything => p.entities.push("all".to_string()),
            Out::Host => p.entities.push("host".to_string()),
            Out::Fqdn { name, wildcard } => {
                if wildcard {
                    notes.push(w.push(
                        r.loc,
                        format!("`*.{name}`: Cilium's `*` matches one label, so names more than one level below `{name}` stay closed"),
                    ));
                }
                p.fqdns.push(fqdn(&name, wildcard));
            }
        }
    }
    p.entities.sort();
    p.entities.dedup();
    Some(p)
}

fn egress_rules(p: Pieces) -> Vec<EgressRule> {
    let mut out = Vec::new();
    let base = EgressRule {
        to_ports: p.ports,
        ..Default::default()
    };
    if !p.cidrs.is_empty() {
        out.push(EgressRule {
            to_cidr_set: p.cidrs,
            ..base.clone()
        });
    }
    if !p.endpoints.is_empty() {
        out.push(EgressRule {
            to_endpoints: p.endpoints,
            ..base.clone()
        });
    }
    if !p.entities.is_empty() {
        out.push(EgressRule {
            to_entities: p.entities,
            ..base.clone()
        });
    }
    if !p.fqdns.is_empty() {
        out.push(EgressRule {
            to_fqdns: p.fqdns,
            ..base
        });
    }
    out
}

fn ingress_rules(p: Pieces) -> Vec<IngressRule> {
    let mut out = Vec::new();
    let base = IngressRule {
        to_ports: p.ports,
        ..Default::default()
    };
    if !p.cidrs.is_empty() {
        out.push(IngressRule {
            from_cidr_set: p.cidrs,
            ..base.clone()
        });
    }
    if !p.endpoints.is_empty() {
        out.push(IngressRule {
            from_endpoints: p.endpoints,
            ..base.clone()
        });
    }
    if !p.entities.is_empty() {
        out.push(IngressRule {
            from_entities: p.entities,
            ..base
        });
    }
    out
}

/// The rule that lets the pod ask the cluster's DNS for `names`, and only
/// for them (what `toFQDNs` needs to learn addresses).
pub fn dns_rule(mut names: Vec<Fqdn>) -> EgressRule {
    names.sort();
    names.dedup();
    EgressRule {
        to_endpoints: vec![cluster_dns()],
        to_ports: vec![PortRule {
            ports: vec![PortProtocol {
                port: "53".to_string(),
                end_port: None,
                protocol: "ANY".to_string(),
            }],
            rules: Some(L7Rules { dns: names }),
        }],
        ..Default::default()
    }
}

/// The CiliumNetworkPolicy objects of a file.
pub fn build(file: &PolicyFile, plan: &Plan, opts: &Options, w: &mut Warnings) -> Vec<Document> {
    let mut docs = Vec::new();
    for t in plan.targets(file) {
        let mut notes = t.notes.clone();
        if t.body.mode == Mode::Audit {
            notes.push(w.push(
                t.loc,
                format!(
                    "{}: `mode: audit` has no CiliumNetworkPolicy equivalent; exported as enforce",
                    t.what
                ),
            ));
        }
        let mut names = Vec::new();
        let mut egress: Vec<EgressRule> = Vec::new();
        for r in &t.body.egress {
            if let Some(p) = pieces(file, plan, r, w, &mut notes) {
                names.extend(p.fqdns.iter().cloned());
                egress.extend(egress_rules(p));
            }
        }
        if !names.is_empty() {
            egress.push(dns_rule(names));
        }
        let ingress = t.body.ingress.as_ref().map(|rules| {
            rules
                .iter()
                .filter_map(|r| pieces(file, plan, r, w, &mut notes))
                .flat_map(ingress_rules)
                .collect::<Vec<_>>()
        });
        // An empty rule allows nothing; it keeps the direction an
        // allowlist on Cilium versions without `enableDefaultDeny`.
        if egress.is_empty() {
            egress.push(EgressRule::default());
        }
        let ingress = ingress.map(|mut v| {
            if v.is_empty() {
                v.push(IngressRule::default());
            }
            v
        });
        let cnp = CiliumNetworkPolicy {
            api_version: "cilium.io/v2",
            kind: "CiliumNetworkPolicy",
            metadata: meta(&t.name, opts),
            spec: Spec {
                endpoint_selector: t.pods.clone(),
                enable_default_deny: DefaultDeny {
                    egress: true,
                    ingress: ingress.is_some(),
                },
                egress,
                ingress,
            },
        };
        notes.dedup();
        docs.push(Document {
            name: t.name,
            value: serde_json::to_value(&cnp).expect("a CiliumNetworkPolicy serializes"),
            notes,
        });
    }
    docs
}
