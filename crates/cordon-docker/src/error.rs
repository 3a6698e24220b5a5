//! The errors of this crate, each a single line that says what to do.

use std::error::Error as StdError;
use std::io;

/// Why talking to Docker (or to the host's kernel about Docker's
/// interfaces) failed.
///
/// Every message is one line and ends with what the operator can do.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The daemon could not be reached or did not answer.
    #[error("cannot reach Docker at {host}: {reason} ({hint})")]
    Unreachable {
        /// The socket path or URL that was tried.
        host: String,
        /// What went wrong, e.g. `connection refused`.
        reason: String,
        /// What to do about it, e.g. `is dockerd running?`.
        hint: String,
    },
    /// `DOCKER_HOST` names an address this build cannot use.
    #[error("cannot use DOCKER_HOST={host}: {reason} (use unix:///path/to/docker.sock or tcp://HOST:PORT)")]
    BadHost {
        /// The value of `DOCKER_HOST`.
        host: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// An API call failed after the daemon had been reached.
    #[error("cannot {action}: {reason} ({hint})")]
    Api {
        /// What cordon was doing, e.g. `list containers`.
        action: String,
        /// What Docker (or the connection) said.
        reason: String,
        /// What to do about it.
        hint: String,
    },
    /// The host's own network interfaces could not be listed.
    #[error("cannot list the host's network interfaces: {reason} (is this a Linux host with rtnetlink?)")]
    HostLinks {
        /// The kernel's error.
        reason: String,
    },
}

impl DockerError {
    /// An [`DockerError::Api`] error for a failed call.
    pub(crate) fn api(action: impl Into<String>, err: &bollard::errors::Error) -> Self {
        let (reason, hint) = describe(err);
        DockerError::Api {
            action: action.into(),
            reason,
            hint,
        }
    }
}

/// The HTTP status of an error Docker answered with, if it is one.
pub fn status_of(err: &bollard::errors::Error) -> Option<u16> {
    match err {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// A one-line reason and a hint for a bollard error.
///
/// The transport errors bollard returns wrap the `io::Error` that says what
/// really happened (refused, permission denied, …); the chain is searched
/// for it.
pub(crate) fn describe(err: &bollard::errors::Error) -> (String, String) {
    use bollard::errors::Error as E;
    const RUNNING: &str = "is dockerd running?";
    match err {
        E::SocketNotFoundError(_) => (
            "no such socket".into(),
            "is dockerd running? set DOCKER_HOST if it listens elsewhere".into(),
        ),
        E::DockerResponseServerError {
            status_code,
            message,
        } => (
            one_line(&format!("Docker answered {status_code}: {message}")),
            "see dockerd's log".into(),
        ),
        E::RequestTimeoutError => ("timed out".into(), "is dockerd responding?".into()),
        E::APIVersionParseError {} => (
            "its API version could not be read".into(),
            "is DOCKER_HOST a Docker daemon?".into(),
        ),
        _ => {
            // `IOError` is `#[error(transparent)]`: its `source()` skips the
            // io::Error itself, so it is taken directly.
            let io = match err {
                E::IOError { err } => Some(err),
                _ => find_io_error(err),
            };
            if let Some(io) = io {
                let (reason, hint) = match io.kind() {
                    io::ErrorKind::ConnectionRefused => ("connection refused".into(), RUNNING),
                    io::ErrorKind::NotFound => ("no such socket".into(), RUNNING),
                    io::ErrorKind::PermissionDenied => (
                        "permission denied".into(),
                        "run as root or as a member of the docker group",
                    ),
                    io::ErrorKind::TimedOut => ("timed out".into(), "is dockerd responding?"),
                    _ => (one_line(&io.to_string()), RUNNING),
                };
                return (reason, hint.into());
            }
            (one_line(&innermost(err).to_string()), RUNNING.into())
        }
    }
}

/// The first `io::Error` in an error's source chain.
fn find_io_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a io::Error> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io);
        }
        cur = e.source();
    }
    None
}

/// The last error of a source chain: usually the most precise.
fn innermost<'a>(err: &'a (dyn StdError + 'static)) -> &'a (dyn StdError + 'static) {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur
}

/// Collapses whitespace runs (newlines included) so a message stays on one
/// line.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_error_is_one_line() {
        let err = bollard::errors::Error::DockerResponseServerError {
            status_code: 500,
            message: "boom\nsecond line".into(),
        };
        let msg = DockerError::api("list containers", &err).to_string();
        assert_eq!(
            msg,
            "cannot list containers: Docker answered 500: boom second line (see dockerd's log)"
        );
        assert_eq!(status_of(&err), Some(500));
    }

    #[test]
    fn io_error_is_found_in_chain() {
        let err = bollard::errors::Error::from(io::Error::from(io::ErrorKind::PermissionDenied));
        let (reason, hint) = describe(&err);
        assert_eq!(reason, "permission denied");
        assert!(hint.contains("docker group"), "{hint}");
    }
}
