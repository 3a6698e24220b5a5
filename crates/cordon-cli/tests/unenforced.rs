//! Network modes cordon cannot enforce are shown as unenforced, in the lab.
//!
//! Under one restrictive policy (`locked`: no egress at all), containers on
//! the host's network, on a macvlan network, and inside the network
//! namespace of a container of another policy still reach the lab's
//! internet and LAN while the daemon runs: that is the attack, and it
//! succeeds, because cordon judges a container at its own port on a Docker
//! bridge and these have none. What this test holds cordon to is saying
//! so: `cordon status` (text and JSON), `cordon metrics` and `cordon audit`
//! list each of them as unenforced with the reason, name the policy that
//! governs the `container:X` one and warn that it is not its own. The
//! positive control: a bridge container of the same policy is cut off and
//! shown as enforced.
//!
//! Needs root, nft and Docker; without them it prints one `skipped:` line
//! (and fails under CI=true).

use std::process::Command;

use cordon_lab::{lab_or_skip, sh, within, ContainerOpts, Netns, TestContainer, Uplink};
use serde_json::Value;

const CORDON: &str = env!("CARGO_BIN_EXE_cordon");

const POLICY: &str = "\
version: 1
policies:
  - name: locked
    select: { label: { tier: locked } }
    egress: []
  - name: inet
    select: { label: { tier: inet } }
    egress:
      - to: [internet]
";

/// A Docker network removed on drop.
struct DockerNetwork(String);

impl Drop for DockerNetwork {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", &self.0])
            .output();
    }
}

/// True when this kernel can make a macvlan link on `parent`.
fn macvlan_supported(parent: &str) -> bool {
    let probe = format!("clmv{}", std::process::id() % 100_000);
    let ok = Command::new("ip")
        .args([
            "link", "add", "link", parent, "name", &probe, "type", "macvlan",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        let _ = Command::new("ip").args(["link", "del", &probe]).output();
    }
    ok
}

fn entry<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing from the status: {status}"))
}

#[test]
fn host_macvlan_and_shared_namespaces_are_shown_unenforced() {
    let lab = lab_or_skip!(CORDON);
    let (inet, lan) = lab.internet_and_lan("", 173);
    let policy = lab.file("policy.yaml", POLICY);

    // A LAN host on the far side of a macvlan parent: the macvlan
    // container reaches it without crossing any Docker bridge.
    let mvns = Netns::new("mvlan");
    let up = Uplink::to_host(&mvns, "10.174.0.1/24", "10.174.0.2/24");
    let _mv_server = cordon_lab::TcpServer::banner(&mvns, 80, "hello-mv");
    let macvlan = macvlan_supported(up.host_if());
    let mvnet = macvlan.then(|| {
        let name = format!("cl-mv-{}", lab.tag());
        let parent = format!("parent={}", up.host_if());
        sh(
            "docker",
            &[
                "network",
                "create",
                "-d",
                "macvlan",
                "--subnet",
                "10.174.0.0/24",
                "--ip-range",
                "10.174.0.128/25",
                "--gateway",
                "10.174.0.1",
                "-o",
                &parent,
                &name,
            ],
        );
        DockerNetwork(name)
    });
    if !macvlan {
        eprintln!("note: this kernel has no macvlan; the macvlan part is not run");
    }

    let web = lab.run(cordon_lab::Run::named("web").label("tier", "locked"));
    let x = lab.run(cordon_lab::Run::named("x").label("tier", "inet"));
    let side = lab.run(
        cordon_lab::Run::named("side")
            .on(&format!("container:{}", x.id))
            .label("tier", "locked"),
    );
    let hostnet = lab.run(
        cordon_lab::Run::named("hostnet")
            .on("host")
            .label("tier", "locked"),
    );
    let mv = mvnet.as_ref().map(|n| {
        TestContainer::run(
            ContainerOpts::new("mv")
                .network_name(&n.0)
                .label("tier", "locked"),
        )
    });

    // Positive controls: without cordon every target answers.
    assert!(
        lab.reaches(&web, &inet.ip4, 80, "hello-inet"),
        "control: web reaches the internet"
    );
    assert!(
        lab.reaches(&side, &inet.ip4, 80, "hello-inet"),
        "control: side"
    );
    assert!(
        lab.reaches(&hostnet, &lan.ip4, 80, "hello-lan"),
        "control: hostnet"
    );
    if let Some(mv) = &mv {
        assert!(mv.reaches("10.174.0.2", 80, "hello-mv"), "control: mv");
    }

    let _daemon = lab.start_daemon(&["-c", &policy]);
    // Enforced: the bridge container of policy locked is cut off.
    assert!(
        within(10.0, || !lab.reaches(&web, &inet.ip4, 80, "hello-inet")).is_some(),
        "locked cuts web off"
    );
    assert!(!lab.reaches(&web, &lan.ip4, 80, "hello-lan"));
    assert!(
        lab.reaches(&x, &inet.ip4, 80, "hello-inet"),
        "x's policy allows the internet"
    );
    // The attacks: the same policy, and these still get out.
    assert!(
        lab.reaches(&side, &inet.ip4, 80, "hello-inet"),
        "side lives in x's namespace: x's policy governs it"
    );
    assert!(
        lab.reaches(&hostnet, &lan.ip4, 80, "hello-lan"),
        "hostnet's traffic is the host's"
    );
    assert!(lab.reaches(&hostnet, &inet.ip4, 80, "hello-inet"));
    if let Some(mv) = &mv {
        assert!(
            mv.reaches("10.174.0.2", 80, "hello-mv"),
            "mv never crosses a bridge"
        );
    }

    // What cordon says about them: status JSON.
    let out = lab.cordon_ok(&["status", "-o", "json"]);
    let status: Value = serde_json::from_str(&out).expect("status JSON");
    let w = entry(&status, &web.name);
    assert_eq!(w["enforcement"]["state"], "enforced", "{w}");
    let h = entry(&status, &hostnet.name);
    assert_eq!(h["policy"], "locked");
    assert_eq!(h["enforcement"]["state"], "unenforced", "{h}");
    assert_eq!(h["enforcement"]["reason"]["kind"], "host-network", "{h}");
    let s = entry(&status, &side.name);
    assert_eq!(s["policy"], "locked", "{s}");
    assert_eq!(s["enforcement"]["reason"]["kind"], "shared-netns", "{s}");
    assert_eq!(s["enforcement"]["reason"]["name"], x.name.as_str(), "{s}");
    assert_eq!(s["governed_by"], "inet", "{s}");
    if let Some(mv) = &mv {
        let m = entry(&status, &mv.name);
        assert_eq!(m["enforcement"]["reason"]["kind"], "driver", "{m}");
        assert_eq!(m["enforcement"]["reason"]["driver"], "macvlan", "{m}");
    }

    // Status text: the NOT ENFORCED section, with the warning.
    let text = lab.cordon_ok(&["status"]);
    let section = text
        .split("NOT ENFORCED")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or_else(|| panic!("no NOT ENFORCED section:\n{text}"));
    let line = |name: &str| {
        section
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not listed as unenforced:\n{text}"))
            .to_string()
    };
    assert!(line(&hostnet.name).contains("host's network"), "{text}");
    let side_line = line(&side.name);
    assert!(
        side_line.contains(&format!(
            "shares the network namespace of container {}",
            x.name
        )) && side_line.contains("(policy inet)")
            && side_line.contains("WARNING: its own policy locked is not applied"),
        "{side_line}"
    );
    if let Some(mv) = &mv {
        assert!(line(&mv.name).contains("driver macvlan"), "{text}");
    }
    assert!(
        !section
            .lines()
            .any(|l| l.starts_with(&format!("{} ", web.name))),
        "web is enforced:\n{text}"
    );

    // Metrics.
    let metrics = lab.cordon_ok(&["metrics"]);
    let gauge = |name: &str, reason: &str, v: u8| {
        format!("cordon_container_enforced{{container=\"{name}\",policy=\"locked\",reason=\"{reason}\"}} {v}")
    };
    for want in [
        gauge(&web.name, "", 1),
        gauge(&hostnet.name, "host-network", 0),
        gauge(&side.name, "container-netns", 0),
    ] {
        assert!(metrics.contains(&want), "{want} missing:\n{metrics}");
    }
    if let Some(mv) = &mv {
        let want = gauge(&mv.name, "driver-macvlan", 0);
        assert!(metrics.contains(&want), "{want} missing:\n{metrics}");
    }

    // Audit: CORDON-2.
    let mut names = vec![
        web.name.clone(),
        hostnet.name.clone(),
        side.name.clone(),
        x.name.clone(),
    ];
    names.extend(mv.as_ref().map(|m| m.name.clone()));
    let out = lab
        .command(&[
            "audit",
            "-c",
            &policy,
            "-o",
            "json",
            "--fail-on",
            "none",
            "--container",
        ])
        .args(&names)
        .output()
        .expect("run cordon audit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("audit JSON");
    let finding = |name: &str| {
        report["results"]
            .as_array()
            .expect("results")
            .iter()
            .find(|r| r["id"] == "CORDON-2" && r["object"]["name"] == name)
            .unwrap_or_else(|| panic!("no CORDON-2 result for {name}"))
            .clone()
    };
    assert_eq!(finding(&web.name)["status"], "pass");
    assert_eq!(finding(&x.name)["status"], "pass");
    let h = finding(&hostnet.name);
    assert_eq!(h["status"], "fail", "{h}");
    assert!(
        h["evidence"].as_str().unwrap().contains("host's network"),
        "{h}"
    );
    let s = finding(&side.name);
    assert_eq!(s["status"], "fail", "{s}");
    assert!(
        s["evidence"]
            .as_str()
            .unwrap()
            .contains("WARNING: its own policy locked differs"),
        "{s}"
    );
    if let Some(mv) = &mv {
        let m = finding(&mv.name);
        assert_eq!(m["status"], "fail", "{m}");
        assert!(
            m["evidence"].as_str().unwrap().contains("driver macvlan"),
            "{m}"
        );
    }
    drop(mv);
    drop(mvnet);
}
