//! The logic of cordon's DNS proxy (issue 4), kept free of sockets and the
//! kernel so it is tested without root and fuzzed:
//!
//! - [`allow`]: which DNS names a container's policy allowlists, and which
//!   of the compiler's timeout sets an answer for a name fills.
//! - [`answer`]: the addresses an upstream answer gives for the queried
//!   name, CNAME chains followed, with their lifetimes clamped.
//! - [`reply`]: reading a query's question and building the refusal sent
//!   for a name the policy does not allow.
//! - [`rebind`]: which addresses an answer may carry (DNS rebinding):
//!   public ones, plus what the name's rule also names.
//! - [`cache`]: upstream answers kept for their TTLs, served aged.
//! - [`limit`]: a query rate limit per client.
//! - [`recv`]: datagrams received in batches on a thread of their own.
//! - [`upstream`]: a pool of long-lived UDP sockets to each upstream,
//!   replies matched by a random id per query.
//! - [`proxy`]: the decision for one query (refuse, or forward and open
//!   the firewall before answering) and a UDP server loop; the daemon
//!   supplies the context (who sent it, how to open the firewall).
//!
//! Every parser here takes bytes from containers or upstream servers, which
//! may be hostile: malformed input is an error or `None`, never a panic.

#![warn(missing_docs)]

pub mod allow;
pub mod answer;
pub mod cache;
pub mod limit;
pub mod proxy;
pub mod rebind;
pub mod recv;
pub mod reply;
pub mod upstream;

pub use hickory_proto;
