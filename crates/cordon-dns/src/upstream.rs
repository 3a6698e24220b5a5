//! Asking an upstream resolver over UDP through a pool of long-lived
//! sockets.
//!
//! A socket per query (bind, connect, close, and its epoll registration)
//! cost the proxy more than parsing and forwarding the message. The pool
//! keeps [`SOCKETS`] sockets per upstream, each bound to its own
//! kernel-chosen port and connected to the upstream (the kernel drops
//! datagrams from anyone else). Each query gets a fresh random id (from
//! the OS's random source) that no other pending query on that socket
//! has; the reply is matched by it, and the client's own id is put back
//! before the reply goes anywhere. An off-path attacker who wants to
//! forge a reply must guess the port among the pool's and the 16-bit id.
//!
//! A reply nobody waits for (late, forged, duplicated) is dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::oneshot;

/// Sockets per upstream.
pub const SOCKETS: usize = 16;

type Waiting = Arc<Mutex<HashMap<u16, oneshot::Sender<Vec<u8>>>>>;

struct Slot {
    sock: Arc<UdpSocket>,
    waiting: Waiting,
    reader: tokio::task::JoinHandle<()>,
}

/// The sockets to one upstream.
pub struct Pool {
    upstream: SocketAddr,
    slots: Vec<Slot>,
    next: AtomicUsize,
}

/// A random 16-bit id from the OS.
fn random_id() -> u16 {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness: still never a fixed id.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        return (t ^ (t >> 16)) as u16;
    }
    u16::from_ne_bytes(b)
}

impl Pool {
    /// Opens the pool's sockets and their readers (on the current tokio
    /// runtime).
    pub async fn open(upstream: SocketAddr) -> std::io::Result<Pool> {
        let bind: SocketAddr = if upstream.is_ipv4() {
            "0.0.0.0:0".parse().expect("constant")
        } else {
            "[::]:0".parse().expect("constant")
        };
        let mut slots = Vec::with_capacity(SOCKETS);
        for _ in 0..SOCKETS {
            let sock = Arc::new(UdpSocket::bind(bind).await?);
            sock.connect(upstream).await?;
            let waiting: Waiting = Default::default();
            let reader = tokio::spawn(read(sock.clone(), waiting.clone()));
            slots.push(Slot {
                sock,
                waiting,
                reader,
            });
        }
        Ok(Pool {
            upstream,
            slots,
            next: AtomicUsize::new(0),
        })
    }

    /// The upstream it asks.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Sends `query` and waits for the reply to it: the reply's bytes with
    /// the query's own id. `None` when the query is too short to carry an
    /// id or the socket failed; the caller bounds the wait.
    pub async fn ask(&self, query: &[u8]) -> Option<Vec<u8>> {
        if query.len() < 12 {
            return None;
        }
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut w = slot.waiting.lock().unwrap_or_else(|p| p.into_inner());
            if w.len() >= usize::from(u16::MAX) / 2 {
                return None;
            }
            let id = loop {
                let id = random_id();
                if !w.contains_key(&id) {
                    break id;
                }
            };
            w.insert(id, tx);
            id
        };
        // Whatever happens from here, the id is given back.
        let _guard = Forget {
            waiting: &slot.waiting,
            id,
        };
        let mut out = query.to_vec();
        out[..2].copy_from_slice(&id.to_be_bytes());
        slot.sock.send(&out).await.ok()?;
        let mut reply = rx.await.ok()?;
        reply[..2].copy_from_slice(&query[..2]);
        Some(reply)
    }
}

impl Drop for Pool {
    /// Stops the readers, which closes the sockets.
    fn drop(&mut self) {
        for s in &self.slots {
            s.reader.abort();
        }
    }
}

/// Removes a pending id when the query ends (answered, timed out or
/// cancelled).
struct Forget<'a> {
    waiting: &'a Waiting,
    id: u16,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

/// Hands each reply to the query waiting for its id.
async fn read(sock: Arc<UdpSocket>, waiting: Waiting) {
    let mut buf = Vec::with_capacity(65535);
    loop {
        buf.clear();
        if sock.recv_buf(&mut buf).await.is_err() {
            // ECONNREFUSED after an ICMP port unreachable: the waiting
            // query times out; the socket stays usable.
            continue;
        }
        if buf.len() < 12 {
            continue;
        }
        let id = u16::from_be_bytes([buf[0], buf[1]]);
        let tx = waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Some(tx) = tx {
            let _ = tx.send(buf.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// An upstream that echoes each query back after `delay_ms` given in
    /// its last byte, so replies come back out of order.
    async fn echo() -> SocketAddr {
        let s = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = s.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 512];
            loop {
                let (n, from) = s.recv_from(&mut buf).await.unwrap();
                let msg = buf[..n].to_vec();
                let s = s.clone();
                tokio::spawn(async move {
                    let delay = u64::from(*msg.last().unwrap());
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    // A forged reply first: an id nobody waits for.
                    let mut forged = msg.clone();
                    forged[0] ^= 0xff;
                    forged[1] ^= 0x5a;
                    let _ = s.send_to(&forged, from).await;
                    let _ = s.send_to(&msg, from).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn replies_find_their_queries_with_the_clients_ids() {
        let pool = Arc::new(Pool::open(echo().await).await.unwrap());
        let mut tasks = Vec::new();
        for i in 0..200u16 {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                let mut q = vec![0u8; 13];
                q[..2].copy_from_slice(&i.to_be_bytes());
                q[2] = (i % 7) as u8; // a marker that travels with it
                q[12] = (50 - i % 50) as u8; // later queries answered sooner
                let r = pool.ask(&q).await.unwrap();
                assert_eq!(r, q, "query {i} got another's reply");
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // Nothing is left waiting.
        for s in &pool.slots {
            assert!(s.waiting.lock().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn a_query_that_times_out_gives_its_id_back() {
        // An upstream that never answers.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let pool = Pool::open(silent.local_addr().unwrap()).await.unwrap();
        let q = [0u8; 12];
        let r = tokio::time::timeout(Duration::from_millis(50), pool.ask(&q)).await;
        assert!(r.is_err());
        assert!(pool
            .slots
            .iter()
            .all(|s| s.waiting.lock().unwrap().is_empty()));
        assert!(pool.ask(&[0u8; 5]).await.is_none(), "too short for an id");
        // Dropping the pool stops its readers.
        let readers: Vec<_> = pool.slots.iter().map(|s| s.reader.abort_handle()).collect();
        drop(pool);
        tokio::task::yield_now().await;
        assert!(readers.iter().all(|r| r.is_finished()));
    }
}
