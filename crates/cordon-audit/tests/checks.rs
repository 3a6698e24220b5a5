//! Checks judged from fixture facts, without Docker: the registry's shape,
//! configured-versus-effective disagreements, and the renderings.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{ContainerConfig, ContainerInspectResponse, HostConfig, NetworkInspect};
use cordon_audit::checks::registry;
use cordon_audit::facts::{ContainerFacts, FileFact, ProcFacts};
use cordon_audit::flags::DaemonConfig;
use cordon_audit::model::Kind;
use cordon_audit::{audit, caps, render, Facts, Report, Severity, Status};
use serde_json::Value;

/// A host like this one: seccomp on, namespaces 1..5.
fn host() -> Facts {
    let mut f = Facts::default();
    f.info.security_options = Some(vec!["name=seccomp,profile=builtin".into()]);
    f.host.cap_bnd = caps::all(40);
    f.host.namespaces = ["net", "pid", "ipc", "uts", "user"]
        .iter()
        .zip(1..)
        .map(|(k, i)| (k.to_string(), i))
        .collect();
    f
}

/// A well-behaved running container: default caps, seccomp filter, its
/// own namespaces (except user, like Docker without remapping).
fn container(name: &str, hc: HostConfig) -> ContainerFacts {
    ContainerFacts {
        inspect: ContainerInspectResponse {
            id: Some(format!("{name}-id")),
            name: Some(format!("/{name}")),
            host_config: Some(hc),
            config: Some(ContainerConfig::default()),
            ..Default::default()
        },
        proc: Some(ProcFacts {
            pid: 42,
            seccomp: Some(2),
            no_new_privs: Some(false),
            cap_bnd: Some(caps::mask(&caps::DOCKER_DEFAULT)),
            cap_eff: Some(caps::mask(&caps::DOCKER_DEFAULT)),
            uid: Some(0),
            root_readonly: Some(false),
            namespaces: ["net", "pid", "ipc", "uts", "user"]
                .iter()
                .zip([11, 12, 13, 14, 5])
                .map(|(k, i)| (k.to_string(), i))
                .collect(),
            memory_max: Some("max".into()),
            pids_max: Some("max".into()),
            ..Default::default()
        }),
    }
}

/// The host with one privileged container.
fn privileged_host() -> Facts {
    let mut f = host();
    f.containers.push(container(
        "p",
        HostConfig {
            privileged: Some(true),
            ..Default::default()
        },
    ));
    f
}

fn result<'a>(r: &'a Report, id: &str, object: &str) -> &'a cordon_audit::Finding {
    r.results
        .iter()
        .find(|f| f.id == id && f.object.name == object)
        .unwrap_or_else(|| panic!("no result {id} on {object}"))
}

#[test]
fn the_registry_has_forty_automated_checks_over_five_sections() {
    let reg = registry();
    let automated: Vec<_> = reg
        .iter()
        .filter(|c| c.info.kind == Kind::Automated)
        .collect();
    assert!(automated.len() >= 40, "{} automated", automated.len());
    for section in 1..=5 {
        assert!(
            automated.iter().any(|c| c.info.section == section),
            "no automated check in section {section}"
        );
    }
    let mut ids: Vec<&str> = reg.iter().map(|c| c.info.id).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate check ids");
    let ct = reg.iter().find(|c| c.info.id == "4.5").unwrap();
    assert_eq!(
        ct.info.kind,
        Kind::NotScored,
        "content trust is retired upstream"
    );
}

#[test]
fn manual_and_unscored_checks_never_fail() {
    let r = audit(&host(), Vec::new());
    for f in &r.results {
        let kind = r.checks.iter().find(|c| c.id == f.id).unwrap().kind;
        if kind != Kind::Automated {
            assert_ne!(f.status, Status::Fail, "{} failed", f.id);
        }
    }
    assert_eq!(result(&r, "4.5", "host").status, Status::NotScored);
    assert_eq!(result(&r, "1.2.1", "host").status, Status::Manual);
}

#[test]
fn builtin_seccomp_counts_as_enabled() {
    let mut f = host();
    f.containers.push(ContainerFacts {
        proc: None,
        ..container("c", HostConfig::default())
    });
    let r = audit(&f, Vec::new());
    assert_eq!(result(&r, "2.17", "dockerd").status, Status::Pass);
    assert_eq!(result(&r, "5.22", "c").status, Status::Pass);
    f.info.security_options = Some(vec!["name=apparmor".into()]);
    let r = audit(&f, Vec::new());
    assert_eq!(result(&r, "2.17", "dockerd").status, Status::Fail);
    assert_eq!(result(&r, "5.22", "c").status, Status::Fail);
}

#[test]
fn a_clean_container_agrees_with_its_kernel_view() {
    let mut f = host();
    f.containers.push(container("c", HostConfig::default()));
    let r = audit(&f, Vec::new());
    for id in [
        "5.4", "5.5", "5.10", "5.13", "5.16", "5.22", "5.26", "4.1", "5.11",
    ] {
        assert!(
            !result(&r, id, "c").mismatch,
            "{id}: {:?}",
            result(&r, id, "c")
        );
    }
    assert_eq!(result(&r, "5.4", "c").status, Status::Pass);
    assert_eq!(result(&r, "5.13", "c").status, Status::Fail);
    assert_eq!(r.summary.mismatches, 0);
}

#[test]
fn disagreements_fail_and_show_both_values() {
    let mut f = host();
    let hc = HostConfig {
        security_opt: Some(vec!["no-new-privileges".into()]),
        readonly_rootfs: Some(true),
        memory: Some(64 << 20),
        ..Default::default()
    };
    let mut c = container("c", hc);
    let p = c.proc.as_mut().unwrap();
    p.no_new_privs = Some(false);
    p.root_readonly = Some(false);
    p.seccomp = Some(0);
    p.cap_bnd = Some(p.cap_bnd.unwrap() | caps::bit("SYS_ADMIN").unwrap());
    p.namespaces.insert("net".into(), 1);
    p.memory_max = Some("max".into());
    f.containers.push(c);
    let r = audit(&f, Vec::new());
    for (id, configured, effective) in [
        ("5.26", "no-new-privileges:true", "NoNewPrivs: 0"),
        ("5.13", "ReadonlyRootfs=true", "/ mounted rw"),
        ("5.22", "default profile", "Seccomp: 0"),
        ("5.4", "CHOWN", "SYS_ADMIN"),
        ("5.10", "private", "the host's"),
        ("5.11", "67108864", "limit max"),
    ] {
        let x = result(&r, id, "c");
        assert_eq!(x.status, Status::Fail, "{id}: {x:?}");
        assert!(x.mismatch, "{id}: {x:?}");
        assert!(
            x.configured.as_deref().unwrap().contains(configured),
            "{id}: {x:?}"
        );
        assert!(
            x.effective.as_deref().unwrap().contains(effective),
            "{id}: {x:?}"
        );
    }
    assert_eq!(r.summary.mismatches, 6);
}

#[test]
fn daemon_settings_are_compared_with_what_docker_reports() {
    let mut f = host();
    let args: Vec<String> = ["--icc=false", "-H", "tcp://0.0.0.0:2375"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    f.daemon = Some(DaemonConfig {
        pid: 1,
        flags: DaemonConfig::parse_args(&args),
        config_file: "/etc/docker/daemon.json".into(),
        json: serde_json::from_str(r#"{"live-restore": true}"#).ok(),
        json_error: None,
    });
    f.default_bridge = Some(NetworkInspect {
        options: Some(HashMap::from([(
            "com.docker.network.bridge.enable_icc".to_string(),
            "true".to_string(),
        )])),
        ..Default::default()
    });
    f.info.live_restore_enabled = Some(false);
    let r = audit(&f, Vec::new());
    let icc = result(&r, "2.2", "dockerd");
    assert!(icc.mismatch && icc.status == Status::Fail, "{icc:?}");
    let lr = result(&r, "2.15", "dockerd");
    assert!(lr.mismatch, "{lr:?}");
    assert!(
        lr.configured.as_deref().unwrap().contains("daemon.json"),
        "{lr:?}"
    );
    let tls = result(&r, "2.7", "dockerd");
    assert_eq!(tls.status, Status::Fail);
    assert_eq!(tls.severity, Severity::Critical);
}

#[test]
fn files_absent_do_not_apply_and_sockets_must_be_sockets() {
    let mut f = host();
    f.host.docker_socket = Some("/var/run/docker.sock".into());
    f.host.files.insert(
        "/var/run/docker.sock".into(),
        Some(FileFact {
            kind: "file",
            mode: 0o660,
            uid: 0,
            gid: 999,
            owner: "root".into(),
            group: "docker".into(),
        }),
    );
    let r = audit(&f, Vec::new());
    assert_eq!(
        result(&r, "3.15", "/var/run/docker.sock").status,
        Status::Pass
    );
    let mode = result(&r, "3.16", "/var/run/docker.sock");
    assert_eq!(mode.status, Status::Fail, "{mode:?}");
    assert!(mode.evidence.contains("expected a socket"));
    assert_eq!(
        result(&r, "3.1", "docker.service file").status,
        Status::NotApplicable
    );
}

#[test]
fn fail_on_counts_findings_at_or_above_a_level() {
    let r = audit(&privileged_host(), Vec::new());
    assert!(r
        .failures_at_or_above(Severity::Critical)
        .any(|x| x.id == "5.5"));
    let mut clean = host();
    clean.info.security_options = Some(vec!["name=seccomp,profile=default".into()]);
    let r = audit(&clean, Vec::new());
    assert_eq!(r.failures_at_or_above(Severity::High).count(), 0);
}

#[test]
fn sarif_has_the_required_structure() {
    let r = audit(&privileged_host(), Vec::new());
    let s: Value = serde_json::from_str(&render::sarif::render(&r)).unwrap();
    assert_eq!(s["version"], "2.1.0");
    assert!(s["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &s["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "cordon-audit");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(rules.len() >= 40);
    let rule_ids: Vec<&str> = rules.iter().map(|x| x["id"].as_str().unwrap()).collect();
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for x in results {
        let id = x["ruleId"].as_str().unwrap();
        assert!(rule_ids.contains(&id), "{id} has no rule");
        let i = x["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rule_ids[i], id);
        assert!(["error", "warning", "note", "none"].contains(&x["level"].as_str().unwrap()));
        assert!(!x["message"]["text"].as_str().unwrap().is_empty());
        assert!(!x["locations"].as_array().unwrap().is_empty());
    }
    assert!(results
        .iter()
        .any(|x| x["ruleId"] == "5.5" && x["level"] == "error"));
}

#[test]
fn json_follows_the_documented_schema() {
    let mut f = host();
    f.containers.push(container("c", HostConfig::default()));
    let r = audit(&f, vec!["a warning".into()]);
    let j: Value = serde_json::from_str(&render::json::render(&r)).unwrap();
    assert_eq!(j["schema"], "cordon-audit/1");
    for k in [
        "host",
        "docker_version",
        "summary",
        "checks",
        "results",
        "warnings",
    ] {
        assert!(j.get(k).is_some(), "no {k}");
    }
    let x = j["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "5.13")
        .unwrap();
    for k in [
        "id",
        "title",
        "severity",
        "status",
        "object",
        "evidence",
        "mismatch",
        "remediation",
    ] {
        assert!(x.get(k).is_some(), "no {k} in a result");
    }
    assert_eq!(x["object"]["kind"], "container");
    assert_eq!(x["object"]["id"], "c-id");
    assert_eq!(x["configured"], "ReadonlyRootfs=false");
    let c = &j["checks"][0];
    for k in [
        "id",
        "section",
        "title",
        "severity",
        "kind",
        "source",
        "remediation",
    ] {
        assert!(c.get(k).is_some(), "no {k} in a check");
    }
    let _: BTreeMap<String, Value> = serde_json::from_value(j["summary"].clone()).unwrap();
}

#[test]
fn docs_list_every_check() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/audit.md"))
        .expect("docs/audit.md");
    for c in registry() {
        let row = format!("| {} | {} |", c.info.id, c.info.title.replace('|', "\\|"));
        assert!(
            docs.contains(&row),
            "docs/audit.md does not list {}",
            c.info.id
        );
    }
}

#[test]
fn image_checks_read_config_and_history_and_never_copy_secrets() {
    use bollard::models::{ImageConfig, ImageHistoryResponseItem, ImageInspect};
    use cordon_audit::facts::ImageFacts;
    let line = |s: &str| ImageHistoryResponseItem {
        created_by: s.into(),
        ..Default::default()
    };
    let mut f = host();
    f.images.insert(
        "sha256:1".into(),
        ImageFacts {
            inspect: ImageInspect {
                id: Some("sha256:1".into()),
                repo_tags: Some(vec!["app:1".into()]),
                config: Some(ImageConfig {
                    env: Some(vec!["DB_PASSWORD=hunter2".into(), "PATH=/bin".into()]),
                    ..Default::default()
                }),
                ..Default::default()
            },
            // Newest first, as Docker lists it.
            history: vec![
                line("/bin/sh -c #(nop) ADD https://example.org/x.tgz /x"),
                line("/bin/sh -c apt-get update"),
                line("/bin/sh -c #(nop) ADD file:abc in / "),
            ],
        },
    );
    let r = audit(&f, Vec::new());
    let secrets = result(&r, "4.10", "app:1");
    assert_eq!(secrets.status, Status::Fail);
    assert!(secrets.evidence.contains("DB_PASSWORD"), "{secrets:?}");
    assert!(!secrets.evidence.contains("hunter2"), "{secrets:?}");
    assert_eq!(result(&r, "4.7", "app:1").status, Status::Fail);
    let add = result(&r, "4.9", "app:1");
    assert_eq!(add.status, Status::Fail);
    assert!(add.evidence.starts_with("1 ADD"), "{add:?}");
    assert_eq!(result(&r, "4.6", "app:1").status, Status::Fail);
}

#[test]
fn cordon_coverage_as_configured_and_as_installed() {
    let policy = cordon_policy::parse(
        "p.yaml",
        "version: 1\npolicies:\n  - name: lan\n    select: { name: \"lan*\" }\n    egress:\n      - to: [private]\n",
    )
    .unwrap();
    let mut f = host();
    f.cordon.policy = Some(policy);
    f.containers.push(container("web", HostConfig::default()));
    f.containers.push(container("lan1", HostConfig::default()));
    f.containers.push(container(
        "hostnet",
        HostConfig {
            network_mode: Some("host".into()),
            ..Default::default()
        },
    ));
    f.cordon.table_installed = Some(true);
    let r = audit(&f, Vec::new());
    assert_eq!(result(&r, "CORDON-1", "web").status, Status::Pass);
    let lan = result(&r, "CORDON-1", "lan1");
    assert_eq!(lan.status, Status::Fail);
    assert!(
        lan.evidence.contains("opens private ranges (private)"),
        "{lan:?}"
    );
    assert!(lan.evidence.contains("opens metadata (private)"), "{lan:?}");
    assert_eq!(result(&r, "CORDON-1", "hostnet").status, Status::Fail);
    // The same policy, not installed: configured to block, not in effect.
    f.cordon.table_installed = Some(false);
    let r = audit(&f, Vec::new());
    let web = result(&r, "CORDON-1", "web");
    assert!(web.status == Status::Fail && web.mismatch, "{web:?}");
}

/// A bridge network with a custom bridge name is not covered by cordon's
/// unbound-bridge guard (which matches `br-*` and `docker0`): flagged.
#[test]
fn custom_bridge_names_are_flagged() {
    use bollard::models::Network;
    let net = |name: &str, driver: &str, bridge: Option<&str>| Network {
        name: Some(name.into()),
        driver: Some(driver.into()),
        options: bridge.map(|b| {
            HashMap::from([("com.docker.network.bridge.name".to_string(), b.to_string())])
        }),
        ..Default::default()
    };
    let mut f = host();
    let r = audit(&f, Vec::new());
    assert_eq!(result(&r, "CORDON-3", "host").status, Status::NotApplicable);
    f.networks = vec![
        net("bridge", "bridge", Some("docker0")),
        net("app", "bridge", None),
        net("named", "bridge", Some("br-0a-named")),
        net("custom", "bridge", Some("appbr0")),
        net("lan", "bridge", Some("br-lan")),
        net("host", "host", None),
    ];
    let r = audit(&f, Vec::new());
    for ok in ["bridge", "app", "named"] {
        assert_eq!(result(&r, "CORDON-3", ok).status, Status::Pass, "{ok}");
    }
    assert_eq!(result(&r, "CORDON-3", "lan").status, Status::Fail);
    let custom = result(&r, "CORDON-3", "custom");
    assert_eq!(custom.status, Status::Fail);
    assert!(custom.evidence.contains("appbr0"), "{custom:?}");
    assert!(!r
        .results
        .iter()
        .any(|x| x.id == "CORDON-3" && x.object.name == "host"));
}

#[test]
fn cap_add_all_is_a_capability_finding_not_a_privileged_disagreement() {
    let mut f = host();
    let mut c = container(
        "all",
        HostConfig {
            cap_add: Some(vec!["ALL".into()]),
            ..Default::default()
        },
    );
    c.proc.as_mut().unwrap().cap_bnd = Some(caps::all(40));
    f.containers.push(c);
    let r = audit(&f, Vec::new());
    let p = result(&r, "5.5", "all");
    assert!(p.status == Status::Pass && !p.mismatch, "{p:?}");
    let k = result(&r, "5.4", "all");
    assert!(k.status == Status::Fail && !k.mismatch, "{k:?}");
}

/// A container attached to `networks` (by name), in network mode `mode`.
fn attached(name: &str, mode: &str, networks: &[&str]) -> ContainerFacts {
    let mut c = container(
        name,
        HostConfig {
            network_mode: Some(mode.into()),
            ..Default::default()
        },
    );
    c.inspect.network_settings = Some(bollard::models::NetworkSettings {
        networks: Some(
            networks
                .iter()
                .map(|n| (n.to_string(), bollard::models::EndpointSettings::default()))
                .collect(),
        ),
        ..Default::default()
    });
    c
}

#[test]
fn cordon_2_flags_containers_cordon_cannot_enforce() {
    let policy = cordon_policy::parse(
        "p.yaml",
        "version: 1\npolicies:\n  - name: web\n    select: { name: web }\n    egress: []\n  - name: locked\n    select: { name: \"side*\" }\n    egress: []\n",
    )
    .unwrap();
    let net = |name: &str, driver: &str| cordon_inventory::Network {
        id: format!("{name}-net"),
        name: name.into(),
        driver: driver.into(),
        bridge: (driver == "bridge").then(|| format!("br-{name}")),
        ..Default::default()
    };
    let mut f = host();
    f.cordon.policy = Some(policy);
    f.cordon.networks = Some(vec![
        net("app", "bridge"),
        net("host", "host"),
        net("none", "null"),
        net("lan", "macvlan"),
    ]);
    f.containers.push(attached("web", "app", &["app"]));
    f.containers.push(attached("hostnet", "host", &["host"]));
    f.containers.push(attached("mv", "lan", &["lan"]));
    f.containers.push(attached("iso", "none", &["none"]));
    f.containers.push(attached("side", "container:web-id", &[]));
    let r = audit(&f, Vec::new());
    let web = result(&r, "CORDON-2", "web");
    assert_eq!(web.status, Status::Pass, "{web:?}");
    assert_eq!(result(&r, "CORDON-2", "iso").status, Status::Pass);
    let hostnet = result(&r, "CORDON-2", "hostnet");
    assert_eq!(hostnet.status, Status::Fail);
    assert!(hostnet.evidence.contains("host's network"), "{hostnet:?}");
    let mv = result(&r, "CORDON-2", "mv");
    assert_eq!(mv.status, Status::Fail);
    assert!(mv.evidence.contains("driver macvlan"), "{mv:?}");
    let side = result(&r, "CORDON-2", "side");
    assert_eq!(side.status, Status::Fail);
    assert!(
        side.evidence
            .contains("shares the network namespace of container web"),
        "{side:?}"
    );
    assert!(
        side.evidence
            .contains("(policy web); WARNING: its own policy locked differs"),
        "{side:?}"
    );
    // Sharing the namespace of a container outside the audited set.
    f.containers
        .push(attached("lone", "container:elsewhere", &[]));
    let r = audit(&f, Vec::new());
    let lone = result(&r, "CORDON-2", "lone");
    assert_eq!(lone.status, Status::Fail);
    assert!(
        lone.evidence
            .contains("container elsewhere (not among the audited containers)"),
        "{lone:?}"
    );
    // Without the network list, drivers cannot be judged; modes still are.
    f.cordon.networks = None;
    let r = audit(&f, Vec::new());
    assert_eq!(result(&r, "CORDON-2", "mv").status, Status::NotApplicable);
    assert_eq!(result(&r, "CORDON-2", "hostnet").status, Status::Fail);
}

fn file(kind: &'static str) -> Option<FileFact> {
    Some(FileFact {
        kind,
        mode: 0o755,
        uid: 0,
        gid: 0,
        owner: "root".into(),
        group: "root".into(),
    })
}

#[test]
fn the_daemon_binary_audited_is_the_one_that_runs() {
    // Debian's docker.io: dockerd is /usr/sbin/dockerd, and no
    // /usr/bin/dockerd exists.
    let mut f = host();
    f.host.dockerd_binary = Some("/usr/sbin/dockerd".into());
    f.host
        .files
        .insert("/usr/sbin/dockerd".into(), file("file"));
    f.host.files.insert("/usr/bin/dockerd".into(), None);
    f.host.audit_rules = Some("-w /usr/bin/dockerd -k docker\n".into());
    let r = audit(&f, Vec::new());
    let unwatched = result(&r, "1.1.3", "/usr/sbin/dockerd");
    assert_eq!(unwatched.status, Status::Fail, "{unwatched:?}");
    assert!(unwatched
        .evidence
        .contains("no audit rule watches /usr/sbin/dockerd"));
    f.host.audit_rules = Some("-w /usr/sbin/dockerd -k docker\n".into());
    let r = audit(&f, Vec::new());
    assert_eq!(
        result(&r, "1.1.3", "/usr/sbin/dockerd").status,
        Status::Pass
    );
    // No dockerd found at all: nothing to audit.
    f.host.dockerd_binary = None;
    let r = audit(&f, Vec::new());
    assert_eq!(
        result(&r, "1.1.3", "dockerd's binary").status,
        Status::NotApplicable
    );
}

#[test]
fn the_containerd_socket_audited_is_the_one_docker_uses() {
    // Docker's own managed containerd; no system containerd.
    let sock = "/run/docker/containerd/containerd.sock";
    let mut f = host();
    f.host.containerd_socket = Some(sock.into());
    f.host.files.insert(sock.into(), file("socket"));
    f.host.audit_rules = Some(String::new());
    let r = audit(&f, Vec::new());
    let unwatched = result(&r, "1.1.8", sock);
    assert_eq!(unwatched.status, Status::Fail, "{unwatched:?}");
    f.host.audit_rules = Some(format!("-w {sock} -k docker\n"));
    let r = audit(&f, Vec::new());
    assert_eq!(result(&r, "1.1.8", sock).status, Status::Pass);
    // Section 3 looks at the same socket.
    assert_ne!(result(&r, "3.23", sock).status, Status::NotApplicable);
    // A rule written as dockerd names the socket (/var/run, a symlink to
    // /run) watches it too, as the kernel resolves it.
    f.host.audit_rules = Some("-w /var/run/docker/containerd/containerd.sock -k docker\n".into());
    let r = audit(&f, Vec::new());
    assert_eq!(result(&r, "1.1.8", sock).status, Status::Fail);
    f.host.audit_watched = vec![sock.into()];
    let r = audit(&f, Vec::new());
    assert_eq!(result(&r, "1.1.8", sock).status, Status::Pass);
}

#[test]
fn a_bind_mount_of_the_root_filesystem_is_no_separate_partition() {
    let slash = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n";
    let mut f = host();
    f.info.docker_root_dir = Some("/var/lib/docker".into());
    // This machine: /var/lib/docker bind-mounted from the root filesystem.
    f.host.mounts = cordon_audit::procfs::mounts(&format!(
        "{slash}44 27 254:0 /var/lib/docker /var/lib/docker rw,relatime shared:3 - ext4 /dev/vda rw\n"
    ));
    let r = audit(&f, Vec::new());
    let bind = result(&r, "1.1.1", "/var/lib/docker");
    assert_eq!(bind.status, Status::Fail, "{bind:?}");
    assert!(bind.evidence.contains("bind mount"), "{}", bind.evidence);
    // Positive control: a partition of its own passes.
    f.host.mounts = cordon_audit::procfs::mounts(&format!(
        "{slash}50 27 253:16 / /var/lib/docker rw,relatime - xfs /dev/vdb1 rw\n"
    ));
    let r = audit(&f, Vec::new());
    assert_eq!(result(&r, "1.1.1", "/var/lib/docker").status, Status::Pass);
}

#[test]
fn the_containerd_state_audited_is_that_of_the_containerd_docker_uses() {
    // Docker's own managed containerd: its state lives below dockerd's
    // exec root, not in /run/containerd.
    let mut f = host();
    f.host.containerd_socket = Some("/run/docker/containerd/containerd.sock".into());
    f.host
        .files
        .insert("/run/docker/containerd".into(), file("dir"));
    f.host.audit_rules = Some("-w /run/containerd -k docker\n".into());
    let r = audit(&f, Vec::new());
    let unwatched = result(&r, "1.1.4", "/run/docker/containerd");
    assert_eq!(unwatched.status, Status::Fail, "{unwatched:?}");
    // Positive control: the rule on the right directory passes.
    f.host.audit_rules = Some("-w /run/docker/containerd -k docker\n".into());
    let r = audit(&f, Vec::new());
    assert_eq!(
        result(&r, "1.1.4", "/run/docker/containerd").status,
        Status::Pass
    );
    // The system containerd: /run/containerd, as the benchmark says.
    f.host.containerd_socket = Some("/run/containerd/containerd.sock".into());
    f.host.files.insert("/run/containerd".into(), file("dir"));
    f.host.audit_rules = Some("-w /run/containerd -k docker\n".into());
    let r = audit(&f, Vec::new());
    assert_eq!(result(&r, "1.1.4", "/run/containerd").status, Status::Pass);
}

#[test]
fn runtime_programs_are_audited_where_they_really_are() {
    // Debian: /usr/bin/runc is a symlink to /usr/sbin/runc; a watch on the
    // link does not see runc run, so the real path must be watched.
    let mut f = host();
    f.host
        .binaries
        .insert("runc".into(), "/usr/sbin/runc".into());
    f.host.files.insert("/usr/sbin/runc".into(), file("file"));
    f.host.audit_rules = Some("-w /usr/bin/runc -k docker\n".into());
    let r = audit(&f, Vec::new());
    let link_only = result(&r, "1.1.18", "/usr/sbin/runc");
    assert_eq!(link_only.status, Status::Fail, "{link_only:?}");
    // Positive control.
    f.host.audit_rules = Some("-w /usr/sbin/runc -k docker\n".into());
    let r = audit(&f, Vec::new());
    assert_eq!(result(&r, "1.1.18", "/usr/sbin/runc").status, Status::Pass);
    // Not installed at all: nothing to audit.
    let r = audit(&f, Vec::new());
    assert_eq!(
        result(&r, "1.1.15", "containerd-shim").status,
        Status::NotApplicable
    );
}

#[test]
fn runtime_programs_are_found_with_their_links_resolved() {
    // `sh` is on every machine; wherever it is found, the path is its
    // real one (no symlink left).
    let sh = cordon_audit::gather::find_binary("sh").expect("sh");
    let meta = std::fs::symlink_metadata(&sh).unwrap();
    assert!(!meta.file_type().is_symlink(), "{sh} is a link");
    assert_eq!(
        cordon_audit::gather::find_binary("no-such-program-here"),
        None
    );
}
