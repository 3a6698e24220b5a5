//! Reaching the Docker daemon.

use std::time::Duration;

use bollard::Docker;

use crate::error::{describe, DockerError};

/// Where Docker listens when `DOCKER_HOST` is not set.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// How long the first exchange with the daemon may take before cordon gives
/// up on it (later calls use bollard's own two-minute timeout).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// Connects to the Docker daemon named by `DOCKER_HOST`, or to
/// [`DEFAULT_HOST`] when it is unset or empty.
///
/// See [`connect_to`] for what is checked.
pub async fn connect() -> Result<Docker, DockerError> {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.trim().is_empty() => connect_to(host.trim()).await,
        _ => connect_to(DEFAULT_HOST).await,
    }
}

/// Connects to the Docker daemon at `host`: `unix:///path`, a bare
/// absolute socket path, `tcp://HOST:PORT` or `http://HOST:PORT`.
///
/// The daemon is pinged and the API version is negotiated down to the
/// daemon's when it is older than bollard's, so the returned client works
/// with any daemon from API 1.41 (Docker 20.10) on. Errors are one line and
/// say what to do, e.g. `cannot reach Docker at /var/run/docker.sock:
/// connection refused (is dockerd running?)`.
pub async fn connect_to(host: &str) -> Result<Docker, DockerError> {
    let url = if host.starts_with('/') {
        format!("unix://{host}")
    } else {
        host.to_string()
    };
    let shown = shown_host(&url);
    let docker = Docker::connect_with_host(&url).map_err(|err| match err {
        bollard::errors::Error::UnsupportedURISchemeError { .. } => DockerError::BadHost {
            host: host.to_string(),
            reason: "unsupported scheme".into(),
        },
        other => unreachable(&shown, &other),
    })?;
    let handshake = async move {
        docker.ping().await?;
        docker.negotiate_version().await
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(docker)) => Ok(docker),
        Ok(Err(err)) => Err(unreachable(&shown, &err)),
        Err(_) => Err(DockerError::Unreachable {
            host: shown,
            reason: format!("no answer within {}s", HANDSHAKE_TIMEOUT.as_secs()),
            hint: "is dockerd responding?".into(),
        }),
    }
}

/// The host as the operator knows it: the socket path for unix sockets.
fn shown_host(url: &str) -> String {
    url.strip_prefix("unix://").unwrap_or(url).to_string()
}

fn unreachable(shown: &str, err: &bollard::errors::Error) -> DockerError {
    let (reason, hint) = describe(err);
    DockerError::Unreachable {
        host: shown.to_string(),
        reason,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("cordon-docker-{tag}-{}.sock", std::process::id()))
    }

    #[tokio::test]
    async fn missing_socket_says_what_to_do() {
        let path = scratch("missing");
        let _ = std::fs::remove_file(&path);
        let err = connect_to(&format!("unix://{}", path.display()))
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "cannot reach Docker at {}: no such socket (is dockerd running? set DOCKER_HOST if it listens elsewhere)",
                path.display()
            )
        );
    }

    #[tokio::test]
    async fn refused_socket_says_what_to_do() {
        // A socket file nobody listens on any more: connect() is refused.
        let path = scratch("refused");
        let _ = std::fs::remove_file(&path);
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let err = connect_to(path.to_str().unwrap()).await.unwrap_err();
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            err.to_string(),
            format!(
                "cannot reach Docker at {}: connection refused (is dockerd running?)",
                path.display()
            )
        );
        assert!(!err.to_string().contains('\n'));
    }

    #[tokio::test]
    async fn unsupported_scheme_is_named() {
        let err = connect_to("ftp://example").await.unwrap_err().to_string();
        assert_eq!(
            err,
            "cannot use DOCKER_HOST=ftp://example: unsupported scheme (use unix:///path/to/docker.sock or tcp://HOST:PORT)"
        );
    }

    #[test]
    fn socket_path_is_shown_bare() {
        assert_eq!(shown_host("unix:///run/docker.sock"), "/run/docker.sock");
        assert_eq!(shown_host("tcp://10.0.0.1:2375"), "tcp://10.0.0.1:2375");
    }
}
