//! The proxy's decision for one query, independent of how the query
//! arrived (UDP or TCP) and of the kernel: the daemon supplies a
//! [`Context`] that knows which container sent it and opens the firewall.
//!
//! For a query from a container whose policy allowlists the name, the
//! query is forwarded upstream, the answer's addresses for that name are
//! handed to [`Context::allow`] (which adds them to the policy's timeout
//! sets), and only then is the answer released. Any other name gets a
//! refusal without upstream ever seeing it. A query from an address that is
//! no known container is dropped.
//!
//! Before anything else a query passes its sender's rate limit
//! ([`crate::limit`]); over the limit it is dropped unread. An allowlisted
//! name is answered from the cache ([`crate::cache`]) when it can be, else
//! from upstream; either way the answer then loses every address its
//! rules may not resolve to ([`crate::rebind`]), each reported to
//! [`Context::stripped`], and only the remaining ones are opened.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use tokio::net::UdpSocket;

use crate::allow::{Allowlist, DnsRule, Pattern};
use crate::answer::{addresses, Learned, Limits};
use crate::cache::Cache;
use crate::limit::RateLimit;
use crate::rebind::{permitted, strip, Closed, Local, Scope};
use crate::reply::{question, refusal};

/// What the daemon tells the proxy and does for it.
pub trait Context: Send + Sync + 'static {
    /// The policy key, as chain names write it
    /// (`cordon_ruleset::PolicyKey::chain_part`), of the container with
    /// this (trusted) source address; `None` when it is no container cordon
    /// knows.
    fn policy_of(&self, src: IpAddr) -> Option<String>;
    /// Allows `learned` for `rule` (adds them to its timeout sets), as
    /// answers for the allowlisted `pattern` asked by `src`. The answer is
    /// released only after this returns `Ok`.
    fn allow(
        &self,
        src: IpAddr,
        rule: &DnsRule,
        pattern: &Pattern,
        learned: &[Learned],
    ) -> Result<(), String>;
    /// A refused query, for the log.
    fn refused(&self, src: IpAddr, policy: &str, name: &str);
    /// The Docker subnets and the host's addresses, which answers may
    /// carry only for rules that name them. None by default.
    fn local(&self) -> Arc<Local> {
        Arc::new(Local::default())
    }
    /// `addr` was taken out of the answer for `name` asked by `src`
    /// (policy `policy`), for the log. Nothing by default.
    fn stripped(&self, src: IpAddr, policy: &str, name: &str, addr: IpAddr, why: Closed) {
        let _ = (src, policy, name, addr, why);
    }
    /// A query from `src` was dropped over its rate limit. Nothing by
    /// default.
    fn rate_limited(&self, src: IpAddr) {
        let _ = src;
    }
    /// A query for an allowlisted name was answered from the cache (`hit`)
    /// or asked upstream. Nothing by default.
    fn cache_lookup(&self, hit: bool) {
        let _ = hit;
    }
}

/// The proxy's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Upstream resolvers, tried in order.
    pub upstreams: Vec<SocketAddr>,
    /// How long one upstream may take.
    pub upstream_timeout: Duration,
    /// TTL clamps and the per-answer address cap.
    pub limits: Limits,
    /// Answer refused names with NXDOMAIN instead of REFUSED.
    pub nxdomain: bool,
    /// Queries per second and burst per client; `None` for no limit.
    pub rate: Option<(u32, u32)>,
    /// The most answers cached; 0 for no cache.
    pub cache: usize,
}

impl Default for Config {
    /// No upstream, the default upstream timeout
    /// ([`cordon_policy::dns_defaults::UPSTREAM_TIMEOUT`]), default limits,
    /// REFUSED, no rate limit, no cache.
    fn default() -> Self {
        Config {
            upstreams: Vec::new(),
            upstream_timeout: cordon_policy::dns_defaults::UPSTREAM_TIMEOUT,
            limits: Limits::default(),
            nxdomain: false,
            rate: None,
            cache: 0,
        }
    }
}

/// The proxy: the allowlist, the settings and the context.
pub struct Proxy<C: Context> {
    allowlist: Allowlist,
    config: Config,
    ctx: Arc<C>,
    /// Per upstream, its UDP socket pool, opened on first use (`None`
    /// when it could not be opened: a socket per query then).
    pools: Vec<tokio::sync::OnceCell<Option<crate::upstream::Pool>>>,
    cache: Cache,
    limit: Option<RateLimit>,
}

/// How a query reached the proxy; the upstream is asked the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: a truncated upstream answer is passed on truncated, and the
    /// client retries over TCP (RFC 7766).
    Udp,
    /// TCP, to the upstream too.
    Tcp,
}

/// What became of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forwarded; the upstream's answer, after the firewall was opened.
    Answered(Vec<u8>),
    /// Refused without asking upstream.
    Refused(Vec<u8>),
    /// Upstream failed or the firewall could not be opened: SERVFAIL.
    Failed(Vec<u8>),
    /// Not answered at all (unreadable query, unknown sender).
    Dropped,
}

impl Verdict {
    /// The bytes to send back, if any.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Verdict::Answered(b) | Verdict::Refused(b) | Verdict::Failed(b) => Some(b),
            Verdict::Dropped => None,
        }
    }
}

impl<C: Context> Proxy<C> {
    /// A proxy for `allowlist`.
    pub fn new(allowlist: Allowlist, config: Config, ctx: Arc<C>) -> Self {
        let pools = config
            .upstreams
            .iter()
            .map(|_| tokio::sync::OnceCell::new())
            .collect();
        let cache = Cache::new(config.cache, crate::cache::MAX_BYTES, config.limits.max_ttl);
        let limit = config.rate.map(|(r, b)| RateLimit::new(r, b));
        Proxy {
            allowlist,
            config,
            ctx,
            pools,
            cache,
            limit,
        }
    }

    /// True when a query from `src` is within its rate limit; else it is
    /// counted ([`Context::rate_limited`]) and must be dropped unread.
    pub fn admit(&self, src: IpAddr) -> bool {
        let ok = self
            .limit
            .as_ref()
            .is_none_or(|l| l.admit(src, Instant::now()));
        if !ok {
            self.ctx.rate_limited(src);
        }
        ok
    }

    /// Decides one query from `src` that came over UDP.
    pub async fn handle(&self, src: IpAddr, query: &[u8]) -> Verdict {
        self.handle_via(src, query, Transport::Udp).await
    }

    /// Decides one query from `src` that came by `transport`.
    pub async fn handle_via(&self, src: IpAddr, query: &[u8], transport: Transport) -> Verdict {
        let Some((id, name, _)) = question(query) else {
            return Verdict::Dropped;
        };
        let Some(policy) = self.ctx.policy_of(src) else {
            return Verdict::Dropped;
        };
        let shown = name.to_ascii();
        let rules = self.allowlist.matching(&policy, &shown);
        if rules.is_empty() {
            self.ctx.refused(src, &policy, &shown);
            return refusal(query, self.config.nxdomain)
                .map(Verdict::Refused)
                .unwrap_or(Verdict::Dropped);
        }
        // The cache's view of the question (its key, the client's UDP
        // limit), read only when there is a cache.
        let asked = (self.config.cache > 0)
            .then(|| crate::cache::asked(query))
            .flatten();
        let limit = match transport {
            Transport::Udp => asked.as_ref().map_or(512, |a| a.udp_limit),
            Transport::Tcp => usize::from(u16::MAX),
        };
        let hit = asked
            .as_ref()
            .and_then(|a| self.cache.get(a, query, limit, Instant::now()))
            .and_then(|b| Message::from_vec(&b).ok().map(|m| (b, m)));
        if self.config.cache > 0 {
            self.ctx.cache_lookup(hit.is_some());
        }
        let (raw, mut resp) = match hit {
            Some(h) => h,
            None => {
                let Some((raw, resp)) = self.forward(id, query, transport).await else {
                    return servfail(query);
                };
                if let Some(a) = &asked {
                    self.cache.put(a, &raw, Instant::now());
                }
                (raw, resp)
            }
        };
        // An answer to another question opens nothing and is not passed on.
        if resp.queries.len() != 1 || resp.queries[0].name != name {
            return servfail(query);
        }
        // Addresses no rule of the name may resolve to leave the answer.
        let local = self.ctx.local();
        let scopes: Vec<&Scope> = rules.iter().map(|r| &r.scope).collect();
        let stripped = strip(&mut resp, &scopes, &local);
        let raw = if stripped.is_empty() {
            raw
        } else {
            for s in &stripped {
                self.ctx.stripped(src, &policy, &shown, s.addr, s.why);
            }
            match resp.to_vec() {
                Ok(b) => b,
                Err(_) => return servfail(query),
            }
        };
        let learned = addresses(&name, &resp, &self.config.limits);
        if !learned.is_empty() {
            for rule in rules {
                let Some(pattern) = rule.patterns.iter().find(|p| p.matches(&shown)) else {
                    continue;
                };
                // Each rule's set gets only what that rule permits.
                let mine: Vec<Learned> = learned
                    .iter()
                    .filter(|l| permitted(l.addr, &rule.scope, &local).is_ok())
                    .copied()
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                if self.ctx.allow(src, rule, pattern, &mine).is_err() {
                    return servfail(query);
                }
            }
        }
        Verdict::Answered(raw)
    }

    /// Asks the upstreams in turn, over `transport`; an answer must carry
    /// the query's id and be a response.
    async fn forward(
        &self,
        id: u16,
        query: &[u8],
        transport: Transport,
    ) -> Option<(Vec<u8>, Message)> {
        for (i, up) in self.config.upstreams.iter().enumerate() {
            let limit = self.config.upstream_timeout;
            let got = match transport {
                Transport::Udp => {
                    let pool = self.pools[i]
                        .get_or_init(|| async { crate::upstream::Pool::open(*up).await.ok() })
                        .await;
                    match pool {
                        Some(p) => {
                            tokio::time::timeout(limit, async {
                                p.ask(query).await.and_then(|b| answer_to(id, &b))
                            })
                            .await
                        }
                        None => tokio::time::timeout(limit, ask_udp(*up, id, query)).await,
                    }
                }
                Transport::Tcp => tokio::time::timeout(limit, ask_tcp(*up, id, query)).await,
            };
            if let Ok(Some(r)) = got {
                return Some(r);
            }
        }
        None
    }
}

/// A parsed answer to `id`, or `None`.
fn answer_to(id: u16, bytes: &[u8]) -> Option<(Vec<u8>, Message)> {
    let m = Message::from_vec(bytes).ok()?;
    (m.metadata.id == id && m.metadata.message_type == MessageType::Response)
        .then(|| (bytes.to_vec(), m))
}

/// One query to `up` over UDP from a fresh socket (a fresh source port per
/// query); waits for the answer with the query's id, ignoring others.
async fn ask_udp(up: SocketAddr, id: u16, query: &[u8]) -> Option<(Vec<u8>, Message)> {
    let bind: SocketAddr = if up.is_ipv4() {
        "0.0.0.0:0".parse().expect("constant")
    } else {
        "[::]:0".parse().expect("constant")
    };
    let sock = UdpSocket::bind(bind).await.ok()?;
    sock.connect(up).await.ok()?;
    sock.send(query).await.ok()?;
    // Capacity, not zeroed memory: recv_buf fills the spare capacity.
    let mut buf = Vec::with_capacity(65535);
    loop {
        buf.clear();
        sock.recv_buf(&mut buf).await.ok()?;
        if let Some(r) = answer_to(id, &buf) {
            return Some(r);
        }
    }
}

/// One query to `up` over TCP (RFC 1035 4.2.2 length prefix).
async fn ask_tcp(up: SocketAddr, id: u16, query: &[u8]) -> Option<(Vec<u8>, Message)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(up).await.ok()?;
    let mut out = u16::try_from(query.len()).ok()?.to_be_bytes().to_vec();
    out.extend_from_slice(query);
    stream.write_all(&out).await.ok()?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.ok()?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await.ok()?;
    answer_to(id, &buf)
}

fn servfail(query: &[u8]) -> Verdict {
    let Ok(q) = Message::from_vec(query) else {
        return Verdict::Dropped;
    };
    let mut r = Message::error_msg(q.metadata.id, q.metadata.op_code, ResponseCode::ServFail);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.add_queries(q.queries);
    r.to_vec().map(Verdict::Failed).unwrap_or(Verdict::Dropped)
}

/// Queries handled at once over UDP; more are dropped unread.
pub const MAX_IN_FLIGHT: usize = 4096;

/// Serves queries on a UDP socket until it fails: a thread of its own
/// receives them in batches ([`crate::recv`]) and drops those over their
/// sender's rate limit at once; each other one is handled on a task of its
/// own, so a slow upstream holds up no other container. The thread stops
/// when this future is dropped.
pub async fn serve_udp<C: Context>(
    sock: Arc<UdpSocket>,
    proxy: Arc<Proxy<C>>,
) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    struct Stop(Arc<AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let stop = Stop(Arc::new(AtomicBool::new(false)));
    let flag = stop.0.clone();
    let fd = sock.as_fd().try_clone_to_owned()?;
    let rt = tokio::runtime::Handle::current();
    let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (done, ended) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("cordon-dns-recv".into())
        .spawn(move || {
            // The queries of one receive batch go to the runtime together:
            // one wake-up of a worker per batch, not per query.
            let mut batch: Vec<(SocketAddr, IpAddr, Vec<u8>)> = Vec::new();
            let r = crate::recv::each_datagram(fd.as_fd(), &flag, |d| {
                let Some((from, bytes)) = d else {
                    if batch.is_empty() {
                        return;
                    }
                    let queries = std::mem::take(&mut batch);
                    let (sock, proxy, busy) = (sock.clone(), proxy.clone(), busy.clone());
                    rt.spawn(async move {
                        for (from, src, query) in queries {
                            let (sock, proxy, busy) = (sock.clone(), proxy.clone(), busy.clone());
                            tokio::spawn(async move {
                                if let Some(b) = proxy.handle(src, &query).await.bytes() {
                                    let _ = sock.send_to(b, from).await;
                                }
                                busy.fetch_sub(1, Ordering::AcqRel);
                            });
                        }
                    });
                    return;
                };
                // A dual-stack socket shows IPv4 senders as ::ffff:a.b.c.d.
                let src = from.ip().to_canonical();
                // Over its rate limit: dropped before it is parsed or spawned.
                if !proxy.admit(src) {
                    return;
                }
                // However many clients, at most this many queries are
                // being handled at once (memory stays bounded when the
                // rate limit is off and the runtime falls behind).
                if busy.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
                    busy.fetch_sub(1, Ordering::AcqRel);
                    return;
                }
                batch.push((from, src, bytes.to_vec()));
            });
            let _ = done.send(r);
        })?;
    let r = ended.await.unwrap_or(Ok(()));
    drop(stop);
    r
}

/// Serves DNS over TCP (RFC 1035 4.2.2: each message behind a two-byte
/// length) until the listener fails; each connection on a task of its own,
/// closed after 10 s without a query. The listener is shared, so that a
/// new proxy (a reloaded policy) can serve it after this one is stopped.
pub async fn serve_tcp<C: Context>(
    listener: Arc<tokio::net::TcpListener>,
    proxy: Arc<Proxy<C>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let (mut stream, from) = listener.accept().await?;
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let src = from.ip().to_canonical();
            loop {
                let mut len = [0u8; 2];
                let read =
                    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut len));
                if !matches!(read.await, Ok(Ok(_))) {
                    return;
                }
                let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if stream.read_exact(&mut query).await.is_err() {
                    return;
                }
                if !proxy.admit(src) {
                    // Over the limit: the connection is closed unanswered.
                    return;
                }
                let verdict = proxy.handle_via(src, &query, Transport::Tcp).await;
                let Some(answer) = verdict.bytes().map(<[u8]>::to_vec) else {
                    return;
                };
                let Ok(n) = u16::try_from(answer.len()) else {
                    return;
                };
                let mut out = n.to_be_bytes().to_vec();
                out.extend(answer);
                if stream.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
    }
}
