//! The plugin's HTTP server on a unix socket in `/run/docker/plugins`,
//! where dockerd finds plugins by name (`cordon.sock` is plugin `cordon`).

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bytes::Bytes;
use cordon_inventory::{Container, Network};
use cordon_policy::PolicyFile;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::decide::{decide, needs, Decision, Known, Needs};
use crate::request::{action, PluginRequest, PluginResponse};

/// Where dockerd looks for the socket of plugin `cordon`.
pub const DEFAULT_SOCKET: &str = "/run/docker/plugins/cordon.sock";

/// The content type of the plugin protocol.
const CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1+json";

/// dockerd sends request bodies up to 1 MiB, base64 (4/3) plus the rest.
const MAX_BODY: usize = 2 << 20;

/// How long the Docker look-ups of one decision may take before the
/// request is refused.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// How the plugin runs.
pub struct Options {
    /// The socket to listen on.
    pub socket: PathBuf,
    /// The policy file.
    pub policy: PolicyFile,
}

struct State {
    policy: PolicyFile,
    /// Connected on first need: dockerd activates the plugin before it
    /// answers its API, so the plugin cannot wait for Docker at start.
    docker: tokio::sync::OnceCell<Docker>,
}

/// Serves until SIGINT or SIGTERM, then removes the socket.
pub async fn serve(opts: Options) -> Result<(), String> {
    if let Some(dir) = opts.socket.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&opts.socket);
    let listener = tokio::net::UnixListener::bind(&opts.socket)
        .map_err(|e| format!("cannot listen on {}: {e}", opts.socket.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&opts.socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", opts.socket.display()))?;
    tracing::info!(
        "cordon authorization plugin listening on {}",
        opts.socket.display()
    );
    let state = Arc::new(State {
        policy: opts.policy,
        docker: tokio::sync::OnceCell::new(),
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    loop {
        tokio::select! {
            c = listener.accept() => if let Ok((s, _)) = c {
                let state = state.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(state.clone(), req));
                    if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(s), svc).await {
                        tracing::debug!("plugin connection: {e}");
                    }
                });
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    let _ = std::fs::remove_file(&opts.socket);
    Ok(())
}

fn reply(code: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .header("content-type", CONTENT_TYPE)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

fn answer(r: &PluginResponse) -> Response<Full<Bytes>> {
    reply(
        StatusCode::OK,
        serde_json::to_string(r).expect("serialises"),
    )
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(answer(&deny(format!(
                "the request is unreadable ({e}); refused"
            ))))
        }
    };
    Ok(match path.as_str() {
        "/Plugin.Activate" => reply(StatusCode::OK, r#"{"Implements":["authz"]}"#.into()),
        "/AuthZPlugin.AuthZReq" => answer(&authorize(&state, &body).await),
        // Responses are never judged.
        "/AuthZPlugin.AuthZRes" => answer(&PluginResponse {
            allow: true,
            msg: String::new(),
            err: String::new(),
        }),
        _ => reply(
            StatusCode::NOT_FOUND,
            r#"{"Err":"cordon implements only authz"}"#.into(),
        ),
    })
}

fn deny(msg: String) -> PluginResponse {
    PluginResponse {
        allow: false,
        msg,
        err: String::new(),
    }
}

/// Judges one `AuthZReq`: unreadable requests cordon judges, and failed
/// look-ups, are refused (fail closed); everything else is decided by
/// [`decide`].
async fn authorize(state: &State, body: &[u8]) -> PluginResponse {
    let allow = PluginResponse {
        allow: true,
        msg: String::new(),
        err: String::new(),
    };
    let req: PluginRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return deny(format!("cannot read dockerd's request ({e}); refused")),
    };
    let act = match action(&req) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(uri = %req.uri, "refused: {}", e.0);
            return deny(format!("{}; refused", e.0));
        }
    };
    let n = needs(&act);
    if n == Needs::default() && act == crate::request::Action::Other {
        return allow;
    }
    let lookup = async {
        let docker = state
            .docker
            .get_or_try_init(cordon_docker::connect)
            .await
            .map_err(|e| e.to_string())?;
        look_up(docker, &n).await
    };
    let known = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
        Ok(Ok(k)) => k,
        Ok(Err(e)) => return deny(format!("{e}; refused")),
        Err(_) => return deny("Docker did not answer cordon's look-up in time; refused".into()),
    };
    match decide(&act, &state.policy, &known) {
        Decision::Allow => allow,
        Decision::Deny(msg) => {
            tracing::warn!(uri = %req.uri, user = %req.user, "refused: {msg}");
            deny(msg)
        }
    }
}

/// Asks Docker about every reference in `n`; a 404 leaves it out of
/// [`Known`], any other error fails the decision.
async fn look_up(docker: &Docker, n: &Needs) -> Result<Known, String> {
    let mut known = Known::default();
    for r in &n.networks {
        match docker
            .inspect_network(r, None::<bollard::query_parameters::InspectNetworkOptions>)
            .await
        {
            Ok(net) => {
                known.networks.insert(
                    r.clone(),
                    Network {
                        id: net.id.unwrap_or_default(),
                        name: net.name.unwrap_or_default(),
                        driver: net.driver.unwrap_or_default(),
                        ..Network::default()
                    },
                );
            }
            Err(e) if cordon_docker::error::status_of(&e) == Some(404) => {}
            Err(e) => return Err(format!("cannot inspect network {r}: {e}")),
        }
    }
    for r in &n.containers {
        match docker.inspect_container(r, None).await {
            Ok(c) => {
                let config = c.config.unwrap_or_default();
                known.containers.insert(
                    r.clone(),
                    Container {
                        id: c.id.unwrap_or_default(),
                        name: c
                            .name
                            .unwrap_or_default()
                            .trim_start_matches('/')
                            .to_string(),
                        image: config.image.unwrap_or_default(),
                        labels: config.labels.unwrap_or_default().into_iter().collect(),
                        network_mode: c
                            .host_config
                            .and_then(|h| h.network_mode)
                            .unwrap_or_default(),
                        ..Container::default()
                    },
                );
            }
            Err(e) if cordon_docker::error::status_of(&e) == Some(404) => {}
            Err(e) => return Err(format!("cannot inspect container {r}: {e}")),
        }
    }
    Ok(known)
}
