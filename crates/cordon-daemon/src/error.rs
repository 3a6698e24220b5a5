//! [`DaemonError`]: what can go wrong in the daemon and in the admin
//! socket's client, each cause a variant. Every message is one line that
//! names what failed: the file, the socket, the address, the port or the
//! command.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use cordon_dataplane::{InstallError, NftError, StateError};
use cordon_docker::DockerError;

/// A daemon error, one line.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A file cordon reads or writes (the boot ruleset, its directory).
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// nftables refused the saved boot ruleset.
    #[error("{}: {source}", path.display())]
    BootRuleset {
        /// The boot ruleset's file.
        path: PathBuf,
        /// What nft said.
        source: NftError,
    },
    /// The daemon cannot create or use its admin socket.
    #[error("admin socket {}: {source}", path.display())]
    AdminSocket {
        /// The socket's path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Something that is not a socket is at the admin socket's path.
    #[error("admin socket {}: exists and is not a socket; remove it", path.display())]
    NotASocket {
        /// The socket's path.
        path: PathBuf,
    },
    /// Another daemon answers on the admin socket.
    #[error("admin socket {}: another cordon daemon is running", path.display())]
    AlreadyRunning {
        /// The socket's path.
        path: PathBuf,
    },
    /// A client cannot talk to the daemon over its socket.
    #[error("{}: {source}", path.display())]
    Talk {
        /// The socket's path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The daemon's answer is not a response.
    #[error("{}: unreadable answer from the daemon: {source}", path.display())]
    Unreadable {
        /// The socket's path.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// The daemon closed the connection before it answered.
    #[error("{}: the daemon closed the connection", path.display())]
    Closed {
        /// The socket's path.
        path: PathBuf,
    },
    /// `--metrics` names an address other hosts could reach.
    #[error("--metrics {0}: only a loopback address (127.0.0.1, ::1) is allowed; the metrics name every container")]
    MetricsNotLoopback(SocketAddr),
    /// `--metrics`'s address cannot be bound.
    #[error("--metrics {addr}: {source}")]
    MetricsBind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The DNS proxy's port cannot be bound.
    #[error("DNS proxy on port {}: {}", cordon_ruleset::DNS_PROXY_PORT, .0)]
    DnsProxy(#[source] io::Error),
    /// The L7 proxy's port cannot be bound.
    #[error("L7 proxy on port {}: {}", cordon_ruleset::L7_PROXY_PORT, .0)]
    L7Proxy(#[source] io::Error),
    /// The daemon cannot set itself up: its runtime, a thread, a signal
    /// handler, the nftables monitor.
    #[error("cannot {what}: {source}")]
    Setup {
        /// What it tried (`start the async runtime`, `catch SIGTERM`, ...).
        what: &'static str,
        /// Why.
        source: io::Error,
    },
    /// Docker cannot be reached, listed or inspected.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// nftables cannot be run or read.
    #[error(transparent)]
    Nft(#[from] NftError),
    /// cordon's state directory cannot be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// br_netfilter cannot be switched on, or its record kept.
    #[error(transparent)]
    Install(#[from] InstallError),
    /// The kernel refused an update of cordon's tables; the previous
    /// ruleset stays.
    #[error("the kernel refused the update; the previous ruleset stays: {0}")]
    Refused(String),
    /// The policy to install cannot be loaded (the loader's own one-line
    /// message, naming the file).
    #[error("{0}")]
    Policy(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin;

    /// What a user sees is one line naming the socket and the cause.
    #[test]
    fn admin_socket_errors_name_the_path_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-socket");
        std::fs::write(&file, "x").unwrap();
        let e = admin::bind(&file).unwrap_err();
        assert!(matches!(e, DaemonError::NotASocket { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "admin socket {}: exists and is not a socket; remove it",
                file.display()
            )
        );
        // A path under a regular file: the client's error names it.
        let under = file.join("cordon.sock");
        let e = admin::call(&under, &admin::Request::Status).unwrap_err();
        assert!(matches!(e, DaemonError::Talk { .. }), "{e:?}");
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("{}: ", under.display())) && !shown.contains('\n'),
            "{shown}"
        );
    }

    #[test]
    fn setup_and_dns_errors_say_what_failed() {
        let e = DaemonError::Setup {
            what: "catch SIGTERM",
            source: io::Error::other("no"),
        };
        assert_eq!(e.to_string(), "cannot catch SIGTERM: no");
        let e = DaemonError::DnsProxy(io::Error::other("in use"));
        assert_eq!(
            e.to_string(),
            format!(
                "DNS proxy on port {}: in use",
                cordon_ruleset::DNS_PROXY_PORT
            )
        );
    }
}
