//! The lab's guard: no lab range may capture the host's own traffic.
//!
//! A lab uplink puts a prefix on a host interface, and with it a host route:
//! while it exists, everything the host sends into that prefix goes to the
//! lab instead. Were that prefix to hold the host's resolver, its gateway,
//! an address of its default-route interface or a package registry, the
//! lab would cut the host off (this happened: with a lab route to the range
//! the registries resolve to, `apt-get` failed with "No route to host").
//!
//! So before the lab assigns or routes any address ([`Uplink`],
//! [`Netns::add_address`], [`TestNetwork`], [`SecondDocker`]), it calls
//! [`ensure_clear`], which refuses, in one line, a range that overlaps a
//! [`HostFact`]:
//!
//! * each `nameserver` of `/etc/resolv.conf`;
//! * the subnets of the host's default-route interfaces (their addresses
//!   included) and the default gateways;
//! * the addresses the hosts of the apt sources (`/etc/apt/sources.list`,
//!   `sources.list.d/*.list` and `*.sources`), of cargo's registries
//!   (crates.io's `index.crates.io` and `static.crates.io`, plus every URL
//!   in cargo's `config.toml` files) and of an HTTP proxy named in the
//!   environment resolve to. A name that does not resolve is skipped.
//!
//! The facts are gathered once per process ([`host_facts`]); [`verdict`]
//! is the pure decision, unit-tested with synthetic facts. Lab ranges are
//! 198.51.100.0/24, 198.18.0.0/15, 2001:db8::/32 and 10.x subnets of their
//! own (never the resolver's); `scripts/lib.sh` holds the same guard for the shell
//! benchmarks (`lab_guard`).
//!
//! [`Uplink`]: crate::Uplink
//! [`Netns::add_address`]: crate::Netns::add_address
//! [`TestNetwork`]: crate::TestNetwork
//! [`SecondDocker`]: crate::SecondDocker

use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ipnet::IpNet;

/// Something of the host's that no lab range may overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFact {
    /// The address (as a host prefix) or the subnet.
    pub net: IpNet,
    /// What it is, for the refusal: `the resolver in /etc/resolv.conf`,
    /// `deb.debian.org (apt source)`, ...
    pub what: String,
}

impl HostFact {
    /// A single address.
    pub fn addr(ip: IpAddr, what: &str) -> HostFact {
        HostFact {
            net: IpNet::from(ip),
            what: what.into(),
        }
    }
}

/// How long resolving the registry names may take in all.
const RESOLVE_BUDGET: Duration = Duration::from_secs(5);

/// The decision: `Ok` when no range overlaps a fact, otherwise one line
/// naming the first range and the fact it overlaps.
pub fn verdict(ranges: &[IpNet], facts: &[HostFact]) -> Result<(), String> {
    for range in ranges {
        let range = range.trunc();
        if let Some(f) = facts
            .iter()
            .find(|f| range.contains(&f.net) || f.net.contains(&range))
        {
            let fact = if f.net.prefix_len() == f.net.max_prefix_len() {
                f.net.addr().to_string()
            } else {
                f.net.to_string()
            };
            return Err(format!(
                "cordon-lab refuses lab range {range}: it overlaps {fact}, {}; \
                 use 198.51.100.0/24, 198.18.0.0/15, 2001:db8::/32 or a 10.x subnet of your own",
                f.what
            ));
        }
    }
    Ok(())
}

/// Parses a lab range: `198.51.100.1/24` (its network), or a bare address
/// (a host prefix).
pub fn parse_range(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("cordon-lab: not an address or prefix: {s:?}"))
}

/// Refuses (panics, in one line) when one of `ranges` (prefixes such as
/// `198.51.100.1/24`, or addresses) overlaps a fact of this host; called by
/// the lab before it assigns or routes them.
///
/// # Panics
/// On an overlap or an unparsable range.
#[track_caller]
pub fn ensure_clear(ranges: &[&str]) {
    let parsed: Vec<IpNet> = ranges
        .iter()
        .map(|r| parse_range(r).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    if let Err(e) = verdict(&parsed, host_facts()) {
        panic!("{e}");
    }
}

/// This host's facts, gathered on first use and kept for the process.
pub fn host_facts() -> &'static [HostFact] {
    static FACTS: OnceLock<Vec<HostFact>> = OnceLock::new();
    FACTS.get_or_init(gather)
}

/// Reads the facts from the host (see the module documentation).
fn gather() -> Vec<HostFact> {
    let mut facts = Vec::new();
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    for ip in resolv_conf(&resolv) {
        facts.push(HostFact::addr(ip, "the resolver in /etc/resolv.conf"));
    }
    for fam in ["-4", "-6"] {
        let routes = ip_json(&[fam, "route", "show", "default"]);
        for (dev, gw) in default_routes(&routes) {
            if let Some(gw) = gw {
                facts.push(HostFact::addr(
                    gw,
                    &format!("the default gateway via {dev}"),
                ));
            }
            for net in iface_subnets(&ip_json(&[fam, "addr", "show", "dev", &dev])) {
                facts.push(HostFact {
                    net,
                    what: format!("the subnet of {dev}, the host's default-route interface"),
                });
            }
        }
    }
    let mut hosts: Vec<(String, String)> = Vec::new();
    for (host, why) in registry_hosts() {
        if !hosts.iter().any(|(h, _)| *h == host) {
            hosts.push((host, why));
        }
    }
    for (host, ip) in resolve_all(&hosts) {
        let why = hosts
            .iter()
            .find(|(h, _)| *h == host)
            .map_or("", |(_, w)| w.as_str());
        facts.push(HostFact::addr(
            ip,
            &format!("what {host} resolves to ({why})"),
        ));
    }
    facts
}

/// `ip -j ARGS` as JSON (null when it fails).
fn ip_json(args: &[&str]) -> serde_json::Value {
    Command::new("ip")
        .arg("-j")
        .args(args)
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice(&o.stdout).ok())
        .unwrap_or_default()
}

/// The `nameserver` addresses of a resolv.conf (a zone index dropped).
pub fn resolv_conf(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            let ip = words.next()?;
            ip.split('%').next()?.parse().ok()
        })
        .collect()
}

/// (device, gateway) of each route in `ip -j route show default`.
pub fn default_routes(json: &serde_json::Value) -> Vec<(String, Option<IpAddr>)> {
    json.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let dev = r["dev"].as_str()?.to_string();
            let gw = r["gateway"].as_str().and_then(|g| g.parse().ok());
            Some((dev, gw))
        })
        .collect()
}

/// The subnets of an interface's global addresses in `ip -j addr show`
/// (link-local and host-scope addresses left out: every veth has them).
pub fn iface_subnets(json: &serde_json::Value) -> Vec<IpNet> {
    json.as_array()
        .into_iter()
        .flatten()
        .flat_map(|link| link["addr_info"].as_array().cloned().unwrap_or_default())
        .filter(|a| !matches!(a["scope"].as_str(), Some("link" | "host")))
        .filter_map(|a| {
            let ip: IpAddr = a["local"].as_str()?.parse().ok()?;
            let len = u8::try_from(a["prefixlen"].as_u64()?).ok()?;
            IpNet::new(ip, len).ok().map(|n| n.trunc())
        })
        .collect()
}

/// The host of a URL (`http://user@host:80/path`, `sparse+https://host/`,
/// `[2001:db8::1]`); `None` without one (`file:///`).
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit('@').next()?;
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        hostport.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The hosts of an apt one-line sources file (`deb [opts] URI suite ...`).
pub fn apt_list_hosts(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter(|l| {
            let first = l.split_whitespace().next();
            matches!(first, Some("deb" | "deb-src"))
        })
        .filter_map(|l| {
            // Options in brackets may hold spaces; the URI is the first
            // word after them with a scheme.
            let after = match l.find('[') {
                Some(open) => l[open..].split_once(']').map_or("", |(_, r)| r),
                None => l,
            };
            after.split_whitespace().find_map(url_host)
        })
        .collect()
}

/// The hosts of an apt deb822 `.sources` file (its `URIs:` fields).
pub fn apt_sources_hosts(text: &str) -> Vec<String> {
    let mut enabled = true;
    let mut hosts = Vec::new();
    let mut stanza = Vec::new();
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if enabled {
                hosts.append(&mut stanza);
            }
            stanza.clear();
            enabled = true;
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            match key.trim().to_ascii_lowercase().as_str() {
                "uris" => stanza.extend(value.split_whitespace().filter_map(url_host)),
                "enabled" => enabled = value.trim() != "no",
                _ => {}
            }
        }
    }
    hosts
}

/// The hosts of every quoted URL in a cargo `config.toml` (`[source.*]`
/// `registry`, `[registries.*]` `index`, `[http]` `proxy`, ...).
pub fn cargo_config_hosts(text: &str) -> Vec<String> {
    let mut hosts = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        for (i, part) in line.split(['"', '\'']).enumerate() {
            if i % 2 == 1 {
                if let Some(h) = url_host(part) {
                    hosts.push(h);
                } else if line.trim_start().starts_with("proxy") && !part.is_empty() {
                    // `proxy = "host:port"` may come without a scheme.
                    if let Some(h) = url_host(&format!("http://{part}")) {
                        hosts.push(h);
                    }
                }
            }
        }
    }
    hosts
}

/// (host, why) of every registry this host's package tools contact.
fn registry_hosts() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut apt = |hosts: Vec<String>| {
        out.extend(hosts.into_iter().map(|h| (h, "apt source".to_string())));
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    apt(apt_list_hosts(&read(Path::new("/etc/apt/sources.list"))));
    let mut files: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for f in files {
        match f.extension().and_then(|e| e.to_str()) {
            Some("list") => apt(apt_list_hosts(&read(&f))),
            Some("sources") => apt(apt_sources_hosts(&read(&f))),
            _ => {}
        }
    }
    for h in ["index.crates.io", "static.crates.io", "crates.io"] {
        out.push((h.into(), "cargo registry".into()));
    }
    for p in cargo_configs() {
        for h in cargo_config_hosts(&read(&p)) {
            out.push((h, format!("cargo, {}", p.display())));
        }
    }
    for var in [
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ] {
        if let Some(h) = std::env::var(var).ok().as_deref().and_then(url_host) {
            out.push((h, format!("proxy in ${var}")));
        }
    }
    out
}

/// Cargo's configuration files: `$CARGO_HOME` (or `~/.cargo`),
/// `/usr/local/cargo`, and `.cargo/` in the working directory and above.
fn cargo_configs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(h) = std::env::var_os("CARGO_HOME") {
        dirs.push(h.into());
    }
    if let Some(h) = std::env::var_os("HOME") {
        dirs.push(Path::new(&h).join(".cargo"));
    }
    dirs.push("/usr/local/cargo".into());
    if let Ok(cwd) = std::env::current_dir() {
        dirs.extend(cwd.ancestors().map(|d| d.join(".cargo")));
    }
    let mut files = Vec::new();
    for d in dirs {
        for name in ["config.toml", "config"] {
            let p = d.join(name);
            if p.is_file() && !files.contains(&p) {
                files.push(p);
            }
        }
    }
    files
}

/// Resolves each name (in parallel, within [`RESOLVE_BUDGET`] in all);
/// names that fail or take too long are left out, with a warning.
fn resolve_all(hosts: &[(String, String)]) -> Vec<(String, IpAddr)> {
    let (tx, rx) = mpsc::channel();
    for (host, _) in hosts {
        let (tx, host) = (tx.clone(), host.clone());
        std::thread::spawn(move || {
            let ips: Vec<IpAddr> = (host.as_str(), 443)
                .to_socket_addrs()
                .map(|a| a.map(|s| s.ip()).collect())
                .unwrap_or_default();
            let _ = tx.send((host, ips));
        });
    }
    drop(tx);
    let deadline = Instant::now() + RESOLVE_BUDGET;
    let mut out = Vec::new();
    let mut answered = 0;
    while answered < hosts.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((host, ips)) => {
                answered += 1;
                for ip in ips {
                    if !out.contains(&(host.clone(), ip)) {
                        out.push((host.clone(), ip));
                    }
                }
            }
            Err(_) => {
                crate::warn(&format!(
                    "guard: {} registry name(s) not resolved within {}s; not checked",
                    hosts.len() - answered,
                    RESOLVE_BUDGET.as_secs()
                ));
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        parse_range(s).unwrap()
    }

    /// A host shaped like this one (synthetic addresses): resolver 10.77.77.53, uplink 172.31.2.2/24
    /// via 172.31.2.1, registries at 100.64.113.80 and 2001:db8:ffff::80.
    fn facts() -> Vec<HostFact> {
        vec![
            HostFact::addr("10.77.77.53".parse().unwrap(), "the resolver"),
            HostFact::addr("172.31.2.1".parse().unwrap(), "the default gateway"),
            HostFact {
                net: net("172.31.2.0/24"),
                what: "the subnet of eth0".into(),
            },
            HostFact::addr("100.64.113.80".parse().unwrap(), "deb.debian.org"),
            HostFact::addr("2001:db8:ffff::80".parse().unwrap(), "index.crates.io"),
        ]
    }

    #[test]
    fn refuses_a_range_holding_a_registry_in_one_line() {
        let e = verdict(&[net("198.51.100.1/24"), net("100.64.113.1/24")], &facts()).unwrap_err();
        assert!(
            e.starts_with(
                "cordon-lab refuses lab range 100.64.113.0/24: it overlaps 100.64.113.80, deb.debian.org;"
            ),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        assert!(verdict(&[net("2001:db8::/32")], &facts())
            .unwrap_err()
            .contains("2001:db8:ffff::80, index.crates.io"));
    }

    #[test]
    fn refuses_the_resolver_gateway_and_uplink_subnet() {
        let e = verdict(&[net("10.77.77.0/24")], &facts()).unwrap_err();
        assert!(e.contains("10.77.77.53, the resolver"), "{e}");
        let e = verdict(&[net("10.0.0.0/8")], &facts()).unwrap_err();
        assert!(e.contains("the resolver"), "{e}");
        let e = verdict(&[net("172.31.2.1")], &facts()).unwrap_err();
        assert!(e.contains("172.31.2.1, the default gateway"), "{e}");
        // Inside the uplink's subnet, even away from its addresses.
        let e = verdict(&[net("172.31.2.200/30")], &facts()).unwrap_err();
        assert!(e.contains("172.31.2.0/24, the subnet of eth0"), "{e}");
        // A wider range holding the whole subnet.
        assert!(verdict(&[net("172.31.0.0/16")], &facts()).is_err());
    }

    #[test]
    fn accepts_clean_lab_ranges() {
        let clean = [
            "198.51.100.1/24",
            "198.51.100.2/24",
            "198.18.0.0/15",
            "10.213.0.0/24",
            "10.77.78.0/24",
            "2001:db8:51::1/64",
            "198.51.100.77",
            // Precise: the registry's neighbours are not refused.
            "100.64.113.128/25",
        ]
        .map(net);
        assert_eq!(verdict(&clean, &facts()), Ok(()));
        assert_eq!(verdict(&clean, &[]), Ok(()));
    }

    #[test]
    fn this_hosts_facts_refuse_themselves_and_leave_the_lab_ranges() {
        let facts = host_facts();
        for f in facts {
            eprintln!("host fact: {} ({})", f.net, f.what);
            assert!(verdict(&[f.net], facts).is_err(), "{f:?}");
        }
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        for ip in resolv_conf(&resolv) {
            assert!(facts.iter().any(|f| f.net.contains(&ip)), "{ip}");
        }
        // Were these refused, no lab could run on this host.
        let lab = ["198.51.100.0/24", "198.18.0.0/15", "2001:db8::/32"].map(net);
        assert_eq!(verdict(&lab, facts), Ok(()));
    }

    #[test]
    fn ranges_parse_to_their_network() {
        assert_eq!(net("198.51.100.1/24").to_string(), "198.51.100.0/24");
        assert_eq!(net("[2001:db8::1]").to_string(), "2001:db8::1/128");
        assert!(parse_range("lab.test").is_err());
    }

    #[test]
    fn resolv_conf_nameservers() {
        let text = "# comment\nsearch lab\nnameserver 10.77.77.53\nnameserver fe80::1%eth0\noptions ndots:1\n";
        assert_eq!(
            resolv_conf(text),
            vec![
                "10.77.77.53".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
    }

    #[test]
    fn default_route_and_interface_from_ip_json() {
        let routes: serde_json::Value = serde_json::from_str(
            r#"[{"dst":"default","gateway":"172.31.2.1","dev":"eth0","flags":[]}]"#,
        )
        .unwrap();
        assert_eq!(
            default_routes(&routes),
            vec![("eth0".to_string(), Some("172.31.2.1".parse().unwrap()))]
        );
        let addrs: serde_json::Value = serde_json::from_str(
            r#"[{"ifname":"eth0","addr_info":[
                {"family":"inet","local":"172.31.2.2","prefixlen":24,"scope":"global"},
                {"family":"inet6","local":"fd00::2","prefixlen":64,"scope":"global"},
                {"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]}]"#,
        )
        .unwrap();
        assert_eq!(
            iface_subnets(&addrs),
            vec![net("172.31.2.0/24"), net("fd00::/64")]
        );
        assert!(default_routes(&serde_json::Value::Null).is_empty());
    }

    #[test]
    fn registry_hosts_from_apt_and_cargo() {
        let list = "# deb http://old.example/debian bookworm main\n\
                    deb [arch=amd64 signed-by=/k.gpg] https://packages.example.com/apt stable main\n\
                    deb-src http://user@src.example:8080/debian bookworm main\n\
                    deb file:///srv/repo ./\n";
        assert_eq!(
            apt_list_hosts(list),
            ["packages.example.com", "src.example"]
        );
        let sources = "Types: deb\n# http://snapshot.example/x\nURIs: http://deb.debian.org/debian http://mirror.example/d\nSuites: bookworm\n\n\
                       Types: deb\nURIs: https://off.example/x\nEnabled: no\n";
        assert_eq!(
            apt_sources_hosts(sources),
            ["deb.debian.org", "mirror.example"]
        );
        let cargo = "[source.crates-io]\nreplace-with = \"mirror\"\n[source.mirror]\nregistry = \"sparse+https://crates.mirror.example/index/\"\n\
                     [registries.own]\nindex = 'https://[2001:db8::9]:8443/git/index'\n[http]\nproxy = \"proxy.example:3128\"\n";
        assert_eq!(
            cargo_config_hosts(cargo),
            ["crates.mirror.example", "2001:db8::9", "proxy.example"]
        );
        assert_eq!(url_host("file:///srv"), None);
    }
}
