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
use std::sync::Arc;
use std::time::Duration;

use cordon_dataplane::Nft;
use cordon_dns::allow::{Allowlist, DnsRule, Pattern};
use cordon_dns::answer::{Learned, Limits};
use cordon_dns::proxy::{self, Config, Context, Proxy};
use cordon_dns::rebind::{Closed, Local};
use cordon_inventory::Shown;
use cordon_policy::PolicyFile;
use cordon_ruleset::diff::SetChange;
use cordon_ruleset::nft::{Element, Family, Value};
use cordon_ruleset::{DNS_PROXY_PORT, TABLE};
use ipnet::IpNet;
use tracing::{info, warn};

use crate::DaemonError;
use cordon_ruleset::nft::smallvec;

/// Container address → who it is; the engine keeps it current.
pub type Clients = crate::directory::Shared;

/// Counts whole replacements of cordon's tables (which empty the DNS
/// sets); the proxy forgets what it wrote when it changes.
pub type Generation = Arc<std::sync::atomic::AtomicU64>;

/// The context the proxy consults.
pub struct DaemonContext {
    clients: Clients,
    nft: Nft,
    expiry: Expiry,
    max_addresses: usize,
    obs: Arc<crate::observe::Observe>,
    /// What each rule let through, for the L7 proxy.
    learned: Arc<crate::l7::learned::Learned>,
    /// What an answer may not point at ([`Local`]: Docker's subnets and
    /// the host's own addresses), and when the host's were read; kept
    /// between queries while both still hold.
    local: std::sync::Mutex<(Option<std::time::Instant>, Arc<Local>)>,
}

/// How long the host's addresses are reused before they are read again.
const HOST_ADDRS_FOR: Duration = Duration::from_secs(2);

/// The host's own addresses (this network namespace's).
fn host_addresses() -> Vec<IpAddr> {
    let Ok(list) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    list.filter_map(|i| {
        let a = i.address?;
        a.as_sockaddr_in()
            .map(|s| IpAddr::V4(s.ip()))
            .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
    })
    .collect()
}

/// (set, address) → when it expires.
type Written = HashMap<(String, IpAddr), std::time::Instant>;

/// When each (set, address) the proxy wrote expires. An address several
/// names share gets the longest lifetime any of them gave it: a later
/// answer with a shorter TTL must not cut short what an earlier one
/// allowed (the kernel would take the shorter timeout on a re-add).
///
/// It also counts what each allowlisted name holds open, for the per-name
/// cap: an answer may refresh the addresses a name already holds, but adds
/// new ones only while the name holds fewer than the cap. A hostile
/// authoritative server behind an allowlisted name (or a `*.suffix` with
/// endless subdomains) can thus open at most `cap` addresses at a time.
#[derive(Default)]
pub struct Expiry {
    written: std::sync::Mutex<(u64, Written, Held)>,
    generation: Generation,
}

/// (set, pattern) → the addresses it holds and until when.
type Held = HashMap<(String, String), HashMap<IpAddr, std::time::Instant>>;

/// What [`Expiry::admit`] decided for an answer's addresses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Admitted {
    /// To write to the set with the answer's lifetime.
    pub write: Vec<IpAddr>,
    /// Not opened: the name already holds as many addresses as allowed.
    pub over_cap: Vec<IpAddr>,
}

impl Expiry {
    /// Of `addrs` learned for `pattern` with lifetime `ttl`, those within
    /// the name's cap, and of them those to write to `set` now.
    pub fn admit(
        &self,
        set: &str,
        pattern: &str,
        addrs: &[IpAddr],
        ttl: Duration,
        cap: usize,
    ) -> Admitted {
        let now = std::time::Instant::now();
        let within = {
            let mut guard = self.lock_current();
            let held = guard
                .2
                .entry((set.to_string(), pattern.to_string()))
                .or_default();
            held.retain(|_, t| *t > now);
            let mut within = Vec::new();
            let mut over_cap = Vec::new();
            for a in addrs {
                if held.contains_key(a) || held.len() < cap {
                    let t = held.entry(*a).or_insert(now);
                    *t = (*t).max(now + ttl);
                    within.push(*a);
                } else {
                    over_cap.push(*a);
                }
            }
            (within, over_cap)
        };
        Admitted {
            write: self.to_write(set, &within.0, ttl),
            over_cap: within.1,
        }
    }

    /// The state, emptied first when the tables were replaced since (the
    /// sets are empty again then).
    fn lock_current(&self) -> std::sync::MutexGuard<'_, (u64, Written, Held)> {
        let mut guard = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        if guard.0 != generation {
            guard.1.clear();
            guard.2.clear();
            guard.0 = generation;
        }
        guard
    }

    /// Of `addrs` for `set`, those to write with lifetime `ttl` now (their
    /// recorded expiry is earlier than now + ttl), recording the new expiry.
    pub fn to_write(&self, set: &str, addrs: &[IpAddr], ttl: Duration) -> Vec<IpAddr> {
        let now = std::time::Instant::now();
        let until = now + ttl;
        let mut guard = self.lock_current();
        let (_, map, held) = &mut *guard;
        if map.len() > 65_536 {
            map.retain(|_, t| *t > now);
            held.retain(|_, h| h.values().any(|t| *t > now));
        }
        // An answer that would extend a lifetime by less than this is not
        // written: repeated answers with the same TTL would otherwise
        // rewrite the element on every lookup. The element then expires at
        // most this much before the latest answer's TTL says (never later).
        let slack = (ttl / 10).min(Duration::from_secs(1));
        addrs
            .iter()
            .filter(|a| {
                let k = (set.to_string(), **a);
                match map.get(&k) {
                    Some(t) if *t + slack >= until => false,
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

impl DaemonContext {
    /// The container at `src`, for the log.
    fn who(&self, src: IpAddr) -> String {
        self.client(src)
            .map(|c| c.container)
            .unwrap_or_else(|| src.to_string())
    }

    fn client(&self, src: IpAddr) -> Option<crate::directory::Client> {
        self.clients.read().ok()?.by_addr.get(&src).cloned()
    }
}

impl Context for DaemonContext {
    fn policy_of(&self, src: IpAddr) -> Option<String> {
        self.clients
            .read()
            .ok()?
            .by_addr
            .get(&src)
            .map(|c| c.key.chain_part().to_string())
    }

    fn allow(
        &self,
        src: IpAddr,
        rule: &DnsRule,
        pattern: &Pattern,
        learned: &[Learned],
    ) -> Result<(), String> {
        let (set4, set6) = rule.sets();
        let shown = pattern.to_string();
        self.obs
            .dns_answers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for l in learned {
            self.obs.learned(l.addr, &shown);
        }
        // One batch per lifetime: every element of a batch gets the same.
        let mut by_ttl: HashMap<Duration, Vec<IpAddr>> = HashMap::new();
        for l in learned {
            by_ttl.entry(l.ttl).or_default().push(l.addr);
        }
        for (ttl, addrs) in by_ttl {
            let mut changes = Vec::new();
            for (v4, set) in [(true, &set4), (false, &set6)] {
                let fam: Vec<IpAddr> = addrs
                    .iter()
                    .filter(|a| a.is_ipv4() == v4)
                    .copied()
                    .collect();
                let admitted = self
                    .expiry
                    .admit(set, &shown, &fam, ttl, self.max_addresses);
                let within: Vec<IpAddr> = fam
                    .iter()
                    .filter(|a| !admitted.over_cap.contains(a))
                    .copied()
                    .collect();
                // Only the L7 proxy reads them, for server-name rules.
                if rule.server_name {
                    self.learned
                        .note(rule, &within, std::time::Instant::now() + ttl);
                }
                if !admitted.over_cap.is_empty() {
                    warn!(
                        target: "cordon::dns",
                        container = %Shown(&self.who(src)),
                        policy = rule.policy.chain_part(),
                        name = %Shown(&shown),
                        cap = self.max_addresses,
                        not_opened = ?admitted.over_cap,
                        "a name holds as many addresses as dns.max_addresses allows: the others stay closed"
                    );
                }
                let add: Vec<Element> = admitted
                    .write
                    .iter()
                    .map(|a| Element {
                        key: smallvec![Value::Net(IpNet::from(*a))],
                        verdict: None,
                    })
                    .collect();
                if !add.is_empty() {
                    changes.push(SetChange {
                        family: Family::Inet,
                        table: TABLE.into(),
                        set: set.clone(),
                        delete: vec![],
                        add,
                    });
                }
            }
            self.nft
                .add_with_timeout(&changes, ttl)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn local(&self) -> Arc<Local> {
        let now = std::time::Instant::now();
        let mut l = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = l.0.is_some_and(|t| now.duration_since(t) <= HOST_ADDRS_FOR);
        let clients = self.clients.read().unwrap_or_else(|p| p.into_inner());
        if fresh && clients.subnets == l.1.docker {
            return l.1.clone();
        }
        let docker = clients.subnets.clone();
        drop(clients);
        let host = if fresh {
            l.1.host.clone()
        } else {
            l.0 = Some(now);
            host_addresses()
        };
        l.1 = Arc::new(Local { docker, host });
        l.1.clone()
    }

    fn stripped(&self, src: IpAddr, policy: &str, name: &str, addr: IpAddr, why: Closed) {
        self.obs
            .dns_stripped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.log(src, policy, name, "stripped", Some((addr, why)));
    }

    fn rate_limited(&self, _src: IpAddr) {
        self.obs
            .dns_rate_limited
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn cache_lookup(&self, hit: bool) {
        let c = if hit {
            &self.obs.dns_cache_hits
        } else {
            &self.obs.dns_upstream_queries
        };
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn refused(&self, src: IpAddr, policy: &str, name: &str) {
        self.obs
            .dns_refusals
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.log(src, policy, name, "refused", None);
    }
}

impl DaemonContext {
    /// A DNS event into the drop log (rate-limited like drops), and so to
    /// the daemon's log and `cordon logs`: a refused name, or an address
    /// taken out of an answer (`stripped`, with the address and why).
    fn log(
        &self,
        src: IpAddr,
        policy: &str,
        name: &str,
        verdict: &str,
        stripped: Option<(IpAddr, Closed)>,
    ) {
        let who = self.client(src);
        let (time, unix_ms) = crate::droplog::stamp(std::time::SystemTime::now());
        // Into the drop log (rate-limited like drops), and so to the
        // daemon's log and `cordon logs`.
        self.obs.record(crate::droplog::Event {
            time,
            unix_ms,
            container: who.as_ref().map(|c| c.container.clone()),
            id: who.as_ref().map(|c| c.id.clone()),
            policy: who.map(|c| c.policy).unwrap_or_else(|| policy.to_string()),
            direction: "dns".into(),
            verdict: verdict.into(),
            reason: stripped.map(|(_, why)| why.to_string()),
            proto: "dns".into(),
            src: Some(src),
            dst: stripped.map(|(a, _)| a),
            sport: None,
            dport: Some(53),
            bytes: 0,
            name: Some(name.trim_end_matches('.').to_string()),
            suppressed: 0,
        });
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

/// The DNS proxy of the running daemon: its UDP and TCP sockets on
/// [`DNS_PROXY_PORT`], bound once, and the tasks that serve them with a
/// proxy built from the policy in force. A reload stops those tasks and
/// starts new ones on the same sockets ([`DnsService::serve`]): no query
/// finds the port closed, and queries already being answered finish.
pub struct DnsService {
    udp: Arc<tokio::net::UdpSocket>,
    tcp: Arc<tokio::net::TcpListener>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    clients: Clients,
    generation: Generation,
    obs: Arc<crate::observe::Observe>,
    learned: Arc<crate::l7::learned::Learned>,
}

impl DnsService {
    /// What each rule let through (kept across reloads), which the L7
    /// proxy checks destinations against.
    pub fn learned(&self) -> Arc<crate::l7::learned::Learned> {
        self.learned.clone()
    }

    /// Binds the proxy's sockets (on the current runtime); serves nothing
    /// until [`DnsService::serve`].
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub fn bind(
        clients: Clients,
        generation: Generation,
        obs: Arc<crate::observe::Observe>,
    ) -> Result<DnsService, DaemonError> {
        let addr = SocketAddr::new("::".parse().expect("constant"), DNS_PROXY_PORT);
        let err = DaemonError::DnsProxy;
        let udp = std::net::UdpSocket::bind(addr).map_err(err)?;
        udp.set_nonblocking(true).map_err(err)?;
        let tcp = std::net::TcpListener::bind(addr).map_err(err)?;
        tcp.set_nonblocking(true).map_err(err)?;
        Ok(DnsService {
            udp: Arc::new(tokio::net::UdpSocket::from_std(udp).map_err(err)?),
            tcp: Arc::new(tokio::net::TcpListener::from_std(tcp).map_err(err)?),
            tasks: Vec::new(),
            clients,
            learned: Default::default(),
            generation,
            obs,
        })
    }

    /// Serves with a proxy for `policy` (its allowlist, upstreams, limits
    /// and cache), in place of the one that served until now.
    pub fn serve(&mut self, policy: &PolicyFile) {
        self.stop();
        let ups = upstreams(policy);
        if ups.is_empty() {
            warn!("no upstream resolver (dns.upstream is empty and /etc/resolv.conf names none): allowlisted names will get SERVFAIL");
        }
        let proxy = Arc::new(Proxy::new(
            Allowlist::from_policy(policy),
            Config {
                upstreams: ups,
                upstream_timeout: cordon_policy::dns_defaults::UPSTREAM_TIMEOUT,
                limits: Limits {
                    min_ttl: policy.dns.min_ttl,
                    max_ttl: policy.dns.max_ttl,
                    max_addrs: policy.dns.max_addresses,
                },
                nxdomain: policy.dns.nxdomain,
                rate: policy.dns.query_rate.map(|r| (r, policy.dns.query_burst)),
                cache: policy.dns.cache,
            },
            Arc::new(DaemonContext {
                clients: self.clients.clone(),
                nft: Nft::host(),
                expiry: Expiry {
                    written: Default::default(),
                    generation: self.generation.clone(),
                },
                max_addresses: policy.dns.max_addresses,
                obs: self.obs.clone(),
                learned: self.learned.clone(),
                local: Default::default(),
            }),
        ));
        let (udp, for_udp) = (self.udp.clone(), proxy.clone());
        self.tasks.push(tokio::spawn(async move {
            if let Err(e) = proxy::serve_udp(udp, for_udp).await {
                warn!("DNS proxy (UDP) stopped: {e}");
            }
        }));
        let tcp = self.tcp.clone();
        self.tasks.push(tokio::spawn(async move {
            if let Err(e) = proxy::serve_tcp(tcp, proxy).await {
                warn!("DNS proxy (TCP) stopped: {e}");
            }
        }));
        info!(port = DNS_PROXY_PORT, "DNS proxy serving");
    }

    /// Stops serving (the sockets stay bound; queries then wait unread).
    pub fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for DnsService {
    fn drop(&mut self) {
        self.stop();
    }
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
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([198, 51, 100, last])
    }

    #[test]
    fn a_name_holds_at_most_its_cap_across_lookups() {
        let e = Expiry::default();
        let long = Duration::from_secs(300);
        // First answer: 3 addresses, cap 4: all in.
        let a = e.admit("s", "*.example.org", &[ip(1), ip(2), ip(3)], long, 4);
        assert_eq!(a.write, vec![ip(1), ip(2), ip(3)]);
        assert!(a.over_cap.is_empty());
        // A rotating answer: one more fits, the rest stay closed.
        let a = e.admit("s", "*.example.org", &[ip(4), ip(5), ip(6)], long, 4);
        assert_eq!(a.write, vec![ip(4)]);
        assert_eq!(a.over_cap, vec![ip(5), ip(6)]);
        // Addresses the name already holds are refreshed at the cap.
        let a = e.admit(
            "s",
            "*.example.org",
            &[ip(1), ip(7)],
            Duration::from_secs(600),
            4,
        );
        assert_eq!(a.write, vec![ip(1)]);
        assert_eq!(a.over_cap, vec![ip(7)]);
        // Another name has a cap of its own, even in the same set; the
        // address it shares with the first is written only if it extends.
        let shorter = Duration::from_secs(100);
        let a = e.admit("s", "api.example.com", &[ip(7), ip(2)], shorter, 4);
        assert_eq!(a.write, vec![ip(7)]);
        assert!(a.over_cap.is_empty());
        // Once the held addresses expire, the name may hold new ones.
        let e = Expiry::default();
        let short = Duration::from_millis(30);
        assert_eq!(e.admit("s", "n", &[ip(1)], short, 1).write, vec![ip(1)]);
        assert_eq!(e.admit("s", "n", &[ip(2)], short, 1).over_cap, vec![ip(2)]);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(e.admit("s", "n", &[ip(2)], short, 1).write, vec![ip(2)]);
        // After a replacement of the tables the counts start over.
        e.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(e.admit("s", "n", &[ip(3)], long, 1).write, vec![ip(3)]);
    }
}
