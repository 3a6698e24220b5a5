//! Lab hosts: network namespaces joined to the host by a routed veth pair.

use std::process::{Command, Stdio};

use crate::{sh, wait_listening, Lab};

/// A lab host in its own network namespace.
#[derive(Debug, Clone)]
pub struct Ns {
    /// The namespace's name.
    pub name: String,
    /// Its IPv4 address.
    pub ip4: String,
    /// Its IPv6 address, if it has one.
    pub ip6: Option<String>,
    /// The host's address on the link to it.
    pub host_ip4: String,
}

impl Lab {
    /// A namespace `short` (≤ 6 characters) joined to the host by a veth:
    /// the host side gets `host_ip4`/24 (and `host_ip6`/64), the namespace
    /// `ns_ip4` (and `ns_ip6`) with its default route via the host, so
    /// containers routed by the host reach it.
    pub fn netns(&self, short: &str, host_ip4: &str, ns_ip4: &str, v6: Option<(&str, &str)>) -> Ns {
        assert!(short.len() <= 6, "namespace short name too long: {short}");
        let name = format!("cl-{short}-{}", self.tag());
        let host_if = format!("cl{short}{}", self.tag());
        let host_if = &host_if[..host_if.len().min(15)];
        let ns_if = "eth0";
        sh("ip", &["netns", "add", &name]);
        self.owned.borrow_mut().netns.push(name.clone());
        sh(
            "ip",
            &[
                "link", "add", host_if, "type", "veth", "peer", "name", "cltmp", "netns", &name,
            ],
        );
        self.owned
            .borrow_mut()
            .host_ifaces
            .push(host_if.to_string());
        let ns = |args: &[&str]| {
            let mut full = vec!["netns", "exec", &name];
            full.extend_from_slice(args);
            sh("ip", &full)
        };
        ns(&["ip", "link", "set", "cltmp", "name", ns_if]);
        ns(&["ip", "link", "set", "lo", "up"]);
        ns(&["ip", "addr", "add", &format!("{ns_ip4}/24"), "dev", ns_if]);
        ns(&["ip", "link", "set", ns_if, "up"]);
        ns(&["ip", "route", "add", "default", "via", host_ip4]);
        sh(
            "ip",
            &["addr", "add", &format!("{host_ip4}/24"), "dev", host_if],
        );
        sh("ip", &["link", "set", host_if, "up"]);
        if let Some((h6, n6)) = v6 {
            ns(&[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{n6}/64"),
                "dev",
                ns_if,
                "nodad",
            ]);
            ns(&["ip", "-6", "route", "add", "default", "via", h6]);
            sh(
                "ip",
                &[
                    "-6",
                    "addr",
                    "add",
                    &format!("{h6}/64"),
                    "dev",
                    host_if,
                    "nodad",
                ],
            );
        }
        Ns {
            name,
            ip4: ns_ip4.to_string(),
            ip6: v6.map(|(_, n)| n.to_string()),
            host_ip4: host_ip4.to_string(),
        }
    }

    /// A TCP server in `ns` on `port` (IPv4 and IPv6) answering each
    /// connection with `banner`.
    pub fn serve(&self, ns: &Ns, port: u16, banner: &str) {
        self.spawn(Command::new("ip").args([
            "netns",
            "exec",
            &ns.name,
            "socat",
            &format!("TCP6-LISTEN:{port},fork,reuseaddr"),
            &format!("SYSTEM:echo {banner}"),
        ]));
        wait_listening(Some(&ns.name), port);
    }

    /// A DNS server (dnsmasq) in `ns` answering `name` with `addr` and
    /// nothing else (no upstream, no host files).
    pub fn dns_server(&self, ns: &Ns, name: &str, addr: &str) {
        self.spawn(Command::new("ip").args([
            "netns",
            "exec",
            &ns.name,
            "dnsmasq",
            "--no-daemon",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--pid-file=",
            "--user=root",
            &format!("--listen-address={}", ns.ip4),
            &format!("--address=/{name}/{addr}"),
        ]));
        std::thread::sleep(std::time::Duration::from_millis(300));
    }

    /// True when a TCP connection from `ns` to `ip`:`port` returns `banner`.
    pub fn ns_reaches(&self, ns: &Ns, ip: &str, port: u16, banner: &str) -> bool {
        let target = if ip.contains(':') {
            format!("TCP6:[{ip}]:{port},connect-timeout=2")
        } else {
            format!("TCP4:{ip}:{port},connect-timeout=2")
        };
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.name, "socat", "-T", "3", "-", &target])
            .stdin(Stdio::null())
            .output()
            .expect("socat");
        let ok = String::from_utf8_lossy(&out.stdout).contains(banner);
        if !ok && std::env::var_os("CORDON_LAB_DEBUG").is_some() {
            eprintln!(
                "lab: {} -> {ip}:{port}: {}",
                ns.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        ok
    }

    /// Turns on IPv6 forwarding on the host; the old value comes back when
    /// the lab drops.
    pub fn ipv6_forwarding(&self) {
        let path = "/proc/sys/net/ipv6/conf/all/forwarding";
        let old = std::fs::read_to_string(path).expect("read IPv6 forwarding");
        self.owned.borrow_mut().v6_forwarding.get_or_insert(old);
        std::fs::write(path, "1").expect("enable IPv6 forwarding");
    }
}
