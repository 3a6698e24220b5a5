//! What the dataplane's netns tests share: the skip check and a network
//! namespace of their own, and a view of its ruleset free of what may
//! differ between equal rulesets.

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
            .unwrap()
            .success();
        assert!(ok, "ip netns add {name}");
        Ns(name)
    }

    /// Runs `args` in the namespace; its stdout (a failure panics).
    pub fn sh(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `nft list ruleset` in the namespace.
    pub fn ruleset(&self) -> String {
        self.sh(&["nft", "list", "ruleset"])
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// The ruleset of `ns` as a map from each object to what it holds, free of
/// what may differ between equal rulesets: handles, counters (probes count
/// packets), and the order of objects and of set elements (rules stay in
/// their order).
pub fn contents(ns: &Ns) -> std::collections::BTreeMap<String, Vec<String>> {
    let doc: serde_json::Value =
        serde_json::from_str(&ns.sh(&["nft", "-j", "list", "ruleset"])).expect("JSON");
    let mut out = std::collections::BTreeMap::<String, Vec<String>>::new();
    for obj in doc["nftables"].as_array().into_iter().flatten() {
        let Some((kind, body)) = obj.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let mut body = body.clone();
        if let Some(b) = body.as_object_mut() {
            b.remove("handle");
        }
        zero_counters(&mut body);
        let key = match kind.as_str() {
            "rule" => format!("rules of {}/{}", body["family"], body["chain"]),
            _ => format!("{kind} {}/{}", body["family"], body["name"]),
        };
        let entry = out.entry(key).or_default();
        if let Some(elems) = body.as_object_mut().and_then(|b| b.remove("elem")) {
            let mut e: Vec<String> = elems
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| x.to_string())
                .collect();
            e.sort();
            entry.push(format!("elements {e:?}"));
        }
        entry.push(body.to_string());
    }
    out
}

/// Every counter in `v` emptied.
fn zero_counters(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if k == "counter" && x.is_object() {
                    *x = serde_json::Value::Null;
                } else {
                    zero_counters(x);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(zero_counters),
        _ => {}
    }
}

/// Containers `0..n` that `keep` accepts on network `lab` (bridge
/// `br-lab`, 10.OCTET.0.0/16): container `i` at 10.OCTET.A.B with A =
/// i / 250 and B = i % 250 + 2, its MAC 02:42:0a:OCTET:A:B to match, port
/// `veth` and `i` in hex, and every other one (even `i`) labelled `app:
/// sftp`.
pub fn lab_inventory(octet: u8, n: usize, keep: impl Fn(usize) -> bool) -> Inventory {
    let mut inv = Inventory {
        version: 1,
        networks: vec![Network {
            id: "n".repeat(64),
            name: "lab".into(),
            driver: "bridge".into(),
            bridge: Some("br-lab".into()),
            subnets: vec![format!("10.{octet}.0.0/16").parse().unwrap()],
            ..Default::default()
        }],
        containers: vec![],
    };
    for i in (0..n).filter(|i| keep(*i)) {
        let mut c = Container {
            id: format!("{i:064x}"),
            name: format!("c{i}"),
            image: "busybox".into(),
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
        inv.containers.push(c);
    }
    inv
}
