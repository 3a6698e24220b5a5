//! What the proxy reports about each connection, for logs and metrics.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::flight::FirstFlight;

/// One thing that happened to a proxied connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The decider passed it; the relay to `original_dst` is up.
    Passed {
        /// The client.
        source: SocketAddr,
        /// Where the client was going (and where the proxy connected).
        original_dst: SocketAddr,
        /// The server name or Host seen, if any.
        name: Option<String>,
    },
    /// The decider refused it (or the first flight was unreadable and the
    /// decider refused that); the client got a reset.
    Refused {
        /// The client.
        source: SocketAddr,
        /// Where the client was going.
        original_dst: SocketAddr,
        /// What the first flight was.
        first_flight: FirstFlight,
        /// The decider's reason.
        reason: String,
    },
    /// Reset at accept: a cap on concurrent connections was reached.
    OverCap {
        /// The client.
        source: SocketAddr,
        /// Which cap.
        cap: Cap,
    },
    /// Reset: the first flight did not arrive within its deadline.
    FirstFlightTimeout {
        /// The client.
        source: SocketAddr,
        /// Where the client was going.
        original_dst: SocketAddr,
    },
    /// Passed, but the original destination could not be reached in time;
    /// the client got a reset.
    ConnectFailed {
        /// The client.
        source: SocketAddr,
        /// Where the client was going.
        original_dst: SocketAddr,
        /// The connect error, one line.
        error: String,
    },
    /// A passed connection ended (both ways closed, or an error).
    Closed {
        /// The client.
        source: SocketAddr,
        /// Where the client was going.
        original_dst: SocketAddr,
        /// Bytes from the client to the server, the first flight included.
        up: u64,
        /// Bytes from the server to the client.
        down: u64,
    },
}

/// Where the proxy sends its [`Event`]s; called from the proxy's tasks, so
/// it must be quick (count, log, or queue).
pub type Observer = Arc<dyn Fn(Event) + Send + Sync>;

/// The cap an [`Event::OverCap`] connection met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// Its source had [`crate::Limits::per_source`] connections open.
    Source,
    /// The proxy had [`crate::Limits::total`] connections open.
    Total,
    /// The proxy's descriptor budget ([`crate::budget`]) had no room for
    /// its two sockets.
    Descriptors,
}
