//! The exported NetworkPolicies mean what the cordon policy means.
//!
//! For many (source container, destination, port) tuples, cordon's own
//! evaluator (`cordon_compiler::evaluate`, what `cordon verify` trusts)
//! and an evaluator of the exported NetworkPolicy objects written here
//! after the Kubernetes specification must agree, or differ only where
//! `cordon export` warned that they would (and then only by being closed
//! where cordon is open, unless the warning is about selection).
//!
//! The Kubernetes side, per the NetworkPolicy specification: a pod is
//! isolated in a direction when a policy selecting it lists that
//! direction in `policyTypes`; an isolated pod's connection needs a rule of
//! one of those policies whose peers (any, when `to`/`from` is absent)
//! and ports (any, when absent; a port list never matches ICMP) match;
//! a connection to a pod also needs the receiver's ingress. The node's
//! own addresses are not matched by `ipBlock` (the specification leaves
//! it to the plugin; cordon reaches the host only through `host`/`any`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use cordon_compiler::evaluate::{Evaluator, Facts, Flow, Proto};
use cordon_compiler::SetOverrides;
use cordon_export::{export, Export, Flavor, Options};
use cordon_inventory::Inventory;
use ipnet::IpNet;
use serde_json::Value;

/// The containers: name and labels (as Docker has them).
const CONTAINERS: &[(&str, &[(&str, &str)])] = &[
    ("c-web", &[("app", "web")]),
    ("c-webdb", &[("app", "web"), ("tier", "db")]),
    ("c-db", &[("tier", "db")]),
    ("c-shop", &[("com.docker.compose.project", "shop")]),
    (
        "c-shopdb",
        &[("com.docker.compose.project", "shop"), ("tier", "db")],
    ),
    ("c-plain", &[]),
    ("c-label-web", &[("cordon.policy", "web"), ("tier", "db")]),
    ("c-lonely", &[("cordon.policy", "lonely")]),
    ("c-unknown", &[("cordon.policy", "nope")]),
    ("web-glob", &[("role", "front")]),
];

/// The host's address on the containers' network. The containers have
/// IPv4 only, so the destinations are IPv4 (IPv6 ones would be dropped by
/// cordon for want of a source address, not by policy).
const HOST: &str = "10.213.0.1";
const OUTSIDE: &[&str] = &[
    "198.51.100.7",
    "198.51.100.200",
    "198.18.0.5",
    "10.1.2.3",
    "192.168.1.1",
    "169.254.169.254",
    HOST,
];

fn ip_of(i: usize) -> IpAddr {
    format!("10.213.0.{}", 10 + i).parse().unwrap()
}

fn inventory() -> Inventory {
    let containers: Vec<Value> = CONTAINERS
        .iter()
        .enumerate()
        .map(|(i, (name, labels))| {
            let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
            serde_json::json!({
                "id": format!("{:064x}", i + 1), "name": name, "image": "img:1", "labels": labels,
                "network_mode": "app",
                "endpoints": [{"network": "app", "ipv4": ip_of(i).to_string(), "mac": format!("02:42:0a:d5:00:{:02x}", 10 + i),
                               "host_iface": format!("veth{i}"), "bridge": "br-app"}],
            })
        })
        .collect();
    let inv = serde_json::json!({
        "version": 1,
        "networks": [{"id": "a".repeat(64), "name": "app", "driver": "bridge", "bridge": "br-app", "subnets": ["10.213.0.0/24"]}],
        "containers": containers,
    });
    Inventory::from_json("inv.json", &inv.to_string()).expect("inventory")
}

/// A pod: its labels as Kubernetes has them (Compose labels renamed as
/// the export's options say) and its address.
struct Pod {
    labels: BTreeMap<String, String>,
    ip: IpAddr,
}

fn pods(opts: &Options) -> Vec<Pod> {
    CONTAINERS
        .iter()
        .enumerate()
        .map(|(i, (_, labels))| Pod {
            labels: labels
                .iter()
                .map(|(k, v)| {
                    let k = match *k {
                        "com.docker.compose.project" => opts.project_label.as_str(),
                        "com.docker.compose.service" => opts.service_label.as_str(),
                        other => other,
                    };
                    (k.to_string(), v.to_string())
                })
                .collect(),
            ip: ip_of(i),
        })
        .collect()
}

fn selects(sel: &Value, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = sel["matchLabels"].as_object().is_none_or(|m| {
        m.iter()
            .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
    });
    let exprs_ok = sel["matchExpressions"].as_array().is_none_or(|es| {
        es.iter().all(|e| {
            let key = e["key"].as_str().unwrap();
            let values: Vec<&str> = e["values"]
                .as_array()
                .map(|v| v.iter().map(|x| x.as_str().unwrap()).collect())
                .unwrap_or_default();
            let got = labels.get(key).map(String::as_str);
            match e["operator"].as_str().unwrap() {
                "In" => got.is_some_and(|g| values.contains(&g)),
                "NotIn" => got.is_none_or(|g| !values.contains(&g)),
                "Exists" => got.is_some(),
                "DoesNotExist" => got.is_none(),
                other => panic!("operator {other}"),
            }
        })
    });
    labels_ok && exprs_ok
}

fn in_block(block: &Value, ip: IpAddr) -> bool {
    let net: IpNet = block["cidr"].as_str().unwrap().parse().unwrap();
    net.contains(&ip)
        && !block["except"].as_array().is_some_and(|ex| {
            ex.iter()
                .any(|e| e.as_str().unwrap().parse::<IpNet>().unwrap().contains(&ip))
        })
}

/// The Kubernetes verdict for `src` (a pod index) opening `flow`.
fn k8s_allows(docs: &[Value], pods: &[Pod], src: usize, flow: &Flow) -> bool {
    let host: IpAddr = HOST.parse().unwrap();
    let peer_matches = |peer: &Value, ip: IpAddr| -> bool {
        if let Some(b) = peer.get("ipBlock") {
            return ip != host && in_block(b, ip);
        }
        if let Some(sel) = peer.get("podSelector") {
            return pods.iter().any(|p| p.ip == ip && selects(sel, &p.labels));
        }
        false
    };
    let port_matches = |ports: Option<&Value>| -> bool {
        let Some(ports) = ports.and_then(Value::as_array) else {
            return true;
        };
        ports.iter().any(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            let lo = p["port"].as_u64().unwrap();
            let hi = p["endPort"].as_u64().unwrap_or(lo);
            let want = match flow.proto {
                Proto::Tcp => "TCP",
                Proto::Udp => "UDP",
                Proto::Icmp => return false,
            };
            proto == want && (lo..=hi).contains(&u64::from(flow.port))
        })
    };
    // (direction, pod, the other end) -> allowed
    let direction = |dir: &str, pod: &Pod, other: IpAddr| -> bool {
        let (rules_key, peers_key) = match dir {
            "Egress" => ("egress", "to"),
            _ => ("ingress", "from"),
        };
        let governing: Vec<&Value> = docs
            .iter()
            .filter(|d| selects(&d["spec"]["podSelector"], &pod.labels))
            .filter(|d| {
                d["spec"]["policyTypes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t == dir)
            })
            .collect();
        if governing.is_empty() {
            return true;
        }
        governing.iter().any(|d| {
            d["spec"][rules_key].as_array().is_some_and(|rules| {
                rules.iter().any(|r| {
                    let peers_ok = r
                        .get(peers_key)
                        .and_then(Value::as_array)
                        .is_none_or(|ps| ps.iter().any(|p| peer_matches(p, other)));
                    peers_ok && port_matches(r.get("ports"))
                })
            })
        })
    };
    let me = &pods[src];
    if !direction("Egress", me, flow.dst) {
        return false;
    }
    match pods.iter().find(|p| p.ip == flow.dst) {
        Some(receiver) => direction("Ingress", receiver, me.ip),
        None => true,
    }
}

fn flows() -> Vec<Flow> {
    let mut dsts: Vec<IpAddr> = OUTSIDE.iter().map(|a| a.parse().unwrap()).collect();
    dsts.extend((0..CONTAINERS.len()).map(ip_of));
    let mut out = Vec::new();
    for dst in dsts {
        for (proto, port) in [
            (Proto::Tcp, 22),
            (Proto::Tcp, 80),
            (Proto::Tcp, 443),
            (Proto::Tcp, 5432),
            (Proto::Tcp, 8080),
            (Proto::Udp, 53),
            (Proto::Udp, 5353),
            (Proto::Icmp, 0),
        ] {
            out.push(Flow { dst, proto, port });
        }
    }
    out
}

/// A tuple where the two disagree.
#[derive(Debug)]
struct Diff {
    src: &'static str,
    src_policy: String,
    dst_policy: Option<String>,
    flow: Flow,
    cordon: bool,
}

fn compare(text: &str, tamper: impl Fn(&mut Vec<Value>)) -> (Export, Vec<Diff>, usize, usize) {
    let file = cordon_policy::parse("p.yaml", text).expect("valid policy");
    let opts = Options::default();
    let e = export(&file, Flavor::Kubernetes, &opts);
    let mut docs: Vec<Value> = e.documents.iter().map(|d| d.value.clone()).collect();
    tamper(&mut docs);
    let inv = inventory();
    let (overrides, learned) = (SetOverrides::default(), BTreeMap::new());
    let host: Vec<IpAddr> = vec![HOST.parse().unwrap()];
    let eval = Evaluator::new(Facts {
        policy: &file,
        inventory: &inv,
        overrides: &overrides,
        learned: &learned,
        host: &host,
    });
    let pods = pods(&opts);
    let (mut diffs, mut allowed, mut dropped) = (Vec::new(), 0, 0);
    for (i, (name, _)) in CONTAINERS.iter().enumerate() {
        for flow in flows() {
            if flow.dst == ip_of(i) {
                continue; // a pod's traffic to itself is never judged
            }
            let c = eval.egress(name, &flow).expect("evaluates");
            // An audited drop counts as what enforcing would do.
            let cordon = c.allowed && !c.audit;
            if cordon {
                allowed += 1;
            } else {
                dropped += 1;
            }
            if cordon != k8s_allows(&docs, &pods, i, &flow) {
                let dst_policy = (0..CONTAINERS.len())
                    .find(|&j| ip_of(j) == flow.dst)
                    .map(|j| eval.policy_of(j).to_string());
                diffs.push(Diff {
                    src: name,
                    src_policy: c.policy,
                    dst_policy,
                    flow,
                    cordon,
                });
            }
        }
    }
    (e, diffs, allowed, dropped)
}

const EXACT: &str = "version: 1
sets:
  office: [198.51.100.0/26]
default:
  egress:
    - to: [internet]
    - to: [same-network]
      ports: [80/tcp]
policies:
  - name: web
    select: { label: { app: web } }
    ingress:
      - from: [office, same-network]
        ports: [8080/tcp]
    egress:
      - to: [db]
        ports: [5432/tcp]
      - to: [internet]
        ports: [443/tcp]
  - name: db
    select: { label: { tier: db } }
    ingress:
      - from: [web]
        ports: [5432/tcp]
    egress: []
  - name: shop
    select: { compose: { project: shop } }
    egress:
      - to: [private, metadata]
        ports: [53/udp]
      - to: [198.51.100.0/24, \"2001:db8::/32\"]
  - name: lonely
    egress:
      - to: [any]
        ports: [22/tcp]
";

#[test]
fn an_expressible_policy_means_the_same_on_every_tuple() {
    let (e, diffs, allowed, dropped) = compare(EXACT, |_| {});
    eprintln!(
        "exact: {allowed} allowed, {dropped} dropped, {} disagreements",
        diffs.len()
    );
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    assert!(
        allowed > 50 && dropped > 50,
        "both outcomes occur: {allowed} allowed, {dropped} dropped"
    );
    assert!(
        diffs.is_empty(),
        "{} disagreements: {diffs:#?}",
        diffs.len()
    );
}

#[test]
fn the_comparison_detects_a_wrong_export() {
    // Positive control: without the object for unknown `cordon.policy`
    // labels, c-unknown is open in Kubernetes and closed in cordon.
    let (_, diffs, _, _) = compare(EXACT, |docs| {
        docs.retain(|d| d["metadata"]["name"] != "cordon.unknown-policy")
    });
    assert!(!diffs.is_empty());
    assert!(
        diffs
            .iter()
            .all(|d| d.src == "c-unknown"
                || d.dst_policy.as_deref().is_some_and(|p| p.contains("nope"))),
        "{diffs:#?}"
    );
}

const LOSSY: &str = "version: 1
default:
  egress:
    - to: [internet, host]
      ports: [443/tcp, icmp]
policies:
  - name: web
    select: { label: { app: web } }
    egress:
      - to: [db, api.example.com]
        ports: [5432/tcp, 53/udp]
  - name: db
    select: { label: { tier: db } }
    mode: audit
    ingress:
      - from: [web]
        ports: [5432/tcp]
    egress: []
  - name: glob
    select: { name: \"web-*\" }
    egress:
      - to: [internet]
  - name: lonely
    egress:
      - to: [host]
        ports: [22/tcp]
";

#[test]
fn where_they_differ_a_warning_said_so() {
    let (e, diffs, allowed, dropped) = compare(LOSSY, |_| {});
    eprintln!(
        "lossy: {allowed} allowed, {dropped} dropped, {} disagreements",
        diffs.len()
    );
    let warned = |policy: &str, what: &str| {
        e.warnings.iter().any(|w| {
            let m = &w.message;
            m.contains(what)
                && (m.contains(&format!("policy `{policy}`")) || !m.contains("policy `"))
        })
    };
    let host: IpAddr = HOST.parse().unwrap();
    assert!(!diffs.is_empty(), "this policy loses something");
    let mut unexplained = Vec::new();
    for d in &diffs {
        let policy = d.src_policy.as_str();
        let dst = d.dst_policy.as_deref().unwrap_or("");
        let explained = (d.flow.proto == Proto::Icmp && warned(policy, "`icmp`") && d.cordon)
            || (d.flow.dst == host && warned(policy, "`host` cannot") && d.cordon)
            || (d.flow.port == 53 && warned(policy, "DNS name") && d.cordon)
            || warned(policy, "`mode: audit`")
            || warned(dst, "`mode: audit`")
            || warned(policy, "has no pod-selector equivalent");
        if !explained {
            unexplained.push(d);
        }
    }
    assert!(
        unexplained.is_empty(),
        "disagreements no warning explains: {unexplained:#?}"
    );
    // Every kind of warning showed up in a disagreement.
    for what in ["`icmp`", "`host` cannot", "has no pod-selector equivalent"] {
        assert!(
            e.warnings.iter().any(|w| w.message.contains(what)),
            "no warning {what}"
        );
    }
}
