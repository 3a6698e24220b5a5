//! The plugin's decision, from dockerd's request to allow or deny, without
//! Docker: each refusal, each allowance, API-version prefixes, and
//! requests the plugin cannot read.

use base64::Engine as _;
use cordon_authz::decide::{is_open, unenforceable_caps};
use cordon_authz::{action, decide, needs, Action, Decision, Known, PluginRequest};
use cordon_inventory::{Container, Network};
use cordon_policy::PolicyFile;
use serde_json::json;

const POLICY: &str = "\
version: 1
default:
  egress:
    - to: [any]
policies:
  - name: roomy
    select: { label: { tier: roomy } }
    egress:
      - to: [any]
  - name: locked
    select: { label: { tier: locked } }
    egress:
      - to: [internet]
        ports: [443/tcp]
  - name: web
    select: { name: \"web*\" }
    egress: []
  - name: watcher
    select: { label: { tier: watcher } }
    mode: audit
    egress: []
";

fn policy() -> PolicyFile {
    cordon_policy::parse("p.yaml", POLICY).expect("the test policy parses")
}

fn known() -> Known {
    let mut k = Known::default();
    for (name, driver) in [
        ("bridge", "bridge"),
        ("app", "bridge"),
        ("host", "host"),
        ("none", "null"),
        ("lan", "macvlan"),
        ("l2", "ipvlan"),
        ("swarm", "overlay"),
    ] {
        k.networks.insert(
            name.into(),
            Network {
                id: format!("{name}-id"),
                name: name.into(),
                driver: driver.into(),
                ..Network::default()
            },
        );
    }
    let ctr = |name: &str, labels: &[(&str, &str)], mode: &str| Container {
        id: format!("{name}-id"),
        name: name.into(),
        image: "alpine".into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        network_mode: mode.into(),
        ..Container::default()
    };
    k.containers
        .insert("box".into(), ctr("box", &[("tier", "locked")], "app"));
    k.containers.insert("free".into(), ctr("free", &[], "app"));
    k.containers
        .insert("hosty".into(), ctr("hosty", &[("tier", "locked")], "host"));
    k
}

fn req(method: &str, uri: &str, body: Option<&[u8]>) -> PluginRequest {
    PluginRequest {
        method: method.into(),
        uri: uri.into(),
        body: body.map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
        ..PluginRequest::default()
    }
}

/// The decision for a request as dockerd would send it.
fn judge(method: &str, uri: &str, body: Option<serde_json::Value>) -> Decision {
    let text = body.map(|b| b.to_string());
    judge_raw(method, uri, text.as_deref().map(str::as_bytes))
}

fn judge_raw(method: &str, uri: &str, body: Option<&[u8]>) -> Decision {
    match action(&req(method, uri, body)) {
        Ok(a) => decide(&a, &policy(), &known()),
        Err(e) => Decision::Deny(e.0),
    }
}

fn create(labels: serde_json::Value, host: serde_json::Value) -> serde_json::Value {
    json!({"Image": "alpine", "Labels": labels, "HostConfig": host})
}

fn locked() -> serde_json::Value {
    json!({"tier": "locked"})
}

#[track_caller]
fn denied(d: &Decision, want: &str) {
    match d {
        Decision::Deny(m) => assert!(m.contains(want), "{m:?} lacks {want:?}"),
        Decision::Allow => panic!("allowed; expected a refusal with {want:?}"),
    }
}

#[track_caller]
fn allowed(d: &Decision) {
    assert_eq!(d, &Decision::Allow);
}

#[test]
fn host_network_is_refused_under_a_restrictive_policy_only() {
    let host = json!({"NetworkMode": "host"});
    for uri in [
        "/containers/create",
        "/v1.41/containers/create",
        "/v1.47/containers/create?name=x",
        "/containers/create/",
        "/v1.41/containers%2Fcreate",
    ] {
        let d = judge("POST", uri, Some(create(locked(), host.clone())));
        denied(&d, "would get policy locked");
        denied(&d, "--network host");
    }
    // The default policy of this file allows everything: nothing to enforce.
    allowed(&judge(
        "POST",
        "/v1.41/containers/create?name=free1",
        Some(create(json!({}), host.clone())),
    ));
    // mode: audit restricts nothing either.
    allowed(&judge(
        "POST",
        "/containers/create?name=w1",
        Some(create(json!({"tier": "watcher"}), host.clone())),
    ));
    // Selected by name through the query.
    denied(
        &judge(
            "POST",
            "/v1.41/containers/create?name=web1",
            Some(create(json!({}), host.clone())),
        ),
        "container web1 would get policy web",
    );
    // Without a name, Docker picks one the plugin cannot see; a
    // restrictive policy selecting by name could then apply.
    let d = judge(
        "POST",
        "/containers/create",
        Some(create(json!({}), host.clone())),
    );
    denied(&d, "would get policy web (it selects by name");
    // Not when an open label policy earlier in the file wins whatever
    // the name; but a later one does not.
    allowed(&judge(
        "POST",
        "/containers/create",
        Some(create(json!({"tier": "roomy"}), host.clone())),
    ));
    denied(
        &judge(
            "POST",
            "/containers/create",
            Some(create(json!({"tier": "watcher"}), host.clone())),
        ),
        "would get policy web",
    );
    allowed(&judge(
        "POST",
        "/containers/create?name=other",
        Some(create(json!({}), host.clone())),
    ));
    // An unknown cordon.policy label gets nothing at all: restrictive.
    denied(
        &judge(
            "POST",
            "/containers/create",
            Some(create(json!({"cordon.policy": "nope"}), host)),
        ),
        "unknown policy nope",
    );
}

#[test]
fn keys_are_read_as_dockerd_reads_them() {
    // Go's JSON decoder ignores case, and the last duplicate wins.
    let body = json!({"Image": "alpine", "Labels": {"tier": "locked"}, "hostconfig": {"networkmode": "host"}});
    denied(
        &judge("POST", "/containers/create", Some(body)),
        "--network host",
    );
    let dup = br#"{"Image":"alpine","Labels":{"tier":"locked"},"HostConfig":{"NetworkMode":"bridge","NETWORKMODE":"host"}}"#;
    denied(
        &judge_raw("POST", "/containers/create", Some(dup)),
        "--network host",
    );
}

#[test]
fn non_bridge_drivers_are_refused() {
    for (net, driver) in [("lan", "macvlan"), ("l2", "ipvlan"), ("swarm", "overlay")] {
        denied(
            &judge(
                "POST",
                "/containers/create",
                Some(create(locked(), json!({"NetworkMode": net}))),
            ),
            &format!("its driver is {driver}"),
        );
        // Attached through NetworkingConfig rather than the mode.
        let body = json!({"Image": "alpine", "Labels": locked(), "HostConfig": {"NetworkMode": "app"},
            "NetworkingConfig": {"EndpointsConfig": {"app": {}, net: {}}}});
        denied(
            &judge("POST", "/containers/create", Some(body)),
            &format!("on network {net}"),
        );
    }
    // The host network named through the endpoints.
    let body = json!({"Image": "alpine", "Labels": locked(),
        "NetworkingConfig": {"EndpointsConfig": {"host": {}}}});
    denied(
        &judge("POST", "/containers/create", Some(body)),
        "host's network",
    );
    // A network Docker does not know.
    denied(
        &judge(
            "POST",
            "/containers/create",
            Some(create(locked(), json!({"NetworkMode": "ghost"}))),
        ),
        "Docker does not know it",
    );
}

#[test]
fn bridge_none_and_default_modes_are_allowed() {
    for mode in ["", "default", "bridge", "app", "none"] {
        allowed(&judge(
            "POST",
            "/v1.41/containers/create",
            Some(create(locked(), json!({"NetworkMode": mode}))),
        ));
    }
    let body = json!({"Image": "alpine", "Labels": locked(),
        "NetworkingConfig": {"EndpointsConfig": {"app": {}}}});
    allowed(&judge("POST", "/containers/create", Some(body)));
    allowed(&judge(
        "POST",
        "/containers/create",
        Some(json!({"Image": "alpine", "Labels": locked()})),
    ));
}

#[test]
fn shared_namespaces_must_share_the_policy() {
    let mode = |x: &str| create(locked(), json!({"NetworkMode": format!("container:{x}")}));
    allowed(&judge("POST", "/containers/create", Some(mode("box"))));
    denied(
        &judge("POST", "/containers/create", Some(mode("free"))),
        "where policy default governs",
    );
    denied(
        &judge("POST", "/containers/create", Some(mode("ghost"))),
        "not known to Docker",
    );
    denied(
        &judge("POST", "/containers/create", Some(mode("hosty"))),
        "itself uses network mode host",
    );
    // An open policy may join anyone.
    allowed(&judge(
        "POST",
        "/containers/create?name=free2",
        Some(create(json!({}), json!({"NetworkMode": "container:box"}))),
    ));
}

#[test]
fn capabilities_that_leave_the_namespace_are_refused() {
    let caps = |c: serde_json::Value, pid: &str| {
        create(
            locked(),
            json!({"NetworkMode": "app", "CapAdd": c, "PidMode": pid}),
        )
    };
    for c in [
        json!(["SYS_ADMIN"]),
        json!(["cap_sys_admin"]),
        json!(["ALL"]),
        json!(["SYS_MODULE"]),
    ] {
        denied(
            &judge("POST", "/containers/create", Some(caps(c, ""))),
            "with capabilities",
        );
    }
    denied(
        &judge(
            "POST",
            "/containers/create",
            Some(caps(json!(["SYS_PTRACE"]), "host")),
        ),
        "SYS_PTRACE with --pid host",
    );
    for c in [
        json!(["SYS_PTRACE"]),
        json!(["NET_ADMIN", "NET_RAW"]),
        json!(null),
    ] {
        allowed(&judge("POST", "/containers/create", Some(caps(c, ""))));
    }
    denied(
        &judge(
            "POST",
            "/containers/create",
            Some(create(
                locked(),
                json!({"NetworkMode": "app", "Privileged": true}),
            )),
        ),
        "--privileged",
    );
    allowed(&judge(
        "POST",
        "/containers/create?name=free3",
        Some(create(json!({}), json!({"Privileged": true}))),
    ));
    assert_eq!(
        unenforceable_caps(
            &[
                "CAP_SYS_ADMIN".into(),
                "sys_admin".into(),
                "NET_ADMIN".into()
            ],
            ""
        ),
        vec!["SYS_ADMIN".to_string()]
    );
}

#[test]
fn connecting_to_a_macvlan_network_is_refused() {
    let body = |c: &str| Some(json!({"Container": c, "EndpointConfig": {}}));
    denied(
        &judge("POST", "/v1.41/networks/lan/connect", body("box")),
        "cannot enforce on network lan",
    );
    allowed(&judge("POST", "/v1.41/networks/app/connect", body("box")));
    allowed(&judge("POST", "/networks/lan/connect", body("free")));
    denied(
        &judge("POST", "/networks/lan/connect", body("ghost")),
        "not known to Docker",
    );
    denied(
        &judge("POST", "/networks/ghost/connect", body("box")),
        "not known to Docker",
    );
    // Disconnecting is never a problem.
    allowed(&judge("POST", "/networks/lan/disconnect", body("box")));
}

#[test]
fn privileged_exec_is_refused_in_a_restrictive_container() {
    let exec = |p: bool| Some(json!({"Cmd": ["sh"], "Privileged": p}));
    denied(
        &judge("POST", "/v1.41/containers/box/exec", exec(true)),
        "privileged exec",
    );
    allowed(&judge("POST", "/v1.41/containers/box/exec", exec(false)));
    allowed(&judge("POST", "/containers/free/exec", exec(true)));
}

#[test]
fn unreadable_requests_fail_closed_where_cordon_judges() {
    for uri in [
        "/v1.41/containers/create",
        "/networks/lan/connect",
        "/containers/box/exec",
    ] {
        denied(&judge_raw("POST", uri, None), "no body");
        denied(&judge_raw("POST", uri, Some(b"not json")), "not JSON");
        denied(&judge_raw("POST", uri, Some(b"[1]")), "not a JSON object");
    }
    let mut r = req("POST", "/containers/create", None);
    r.body = Some("!!!".into());
    assert!(action(&r).unwrap_err().0.contains("base64"));
    denied(
        &judge(
            "POST",
            "/containers/create",
            Some(json!({"Image": "a", "HostConfig": {"NetworkMode": 7}})),
        ),
        "NetworkMode is not a string",
    );
    denied(
        &judge(
            "POST",
            "/containers/create",
            Some(json!({"Image": "a", "HostConfig": {"CapAdd": "ALL"}})),
        ),
        "CapAdd is not an array",
    );
    denied(
        &judge(
            "POST",
            "/containers/create",
            Some(json!({"Image": "a", "Labels": {"tier": 1}})),
        ),
        "label tier is not a string",
    );
    // Everything else passes, readable or not.
    allowed(&judge_raw("GET", "/v1.41/containers/json", None));
    allowed(&judge_raw(
        "POST",
        "/v1.41/containers/box/start",
        Some(b"garbage"),
    ));
    allowed(&judge_raw("DELETE", "/containers/box", None));
    allowed(&judge_raw("GET", "/_ping", None));
}

#[test]
fn needs_names_every_reference() {
    let a = action(&req(
        "POST",
        "/containers/create",
        Some(
            json!({"Image": "a", "HostConfig": {"NetworkMode": "container:box"},
            "NetworkingConfig": {"EndpointsConfig": {"lan": {}, "app": {}}}})
            .to_string()
            .as_bytes(),
        ),
    ))
    .unwrap();
    let n = needs(&a);
    assert_eq!(n.networks, vec!["app".to_string(), "lan".to_string()]);
    assert_eq!(n.containers, vec!["box".to_string()]);
    assert_eq!(needs(&Action::Other), Default::default());
}

#[test]
fn only_audit_or_any_everywhere_is_open() {
    let p = policy();
    assert!(is_open(&p.default));
    assert!(!is_open(&p.policy("locked").unwrap().body));
    assert!(is_open(&p.policy("watcher").unwrap().body));
}

#[test]
fn request_bodies_are_standard_padded_base64_only() {
    use base64::engine::general_purpose::STANDARD;
    // Go's encoding/json sends a []byte as standard, padded base64. This
    // body's encoding holds `+` or `/` and ends in padding.
    let body = br#"{"Image": "a?>~", "HostConfig": {"NetworkMode": "none"}}"#;
    let std = STANDARD.encode(body);
    assert!(std.contains(['+', '/']) && std.ends_with('='), "{std}");
    let mut r = req("POST", "/containers/create", None);
    r.body = Some(std.clone());
    assert!(
        matches!(action(&r), Ok(Action::Create(_))),
        "positive control"
    );
    let url_safe = std.replace('+', "-").replace('/', "_");
    let after_padding = format!("{std}e30=");
    for bad in [url_safe, after_padding] {
        r.body = Some(bad.clone());
        let e = action(&r).unwrap_err().0;
        assert!(e.contains("not base64"), "{bad}: {e}");
    }
}

#[test]
fn uris_are_percent_decoded_as_go_does() {
    use cordon_authz::request::split_uri;
    assert_eq!(
        split_uri("/v1.41/containers%2Fcreate?name=a+b"),
        ("/containers/create".to_string(), "name=a+b")
    );
    // Not an escape: left as it is.
    assert_eq!(split_uri("/x%zz%4").0, "/x%zz%4");
    // In a query, `+` is a space and `%2B` a plus.
    let body = json!({"Image": "a"}).to_string();
    let r = req(
        "POST",
        "/containers/create?name=a%2Bb+c",
        Some(body.as_bytes()),
    );
    match action(&r) {
        Ok(Action::Create(c)) => assert_eq!(c.name, "a+b c"),
        other => panic!("{other:?}"),
    }
}
