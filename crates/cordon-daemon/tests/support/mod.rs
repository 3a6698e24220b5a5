//! What the engine's netns tests share: the skip check, a network
//! namespace of their own, and a synthetic network of containers.

#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use cordon_inventory::{Container, Endpoint, Inventory, Network};

/// Why the tests cannot run here (root and nft are needed).
pub fn skip_reason() -> Option<String> {
    if !cordon_dataplane::is_root() {
        return Some("needs root".into());
    }
    if Command::new("nft").arg("--version").output().is_err() {
        return Some("needs the nft command (apt-get install nftables)".into());
    }
    None
}

/// One `skipped:` line and a return when the test cannot run here; a
/// failure under CI (CI=true).
macro_rules! need_root_nft {
    () => {
        if let Some(reason) = support::skip_reason() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("cannot run under CI: {reason}");
            }
            // Straight to stderr: the harness would hide eprintln!.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "skipped: {reason}");
            return;
        }
    };
}

/// A network namespace, deleted on drop.
pub struct Ns(pub String);

impl Ns {
    /// A new namespace named `PREFIX-PID-N`.
    pub fn add(prefix: &str) -> Ns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip netns add {name}");
        Ns(name)
    }

    /// `nft ARGS` in the namespace (a foreign process to the engine); its
    /// stdout (a failure panics).
    pub fn nft(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0, "nft"])
            .args(args)
            .output()
            .expect("ip netns exec");
        assert!(
            out.status.success(),
            "nft {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Container `i` on network `lab` (bridge `br-lab`, 10.OCTET.0.0/16): at
/// 10.OCTET.A.B with A = i / 250 and B = i % 250 + 2, its MAC
/// 02:42:0a:OCTET:A:B to match, port `veth` and `i` in hex, named so that
/// names sort as the numbers do; an even `i` is labelled `app: sftp`.
pub fn lab_container(octet: u8, i: usize) -> Container {
    let mut c = Container {
        id: format!("{i:064x}"),
        name: format!("c{i:05}"),
        image: "busybox".into(),
        network_mode: "lab".into(),
        ..Default::default()
    };
    if i.is_multiple_of(2) {
        c.labels.insert("app".into(), "sftp".into());
    }
    c.endpoints.push(Endpoint {
        network: "lab".into(),
        ipv4: Some(
            format!("10.{octet}.{}.{}", i / 250, i % 250 + 2)
                .parse()
                .unwrap(),
        ),
        mac: Some(format!(
            "02:42:0a:{octet:02x}:{:02x}:{:02x}",
            i / 250,
            i % 250 + 2
        )),
        host_iface: Some(format!("veth{i:07x}")),
        bridge: Some("br-lab".into()),
        ..Default::default()
    });
    c
}

/// Containers `0..n` ([`lab_container`]) on their network.
pub fn lab_inventory(octet: u8, n: usize) -> Inventory {
    Inventory {
        version: 1,
        networks: vec![Network {
            id: "n".repeat(64),
            name: "lab".into(),
            driver: "bridge".into(),
            bridge: Some("br-lab".into()),
            subnets: vec![format!("10.{octet}.0.0/16").parse().unwrap()],
            ..Default::default()
        }],
        containers: (0..n).map(|i| lab_container(octet, i)).collect(),
    }
}
