//! `networking.k8s.io/v1` NetworkPolicy objects, from k8s-openapi's types.
//!
//! Every object lists `Egress` in `policyTypes` (egress is an allowlist),
//! and `Ingress` when the policy has `ingress:`. NetworkPolicy has no
//! word for the node (`host`), DNS names or ICMP: each is a warning, and
//! the rule loses that peer or port (a rule left with none is left out,
//! never widened to "everything").

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use cordon_policy::{Mode, PolicyFile, Rule};

use crate::peers::{self, Out, PortRange};
use crate::selection::Plan;
use crate::{Document, Options, Warnings};

/// The label every exported object carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "cordon");

/// The warning for `host` in a NetworkPolicy.
pub const HOST_DROPPED: &str =
    "`host` cannot be expressed in a NetworkPolicy and gets no rule (the node stays closed); `cordon export cilium` keeps it";

/// Object metadata: name, namespace, the managed-by label.
pub fn meta(name: &str, opts: &Options) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: opts.namespace.clone(),
        labels: Some([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())].into()),
        ..Default::default()
    }
}

fn k8s_ports(ports: &[PortRange]) -> Vec<NetworkPolicyPort> {
    ports
        .iter()
        .map(|p| NetworkPolicyPort {
            port: Some(IntOrString::Int(p.lo.into())),
            end_port: (p.hi > p.lo).then_some(p.hi.into()),
            protocol: Some(p.protocol.to_string()),
        })
        .collect()
}

/// One cordon rule as peers and ports; `None` when nothing of it remains.
#[allow(clippy::type_complexity)]
fn rule(
    file: &PolicyFile,
    plan: &Plan,
    r: &Rule,
    w: &mut Warnings,
    notes: &mut Vec<String>,
) -> Option<(
    Option<Vec<NetworkPolicyPeer>>,
    Option<Vec<NetworkPolicyPort>>,
)> {
    let (ports, icmp) = peers::ports(r);
    if icmp {
        notes.push(w.push(r.loc, peers::ICMP_DROPPED));
    }
    let mut everything = false;
    let mut list = Vec::new();
    for out in peers::map_rule(file, plan, r) {
        match out {
            Out::Cidr { cidr, except } => list.push(NetworkPolicyPeer {
                ip_block: Some(IPBlock {
                    cidr: cidr.to_string(),
                    except: (!except.is_empty())
                        .then(|| except.iter().map(ToString::to_string).collect()),
                }),
                ..Default::default()
            }),
            Out::Pods(sel) => list.push(NetworkPolicyPeer {
                pod_selector: Some(sel.to_k8s()),
                ..Default::default()
            }),
            Out::Everything => everything = true,
            Out::Host => notes.push(w.push(r.loc, HOST_DROPPED)),
            Out::Fqdn { name, wildcard } => {
                let shown = if wildcard { format!("*.{name}") } else { name };
                notes.push(w.push(
                    r.loc,
                    format!("DNS name `{shown}` cannot be expressed in a NetworkPolicy and gets no rule (fail closed); `cordon export cilium` keeps it"),
                ));
            }
        }
    }
    if ports.as_ref().is_some_and(Vec::is_empty) || (!everything && list.is_empty()) {
        return None;
    }
    let peers = (!everything).then_some(list);
    Some((peers, ports.as_deref().map(k8s_ports)))
}

/// The NetworkPolicy objects of a file.
pub fn build(file: &PolicyFile, plan: &Plan, opts: &Options, w: &mut Warnings) -> Vec<Document> {
    let mut docs = Vec::new();
    for t in plan.targets(file) {
        let mut notes = t.notes.clone();
        if t.body.mode == Mode::Audit {
            notes.push(w.push(
                t.loc,
                format!(
                    "{}: `mode: audit` has no NetworkPolicy equivalent; exported as enforce",
                    t.what
                ),
            ));
        }
        let egress: Vec<NetworkPolicyEgressRule> = t
            .body
            .egress
            .iter()
            .filter_map(|r| rule(file, plan, r, w, &mut notes))
            .map(|(to, ports)| NetworkPolicyEgressRule { to, ports })
            .collect();
        let ingress: Option<Vec<NetworkPolicyIngressRule>> = t.body.ingress.as_ref().map(|rules| {
            rules
                .iter()
                .filter_map(|r| rule(file, plan, r, w, &mut notes))
                .map(|(from, ports)| NetworkPolicyIngressRule { from, ports })
                .collect()
        });
        let mut types = vec!["Egress".to_string()];
        if ingress.is_some() {
            types.push("Ingress".to_string());
        }
        let np = NetworkPolicy {
            metadata: meta(&t.name, opts),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(t.pods.to_k8s()),
                policy_types: Some(types),
                egress: Some(egress),
                ingress,
            }),
        };
        notes.dedup();
        docs.push(Document {
            name: t.name,
            value: serde_json::to_value(&np).expect("a NetworkPolicy serializes"),
            notes,
        });
    }
    docs
}
