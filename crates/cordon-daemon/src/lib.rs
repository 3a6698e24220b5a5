//! `cordon daemon`: keeps the kernel's ruleset equal to what the policy says
//! for the containers Docker runs, as they come and go.
//!
//! - [`engine`]: the desired ruleset (a pure compile of policy + inventory +
//!   live set edits) and the way to it: element changes when only
//!   containers or networks changed, a whole atomic replacement otherwise.
//! - [`follow`]: Docker's event stream, subscribed before the first listing,
//!   applied container by container; reconnects when Docker restarts.
//! - [`admin`]: the root-only unix socket `cordon status` and `cordon set`
//!   talk to.
//! - [`status`]: what `cordon status` shows, from the daemon or directly
//!   from the kernel.
//! - [`sets`]: `cordon set` edits, shared by the daemon and the CLI.
//! - [`boot`]: the fail-closed ruleset installed at boot before Docker.
//! - [`dns`]: the DNS proxy's listeners and its view of the containers.
//! - [`l7`]: the L7 proxy's listeners and decision (rules with `match:
//!   server-name`).
//! - [`droplog`]: the packets the ruleset logs, as events naming the
//!   container; rate-limited; kept for `cordon logs`, `status`, `suggest`.
//! - [`metrics`]: the Prometheus text exposition.
//! - [`suggest`]: a policy file from what the drop log saw.
//! - [`observe`]: the drop log's reader, DNS names learned, metrics.
//! - [`repair`]: after a repair, ends the tracked connections the policy
//!   does not allow (opened while the tables were gone).
//! - [`directory`]: container addresses and interfaces to names and
//!   policies, for the DNS proxy and the drop log.
//!
//! Fail closed throughout: a container whose elements are not installed yet
//! is dropped by the ruleset's unknown-source and unknown-destination rules,
//! and the kernel keeps enforcing whatever was installed while the daemon is
//! down, restarting or cut off from Docker.

#![warn(missing_docs)]

pub mod admin;
pub mod boot;
pub mod directory;
pub mod dns;
pub mod droplog;
pub mod engine;
mod error;
pub mod follow;
pub mod l7;
pub mod memory;
pub mod metrics;
pub mod observe;
pub mod repair;
pub mod run;
pub mod sets;
pub mod status;
pub mod suggest;
pub mod watch;

pub use error::DaemonError;
pub use run::{run, Options};
