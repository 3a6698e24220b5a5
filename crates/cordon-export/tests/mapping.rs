//! Every word, port and selection mapping of `cordon export`, and every
//! warning, each located where the policy file says it.

use cordon_export::{export, Export, Flavor, Options};
use serde_json::{json, Value};

fn run(flavor: Flavor, text: &str) -> Export {
    let file = cordon_policy::parse("p.yaml", text).expect("valid policy");
    export(&file, flavor, &Options::default())
}

fn k8s(text: &str) -> Export {
    run(Flavor::Kubernetes, text)
}

fn cilium(text: &str) -> Export {
    run(Flavor::Cilium, text)
}

fn doc<'a>(e: &'a Export, name: &str) -> &'a Value {
    &e.documents
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no object {name}"))
        .value
}

fn warnings(e: &Export) -> Vec<String> {
    e.warnings.iter().map(ToString::to_string).collect()
}

/// The default's egress rules for a file whose default has `rules`.
fn default_egress(flavor: Flavor, rules: &str) -> (Value, Vec<String>) {
    let e = run(
        flavor,
        &format!("version: 1\nsets:\n  office: [198.51.100.0/26, \"2001:db8:77::/48\"]\n  none: []\npolicies:\n  - name: db\n    select: {{ label: {{ tier: db }} }}\ndefault:\n  egress:\n{rules}"),
    );
    (
        doc(&e, "cordon-default")["spec"]["egress"].clone(),
        warnings(&e),
    )
}

#[test]
fn internet_is_everything_but_the_nonpublic_ranges_metadata_included() {
    let (eg, w) = default_egress(Flavor::Kubernetes, "    - to: [internet]\n");
    assert!(w.is_empty(), "{w:?}");
    let to = &eg[0]["to"];
    assert_eq!(to[0]["ipBlock"]["cidr"], "0.0.0.0/0");
    assert_eq!(to[1]["ipBlock"]["cidr"], "::/0");
    let v4: Vec<&str> = to[0]["ipBlock"]["except"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for private in [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
    ] {
        assert!(v4.contains(&private), "{private} not excepted: {v4:?}");
    }
    // metadata (169.254.169.254) stays excluded: its range is excepted.
    assert!(v4.contains(&"169.254.0.0/16"), "{v4:?}");
    let v6 = to[1]["ipBlock"]["except"].as_array().unwrap();
    assert!(
        v6.contains(&json!("fc00::/7")),
        "fd00:ec2::254 is inside: {v6:?}"
    );
    assert!(v6.contains(&json!("fe80::/10")), "{v6:?}");
    assert_eq!(eg[0].get("ports"), None, "no ports: every port");
}

#[test]
fn private_metadata_sets_and_cidrs_are_ip_blocks() {
    let (eg, _) = default_egress(
        Flavor::Kubernetes,
        "    - to: [private]\n    - to: [metadata]\n    - to: [office]\n    - to: [198.51.100.7, \"2001:db8::/32\"]\n",
    );
    let cidrs = |i: usize| -> Vec<String> {
        eg[i]["to"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["ipBlock"]["cidr"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(cidrs(0).len(), 9);
    assert!(cidrs(0).contains(&"169.254.0.0/16".to_string()));
    assert_eq!(cidrs(1), ["169.254.169.254/32", "fd00:ec2::254/128"]);
    assert_eq!(cidrs(2), ["198.51.100.0/26", "2001:db8:77::/48"]);
    assert_eq!(cidrs(3), ["198.51.100.7/32", "2001:db8::/32"]);
}

#[test]
fn an_empty_set_leaves_no_rule_rather_than_an_open_one() {
    let (eg, w) = default_egress(
        Flavor::Kubernetes,
        "    - to: [none]\n      ports: [443/tcp]\n",
    );
    assert_eq!(eg, json!([]), "a rule without peers would allow everything");
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn same_network_and_policy_names_are_pod_selectors() {
    let (eg, _) = default_egress(
        Flavor::Kubernetes,
        "    - to: [same-network]\n    - to: [db]\n",
    );
    assert_eq!(eg[0]["to"], json!([{"podSelector": {}}]));
    assert_eq!(
        eg[1]["to"],
        json!([
            {"podSelector": {"matchLabels": {"cordon.policy": "db"}}},
            {"podSelector": {"matchExpressions": [{"key": "cordon.policy", "operator": "DoesNotExist"}], "matchLabels": {"tier": "db"}}},
        ])
    );
}

#[test]
fn any_is_a_rule_without_peers() {
    let (eg, _) = default_egress(
        Flavor::Kubernetes,
        "    - to: [any]\n      ports: [53/udp]\n",
    );
    assert_eq!(eg, json!([{"ports": [{"port": 53, "protocol": "UDP"}]}]));
    let (eg, _) = default_egress(Flavor::Cilium, "    - to: [any]\n");
    assert_eq!(eg, json!([{"toEntities": ["all"]}]));
}

#[test]
fn ports_and_ranges() {
    let (eg, _) = default_egress(
        Flavor::Kubernetes,
        "    - to: [office]\n      ports: [8000-8100/tcp, 53/udp]\n",
    );
    assert_eq!(
        eg[0]["ports"],
        json!([{"port": 8000, "endPort": 8100, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}])
    );
    let (eg, _) = default_egress(
        Flavor::Cilium,
        "    - to: [office]\n      ports: [8000-8100/tcp]\n",
    );
    assert_eq!(
        eg[0]["toPorts"],
        json!([{"ports": [{"port": "8000", "endPort": 8100, "protocol": "TCP"}]}])
    );
}

#[test]
fn icmp_is_a_located_warning_and_an_icmp_only_rule_is_left_out() {
    let (eg, w) = default_egress(
        Flavor::Kubernetes,
        "    - to: [office]\n      ports: [icmp]\n    - to: [office]\n      ports: [icmp, 443/tcp]\n",
    );
    assert_eq!(eg.as_array().unwrap().len(), 1, "{eg}");
    assert_eq!(eg[0]["ports"], json!([{"port": 443, "protocol": "TCP"}]));
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].starts_with("p.yaml:10:7: warning: `icmp`"), "{w:?}");
    assert!(w[1].starts_with("p.yaml:12:7: warning: `icmp`"), "{w:?}");
}

#[test]
fn host_is_a_warning_for_networkpolicy_and_the_host_entity_for_cilium() {
    let (eg, w) = default_egress(
        Flavor::Kubernetes,
        "    - to: [host]\n      ports: [22/tcp]\n",
    );
    assert_eq!(eg, json!([]));
    assert_eq!(w.len(), 1);
    assert!(
        w[0].starts_with("p.yaml:10:7: warning: `host` cannot be expressed"),
        "{w:?}"
    );
    let (eg, w) = default_egress(Flavor::Cilium, "    - to: [host]\n      ports: [22/tcp]\n");
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(
        eg,
        json!([{"toEntities": ["host"], "toPorts": [{"ports": [{"port": "22", "protocol": "TCP"}]}]}])
    );
}

#[test]
fn dns_names_fail_closed_in_networkpolicy_and_become_to_fqdns_in_cilium() {
    let rules = "    - to: [api.example.com, \"*.example.org\"]\n      ports: [443/tcp]\n";
    let (eg, w) = default_egress(Flavor::Kubernetes, rules);
    assert_eq!(eg, json!([]), "no rule: fail closed");
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w.iter()
            .all(|w| w.starts_with("p.yaml:10:7: warning: DNS name")),
        "{w:?}"
    );
    let (eg, w) = default_egress(Flavor::Cilium, rules);
    assert_eq!(
        eg[0],
        json!({"toFQDNs": [{"matchName": "api.example.com"}, {"matchPattern": "*.example.org"}],
               "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]})
    );
    // The DNS rule toFQDNs needs: to the cluster's DNS, only these names.
    assert_eq!(
        eg[1],
        json!({"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"}}],
               "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}],
                            "rules": {"dns": [{"matchPattern": "*.example.org"}, {"matchName": "api.example.com"}]}}]})
    );
    assert_eq!(w.len(), 1, "only the wildcard's depth: {w:?}");
    assert!(
        w[0].contains("`*.example.org`: Cilium's `*` matches one label"),
        "{w:?}"
    );
}

#[test]
fn cilium_keeps_fqdns_apart_from_other_peers() {
    let (eg, _) = default_egress(
        Flavor::Cilium,
        "    - to: [api.example.com, office, same-network, host]\n",
    );
    let kinds: Vec<Vec<&String>> = eg
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let keys = r.as_object().unwrap().keys();
            keys.filter(|k| *k != "toPorts").collect()
        })
        .collect();
    assert_eq!(kinds.len(), 5, "{eg}");
    for k in &kinds {
        assert_eq!(k.len(), 1, "one kind of peer per rule: {eg}");
    }
}

#[test]
fn policy_types_list_egress_always_and_ingress_when_the_policy_has_it() {
    let e = k8s("version: 1\npolicies:\n  - name: a\n    select: { label: { app: a } }\n  - name: b\n    select: { label: { app: b } }\n    ingress: []\n");
    assert_eq!(
        doc(&e, "cordon-a")["spec"]["policyTypes"],
        json!(["Egress"])
    );
    assert_eq!(doc(&e, "cordon-a")["spec"].get("ingress"), None);
    assert_eq!(doc(&e, "cordon-a")["spec"]["egress"], json!([]));
    assert_eq!(
        doc(&e, "cordon-b")["spec"]["policyTypes"],
        json!(["Egress", "Ingress"])
    );
    assert_eq!(doc(&e, "cordon-b")["spec"]["ingress"], json!([]));
    let c = cilium(
        "version: 1\npolicies:\n  - name: b\n    select: { label: { app: b } }\n    ingress: []\n",
    );
    let spec = &doc(&c, "cordon-b")["spec"];
    assert_eq!(
        spec["enableDefaultDeny"],
        json!({"egress": true, "ingress": true})
    );
    assert_eq!(spec["egress"], json!([{}]));
    assert_eq!(spec["ingress"], json!([{}]));
}

#[test]
fn the_default_is_namespace_wide_minus_the_pods_of_policies() {
    let e = k8s("version: 1\npolicies:\n  - name: a\n    select: { label: { app: a } }\n");
    assert_eq!(
        doc(&e, "cordon-default")["spec"]["podSelector"],
        json!({"matchExpressions": [
            {"key": "cordon.policy", "operator": "DoesNotExist"},
            {"key": "app", "operator": "NotIn", "values": ["a"]},
        ]})
    );
    // The embedded default: one namespace-wide policy, internet and the namespace.
    let e = export(
        &cordon_policy::embedded_default(),
        Flavor::Kubernetes,
        &Options::default(),
    );
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    let spec = &doc(&e, "cordon-default")["spec"];
    assert_eq!(
        spec["podSelector"],
        json!({"matchExpressions": [{"key": "cordon.policy", "operator": "DoesNotExist"}]})
    );
    assert_eq!(spec["egress"][1]["to"], json!([{"podSelector": {}}]));
    assert_eq!(spec["policyTypes"], json!(["Egress"]));
}

#[test]
fn an_unknown_cordon_policy_label_gets_no_network() {
    let e = k8s("version: 1\npolicies:\n  - name: b\n  - name: a\n");
    let spec = &doc(&e, "cordon.unknown-policy")["spec"];
    assert_eq!(
        spec["podSelector"],
        json!({"matchExpressions": [
            {"key": "cordon.policy", "operator": "Exists"},
            {"key": "cordon.policy", "operator": "NotIn", "values": ["a", "b"]},
        ]})
    );
    assert_eq!(spec["egress"], json!([]));
    assert_eq!(spec["ingress"], json!([]));
    assert_eq!(spec["policyTypes"], json!(["Egress", "Ingress"]));
    // A policy without select is reached through its label only.
    assert_eq!(
        doc(&e, "cordon-a.by-label")["spec"]["podSelector"],
        json!({"matchLabels": {"cordon.policy": "a"}})
    );
    assert!(e.documents.iter().all(|d| d.name != "cordon-a"));
}

#[test]
fn compose_becomes_labels_the_operator_names() {
    let text = "version: 1\npolicies:\n  - name: web\n    select: { compose: { project: shop, service: web } }\n";
    let e = k8s(text);
    assert_eq!(
        doc(&e, "cordon-web")["spec"]["podSelector"]["matchLabels"],
        json!({"app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "shop"})
    );
    let file = cordon_policy::parse("p.yaml", text).unwrap();
    let opts = Options {
        namespace: Some("prod".into()),
        project_label: "io.kompose.project".into(),
        service_label: "io.kompose.service".into(),
    };
    let e = export(&file, Flavor::Kubernetes, &opts);
    let d = doc(&e, "cordon-web");
    assert_eq!(
        d["spec"]["podSelector"]["matchLabels"],
        json!({"io.kompose.project": "shop", "io.kompose.service": "web"})
    );
    assert_eq!(d["metadata"]["namespace"], "prod");
}

#[test]
fn name_and_image_globs_are_dropped_with_a_located_warning_and_a_comment() {
    let e = k8s("version: 1\npolicies:\n  - name: web\n    select: { name: \"web-*\", label: { app: web } }\n  - name: old\n    select: { image: \"legacy/*\" }\n");
    let w = warnings(&e);
    assert!(w.iter().any(|w| w.starts_with("p.yaml:3:11: warning: policy `web`: `select: {name: \"web-*\"}` has no pod-selector equivalent and is dropped; its remaining labels select it")), "{w:?}");
    assert!(w.iter().any(|w| w.starts_with("p.yaml:5:11: warning: policy `old`: `select: {image: \"legacy/*\"}` has no pod-selector equivalent and is dropped; only pods labelled cordon.policy=old get it")), "{w:?}");
    let web = e.documents.iter().find(|d| d.name == "cordon-web").unwrap();
    assert!(
        web.notes.iter().any(|n| n.contains("web-*")),
        "{:?}",
        web.notes
    );
    assert!(cordon_export::output::yaml(&e.documents)
        .contains("# cordon: not exported: policy `web`: `select: {name: \"web-*\"}`"));
    assert!(e.documents.iter().all(|d| d.name != "cordon-old"));
}

#[test]
fn first_match_wins_where_a_label_selector_can_say_it() {
    let e = k8s("version: 1\npolicies:\n  - name: a\n    select: { label: { app: x } }\n  - name: b\n    select: { label: { app: x, tier: y } }\n  - name: c\n    select: { label: { tier: y } }\n  - name: d\n    select: { label: { app: z } }\n  - name: e\n    select: { label: { role: r } }\n");
    // b is shadowed by a: its select never applies.
    assert!(e.documents.iter().all(|d| d.name != "cordon-b"));
    // c excludes a's pods with one requirement.
    assert_eq!(
        doc(&e, "cordon-c")["spec"]["podSelector"]["matchExpressions"],
        json!([{"key": "cordon.policy", "operator": "DoesNotExist"}, {"key": "app", "operator": "NotIn", "values": ["x"]}])
    );
    // d is disjoint from a (app=z) and excludes c's tier=y.
    assert_eq!(
        doc(&e, "cordon-d")["spec"]["podSelector"]["matchExpressions"],
        json!([{"key": "cordon.policy", "operator": "DoesNotExist"}, {"key": "tier", "operator": "NotIn", "values": ["y"]}])
    );
    // e cannot exclude b's two labels: a warning at e.
    let w = warnings(&e);
    assert!(w.iter().any(|w| w.starts_with("p.yaml:11:11: warning: policy `e`: pods that also match the labels of the earlier policy `b` get both policies")), "{w:?}");
    assert!(
        w.iter().any(|w| w.starts_with(
            "p.yaml:5:11: warning: policy `b`: its pods also get the default's rules"
        )),
        "{w:?}"
    );
}

#[test]
fn audit_mode_is_a_warning() {
    let e = k8s("version: 1\npolicies:\n  - name: legacy\n    mode: audit\n    select: { label: { app: l } }\n");
    let w = warnings(&e);
    assert_eq!(w, ["p.yaml:3:11: warning: policy `legacy`: `mode: audit` has no NetworkPolicy equivalent; exported as enforce"]);
    let e = cilium("version: 1\ndefault:\n  mode: audit\n  egress:\n    - to: [internet]\n");
    assert_eq!(warnings(&e), ["p.yaml:5:7: warning: the default: `mode: audit` has no CiliumNetworkPolicy equivalent; exported as enforce"]);
}

#[test]
fn ingress_words_map_to_from_peers() {
    let e = k8s("version: 1\nsets:\n  office: [198.51.100.0/26]\npolicies:\n  - name: s\n    select: { label: { app: s } }\n    ingress:\n      - from: [office, same-network]\n        ports: [22/tcp]\n");
    assert_eq!(
        doc(&e, "cordon-s")["spec"]["ingress"],
        json!([{"from": [{"ipBlock": {"cidr": "198.51.100.0/26"}}, {"podSelector": {}}], "ports": [{"port": 22, "protocol": "TCP"}]}])
    );
    let c = cilium("version: 1\nsets:\n  office: [198.51.100.0/26]\npolicies:\n  - name: s\n    select: { label: { app: s } }\n    ingress:\n      - from: [office, host]\n");
    assert_eq!(
        doc(&c, "cordon-s")["spec"]["ingress"],
        json!([{"fromCIDRSet": [{"cidr": "198.51.100.0/26"}]}, {"fromEntities": ["host"]}])
    );
}

#[test]
fn output_is_sorted_and_stable() {
    let text = "version: 1\npolicies:\n  - name: zeta\n    select: { label: { app: z } }\n  - name: alpha\n    select: { label: { app: a } }\n";
    let a = k8s(text);
    let names: Vec<&str> = a.documents.iter().map(|d| d.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(
        cordon_export::output::yaml(&a.documents),
        cordon_export::output::yaml(&k8s(text).documents)
    );
}

#[test]
fn what_was_dropped_is_also_an_annotation_for_json_output() {
    let e = k8s("version: 1\npolicies:\n  - name: web\n    select: { image: \"nginx:*\" }\n    egress:\n      - to: [host]\n");
    let d = doc(&e, "cordon-web.by-label");
    let note = d["metadata"]["annotations"]["cordon/not-exported"]
        .as_str()
        .unwrap();
    assert!(
        note.contains("`select: {image: \"nginx:*\"}`") && note.contains("`host`"),
        "{note}"
    );
    assert_eq!(
        doc(&e, "cordon-default")["metadata"].get("annotations"),
        None
    );
}

#[test]
fn object_names_are_valid_and_clashes_are_warned() {
    let e = k8s(
        "version: 1\npolicies:\n  - name: a_b\n  - name: a-b\n  - name: web-\n  - name: web_x\n",
    );
    let valid = |n: &str| {
        n.len() <= 253
            && n.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    };
    for d in &e.documents {
        assert!(valid(&d.name), "{} is not a DNS subdomain", d.name);
    }
    assert!(e
        .documents
        .iter()
        .any(|d| d.name == "cordon-web-x.by-label"));
    let w = warnings(&e);
    assert!(w.iter().any(|w| w.starts_with("p.yaml:4:11: warning: policy `a-b` and policy `a_b` both become objects named `cordon-a-b`")), "{w:?}");
}

/// A rule with `match: server-name` is exported by its names, with a
/// located warning that the server name is not checked there.
#[test]
fn server_name_rules_are_exported_with_a_warning() {
    for flavor in [Flavor::Kubernetes, Flavor::Cilium] {
        let (_, w) = default_egress(
            flavor,
            "    - to: [api.example.com]\n      ports: [443/tcp]\n      match: server-name\n",
        );
        assert!(
            w.iter().any(
                |m| m.starts_with("p.yaml:10:7: warning: `match: server-name` is not exported")
            ),
            "{w:#?}"
        );
    }
}
