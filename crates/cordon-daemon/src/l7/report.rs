//! What the L7 proxy reports, turned into drop-log events (`cordon logs`,
//! direction `l7`, with the name seen) and metrics.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cordon_l7::{Cap, Connection, Event, Observer};
use tracing::warn;

use super::decide::kind_of;
use crate::directory::Shared;
use crate::droplog;
use crate::observe::Observe;

/// The L7 proxy's counters, for the metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections passed and relayed.
    pub passed: AtomicU64,
    /// Connections refused, by reason kind (`name`, `address`, `no-name`,
    /// `ech`, `not-tls-or-http`, `no-rule`, `unknown-source`, `timeout`,
    /// `connect-failed`, `other`).
    pub refused: Mutex<BTreeMap<String, u64>>,
    /// Connections reset at accept: their container (or the proxy) was at
    /// its cap.
    pub over_cap: AtomicU64,
    /// Connections a policy in audit mode would have refused.
    pub audited: AtomicU64,
    /// Connections being relayed now.
    pub live: AtomicI64,
}

impl Counters {
    fn refuse(&self, kind: &str) {
        *self
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind.to_string())
            .or_default() += 1;
    }

    /// The refusals so far, by kind.
    pub fn refusals(&self) -> BTreeMap<String, u64> {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// A drop-log event of direction `l7`.
fn event(
    dir: &Shared,
    source: SocketAddr,
    dst: Option<SocketAddr>,
    verdict: &str,
    name: Option<&str>,
    reason: &str,
) -> droplog::Event {
    let src = source.ip().to_canonical();
    let who = dir
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .by_addr
        .get(&src)
        .cloned();
    let (time, unix_ms) = droplog::stamp(std::time::SystemTime::now());
    droplog::Event {
        time,
        unix_ms,
        container: who.as_ref().map(|c| c.container.clone()),
        id: who.as_ref().map(|c| c.id.clone()),
        policy: who.map(|c| c.policy).unwrap_or_else(|| "-".into()),
        direction: "l7".into(),
        verdict: verdict.into(),
        reason: Some(reason.to_string()),
        proto: "tcp".into(),
        src: Some(src),
        dst: dst.map(|d| d.ip().to_canonical()),
        sport: Some(source.port()),
        dport: dst.map(|d| d.port()),
        bytes: 0,
        name: name.map(str::to_string),
        suppressed: 0,
    }
}

/// A connection an audit-mode policy would have refused: logged as `audit`
/// (it passes).
pub fn audited(obs: &Observe, dir: &Shared, conn: &Connection, reason: &str) {
    obs.l7.audited.fetch_add(1, Ordering::Relaxed);
    obs.record(event(
        dir,
        conn.source,
        Some(conn.original_dst),
        "audit",
        conn.first_flight.name(),
        reason,
    ));
}

/// The proxy's observer: counts every event, logs refusals, caps and
/// timeouts in the drop log.
pub fn observer(obs: Arc<Observe>, dir: Shared) -> Observer {
    Arc::new(move |e: Event| {
        let c = &obs.l7;
        match e {
            Event::Passed { .. } => {
                c.passed.fetch_add(1, Ordering::Relaxed);
                c.live.fetch_add(1, Ordering::Relaxed);
            }
            Event::Closed { .. } => {
                c.live.fetch_sub(1, Ordering::Relaxed);
            }
            Event::Refused {
                source,
                original_dst,
                first_flight,
                reason,
            } => {
                c.refuse(kind_of(&reason));
                obs.record(event(
                    &dir,
                    source,
                    Some(original_dst),
                    "refused",
                    first_flight.name(),
                    &reason,
                ));
            }
            Event::OverCap { source, cap } => {
                c.over_cap.fetch_add(1, Ordering::Relaxed);
                obs.record(event(
                    &dir,
                    source,
                    None,
                    "refused",
                    None,
                    match cap {
                        Cap::Source => "over-cap: the container has as many proxied connections open as l7.max_connections_per_container allows",
                        Cap::Total => "over-cap: the L7 proxy has as many connections open as it allows in all",
                        Cap::Descriptors => "over-cap: the L7 proxy's share of the daemon's open-file limit is in use",
                    },
                ));
            }
            Event::FirstFlightTimeout {
                source,
                original_dst,
            } => {
                c.refuse("timeout");
                obs.record(event(
                    &dir,
                    source,
                    Some(original_dst),
                    "refused",
                    None,
                    "timeout: no complete first flight in time",
                ));
            }
            Event::ConnectFailed {
                source,
                original_dst,
                error,
            } => {
                c.refuse("connect-failed");
                warn!(target: "cordon::l7", %source, %original_dst, "L7 proxy: {error}");
                obs.record(event(
                    &dir,
                    source,
                    Some(original_dst),
                    "refused",
                    None,
                    &format!("connect-failed: {error}"),
                ));
            }
        }
    })
}
