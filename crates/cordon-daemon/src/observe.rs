//! What the daemon sees, shared between its tasks: the drop log's
//! [`Recorder`], the stream of shown events for `cordon logs -f`, the
//! names the DNS proxy learned (for `cordon suggest`), and the metrics the
//! tasks update as they go.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use cordon_dataplane::nflog::{Logged, NflogReader};
use cordon_inventory::Shown;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use tokio::sync::{broadcast, mpsc};
use tracing::{info, warn};

use crate::directory::Shared;
use crate::droplog::{self, Event, Recorder};

/// Names learned from DNS answers, kept for suggestions.
pub const NAMES: usize = 10_000;

/// The daemon's observations.
pub struct Observe {
    /// The drop log.
    pub recorder: Mutex<Recorder>,
    /// Shown events, for followers.
    pub events: broadcast::Sender<Event>,
    /// Address → the DNS name whose answer gave it.
    pub names: Mutex<HashMap<IpAddr, String>>,
    /// DNS answers released.
    pub dns_answers: AtomicU64,
    /// DNS queries refused.
    pub dns_refusals: AtomicU64,
    /// Addresses taken out of DNS answers (rebinding protection).
    pub dns_stripped: AtomicU64,
    /// DNS queries dropped over their container's rate limit.
    pub dns_rate_limited: AtomicU64,
    /// DNS answers served from the proxy's cache.
    pub dns_cache_hits: AtomicU64,
    /// DNS queries for allowlisted names asked upstream.
    pub dns_upstream_queries: AtomicU64,
    /// Seconds a reconcile took.
    pub reconcile_seconds: Histogram,
    /// Seconds from Docker's event to the policy live.
    pub event_lag_seconds: Histogram,
    /// Log lines the kernel could not deliver, or the reader lost.
    pub log_lost: AtomicU64,
    /// The L7 proxy's counters.
    pub l7: crate::l7::report::Counters,
}

impl Default for Observe {
    fn default() -> Self {
        Observe {
            recorder: Default::default(),
            events: broadcast::channel(1024).0,
            names: Default::default(),
            dns_answers: AtomicU64::new(0),
            dns_refusals: AtomicU64::new(0),
            dns_stripped: AtomicU64::new(0),
            dns_rate_limited: AtomicU64::new(0),
            dns_cache_hits: AtomicU64::new(0),
            dns_upstream_queries: AtomicU64::new(0),
            reconcile_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            event_lag_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            log_lost: AtomicU64::new(0),
            l7: Default::default(),
        }
    }
}

impl Observe {
    /// Records an event: into the recorder, and when shown, to followers
    /// and the daemon's log.
    pub fn record(&self, e: Event) {
        let shown = self
            .recorder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(e, Instant::now());
        if let Some(e) = shown {
            self.show(e);
        }
    }

    fn show(&self, e: Event) {
        info!(
            target: "cordon::drop",
            container = e.container.as_deref().unwrap_or("-"),
            id = e.id.as_deref().unwrap_or("-"),
            policy = %Shown(&e.policy),
            direction = %Shown(&e.direction),
            verdict = %Shown(&e.verdict),
            proto = %Shown(&e.proto),
            src = ?e.src,
            dst = ?e.dst,
            dport = ?e.dport,
            name = e.name.as_deref().unwrap_or("-"),
            suppressed = e.suppressed,
            "{}", e.verdict
        );
        let _ = self.events.send(e);
    }

    /// Emits the summaries of suppressed events that are due.
    pub fn flush(&self) {
        let due = self
            .recorder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .flush(Instant::now());
        for e in due {
            self.show(e);
        }
    }

    /// Notes that `addr` came from an answer for `name`.
    pub fn learned(&self, addr: IpAddr, name: &str) {
        let mut n = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if n.get(&addr).is_some_and(|known| known == name) {
            return;
        }
        if n.len() >= NAMES && !n.contains_key(&addr) {
            n.clear();
        }
        n.insert(addr, name.to_string());
    }

    /// The names learned so far.
    pub fn names(&self) -> HashMap<IpAddr, String> {
        self.names.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Starts reading the ruleset's log group: a thread reads the kernel, a
/// task turns packets into events. Without the group (another reader holds
/// it) the daemon runs on, without a drop log, and says so.
pub fn start(obs: Arc<Observe>, dir: Shared) {
    let (tx, mut rx) = mpsc::channel::<Logged>(4096);
    let reader = NflogReader::bind(cordon_ruleset::NFLOG_GROUP);
    let mut reader = match reader {
        Ok(r) => r,
        Err(e) => {
            warn!("no drop log: {e}");
            return;
        }
    };
    let lost = obs.clone();
    let spawned = std::thread::Builder::new()
        .name("cordon-nflog".into())
        .spawn(move || loop {
            match reader.read() {
                Ok(l) => {
                    if tx.blocking_send(l).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    lost.log_lost.fetch_add(1, Ordering::Relaxed);
                    warn!("drop log: {e}; reading on");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
    if let Err(e) = spawned {
        warn!("no drop log: cannot start a thread: {e}");
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                l = rx.recv() => {
                    let Some(l) = l else { return };
                    let mut batch = vec![l];
                    while let Ok(more) = rx.try_recv() {
                        batch.push(more);
                        if batch.len() >= 256 {
                            break;
                        }
                    }
                    let events: Vec<Event> = {
                        let d = dir.read().unwrap_or_else(|p| p.into_inner());
                        batch
                            .iter()
                            .filter_map(|l| droplog::event(l, &d, droplog::ifname, SystemTime::now()))
                            .collect()
                    };
                    for e in events {
                        obs.record(e);
                    }
                }
                _ = tick.tick() => obs.flush(),
            }
        }
    });
    info!(
        group = cordon_ruleset::NFLOG_GROUP,
        "drop log: reading the ruleset's log group"
    );
}
