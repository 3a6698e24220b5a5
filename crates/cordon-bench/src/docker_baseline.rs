//! The audit benchmark's baseline: the bare Engine API work of any audit,
//! listing the containers and inspecting each, over Docker's unix socket
//! from one already-running process (one keep-alive connection, each body
//! parsed as JSON, as an audit must).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Instant;

/// Docker's socket.
const SOCKET: &str = "/var/run/docker.sock";

/// Reads one HTTP/1.1 response (Content-Length or chunked body).
fn response(r: &mut impl BufRead) -> Result<(u16, Vec<u8>), String> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP status line: {line:?}"))?;
    let (mut length, mut chunked) = (None, false);
    loop {
        line.clear();
        r.read_line(&mut line).map_err(|e| e.to_string())?;
        let h = line.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                length = v.parse().ok();
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).map_err(|e| e.to_string())?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| format!("bad chunk size {line:?}"))?;
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).map_err(|e| e.to_string())?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(
            length.ok_or("a response with neither length nor chunks")?,
            0,
        );
        r.read_exact(&mut body).map_err(|e| e.to_string())?;
    }
    Ok((status, body))
}

fn get(
    w: &mut UnixStream,
    r: &mut BufReader<UnixStream>,
    path: &str,
) -> Result<serde_json::Value, String> {
    write!(w, "GET {path} HTTP/1.1\r\nHost: docker\r\n\r\n").map_err(|e| e.to_string())?;
    let (status, body) = response(r)?;
    if status != 200 {
        return Err(format!("GET {path}: HTTP {status}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("GET {path}: {e}"))
}

/// `cordon-bench docker-baseline NAMES_FILE`: prints the ms that listing
/// the containers and inspecting each named one took.
pub fn command(names_file: &str) -> Result<(), String> {
    let names = std::fs::read_to_string(names_file).map_err(|e| format!("{names_file}: {e}"))?;
    let mut w = UnixStream::connect(SOCKET).map_err(|e| format!("{SOCKET}: {e}"))?;
    let mut r = BufReader::new(w.try_clone().map_err(|e| e.to_string())?);
    let t = Instant::now();
    get(&mut w, &mut r, "/containers/json")?;
    for n in names.split_whitespace() {
        get(&mut w, &mut r, &format!("/containers/{n}/json"))?;
    }
    println!("{:.1}", t.elapsed().as_secs_f64() * 1000.0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_kinds_of_bodies() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        let mut r = BufReader::new(&raw[..]);
        assert_eq!(response(&mut r).unwrap(), (200, b"[]".to_vec()));
        assert_eq!(response(&mut r).unwrap(), (200, b"{\"a\":1}".to_vec()));
        assert_eq!(response(&mut r).unwrap().0, 404);
        assert!(response(&mut r).is_err());
    }
}
