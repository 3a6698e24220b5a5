//! cordon's L7 allowlist proxy (issue 17): a transparent TCP proxy for the
//! connections nft `redirect`s to it.
//!
//! - [`flight`]: the first flight's parser (a TLS ClientHello's server
//!   name, an HTTP/1.x request's Host), pure and total.
//! - [`origdst`]: the original destination of a redirected socket
//!   (`SO_ORIGINAL_DST`, `IP6T_SO_ORIGINAL_DST`).
//! - [`limits`]: the bounds on one connection and on concurrency.
//! - [`budget`]: the proxy's share of the process's descriptors.
//! - [`event`]: what the proxy reports for each connection.
//! - [`relay`]: the two-way relay, splice(2) through a pipe per direction,
//!   half-close honoured.
//! - [`proxy`]: the listeners, the accept loop, caps, the first-flight
//!   read and the decision (asked of a [`Decider`]: the crate knows
//!   nothing of policies).
//!
//! Everything read from a client may be hostile: malformed input is a
//! refusal, never a panic, and no connection holds resources beyond its
//! [`Limits`].

pub mod budget;
pub mod event;
pub mod flight;
pub mod limits;
pub mod origdst;
pub mod proxy;
pub mod relay;

pub use event::{Cap, Event, Observer};
pub use flight::{
    parse_first_flight, parse_first_flight_within, FirstFlight, Parse, FIRST_FLIGHT_MAX,
};
pub use limits::{raise_nofile_limit, Limits};
pub use origdst::original_dst;
pub use proxy::{Connection, Decider, Proxy, Verdict};
