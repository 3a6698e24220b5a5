//! The admin socket: a root-only unix socket (mode 0600 in a 0700
//! directory; peers other than root are refused by their credentials) over
//! which `cordon status` and `cordon set` reach a running daemon. There is
//! no TCP listener.
//!
//! The protocol is one JSON request per connection, one JSON line back:
//! `{"cmd":"status"}` or `{"cmd":"set","name":"office","op":"add","addrs":["203.0.113.7"]}`.
//! `{"cmd":"logs","follow":true}` is the exception: after the response
//! line, one JSON line per new event, until either side closes.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream as StdStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::sets::Op;
use crate::status::Status;
use crate::DaemonError;

/// Where the daemon listens unless `--socket` or `$CORDON_SOCKET` says
/// otherwise.
pub const DEFAULT_SOCKET: &str = "/run/cordon/cordon.sock";

/// The socket path: `$CORDON_SOCKET`, else [`DEFAULT_SOCKET`].
pub fn socket_path() -> PathBuf {
    std::env::var_os("CORDON_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

/// A request to the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    /// `cordon status`.
    Status,
    /// `cordon logs`: the last `limit` events; with `follow`, the
    /// connection stays open and every new event follows, one JSON line
    /// each, after the response line.
    Logs {
        /// How many recent events.
        #[serde(default = "default_limit")]
        limit: usize,
        /// Keep streaming.
        #[serde(default)]
        follow: bool,
    },
    /// The metrics, in the Prometheus text format.
    Metrics,
    /// `cordon suggest`: a policy file from what was seen since
    /// `since_ms` (milliseconds since the epoch; 0 for everything).
    Suggest {
        /// Only flows last seen at or after this.
        #[serde(default)]
        since_ms: u64,
    },
    /// The policy in force: its path, content, digest and since when.
    Policy,
    /// `cordon reload`: re-read the daemon's policy file, or `path`, which
    /// then becomes the daemon's file. An invalid file changes nothing.
    Reload {
        /// The new policy file (absolute), if not the daemon's own.
        #[serde(default)]
        path: Option<String>,
    },
    /// `cordon set`.
    Set {
        /// The set's name.
        name: String,
        /// What to do.
        op: Op,
        /// Addresses or CIDRs (empty for `list`).
        #[serde(default)]
        addrs: Vec<String>,
    },
}

fn default_limit() -> usize {
    100
}

/// The daemon's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// 0 on success, else the exit code the CLI should use (1 a user
    /// error, 2 an environment problem).
    pub code: u8,
    /// One line for people.
    #[serde(default)]
    pub message: String,
    /// For `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// For `set`: the set's members after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
    /// For `logs`: the recent events, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<crate::droplog::Event>>,
    /// For `metrics`: the Prometheus text exposition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    /// For `policy` and `reload`: the policy in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<cordon_dataplane::InForce>,
    /// For `suggest`: the suggested policy file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

impl Response {
    /// A failure with an exit code.
    pub fn error(code: u8, message: impl Into<String>) -> Self {
        Response {
            code,
            message: message.into(),
            ..Default::default()
        }
    }
}

/// Connects to the daemon at `path`; `None` when no daemon listens there
/// (no socket, or a stale one).
fn connect(path: &Path) -> Result<Option<StdStream>, DaemonError> {
    match StdStream::connect(path) {
        Ok(s) => Ok(Some(s)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            Ok(None)
        }
        Err(source) => Err(DaemonError::Talk {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Sends one request to the daemon at `path`. `Ok(None)` when no daemon
/// listens there (no socket, or a stale one).
pub fn call(path: &Path, req: &Request) -> Result<Option<Response>, DaemonError> {
    let Some(mut s) = connect(path)? else {
        return Ok(None);
    };
    let io = |source| DaemonError::Talk {
        path: path.to_path_buf(),
        source,
    };
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(io)?;
    let mut line = serde_json::to_string(req).expect("request serialises");
    line.push('\n');
    s.write_all(line.as_bytes()).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer).map_err(io)?;
    serde_json::from_str(&answer)
        .map(Some)
        .map_err(|source| DaemonError::Unreadable {
            path: path.to_path_buf(),
            source,
        })
}

/// Sends `logs` with `follow` and calls `each` for the response and then
/// for every event the daemon streams, until the daemon stops or `each`
/// returns false. `Ok(false)` when no daemon listens.
pub fn follow(
    path: &Path,
    limit: usize,
    mut each: impl FnMut(Result<Response, crate::droplog::Event>) -> bool,
) -> Result<bool, DaemonError> {
    let Some(s) = connect(path)? else {
        return Ok(false);
    };
    let io = |source| DaemonError::Talk {
        path: path.to_path_buf(),
        source,
    };
    let mut line = serde_json::to_string(&Request::Logs {
        limit,
        follow: true,
    })
    .expect("request serialises");
    line.push('\n');
    (&s).write_all(line.as_bytes()).map_err(io)?;
    let mut lines = BufReader::new(s).lines();
    let Some(first) = lines.next() else {
        return Err(DaemonError::Closed {
            path: path.to_path_buf(),
        });
    };
    let resp: Response =
        serde_json::from_str(&first.map_err(io)?).map_err(|source| DaemonError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
    if !each(Ok(resp)) {
        return Ok(true);
    }
    for l in lines {
        let Ok(e) = serde_json::from_str::<crate::droplog::Event>(&l.map_err(io)?) else {
            continue;
        };
        if !each(Err(e)) {
            break;
        }
    }
    Ok(true)
}

/// A request with the channel its answer goes back on.
pub type Pending = (Request, oneshot::Sender<Response>);

/// Binds the socket: creates its directory (0700), removes a stale socket
/// (one no daemon answers on; anything that is not a socket is refused),
/// and restricts it to root (0600).
pub fn bind(path: &Path) -> Result<UnixListener, DaemonError> {
    let err = |source| DaemonError::AdminSocket {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(DaemonError::NotASocket {
                path: path.to_path_buf(),
            });
        }
        if StdStream::connect(path).is_ok() {
            return Err(DaemonError::AlreadyRunning {
                path: path.to_path_buf(),
            });
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(listener)
}

/// Accepts connections forever. `logs` is answered here from `obs`
/// (followers stream from it); every other request goes to `tx`.
pub async fn serve(
    listener: UnixListener,
    tx: mpsc::Sender<Pending>,
    obs: std::sync::Arc<crate::observe::Observe>,
) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!("admin socket: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let tx = tx.clone();
        let obs = obs.clone();
        tokio::spawn(async move {
            let root = stream.peer_cred().map(|c| c.uid() == 0).unwrap_or(false);
            let (rd, mut wr) = stream.into_split();
            let mut line = String::new();
            let mut rd = tokio::io::BufReader::new(rd);
            let mut follow = None;
            let answer = if !root {
                Response::error(2, "the cordon admin socket is for root only")
            } else {
                match tokio::time::timeout(Duration::from_secs(10), rd.read_line(&mut line)).await {
                    Ok(Ok(_)) => match serde_json::from_str::<Request>(&line) {
                        Ok(Request::Logs { limit, follow: f }) => {
                            // Subscribe before the backlog is taken: no
                            // event falls between the two.
                            if f {
                                follow = Some(obs.events.subscribe());
                            }
                            let recent = obs
                                .recorder
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .recent(limit);
                            Response {
                                events: Some(recent),
                                ..Default::default()
                            }
                        }
                        Ok(req) => {
                            let (otx, orx) = oneshot::channel();
                            if tx.send((req, otx)).await.is_err() {
                                Response::error(2, "the daemon is stopping")
                            } else {
                                orx.await.unwrap_or_else(|_| {
                                    Response::error(2, "the daemon is stopping")
                                })
                            }
                        }
                        Err(e) => Response::error(2, format!("bad request: {e}")),
                    },
                    _ => Response::error(2, "no request received"),
                }
            };
            let backlog: Vec<crate::droplog::Event> = answer.events.clone().unwrap_or_default();
            let mut out = serde_json::to_string(&answer).expect("response serialises");
            out.push('\n');
            if wr.write_all(out.as_bytes()).await.is_err() {
                return;
            }
            let Some(mut sub) = follow else {
                return;
            };
            loop {
                let e = match sub.recv().await {
                    Ok(e) => e,
                    // A slow reader misses events; it goes on with the next.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                };
                // Already sent in the backlog.
                if backlog.iter().rev().take(64).any(|b| *b == e) {
                    continue;
                }
                let mut out = serde_json::to_string(&e).expect("event serialises");
                out.push('\n');
                let sent = tokio::time::timeout(
                    crate::droplog::FOLLOW_STALL,
                    wr.write_all(out.as_bytes()),
                )
                .await;
                if !matches!(sent, Ok(Ok(()))) {
                    return;
                }
            }
        });
    }
}
