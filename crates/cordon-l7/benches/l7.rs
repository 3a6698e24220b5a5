//! The L7 proxy's benchmark tool, run by `scripts/bench-l7` inside the
//! namespaces it builds (client, router with the proxy and the redirect,
//! server). Modes:
//!
//! * `serve PORT` — the proxy on `0.0.0.0:PORT` and `[::]:PORT`, passing
//!   `bench.test`, per-source cap raised (one client address opens every
//!   connection); prints `ready`, runs until killed.
//! * `bare PORT UPSTREAM` — the relay alone, the proxy's ceiling on this path: accepts
//!   on `0.0.0.0:PORT`, connects to UPSTREAM and runs the proxy's own relay
//!   (copies, then splice) with no first flight read, no decision and no
//!   original-destination lookup; prints `ready`, runs until killed.
//! * `server PORT...` — the far end: reads the first flight (the bench's
//!   ClientHello) and one command byte: `L` answers one byte and waits for
//!   end of file, `T` sends 1 GiB and closes, `H` answers one byte and
//!   holds the connection.
//! * `latency DIRECT PROXIED N` — N sequential connections to each,
//!   alternating (so both paths see the same machine noise): connect,
//!   hello + `L`, one byte back; prints the times (µs) as two JSON lists,
//!   one a line (direct, then proxied).
//! * `throughput ADDR BYTES` — hello + `T`, reads to end; prints Gbit/s.
//! * `rate ADDR SECS CONC` — CONC loops of latency's exchange for SECS;
//!   prints connections per second.
//! * `hold ADDR N` — N connections through the exchange of `H`, kept open;
//!   prints `held N`, then waits until stdin closes.
//! * `report FACTS OUT` — renders the section from the facts file and
//!   writes it into OUT between `<!-- l7:begin -->` and `<!-- l7:end -->`.

#[path = "../tests/common/hello.rs"]
mod hello;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cordon_l7::{Connection, Decider, Limits, Proxy, Verdict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GIB: u64 = 1 << 30;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let _ = cordon_l7::raise_nofile_limit();
    match a.as_slice() {
        ["serve", port] => serve(port.parse().expect("port")),
        ["bare", port, upstream] => bare(
            port.parse().expect("port"),
            upstream.parse().expect("upstream"),
        ),
        ["server", ports @ ..] => server(ports.iter().map(|p| p.parse().expect("port")).collect()),
        ["latency", direct, proxied, n] => latency(
            direct.parse().expect("addr"),
            proxied.parse().expect("addr"),
            n.parse().expect("n"),
        ),
        ["throughput", addr, bytes] => {
            throughput(addr.parse().expect("addr"), bytes.parse().expect("bytes"))
        }
        ["rate", addr, secs, conc] => rate(
            addr.parse().expect("addr"),
            secs.parse().expect("secs"),
            conc.parse().expect("conc"),
        ),
        ["hold", addr, n] => hold(addr.parse().expect("addr"), n.parse().expect("n")),
        ["report", facts, out] => report(facts, out),
        // `cargo bench` runs benches with `--bench`: nothing to do alone.
        _ => eprintln!("usage: see the module doc (run by scripts/bench-l7)"),
    }
}

fn hello_bytes() -> Vec<u8> {
    hello::hello_for("bench.test")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

struct Bench;

impl Decider for Bench {
    fn decide(&self, conn: &Connection) -> Verdict {
        if conn.first_flight.name() == Some("bench.test") {
            Verdict::Pass
        } else {
            Verdict::Refuse {
                reason: "not bench.test".into(),
            }
        }
    }
}

fn serve(port: u16) {
    let rt = runtime();
    let proxy = rt
        .block_on(async {
            Proxy::bind(&[
                SocketAddr::from(([0, 0, 0, 0], port)),
                SocketAddr::from(([0u16; 8], port)),
            ])
        })
        .expect("bind");
    let passed = Arc::new(AtomicU64::new(0));
    let p = passed.clone();
    let observer: cordon_l7::Observer = Arc::new(move |e| {
        if let cordon_l7::Event::Passed { .. } = e {
            p.fetch_add(1, Ordering::Relaxed);
        }
    });
    let limits = Limits {
        per_source: 100_000,
        total: 100_000,
        // This process is the proxy alone: it needs few descriptors of its
        // own (the daemon keeps the default reserve).
        reserved_descriptors: Some(40),
        ..Limits::default()
    };
    let (_stop, rx) = tokio::sync::watch::channel(false);
    println!("ready");
    rt.block_on(proxy.serve(limits, Arc::new(Bench), observer, rx));
}

fn bare(port: u16, upstream: SocketAddr) {
    let rt = runtime();
    rt.block_on(async move {
        let l = tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port)))
            .await
            .expect("bind");
        println!("ready");
        loop {
            let Ok((client, _)) = l.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut up, mut down) = (0, 0);
                let _ = cordon_l7::relay::relay(
                    &client,
                    &server,
                    &cordon_l7::budget::Budget::unbounded(),
                    &mut up,
                    &mut down,
                )
                .await;
            });
        }
    });
}

fn server(ports: Vec<u16>) {
    let rt = runtime();
    let hello_len = hello_bytes().len();
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for port in ports {
            for addr in [
                SocketAddr::from(([0, 0, 0, 0], port)),
                SocketAddr::from(([0u16; 8], port)),
            ] {
                let s = socket2::Socket::new(
                    socket2::Domain::for_address(addr),
                    socket2::Type::STREAM,
                    None,
                )
                .expect("socket");
                if addr.is_ipv6() {
                    s.set_only_v6(true).expect("v6only");
                }
                s.set_reuse_address(true).expect("reuse");
                s.set_nonblocking(true).expect("nonblocking");
                s.bind(&addr.into()).expect("bind");
                s.listen(4096).expect("listen");
                let l = tokio::net::TcpListener::from_std(s.into()).expect("listener");
                tasks.push(tokio::spawn(async move {
                    loop {
                        let Ok((c, _)) = l.accept().await else {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        };
                        tokio::spawn(far_end(c, hello_len));
                    }
                }));
            }
        }
        println!("ready");
        for t in tasks {
            let _ = t.await;
        }
    });
}

async fn far_end(mut c: tokio::net::TcpStream, hello_len: usize) {
    let _ = c.set_nodelay(true);
    let mut first = vec![0u8; hello_len + 1];
    if c.read_exact(&mut first).await.is_err() {
        return;
    }
    let mut rest = [0u8; 64];
    match first[hello_len] {
        b'T' => {
            let chunk = vec![0u8; 256 * 1024];
            let mut left = GIB;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                if c.write_all(&chunk[..n]).await.is_err() {
                    return;
                }
                left -= n as u64;
            }
            let _ = c.shutdown().await;
        }
        _ => {
            if c.write_all(b"!").await.is_err() {
                return;
            }
            while let Ok(n) = c.read(&mut rest).await {
                if n == 0 {
                    break;
                }
            }
        }
    }
}

/// Connect, send the hello and `cmd`, read one byte; the time it took.
fn exchange(addr: SocketAddr, hello: &[u8], cmd: u8) -> std::io::Result<(TcpStream, Duration)> {
    let t = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut msg = hello.to_vec();
    msg.push(cmd);
    s.write_all(&msg)?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)?;
    Ok((s, t.elapsed()))
}

fn latency(direct: SocketAddr, proxied: SocketAddr, n: usize) {
    let hello = hello_bytes();
    for _ in 0..50 {
        for addr in [direct, proxied] {
            let _ = exchange(addr, &hello, b'L').expect("warm-up");
        }
    }
    let mut us = [Vec::with_capacity(n), Vec::with_capacity(n)];
    for _ in 0..n {
        for (i, addr) in [direct, proxied].into_iter().enumerate() {
            let (s, d) = exchange(addr, &hello, b'L').expect("exchange");
            drop(s);
            us[i].push(d.as_secs_f64() * 1e6);
        }
    }
    for list in us {
        let list: Vec<String> = list.iter().map(|u| format!("{u:.1}")).collect();
        println!("[{}]", list.join(","));
    }
}

fn throughput(addr: SocketAddr, bytes: u64) {
    let hello = hello_bytes();
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    let mut msg = hello.clone();
    msg.push(b'T');
    s.write_all(&msg).expect("send");
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n as u64,
            Err(e) => panic!("read: {e}"),
        }
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(got, bytes, "short transfer");
    println!("{:.3}", got as f64 * 8.0 / secs / 1e9);
}

fn rate(addr: SocketAddr, secs: u64, conc: usize) {
    let hello = Arc::new(hello_bytes());
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..conc)
        .map(|_| {
            let (hello, done, failed) = (hello.clone(), done.clone(), failed.clone());
            std::thread::spawn(move || {
                while Instant::now() < end {
                    match exchange(addr, &hello, b'L') {
                        Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    println!(
        "{{\"per_sec\":{:.0},\"failed\":{}}}",
        done.load(Ordering::Relaxed) as f64 / secs as f64,
        failed.load(Ordering::Relaxed)
    );
}

fn hold(addr: SocketAddr, n: usize) {
    let hello = hello_bytes();
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        match exchange(addr, &hello, b'H') {
            Ok((s, _)) => held.push(s),
            Err(e) => {
                eprintln!("connection {i}: {e}");
                break;
            }
        }
    }
    println!("held {}", held.len());
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

fn report(facts: &str, out: &str) {
    let text = std::fs::read_to_string(facts).expect("facts");
    let get = |k: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or("?")
            .to_string()
    };
    let lat = |k: &str| -> Vec<f64> {
        let mut v: Vec<f64> = get(k)
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .filter_map(|x| x.parse().ok())
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let pct = |v: &[f64], p: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    };
    let num = |k: &str| get(k).parse::<f64>().unwrap_or(f64::NAN);
    let met = |ok: bool| if ok { "met" } else { "**not met**" };
    let mut rows = String::new();
    let mut verdicts = Vec::new();
    for fam in ["4", "6"] {
        let d = lat(&format!("lat_direct_{fam}"));
        let p = lat(&format!("lat_proxy_{fam}"));
        let (d50, d99, p50, p99) = (pct(&d, 50.0), pct(&d, 99.0), pct(&p, 50.0), pct(&p, 99.0));
        let (d90, p90) = (pct(&d, 90.0), pct(&p, 90.0));
        rows += &format!(
            "| IPv{fam} connect + first byte, p50 | {d50:.0} µs | {p50:.0} µs | {:+.0} µs |\n\
             | IPv{fam} connect + first byte, p90 | {d90:.0} µs | {p90:.0} µs | {:+.0} µs |\n\
             | IPv{fam} connect + first byte, p99 | {d99:.0} µs | {p99:.0} µs | {:+.0} µs |\n",
            p50 - d50,
            p90 - d90,
            p99 - d99
        );
        verdicts.push(format!(
            "added p99 latency, IPv{fam}: {:+.0} µs (goal < 1,000 µs): {}",
            p99 - d99,
            met(p99 - d99 < 1000.0)
        ));
    }
    let median = |k: &str| -> f64 {
        let mut v: Vec<f64> = get(k)
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let (td, tp) = (median("tput_direct"), median("tput_proxy"));
    rows += &format!(
        "| 1 GiB transfer (IPv4, median of {}) | {td:.2} Gbit/s | {tp:.2} Gbit/s | {:.2}× |\n",
        get("tput_direct").split_whitespace().count(),
        tp / td
    );
    let tb = median("tput_bare");
    if tb.is_finite() {
        rows += &format!(
            "| 1 GiB through a bare relay on the router (the proxy's relay alone: no first flight, \
             no decision: what this relay reaches on this path with nothing in front of it) | {td:.2} Gbit/s | {tb:.2} Gbit/s | {:.2}× \
             (the proxy: {:.2}× of it) |\n",
            tb / td,
            tp / tb
        );
    }
    let mut linked = Vec::new();
    for rate in ["10", "20"] {
        let (d, p, b) = (
            median(&format!("tput_direct_link{rate}")),
            median(&format!("tput_proxy_link{rate}")),
            median(&format!("tput_bare_link{rate}")),
        );
        if !(d.is_finite() && p.is_finite()) {
            continue;
        }
        rows += &format!(
            "| 1 GiB over a lab link shaped to {rate} Gbit/s (median of {}; bare relay {b:.2} Gbit/s) \
             | {d:.2} Gbit/s | {p:.2} Gbit/s | {:.2}× |\n",
            get(&format!("tput_direct_link{rate}")).split_whitespace().count(),
            p / d
        );
        linked.push((rate, p / d));
    }
    verdicts.push(format!(
        "1 GiB transfer: {:.2}× direct (goal ≥ 0.9×): {} on the unshaped path, where the \
         client, the relay and the server share 2 cores and both paths are CPU-bound{}",
        tp / td,
        met(tp / td >= 0.9),
        if linked.is_empty() {
            String::new()
        } else {
            let shown: Vec<String> = linked
                .iter()
                .map(|(rate, r)| format!("{r:.2}× at {rate} Gbit/s"))
                .collect();
            format!(
                "; where the link is the bottleneck: {} ({})",
                shown.join(", "),
                met(linked.iter().all(|(_, r)| *r >= 0.9))
            )
        }
    ));
    let (rd, rp) = (num("rate_direct"), num("rate_proxy"));
    rows += &format!(
        "| new connections per second (IPv4, {} clients) | {rd:.0}/s | {rp:.0}/s | {:.2}× |\n",
        get("rate_conc"),
        rp / rd
    );
    verdicts.push(format!(
        "new connections: {rp:.0}/s (goal ≥ 5,000/s): {}",
        met(rp >= 5000.0)
    ));
    let held = get("held");
    let rss_mb = num("rss_kb") / 1024.0;
    let base_mb = num("rss_idle_kb") / 1024.0;
    rows += &format!(
        "| proxy RSS with {held} idle relayed connections | | {rss_mb:.1} MB | (idle proxy: {base_mb:.1} MB) |\n"
    );
    let wanted = get("hold_wanted");
    verdicts.push(if held == wanted {
        format!(
            "{held} idle connections held, proxy RSS {rss_mb:.1} MB (goal: 10,000 under 100 MB): {}",
            met(rss_mb < 100.0 && held.parse::<u64>().is_ok_and(|h| h >= 10_000))
        )
    } else {
        format!(
            "{held} idle connections held of the {wanted} asked (the machine's hard \
             RLIMIT_NOFILE is {}, and cannot be raised here; each relayed connection \
             holds two descriptors), proxy RSS {rss_mb:.1} MB, {:.1} kB a connection \
             above the idle proxy (goal: 10,000 under 100 MB): **not measured at 10,000**",
            get("fd_limit"),
            (rss_mb - base_mb) * 1024.0 / held.parse::<f64>().unwrap_or(f64::NAN)
        )
    });
    let section = format!(
        "<!-- l7:begin -->\n\
         Measured by `scripts/bench-l7` on {date} (commit {commit}; {machine}; load \
         average at the start {load}; the client, the router and the server share \
         these cores, and a load above 2 means other work shared them too). Three network namespaces: a client, a router that \
         holds the proxy (`cordon-l7`, release build, 2 tokio workers) and an nft \
         `redirect` of port 443 to it, and a server. The baseline is the same \
         client talking to the same server directly on another port, routed \
         through the same router, in the same run. Every exchange sends the \
         same TLS ClientHello (SNI `bench.test`) and reads a byte back, so \
         both paths carry the same first flight; the proxy's time includes \
         reading it, the decision, its own connect to the server and the \
         replay. Latency: {lat_n} sequential connections per path, the two paths alternating, warm-up excluded. 1 GiB: the server sends, the client reads; runs alternate between the paths. New \
         connections: {rate_conc} client threads for {rate_secs} s, `tcp_tw_reuse` \
         on. Idle connections: each completed the exchange and then held, \
         `RLIMIT_NOFILE` raised as far as the machine allows; RSS is the proxy \
         process's VmRSS. On the 1 GiB transfer: the direct path is plain \
         forwarding in the router, while through the proxy the router \
         terminates both TCP connections (splice saves the copies, not the \
         TCP work), on 2 cores shared with the client and the server: each \
         byte crosses two TCP stacks on the proxy path and none on the direct \
         one, so with every endpoint on the same 2 cores the transfer is \
         CPU-bound on both paths. The shaped rows repeat the transfer with the \
         server's side of the lab link limited by a token bucket (`tc` tbf) to 10 \
         and 20 Gbit/s, the speeds of a host's uplink: there the link, not the \
         shared cores, bounds each path, as it does for a container's traffic \
         to the internet. The p99 rows are dominated by scheduling stalls of \
         milliseconds that hit both paths alike (compare the direct path's \
         p50 and p99); under load their difference changes sign from run to run.\n\n\
         | | direct | through the proxy | added / ratio |\n\
         |---|---|---|---|\n{rows}\n\
         {verdicts}\n\
         <!-- l7:end -->\n",
        date = get("date"),
        commit = get("commit"),
        machine = get("machine"),
        load = get("load_avg"),
        lat_n = get("lat_n"),
        rate_conc = get("rate_conc"),
        rate_secs = get("rate_secs"),
        verdicts = verdicts
            .iter()
            .map(|v| format!("- {v}"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let doc = std::fs::read_to_string(out).unwrap_or_default();
    let (b, e) = ("<!-- l7:begin -->", "<!-- l7:end -->");
    let new = match (doc.find(b), doc.find(e)) {
        (Some(i), Some(j)) if i < j => {
            let mut after = j + e.len();
            if doc[after..].starts_with('\n') {
                after += 1;
            }
            format!("{}{}{}", &doc[..i], section, &doc[after..])
        }
        _ => format!(
            "{}\n\n## L7 proxy against a direct connection\n\n{}",
            doc.trim_end_matches('\n'),
            section
        ),
    };
    std::fs::write(out, new).expect("write the section");
    print!("{section}");
}
