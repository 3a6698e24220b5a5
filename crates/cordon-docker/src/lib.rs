//! Builds cordon's [`Inventory`](cordon_inventory::Inventory) from the
//! Docker Engine API and the host's network namespaces.
//!
//! - [`connect()`] reaches the Docker daemon (`DOCKER_HOST` or the default
//!   socket), negotiates the API version and pings it.
//! - [`collect()`] lists the networks and the running containers, inspects
//!   them, and finds each endpoint's host-side veth with [`veth`].
//! - [`dockerd`] finds the dockerd cordon talks to and reads its
//!   configuration (command line, `daemon.json`).
//! - [`masquerade`] decides from it whether the daemon installs its own
//!   NAT (`--iptables=false` means it does not, and cordon masquerades).
//! - [`netlink`] is the small `RTM_GETLINK` / `RTM_GETNSID` client that
//!   [`veth`] uses.
//!
//! A container's identity is its host-side veth port on the bridge (see
//! `docs/design.md`, "Identity"): [`Endpoint::host_iface`] is found from the
//! kernel's view of the links, never from what Docker or the container
//! claims alone.
//!
//! [`Endpoint::host_iface`]: cordon_inventory::Endpoint::host_iface

#![warn(missing_docs)]

pub mod connect;
pub mod dockerd;
pub mod error;
mod images;
pub mod inventory;
pub mod masquerade;
pub mod netlink;
pub mod single;
pub mod veth;

pub use connect::{connect, connect_to};
pub use error::DockerError;
pub use inventory::collect;
