//! The proxy's decisions against a fake upstream on loopback.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cordon_dns::allow::{Allowlist, DnsRule, Pattern};
use cordon_dns::answer::{Learned, Limits};
use cordon_dns::hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use cordon_dns::hickory_proto::rr::rdata::A;
use cordon_dns::hickory_proto::rr::{Name, RData, Record, RecordType};
use cordon_dns::proxy::{serve_udp, Config, Context, Proxy, Verdict};
use tokio::net::UdpSocket;

/// A container 172.20.0.2 of policy `web`; records what it was asked.
#[derive(Default)]
struct Ctx {
    allowed: Mutex<Vec<(String, Vec<Learned>)>>,
    refused: Mutex<Vec<String>>,
}

impl Context for Ctx {
    fn policy_of(&self, src: IpAddr) -> Option<String> {
        (src == "172.20.0.2".parse::<IpAddr>().unwrap()).then(|| "web".to_string())
    }
    fn allow(
        &self,
        _src: IpAddr,
        rule: &DnsRule,
        _pattern: &Pattern,
        learned: &[Learned],
    ) -> Result<(), String> {
        self.allowed
            .lock()
            .unwrap()
            .push((rule.sets().0, learned.to_vec()));
        Ok(())
    }
    fn refused(&self, _src: IpAddr, _policy: &str, name: &str) {
        self.refused.lock().unwrap().push(name.to_string());
    }
}

/// An upstream on loopback, UDP and TCP on one port, answering every A
/// query with 198.51.100.7, TTL 60; over UDP, names starting with `big.`
/// get an empty answer with the TC bit (too big for UDP). Counts the UDP
/// queries it saw (the TCP ones in [`TCP_SEEN`]).
async fn upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let tcp = tokio::net::TcpListener::bind(addr).await.unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, from) = sock.recv_from(&mut buf).await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            sock.send_to(&answer(&buf[..n], true), from).await.unwrap();
        }
    });
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let (mut s, _) = tcp.accept().await.unwrap();
            TCP_SEEN.fetch_add(1, Ordering::SeqCst);
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await.unwrap();
            let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut q).await.unwrap();
            let r = answer(&q, false);
            let mut out = (r.len() as u16).to_be_bytes().to_vec();
            out.extend(r);
            s.write_all(&out).await.unwrap();
        }
    });
    (addr, seen)
}

/// TCP connections the fake upstreams accepted.
static TCP_SEEN: AtomicUsize = AtomicUsize::new(0);

fn answer(query: &[u8], udp: bool) -> Vec<u8> {
    let q = Message::from_vec(query).unwrap();
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    let name = q.queries[0].name.clone();
    r.add_queries(q.queries);
    if udp && name.to_ascii().starts_with("big.") {
        r.metadata.truncation = true;
    } else {
        r.add_answer(Record::from_rdata(
            name,
            60,
            RData::A(A("198.51.100.7".parse().unwrap())),
        ));
    }
    r.to_vec().unwrap()
}

fn query(name: &str) -> Vec<u8> {
    let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    m.to_vec().unwrap()
}

fn proxy(upstreams: Vec<SocketAddr>, ctx: Arc<Ctx>) -> Proxy<Ctx> {
    let p = cordon_policy::parse(
        "p.yaml",
        "version: 1\npolicies:\n  - name: web\n    select: { name: web }\n    egress:\n      - to: [\"*.example.org\"]\n        ports: [443/tcp]\n",
    )
    .unwrap();
    Proxy::new(
        Allowlist::from_policy(&p),
        Config {
            upstreams,
            upstream_timeout: Duration::from_millis(300),
            limits: Limits::default(),
            nxdomain: false,
            ..Config::default()
        },
        ctx,
    )
}

const WEB: &str = "172.20.0.2";

#[tokio::test]
async fn allowlisted_names_open_the_firewall_before_the_answer() {
    let (up, seen) = upstream().await;
    let ctx = Arc::new(Ctx::default());
    let p = proxy(vec![up], ctx.clone());
    let v = p
        .handle(WEB.parse().unwrap(), &query("www.Example.org."))
        .await;
    let Verdict::Answered(bytes) = v else {
        panic!("{v:?}")
    };
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(m.metadata.id, 0x4242);
    assert_eq!(m.answers.len(), 1);
    let allowed = ctx.allowed.lock().unwrap().clone();
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0].0, "dns_web_0_4");
    assert_eq!(allowed[0].1[0].addr.to_string(), "198.51.100.7");
    assert_eq!(allowed[0].1[0].ttl, Duration::from_secs(60));
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn other_names_are_refused_without_asking_upstream() {
    let (up, seen) = upstream().await;
    let ctx = Arc::new(Ctx::default());
    let p = proxy(vec![up], ctx.clone());
    for name in ["example.org.", "evil.test.", "www.example.org.evil.test."] {
        let v = p.handle(WEB.parse().unwrap(), &query(name)).await;
        let Verdict::Refused(bytes) = v else {
            panic!("{name}: {v:?}")
        };
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    }
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "upstream never saw a refused name"
    );
    assert_eq!(ctx.refused.lock().unwrap().len(), 3);
    assert!(ctx.allowed.lock().unwrap().is_empty());
}

#[tokio::test]
async fn strangers_and_garbage_are_dropped_and_a_dead_upstream_fails() {
    let (up, _) = upstream().await;
    let ctx = Arc::new(Ctx::default());
    let p = proxy(vec![up], ctx.clone());
    assert_eq!(
        p.handle("10.9.9.9".parse().unwrap(), &query("www.example.org."))
            .await,
        Verdict::Dropped
    );
    assert_eq!(
        p.handle(WEB.parse().unwrap(), &[1, 2, 3]).await,
        Verdict::Dropped
    );
    // An upstream that never answers: SERVFAIL, and nothing opened.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let p = proxy(vec![silent.local_addr().unwrap()], ctx.clone());
    let v = p
        .handle(WEB.parse().unwrap(), &query("www.example.org."))
        .await;
    let Verdict::Failed(bytes) = v else {
        panic!("{v:?}")
    };
    assert_eq!(
        Message::from_vec(&bytes).unwrap().metadata.response_code,
        ResponseCode::ServFail
    );
    assert!(ctx.allowed.lock().unwrap().is_empty());
}

/// A context where every sender is the `web` container (loopback tests).
struct Everyone(Ctx);

impl Context for Everyone {
    fn policy_of(&self, _src: IpAddr) -> Option<String> {
        Some("web".into())
    }
    fn allow(
        &self,
        src: IpAddr,
        rule: &DnsRule,
        pattern: &Pattern,
        learned: &[Learned],
    ) -> Result<(), String> {
        self.0.allow(src, rule, pattern, learned)
    }
    fn refused(&self, src: IpAddr, policy: &str, name: &str) {
        self.0.refused(src, policy, name)
    }
}

#[tokio::test]
async fn serves_tcp_with_length_prefixes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (up, _) = upstream().await;
    let p = cordon_policy::parse(
        "p.yaml",
        "version: 1\npolicies:\n  - name: web\n    egress:\n      - to: [\"*.example.org\"]\n",
    )
    .unwrap();
    let proxy = Arc::new(Proxy::new(
        Allowlist::from_policy(&p),
        Config {
            upstreams: vec![up],
            upstream_timeout: Duration::from_millis(300),
            limits: Limits::default(),
            nxdomain: true,
            ..Config::default()
        },
        Arc::new(Everyone(Ctx::default())),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(cordon_dns::proxy::serve_tcp(Arc::new(listener), proxy));
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let before = TCP_SEEN.load(Ordering::SeqCst);
    for (name, code) in [
        ("a.example.org.", ResponseCode::NoError),
        ("b.evil.test.", ResponseCode::NXDomain),
        ("big.example.org.", ResponseCode::NoError),
    ] {
        let q = query(name);
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend(q);
        s.write_all(&framed).await.unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.unwrap();
        let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut body).await.unwrap();
        let m = Message::from_vec(&body).unwrap();
        assert_eq!(m.metadata.response_code, code, "{name}");
        // Over TCP the whole answer comes back, asked over TCP upstream.
        assert!(!m.metadata.truncation, "{name}");
        assert_eq!(m.answers.len(), usize::from(code == ResponseCode::NoError));
    }
    // Two allowlisted names were asked upstream over TCP (no other test
    // uses TCP); the refused one never left.
    assert_eq!(TCP_SEEN.load(Ordering::SeqCst) - before, 2);
}

#[tokio::test]
async fn a_truncated_udp_answer_goes_back_truncated() {
    let (up, seen) = upstream().await;
    let ctx = Arc::new(Ctx::default());
    let v = proxy(vec![up], ctx.clone())
        .handle(WEB.parse().unwrap(), &query("big.example.org."))
        .await;
    let Verdict::Answered(bytes) = v else {
        panic!("{v:?}")
    };
    // The client sees TC and retries over TCP, which the ruleset sends to
    // the proxy's TCP listener (see serves_tcp_with_length_prefixes).
    assert!(Message::from_vec(&bytes).unwrap().metadata.truncation);
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert!(ctx.allowed.lock().unwrap().is_empty());
}

#[tokio::test]
async fn serves_udp_to_containers_only() {
    let (up, _) = upstream().await;
    let answers = |ctx_everyone: bool| async move {
        let p = cordon_policy::parse(
            "p.yaml",
            "version: 1\npolicies:\n  - name: web\n    egress:\n      - to: [\"*.example.org\"]\n",
        )
        .unwrap();
        let config = Config {
            upstreams: vec![up],
            upstream_timeout: Duration::from_millis(300),
            limits: Limits::default(),
            nxdomain: false,
            ..Config::default()
        };
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = sock.local_addr().unwrap();
        if ctx_everyone {
            let p = Proxy::new(
                Allowlist::from_policy(&p),
                config,
                Arc::new(Everyone(Ctx::default())),
            );
            tokio::spawn(serve_udp(sock, Arc::new(p)));
        } else {
            // Ctx knows only 172.20.0.2: 127.0.0.1 is a stranger.
            let p = Proxy::new(Allowlist::from_policy(&p), config, Arc::new(Ctx::default()));
            tokio::spawn(serve_udp(sock, Arc::new(p)));
        }
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client
            .send_to(&query("www.example.org."), addr)
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        tokio::time::timeout(Duration::from_millis(500), client.recv_from(&mut buf))
            .await
            .is_ok()
    };
    assert!(
        answers(true).await,
        "control: a known container gets its answer"
    );
    assert!(!answers(false).await, "a stranger gets no answer");
}
