//! A query rate limit per client address: a token bucket each.
//!
//! A client may send `burst` queries at once and `rate` a second after
//! that. A query over the limit is dropped before it is parsed, so a
//! container flooding the proxy costs it one receive and one table lookup
//! per query and never reaches the upstream. The table holds at most
//! [`MAX_CLIENTS`] buckets: when full, the buckets that have refilled
//! (their clients were quiet) are forgotten, and if none has, all are (a
//! forgotten client starts again with a full bucket).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// The most clients tracked at once.
pub const MAX_CLIENTS: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The limiter.
pub struct RateLimit {
    rate: f64,
    burst: f64,
    max_clients: usize,
    table: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimit {
    /// `rate` queries a second, bursts of `burst` (at least 1).
    pub fn new(rate: u32, burst: u32) -> RateLimit {
        Self::bounded(rate, burst, MAX_CLIENTS)
    }

    /// The same, tracking at most `max_clients` clients.
    pub fn bounded(rate: u32, burst: u32, max_clients: usize) -> RateLimit {
        RateLimit {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            max_clients: max_clients.max(1),
            table: Mutex::default(),
        }
    }

    /// True when a query from `src` at `now` is within its limit (it
    /// takes a token).
    pub fn admit(&self, src: IpAddr, now: Instant) -> bool {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() >= self.max_clients && !t.contains_key(&src) {
            let (rate, burst) = (self.rate, self.burst);
            t.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst
            });
            if t.len() >= self.max_clients {
                t.clear();
            }
        }
        let b = t.entry(src).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let refill = now.saturating_duration_since(b.last).as_secs_f64() * self.rate;
        b.tokens = (b.tokens + refill).min(self.burst);
        b.last = b.last.max(now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Clients tracked.
    pub fn clients(&self) -> usize {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn a_burst_then_the_rate_per_client() {
        let l = RateLimit::new(100, 200);
        let t0 = Instant::now();
        let ok = (0..1000).filter(|_| l.admit(ip(1), t0)).count();
        assert_eq!(ok, 200, "the burst");
        // Another client is not affected.
        assert!(l.admit(ip(2), t0));
        // After 0.5 s: 50 more.
        let t1 = t0 + Duration::from_millis(500);
        let ok = (0..1000).filter(|_| l.admit(ip(1), t1)).count();
        assert_eq!(ok, 50);
        // A steady 100/s over 10 s passes entirely; 1000/s passes ~100/s.
        let l = RateLimit::new(100, 200);
        let mut passed = 0;
        for i in 0..10_000u64 {
            if l.admit(ip(3), t0 + Duration::from_millis(i)) {
                passed += 1;
            }
        }
        assert!((1150..=1210).contains(&passed), "{passed}");
        // A quiet client gets its full burst back, never more.
        let t2 = t0 + Duration::from_secs(3600);
        let ok = (0..1000).filter(|_| l.admit(ip(3), t2)).count();
        assert_eq!(ok, 200);
    }

    #[test]
    fn the_table_is_bounded() {
        let l = RateLimit::bounded(10, 20, 100);
        let t0 = Instant::now();
        // A busy client, then many others.
        for _ in 0..20 {
            assert!(l.admit(ip(0), t0));
        }
        assert!(!l.admit(ip(0), t0));
        for i in 1..1000 {
            l.admit(ip(i), t0);
            assert!(l.clients() <= 100);
        }
        // Quiet clients (full buckets after a while) are forgotten first.
        let l = RateLimit::bounded(10, 20, 3);
        for i in 0..3 {
            l.admit(ip(i), t0);
        }
        for _ in 0..19 {
            l.admit(ip(0), t0);
        }
        let t1 = t0 + Duration::from_millis(150);
        assert!(l.admit(ip(9), t1));
        // ip(0) had an empty bucket: still tracked, 1.5 tokens refilled.
        assert!(l.admit(ip(0), t1));
        assert!(!l.admit(ip(0), t1));
        assert_eq!(l.clients(), 2);
    }
}
