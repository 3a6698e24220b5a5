//! The daemon's side of the DNS proxy (`cordon-dns`): which container a
//! query came from, opening the firewall for an answer's addresses, and
//! the listeners.
//!
//! The proxy listens on the host's port [`DNS_PROXY_PORT`], UDP and TCP,
//! IPv4 and IPv6. Only queries from containers whose policy names DNS names
//! reach it (the ruleset redirects exactly those); a query from any other
//! address is dropped unanswered. The source address is trustworthy: the
//! bridge table binds it to the container's interface.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cordon_compiler::diff::SetChange;
use cordon_compiler::nft::{Element, Family, Value};
use cordon_compiler::{DEFAULT_KEY, DNS_PROXY_PORT, TABLE, UNKNOWN_KEY};
use cordon_dataplane::Nft;
use cordon_dns::allow::{Allowlist, DnsRule};
use cordon_dns::answer::{Learned, Limits};
use cordon_dns::proxy::{self, Config, Context, Proxy};
use cordon_policy::PolicyFile;
use ipnet::IpNet;
use tracing::{info, warn};

use crate::DaemonError;

/// Container address → the compiler's policy key; the engine keeps it
/// current.
pub type Clients = Arc<RwLock<HashMap<IpAddr, String>>>;

/// Counts whole replacements of cordon's tables (which empty the DNS
/// sets); the proxy forgets what it wrote when it changes.
pub type Generation = Arc<std::sync::atomic::AtomicU64>;

/// The compiler's key of a shown policy name.
pub fn key_of(shown: &str) -> String {
    if shown == "default" {
        DEFAULT_KEY.to_string()
    } else if shown.starts_with("unknown policy") {
        UNKNOWN_KEY.to_string()
    } else {
        shown.to_string()
    }
}

/// The context the proxy consults.
pub struct DaemonContext {
    clients: Clients,
    nft: Nft,
    expiry: Expiry,
}

/// (set, address) → when it expires.
type Written = HashMap<(String, IpAddr), std::time::Instant>;

/// When each (set, address) the proxy wrote expires. An address several
/// names share gets the longest lifetime any of them gave it: a later
/// answer with a shorter TTL must not cut short what an earlier one
/// allowed (the kernel would take the shorter timeout on a re-add).
#[derive(Default)]
pub struct Expiry {
    written: std::sync::Mutex<(u64, Written)>,
    generation: Generation,
}

impl Expiry {
    /// Of `addrs` for `set`, those to write with lifetime `ttl` now (their
    /// recorded expiry is earlier than now + ttl), recording the new expiry.
    pub fn to_write(&self, set: &str, addrs: &[IpAddr], ttl: Duration) -> Vec<IpAddr> {
        let now = std::time::Instant::now();
        let until = now + ttl;
        let mut guard = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        let (seen, map) = &mut *guard;
        if *seen != generation {
            // The tables were replaced: the sets are empty again.
            map.clear();
            *seen = generation;
        }
        if map.len() > 65_536 {
            map.retain(|_, t| *t > now);
        }
        addrs
            .iter()
            .filter(|a| {
                let k = (set.to_string(), **a);
                match map.get(&k) {
                    Some(t) if *t >= until => false,
                    _ => {
                        map.insert(k, until);
                        true
                    }
                }
            })
            .copied()
            .collect()
    }
}

impl Context for DaemonContext {
    fn policy_of(&self, src: IpAddr) -> Option<String> {
        self.clients.read().ok()?.get(&src).cloned()
    }

    fn allow(&self, rule: &DnsRule, learned: &[Learned]) -> Result<(), String> {
        let (set4, set6) = rule.sets();
        // One batch per lifetime: every element of a batch gets the same.
        let mut by_ttl: HashMap<Duration, Vec<IpAddr>> = HashMap::new();
        for l in learned {
            by_ttl.entry(l.ttl).or_default().push(l.addr);
        }
        for (ttl, addrs) in by_ttl {
            let changes: Vec<SetChange> = [(true, &set4), (false, &set6)]
                .into_iter()
                .filter_map(|(v4, set)| {
                    let fam: Vec<IpAddr> = addrs
                        .iter()
                        .filter(|a| a.is_ipv4() == v4)
                        .copied()
                        .collect();
                    let add: Vec<Element> = self
                        .expiry
                        .to_write(set, &fam, ttl)
                        .iter()
                        .map(|a| Element {
                            key: vec![Value::Net(IpNet::from(*a))],
                            verdict: None,
                        })
                        .collect();
                    (!add.is_empty()).then(|| SetChange {
                        family: Family::Inet,
                        table: TABLE.into(),
                        set: set.clone(),
                        delete: vec![],
                        add,
                    })
                })
                .collect();
            self.nft
                .add_with_timeout(&changes, ttl)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn refused(&self, src: IpAddr, policy: &str, name: &str) {
        info!(target: "cordon::dns", %src, policy, name, "refused a name the policy does not allow");
    }
}

/// The upstream resolvers: `dns.upstream` of the policy, else the
/// `nameserver` lines of the host's /etc/resolv.conf.
pub fn upstreams(policy: &PolicyFile) -> Vec<SocketAddr> {
    if !policy.dns.upstream.is_empty() {
        return policy
            .dns
            .upstream
            .iter()
            .map(|a| SocketAddr::new(*a, 53))
            .collect();
    }
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .map(|a| SocketAddr::new(a, 53))
        .collect()
}

/// Starts the proxy's UDP and TCP listeners on the runtime.
pub async fn start(
    policy: &PolicyFile,
    clients: Clients,
    generation: Generation,
) -> Result<(), DaemonError> {
    let ups = upstreams(policy);
    if ups.is_empty() {
        warn!("no upstream resolver (dns.upstream is empty and /etc/resolv.conf names none): allowlisted names will get SERVFAIL");
    }
    let proxy = Arc::new(Proxy::new(
        Allowlist::from_policy(policy),
        Config {
            upstreams: ups,
            upstream_timeout: Duration::from_secs(2),
            limits: Limits::default(),
            nxdomain: false,
        },
        Arc::new(DaemonContext {
            clients,
            nft: Nft::host(),
            expiry: Expiry {
                written: Default::default(),
                generation,
            },
        }),
    ));
    let addr = SocketAddr::new("::".parse().expect("constant"), DNS_PROXY_PORT);
    let err = |e: std::io::Error| DaemonError(format!("DNS proxy on port {DNS_PROXY_PORT}: {e}"));
    let udp = tokio::net::UdpSocket::bind(addr).await.map_err(err)?;
    let tcp = tokio::net::TcpListener::bind(addr).await.map_err(err)?;
    let for_udp = proxy.clone();
    tokio::spawn(async move {
        if let Err(e) = proxy::serve_udp(Arc::new(udp), for_udp).await {
            warn!("DNS proxy (UDP) stopped: {e}");
        }
    });
    tokio::spawn(async move {
        if let Err(e) = proxy::serve_tcp(tcp, proxy).await {
            warn!("DNS proxy (TCP) stopped: {e}");
        }
    });
    info!(port = DNS_PROXY_PORT, "DNS proxy listening");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_address_keeps_its_longest_lifetime() {
        let e = Expiry::default();
        let x: IpAddr = "198.51.100.7".parse().unwrap();
        let y: IpAddr = "198.51.100.8".parse().unwrap();
        assert_eq!(e.to_write("s", &[x], Duration::from_secs(300)), vec![x]);
        // Another name gives x a shorter TTL: not written (it would shorten).
        assert!(e.to_write("s", &[x], Duration::from_secs(10)).is_empty());
        // A longer one is.
        assert_eq!(
            e.to_write("s", &[x, y], Duration::from_secs(600)),
            vec![x, y]
        );
        // Sets are separate.
        assert_eq!(e.to_write("t", &[x], Duration::from_secs(10)), vec![x]);
        // After a replacement everything is written again.
        e.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(e.to_write("s", &[x], Duration::from_secs(10)), vec![x]);
        assert_eq!(key_of("default"), DEFAULT_KEY);
        assert_eq!(key_of("unknown policy x"), UNKNOWN_KEY);
        assert_eq!(key_of("web"), "web");
    }
}
