//! A closed-loop DNS load over UDP, and a one-query probe.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

/// Time before measuring starts (sockets warm, upstream caches full).
const WARMUP: Duration = Duration::from_millis(500);
/// A query unanswered this long is counted lost.
const LOST_AFTER: Duration = Duration::from_secs(1);

/// A query for `name` of type `qtype` with id `id`, recursion desired.
fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend(id.to_be_bytes());
    q.extend([0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(u8::try_from(label.len()).expect("label under 64 bytes"));
        q.extend(label.as_bytes());
    }
    q.push(0);
    q.extend(qtype.to_be_bytes());
    q.extend([0, 1]);
    q
}

/// (response code, answer count) of a response to `id`, if it is one.
fn reply_of(id: u16, r: &[u8]) -> Option<(u8, u16)> {
    (r.len() >= 12 && r[..2] == id.to_be_bytes() && r[2] & 0x80 != 0)
        .then(|| (r[3] & 0x0f, u16::from_be_bytes([r[6], r[7]])))
}

/// What one worker measured.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    lost: u64,
    bad: u64,
}

async fn worker(
    server: SocketAddr,
    n: usize,
    names: usize,
    start: Instant,
    end: Instant,
) -> std::io::Result<Tally> {
    let sock = UdpSocket::bind("0.0.0.0:0").await?;
    sock.connect(server).await?;
    let mut t = Tally::default();
    let mut buf = vec![0u8; 4096];
    let mut i = n;
    let mut id = u16::try_from(n % 65_536).expect("in range");
    while Instant::now() < end {
        i = i.wrapping_add(7919);
        id = id.wrapping_add(1);
        let qtype = if i.is_multiple_of(2) { 1 } else { 28 };
        let q = query(id, &format!("n{}.bench.test", (i / 2) % names), qtype);
        let sent = Instant::now();
        sock.send(&q).await?;
        let got = tokio::time::timeout(LOST_AFTER, async {
            loop {
                let len = sock.recv(&mut buf).await?;
                if let Some(r) = reply_of(id, &buf[..len]) {
                    return Ok::<_, std::io::Error>(r);
                }
            }
        })
        .await;
        let took = sent.elapsed();
        if sent < start {
            continue;
        }
        match got {
            Err(_) => t.lost += 1,
            Ok(r) => {
                let (rcode, answers) = r?;
                if rcode != 0 || answers == 0 {
                    t.bad += 1;
                }
                t.latencies_us
                    .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
            }
        }
    }
    Ok(t)
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `load SERVER CONCURRENCY SECS NAMES`.
pub fn run(server: &str, conc: &str, secs: &str, names: &str) -> Result<(), String> {
    let server: SocketAddr = server
        .parse()
        .map_err(|e| format!("server {server}: {e}"))?;
    let conc: usize = conc
        .parse()
        .map_err(|e| format!("concurrency {conc}: {e}"))?;
    let secs: f64 = secs.parse().map_err(|e| format!("seconds {secs}: {e}"))?;
    let names: usize = names.parse().map_err(|e| format!("names {names}: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let tallies = rt.block_on(async {
        let start = Instant::now() + WARMUP;
        let end = start + Duration::from_secs_f64(secs);
        let tasks: Vec<_> = (0..conc)
            .map(|n| tokio::spawn(worker(server, n, names.max(1), start, end)))
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.push(
                t.await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?,
            );
        }
        Ok::<_, String>(all)
    })?;
    let mut lat: Vec<u32> = tallies
        .iter()
        .flat_map(|t| t.latencies_us.iter().copied())
        .collect();
    lat.sort_unstable();
    let lost: u64 = tallies.iter().map(|t| t.lost).sum();
    let bad: u64 = tallies.iter().map(|t| t.bad).sum();
    println!(
        "{}",
        serde_json::json!({
            "qps": (lat.len() as f64 / secs).round() as u64,
            "answered": lat.len(),
            "p50_us": percentile(&lat, 0.50),
            "p99_us": percentile(&lat, 0.99),
            "lost": lost,
            "bad": bad,
        })
    );
    Ok(())
}

/// `probe SERVER NAME`: prints the response code and answer count.
pub fn probe(server: &str, name: &str) -> Result<(), String> {
    let server: SocketAddr = server
        .parse()
        .map_err(|e| format!("server {server}: {e}"))?;
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    sock.send_to(&query(0x7e57, name, 1), server)
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4096];
    let (n, _) = sock
        .recv_from(&mut buf)
        .map_err(|e| format!("no answer from {server}: {e}"))?;
    let (rcode, answers) = reply_of(0x7e57, &buf[..n]).ok_or("not an answer to the probe")?;
    let code = match rcode {
        0 => "NOERROR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        5 => "REFUSED",
        _ => "OTHER",
    };
    println!("{code} {answers}");
    Ok(())
}
