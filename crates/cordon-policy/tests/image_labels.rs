//! Labels an image gave a container do not select its policy unless the
//! policy file sets `trust_image_labels: true`.

use std::collections::{BTreeMap, BTreeSet};

use cordon_policy::{parse, to_yaml, Candidate, PolicyFile, Selection};

const POLICY: &str = "\
version: 1
default:
  egress:
    - to: [internet]
policies:
  - name: open
    egress:
      - to: [any]
  - name: web
    select: { label: { app: web } }
    egress:
      - to: [internet]
  - name: shop
    select: { compose: { project: shop } }
    egress:
      - to: [internet]
";

fn file(trust: bool) -> PolicyFile {
    let text = if trust {
        format!("trust_image_labels: true\n{POLICY}")
    } else {
        POLICY.to_string()
    };
    parse("p.yaml", &text).expect("policy parses")
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn keys(ks: &[&str]) -> BTreeSet<String> {
    ks.iter().map(|k| k.to_string()).collect()
}

fn selected(f: &PolicyFile, l: &BTreeMap<String, String>, from_image: &BTreeSet<String>) -> String {
    let c = Candidate {
        name: "c",
        image: "img",
        labels: l,
        image_labels: from_image,
    };
    match f.select(&c) {
        Selection::Policy(p) => p.name.clone(),
        Selection::Default => "default".into(),
        Selection::UnknownLabel(n) => format!("unknown {n}"),
    }
}

#[test]
fn a_run_time_policy_label_selects() {
    let l = labels(&[("cordon.policy", "open")]);
    assert_eq!(selected(&file(false), &l, &keys(&[])), "open");
    assert_eq!(
        file(false).ignored_image_policy(&Candidate {
            name: "c",
            image: "img",
            labels: &l,
            image_labels: &keys(&[]),
        }),
        None
    );
}

#[test]
fn an_image_policy_label_is_ignored_and_reported() {
    let l = labels(&[("cordon.policy", "open")]);
    let from_image = keys(&["cordon.policy"]);
    let f = file(false);
    assert_eq!(selected(&f, &l, &from_image), "default");
    let c = Candidate {
        name: "c",
        image: "img",
        labels: &l,
        image_labels: &from_image,
    };
    assert_eq!(f.ignored_image_policy(&c), Some("open"));
    // An unknown policy named by the image is ignored the same way: the
    // container gets the default, not "nothing at all".
    let typo = labels(&[("cordon.policy", "nope")]);
    assert_eq!(selected(&f, &typo, &from_image), "default");
}

#[test]
fn image_labels_do_not_match_label_or_compose_selectors() {
    let f = file(false);
    let l = labels(&[("app", "web"), ("com.docker.compose.project", "shop")]);
    assert_eq!(selected(&f, &l, &keys(&["app"])), "shop");
    assert_eq!(
        selected(&f, &l, &keys(&["app", "com.docker.compose.project"])),
        "default"
    );
    assert_eq!(selected(&f, &l, &keys(&[])), "web");
}

#[test]
fn trust_image_labels_opts_in() {
    let f = file(true);
    assert!(f.trust_image_labels);
    let l = labels(&[("cordon.policy", "open")]);
    let from_image = keys(&["cordon.policy"]);
    assert_eq!(selected(&f, &l, &from_image), "open");
    let c = Candidate {
        name: "c",
        image: "img",
        labels: &l,
        image_labels: &from_image,
    };
    assert_eq!(f.ignored_image_policy(&c), None);
    let web = labels(&[("app", "web")]);
    assert_eq!(selected(&f, &web, &keys(&["app"])), "web");
}

#[test]
fn trust_image_labels_defaults_to_false_and_round_trips() {
    assert!(!file(false).trust_image_labels);
    let back = parse("back.yaml", &to_yaml(&file(true))).expect("printed policy parses");
    assert!(back.trust_image_labels);
    let back = parse("back.yaml", &to_yaml(&file(false))).expect("printed policy parses");
    assert!(!back.trust_image_labels);
}

#[test]
fn a_bad_trust_image_labels_value_is_located() {
    for (value, want) in [
        (
            "yes",
            "p.yaml:1:21: trust_image_labels must be `true` or `false`, not `yes`",
        ),
        (
            "1",
            "p.yaml:1:21: trust_image_labels must be `true` or `false`, not `1`",
        ),
        (
            "[true]",
            "p.yaml:1:21: trust_image_labels must be `true` or `false`, not `a list`",
        ),
    ] {
        let e = parse("p.yaml", &format!("trust_image_labels: {value}\n{POLICY}")).unwrap_err();
        assert_eq!(e.len(), 1, "{value}: {e:?}");
        assert_eq!(e[0].to_string(), want);
    }
}
