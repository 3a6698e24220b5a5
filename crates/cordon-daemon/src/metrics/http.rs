//! `GET /metrics` over HTTP/1.1 (hyper) on a loopback address, for
//! `--metrics ADDR`; with `--metrics-token-file`, only for requests that
//! show the bearer token.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use super::token::authorized;
use crate::admin::{Pending, Request as AdminRequest};

/// The time a client has to send its request's head; after it the
/// connection is dropped, so an idle connection holds nothing for long.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest request head read (8 KiB, the least hyper allows): a scrape
/// needs a few hundred bytes; larger heads get 431.
pub const MAX_REQUEST: usize = 8192;

/// The most header lines a request may carry (larger requests get 431).
pub const MAX_HEADERS: usize = 32;

/// The pause after a failed accept (e.g. out of file descriptors), so
/// the loop does not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Every answer's type: the OpenMetrics text prometheus-client writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `GET /metrics` over HTTP/1.1 on `listener` (a loopback
/// address): each scrape asks the main loop through `tx`, as `cordon
/// metrics` does over the admin socket. With a `token`, a request without
/// `Authorization: Bearer <token>` gets 401, whatever it asks. Anything
/// but `GET /metrics` gets 404. A request whose head is not read within
/// [`READ_TIMEOUT`] is dropped; one over [`MAX_REQUEST`] bytes or
/// [`MAX_HEADERS`] headers gets 431. One request per connection.
pub async fn serve_http(listener: TcpListener, tx: mpsc::Sender<Pending>, token: Option<String>) {
    let token: Option<Arc<str>> = token.map(Into::into);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(ACCEPT_PAUSE).await;
            continue;
        };
        let tx = tx.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| answer(req, tx.clone(), token.clone()));
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(READ_TIMEOUT)
                .max_buf_size(MAX_REQUEST)
                .max_header_size(MAX_REQUEST)
                .max_headers(MAX_HEADERS)
                .keep_alive(false)
                .title_case_headers(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
            if let Err(e) = served {
                debug!("metrics connection: {e}");
            }
        });
    }
}

/// The answer to one request.
async fn answer(
    req: Request<Incoming>,
    tx: mpsc::Sender<Pending>,
    token: Option<Arc<str>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let shown = req
        .headers()
        .get_all(AUTHORIZATION)
        .iter()
        .map(|v| v.as_bytes());
    if let Some(t) = token.as_deref() {
        if !authorized(shown, t) {
            let mut r = reply(
                StatusCode::UNAUTHORIZED,
                "a bearer token is required (Authorization: Bearer <token>)\n".into(),
            );
            r.headers_mut().insert(
                WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Bearer realm=\"cordon\""),
            );
            return Ok(r);
        }
    }
    if req.method() != Method::GET || req.uri().path() != "/metrics" {
        return Ok(reply(
            StatusCode::NOT_FOUND,
            "metrics are at /metrics\n".into(),
        ));
    }
    let (otx, orx) = oneshot::channel();
    let text = if tx.send((AdminRequest::Metrics, otx)).await.is_ok() {
        orx.await.ok().and_then(|r| r.metrics)
    } else {
        None
    };
    Ok(match text {
        Some(t) => reply(StatusCode::OK, t),
        None => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is stopping\n".into(),
        ),
    })
}

/// A response with `body` (OpenMetrics text, or a line saying why not),
/// closing the connection after it.
fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, OPENMETRICS)
        .header(CONNECTION, "close")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const TEXT: &str = "cordon_containers 1\n# EOF\n";

    /// A metrics server on a free loopback port, its main loop answering
    /// every scrape with [`TEXT`].
    async fn server(token: Option<&str>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel::<Pending>(4);
        tokio::spawn(async move {
            while let Some((req, reply)) = rx.recv().await {
                assert!(matches!(req, AdminRequest::Metrics), "{req:?}");
                let _ = reply.send(crate::admin::Response {
                    metrics: Some(TEXT.into()),
                    ..Default::default()
                });
            }
        });
        tokio::spawn(serve_http(l, tx, token.map(String::from)));
        addr
    }

    /// Sends `head` and reads until the server closes the connection.
    async fn ask(addr: SocketAddr, head: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
            .await
            .expect("the server closes the connection after its answer")
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn get_metrics_answers_the_text_and_closes() {
        let addr = server(None).await;
        let r = ask(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(
            r.contains(
                "Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"
            ),
            "{r}"
        );
        assert!(r.contains("Connection: close\r\n"), "{r}");
        assert!(r.ends_with(&format!("\r\n\r\n{TEXT}")), "{r}");
        let r = ask(addr, "GET /metrics?name[]=x HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        for head in [
            "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /metricsx HTTP/1.1\r\nHost: x\r\n\r\n",
            "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        ] {
            let r = ask(addr, head).await;
            assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head:?}: {r}");
            assert!(!r.contains("# EOF"), "{r}");
        }
    }

    #[tokio::test]
    async fn with_a_token_only_requests_showing_it_are_answered() {
        let addr = server(Some("s3cret")).await;
        // Positive control: the token reads the metrics.
        let r = ask(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\r\n",
        )
        .await;
        assert!(
            r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with(TEXT),
            "{r}"
        );
        for shown in [
            "",
            "Authorization: Bearer s3creT\r\n",
            "Authorization: Bearer s3cre\r\n",
            "Authorization: Basic s3cret\r\n",
        ] {
            for path in ["/metrics", "/elsewhere"] {
                let r = ask(
                    addr,
                    &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{shown}\r\n"),
                )
                .await;
                assert!(
                    r.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
                    "{shown:?} {path}: {r}"
                );
                assert!(
                    r.to_ascii_lowercase()
                        .contains("www-authenticate: bearer realm=\"cordon\"\r\n"),
                    "{r}"
                );
                assert!(!r.contains("cordon_containers"), "{r}");
            }
        }
    }

    #[tokio::test]
    async fn an_oversized_request_gets_no_metrics() {
        let addr = server(None).await;
        let big = format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
            "a".repeat(MAX_REQUEST)
        );
        let r = ask(addr, &big).await;
        assert!(r.is_empty() || r.starts_with("HTTP/1.1 431 "), "{r}");
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-H{i}: 1\r\n"))
            .collect();
        let r = ask(addr, &format!("GET /metrics HTTP/1.1\r\n{many}\r\n")).await;
        assert!(r.is_empty() || r.starts_with("HTTP/1.1 431 "), "{r}");
    }

    /// A client that never finishes its request is dropped after
    /// [`READ_TIMEOUT`] (the clock is the test's, paused).
    #[tokio::test(start_paused = true)]
    async fn an_unfinished_request_is_dropped() {
        let addr = server(None).await;
        let started = tokio::time::Instant::now();
        let r = ask(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n").await;
        assert!(r.is_empty() || r.starts_with("HTTP/1.1 408 "), "{r}");
        let waited = started.elapsed();
        assert!(
            waited >= READ_TIMEOUT && waited < READ_TIMEOUT * 2,
            "{waited:?}"
        );
    }
}
