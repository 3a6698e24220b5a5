//! `cordon sandbox serve`: a Piston-like HTTP JSON API over a unix socket
//! (and optionally a loopback TCP port).
//!
//! `POST /api/v2/execute` takes `{language | image, files: [{name,
//! content, encoding, executable}], stdin, args, cmd, run_timeout, cpu_time, run_memory_limit,
//! output_limit}` and answers `{run: {stdout, stderr, output, code, signal,
//! status}, verdict: {...}}`. Limits in a request can only lower the
//! server's. At most `concurrency` runs at once; up to `queue` more wait;
//! beyond that the answer is 503. `GET /api/v2/health` answers `ok`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::pool::Pool;
use crate::{Error, InputFile, Profile, RunRequest, Sandbox, StdinSource};

/// Largest request body accepted.
pub const MAX_BODY: usize = 16 << 20;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Unix socket path (replaced if it exists).
    pub socket: PathBuf,
    /// Optional loopback TCP port.
    pub port: Option<u16>,
    /// Runs at once.
    pub concurrency: usize,
    /// Requests that may wait for a slot.
    pub queue: usize,
    /// Warm containers to keep.
    pub pool: usize,
    /// The image of the warm containers.
    pub pool_image: Option<String>,
    /// Language name to image.
    pub languages: HashMap<String, String>,
    /// The profile and the most a request may ask for.
    pub profile: Profile,
}

/// One file of a request (Piston's shape).
#[derive(Debug, Deserialize)]
pub struct FileIn {
    /// Name in the work directory (default `main` + index).
    pub name: Option<String>,
    /// The content, in `encoding`.
    pub content: String,
    /// `utf8` (default), `base64` or `hex`.
    pub encoding: Option<String>,
    /// Whether the owner may execute it.
    #[serde(default)]
    pub executable: bool,
}

/// An execute request (Piston's shape, plus `image` and `cmd`).
#[derive(Debug, Deserialize)]
pub struct Execute {
    /// A language configured with `--language NAME=IMAGE`.
    pub language: Option<String>,
    /// Or an image directly.
    pub image: Option<String>,
    /// Files copied into the work directory.
    #[serde(default)]
    pub files: Vec<FileIn>,
    /// Standard input.
    #[serde(default)]
    pub stdin: String,
    /// Arguments appended to the command.
    #[serde(default)]
    pub args: Vec<String>,
    /// The command; default from the language (`python3 FILE`, `sh FILE`,
    /// `node FILE`, or the first file itself).
    pub cmd: Option<Vec<String>>,
    /// Wall time in milliseconds.
    pub run_timeout: Option<u64>,
    /// CPU time in milliseconds.
    pub cpu_time: Option<u64>,
    /// Memory in bytes.
    pub run_memory_limit: Option<i64>,
    /// Output bytes.
    pub output_limit: Option<u64>,
}

struct State {
    sandbox: Sandbox,
    opts: Options,
    slots: Semaphore,
    pending: AtomicUsize,
    pool: Option<Arc<Pool>>,
}

/// Serves until SIGINT or SIGTERM; then removes the pool's containers and
/// the socket.
pub async fn serve(sandbox: Sandbox, opts: Options) -> Result<(), String> {
    let pool = match (&opts.pool_image, opts.pool) {
        (Some(image), n) if n > 0 => Some(
            Pool::start(sandbox.clone(), image, opts.profile.clone(), n)
                .await
                .map_err(|e| e.to_string())?,
        ),
        _ => None,
    };
    if let Some(dir) = opts.socket.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&opts.socket);
    let unix = tokio::net::UnixListener::bind(&opts.socket)
        .map_err(|e| format!("cannot listen on {}: {e}", opts.socket.display()))?;
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&opts.socket, std::fs::Permissions::from_mode(0o660));
    let tcp = match opts.port {
        Some(p) => Some(
            tokio::net::TcpListener::bind(("127.0.0.1", p))
                .await
                .map_err(|e| format!("cannot listen on 127.0.0.1:{p}: {e}"))?,
        ),
        None => None,
    };
    tracing::info!("cordon sandbox serving on {}", opts.socket.display());
    let state = Arc::new(State {
        sandbox,
        slots: Semaphore::new(opts.concurrency),
        pending: AtomicUsize::new(0),
        pool: pool.clone(),
        opts,
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    loop {
        tokio::select! {
            c = unix.accept() => if let Ok((s, _)) = c { spawn_conn(state.clone(), TokioIo::new(s)) },
            c = async { tcp.as_ref().expect("guarded").accept().await }, if tcp.is_some() => {
                if let Ok((s, _)) = c { spawn_conn(state.clone(), TokioIo::new(s)) }
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    if let Some(p) = pool {
        p.drain().await;
    }
    let _ = std::fs::remove_file(&state.opts.socket);
    Ok(())
}

fn spawn_conn<I>(state: Arc<State>, io: I)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let svc = service_fn(move |req| handle(state.clone(), req));
        if let Err(e) = http1::Builder::new().serve_connection(io, svc).await {
            tracing::debug!("sandbox api connection: {e}");
        }
    });
}

fn reply(code: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

fn bad(code: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    reply(code, json!({ "message": message.into() }))
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET, "/api/v2/health") => reply(StatusCode::OK, json!({ "status": "ok" })),
        (&Method::POST, "/api/v2/execute") => {
            let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return Ok(bad(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())),
            };
            match serde_json::from_slice::<Execute>(&body) {
                Ok(ex) => execute(&state, ex).await,
                Err(e) => bad(StatusCode::BAD_REQUEST, format!("bad request: {e}")),
            }
        }
        _ => bad(
            StatusCode::NOT_FOUND,
            "no such endpoint; POST /api/v2/execute",
        ),
    })
}

/// The run request for `ex`, with limits no higher than the server's.
fn request(opts: &Options, ex: Execute) -> Result<(RunRequest, String), String> {
    let image = match (&ex.image, &ex.language) {
        (Some(i), _) => i.clone(),
        (None, Some(l)) => opts.languages.get(l).cloned().ok_or_else(|| {
            format!(
                "unknown language {l:?}; configured: {:?}",
                opts.languages.keys().collect::<Vec<_>>()
            )
        })?,
        (None, None) => return Err("give `language` or `image`".into()),
    };
    let files: Vec<InputFile> = ex
        .files
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let name = f.name.unwrap_or_else(|| format!("file{i}"));
            Ok(InputFile {
                content: crate::encoding::decode(&f.content, f.encoding.as_deref())
                    .map_err(|e| format!("file {name}: {e}"))?,
                executable: f.executable,
                name,
            })
        })
        .collect::<Result<_, String>>()?;
    let first = files.first().map(|f| f.name.clone());
    let mut cmd = match (ex.cmd, ex.language.as_deref(), first) {
        (Some(c), _, _) => c,
        (None, Some("python" | "python3"), Some(f)) => vec!["python3".into(), f],
        (None, Some("sh" | "bash"), Some(f)) => vec!["sh".into(), f],
        (None, Some("node" | "javascript"), Some(f)) => vec!["node".into(), f],
        (None, _, _) => return Err("give `cmd` (no default command for this language)".into()),
    };
    cmd.extend(ex.args);
    let mut profile = opts.profile.clone();
    let l = &mut profile.limits;
    if let Some(ms) = ex.run_timeout {
        l.wall = l.wall.min(Duration::from_millis(ms.max(1)));
    }
    if let Some(ms) = ex.cpu_time {
        l.cpu = l.cpu.min(Duration::from_millis(ms.max(1)));
    }
    if let Some(m) = ex.run_memory_limit.filter(|m| *m > 0) {
        l.memory = l.memory.min(m as u64);
    }
    if let Some(o) = ex.output_limit.filter(|o| *o > 0) {
        l.output = l.output.min(o);
    }
    Ok((
        RunRequest {
            image,
            cmd,
            files,
            profile,
        },
        ex.stdin,
    ))
}

struct Pending<'a>(&'a AtomicUsize);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn execute(state: &State, ex: Execute) -> Response<Full<Bytes>> {
    let (req, stdin) = match request(&state.opts, ex) {
        Ok(r) => r,
        Err(e) => return bad(StatusCode::BAD_REQUEST, e),
    };
    let before = state.pending.fetch_add(1, Ordering::SeqCst);
    let _pending = Pending(&state.pending);
    if before >= state.opts.concurrency + state.opts.queue {
        return bad(
            StatusCode::SERVICE_UNAVAILABLE,
            "the queue is full; retry later",
        );
    }
    let Ok(_slot) = state.slots.acquire().await else {
        return bad(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    let input: Option<StdinSource> = (!stdin.is_empty())
        .then(|| Box::pin(std::io::Cursor::new(stdin.into_bytes())) as StdinSource);
    let pooled = match &state.pool {
        Some(p) if p.fits(&req) => p.take().await.map(|w| (p, w)),
        _ => None,
    };
    let result = match pooled {
        Some((pool, warm)) => pool.run(warm, &req, input, None).await,
        None => state.sandbox.run(&req, input, None).await,
    };
    match result {
        Ok(v) => reply(
            StatusCode::OK,
            json!({
                "run": {
                    "stdout": v.stdout,
                    "stderr": v.stderr,
                    "output": format!("{}{}", v.stdout, v.stderr),
                    "code": v.exit_code,
                    "signal": v.signal,
                    "status": v.status,
                },
                "verdict": v,
            }),
        ),
        Err(Error::Invalid(m)) => bad(StatusCode::BAD_REQUEST, m),
        Err(Error::Env(m)) => bad(StatusCode::INTERNAL_SERVER_ERROR, m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        Options {
            socket: "/nonexistent".into(),
            port: None,
            concurrency: 1,
            queue: 0,
            pool: 0,
            pool_image: None,
            languages: HashMap::from([("python".to_string(), "py:1".to_string())]),
            profile: Profile::default(),
        }
    }

    fn parse(body: &str) -> Result<(RunRequest, String), String> {
        request(&opts(), serde_json::from_str(body).unwrap())
    }

    #[test]
    fn a_language_gives_image_and_command() {
        let (r, stdin) = parse(
            r#"{"language":"python","files":[{"name":"m.py","content":"x"}],"args":["a"],"stdin":"in"}"#,
        )
        .unwrap();
        assert_eq!(r.image, "py:1");
        assert_eq!(r.cmd, ["python3", "m.py", "a"]);
        assert_eq!(stdin, "in");
        assert!(parse(r#"{"language":"cobol"}"#).is_err());
        assert!(parse(r#"{"image":"x"}"#).is_err(), "no command");
    }

    #[test]
    fn requests_only_lower_limits() {
        let d = Profile::default().limits;
        let (r, _) = parse(
            r#"{"image":"x","cmd":["true"],"run_timeout":999999999,"run_memory_limit":1099511627776}"#,
        )
        .unwrap();
        assert_eq!(
            (r.profile.limits.wall, r.profile.limits.memory),
            (d.wall, d.memory)
        );
        let (r, _) =
            parse(r#"{"image":"x","cmd":["true"],"run_timeout":500,"output_limit":10}"#).unwrap();
        assert_eq!(r.profile.limits.wall, Duration::from_millis(500));
        assert_eq!(r.profile.limits.output, 10);
    }
}
