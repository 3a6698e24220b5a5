//! cordon as a Docker authorization plugin: dockerd asks it about every
//! API call (`--authorization-plugin=cordon`), and it refuses to create a
//! container, connect one to a network, or run a privileged exec when the
//! container's cordon policy restricts something cordon could then not
//! enforce (host network, macvlan and other non-bridge drivers, another
//! container's namespace under another policy, capabilities that reach
//! outside the container's network namespace).
//!
//! - [`request`]: the plugin protocol and the API calls cordon judges;
//! - [`json`]: JSON read the way dockerd reads it (case-insensitive keys);
//! - [`decide`]: the pure decision;
//! - [`serve`]: the unix-socket server.
//!
//! See docs/authz.md.

#![warn(missing_docs)]

pub mod decide;
pub mod json;
pub mod request;
pub mod serve;

pub use decide::{decide, needs, Decision, Known, Needs};
pub use request::{action, Action, PluginRequest, PluginResponse};
