//! The first flight: what a client sends before the server says anything,
//! a TLS ClientHello or an HTTP/1.x request.
//!
//! The TLS side reassembles the handshake from as many records as it takes
//! (a ClientHello may be split across records and across reads), then hands
//! the ClientHello to `tls-parser`; extensions are split one by one so a
//! malformed extension elsewhere cannot hide the server name. A ClientHello
//! that declares itself larger than the limit is refused at once, without
//! waiting for its bytes. The HTTP side is `httparse` on the request line
//! and headers.
//!
//! Ambiguity is refused rather than guessed: two SNI host names, two
//! extensions of one type, two Host headers.

use tls_parser::{
    parse_tls_extension_sni_content, parse_tls_extension_unknown, parse_tls_handshake_client_hello,
    parse_tls_record_header, SNIType, TlsExtension, TlsRecordType,
};

/// The most bytes of a first flight the proxy reads and parses.
pub const FIRST_FLIGHT_MAX: usize = 16 * 1024;

/// The most headers an HTTP first flight may carry.
pub const HTTP_MAX_HEADERS: usize = 64;

/// The encrypted_client_hello extension's type.
const ECH: u16 = 0xfe0d;

/// What a client's first flight is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstFlight {
    /// A TLS ClientHello. `server_name`: the SNI host_name (lower-cased, no
    /// trailing dot), None when absent. `ech`: an encrypted_client_hello
    /// extension (0xfe0d) is present (the SNI seen is then the outer one).
    Tls {
        /// The SNI host_name.
        server_name: Option<String>,
        /// An ECH extension is present.
        ech: bool,
    },
    /// An HTTP/1.x request; `host`: the Host header's host part
    /// (lower-cased, port stripped, IPv6 brackets handled), None when
    /// absent or duplicated.
    Http {
        /// The Host header's host.
        host: Option<String>,
    },
    /// Neither (random bytes, another protocol, SSLv2, a truncated record
    /// that exceeds the limit ...). `why`: short reason.
    Unknown {
        /// Why it is not readable, one line.
        why: String,
    },
}

impl FirstFlight {
    /// The name the flight carries: the SNI or the Host, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            FirstFlight::Tls { server_name, .. } => server_name.as_deref(),
            FirstFlight::Http { host } => host.as_deref(),
            FirstFlight::Unknown { .. } => None,
        }
    }

    fn unknown(why: impl Into<String>) -> Parse {
        Parse::Done(FirstFlight::Unknown { why: why.into() })
    }
}

/// The parser's answer on what has arrived so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// The flight is complete enough to decide.
    Done(FirstFlight),
    /// More bytes are needed.
    NeedMore,
}

/// Pure, total, never panics: parse what has arrived so far (at most
/// [`FIRST_FLIGHT_MAX`] bytes; a flight still incomplete at that size is
/// [`FirstFlight::Unknown`]).
pub fn parse_first_flight(buf: &[u8]) -> Parse {
    parse_first_flight_within(buf, FIRST_FLIGHT_MAX)
}

/// [`parse_first_flight`] with a smaller limit: a flight that cannot be
/// complete within `max` bytes (`max` is capped at [`FIRST_FLIGHT_MAX`]) is
/// [`FirstFlight::Unknown`], as soon as that is known.
pub fn parse_first_flight_within(buf: &[u8], max: usize) -> Parse {
    let max = max.min(FIRST_FLIGHT_MAX);
    let buf = &buf[..buf.len().min(max)];
    let Some(&first) = buf.first() else {
        return Parse::NeedMore;
    };
    let parsed = match first {
        0x16 => tls(buf, max),
        b'A'..=b'Z' => http(buf),
        b if b & 0x80 != 0 && buf.get(2) == Some(&1) => {
            FirstFlight::unknown("an SSLv2 ClientHello")
        }
        _ => FirstFlight::unknown("neither a TLS ClientHello nor an HTTP request"),
    };
    match parsed {
        Parse::NeedMore if buf.len() >= max => {
            FirstFlight::unknown(format!("no complete first flight in {max} bytes"))
        }
        p => p,
    }
}

/// A TLS handshake record stream starting with a ClientHello.
fn tls(buf: &[u8], max: usize) -> Parse {
    // The handshake layer's bytes, records' payloads concatenated (the
    // last one possibly partial).
    let mut hs: Vec<u8> = Vec::new();
    let mut rest = buf;
    let mut records = 0usize;
    loop {
        if hs.len() >= 4 {
            if hs[0] != 1 {
                return FirstFlight::unknown("a TLS handshake that is not a ClientHello");
            }
            let len = usize::from(hs[1]) << 16 | usize::from(hs[2]) << 8 | usize::from(hs[3]);
            // At least one more record header if the message is not whole.
            let wire = 4 + len + 5 * records;
            if wire > max {
                return FirstFlight::unknown(format!(
                    "a ClientHello of {len} bytes, over the {max} byte limit"
                ));
            }
            if hs.len() >= 4 + len {
                return client_hello(&hs[4..4 + len]);
            }
        }
        if rest.is_empty() {
            return Parse::NeedMore;
        }
        if rest.len() < 5 {
            // Check what there is of the next header.
            if rest[0] != 0x16 || rest.get(1).is_some_and(|&v| v != 3) {
                return FirstFlight::unknown("a TLS record that is not a handshake");
            }
            return Parse::NeedMore;
        }
        let Ok((payload, hdr)) = parse_tls_record_header(rest) else {
            return FirstFlight::unknown("an unreadable TLS record header");
        };
        if hdr.record_type != TlsRecordType::Handshake {
            return FirstFlight::unknown("a TLS record that is not a handshake");
        }
        if hdr.version.0 >> 8 != 3 {
            return FirstFlight::unknown("a TLS record of an unknown version");
        }
        let len = usize::from(hdr.len);
        if len == 0 || len > 1 << 14 {
            return FirstFlight::unknown("a TLS record of an invalid length");
        }
        records += 1;
        let have = payload.len().min(len);
        hs.extend_from_slice(&payload[..have]);
        if have < len {
            // A partial record: what it holds so far may already show the
            // ClientHello is too large; then wait.
            rest = &[];
        } else {
            rest = &payload[len..];
        }
    }
}

/// A whole ClientHello body (after the handshake header).
fn client_hello(body: &[u8]) -> Parse {
    let Ok((_, ch)) = parse_tls_handshake_client_hello(body) else {
        return FirstFlight::unknown("an unreadable ClientHello");
    };
    let mut server_name = None;
    let mut ech = false;
    let mut seen: Vec<u16> = Vec::new();
    let mut exts = ch.ext.unwrap_or_default();
    while !exts.is_empty() {
        let Ok((next, TlsExtension::Unknown(ty, data))) = parse_tls_extension_unknown(exts) else {
            return FirstFlight::unknown("unreadable ClientHello extensions");
        };
        exts = next;
        if seen.contains(&ty.0) {
            return FirstFlight::unknown(format!("the ClientHello extension {} twice", ty.0));
        }
        seen.push(ty.0);
        match ty.0 {
            0 => match sni(data) {
                Ok(n) => server_name = n,
                Err(why) => return FirstFlight::unknown(why),
            },
            ECH => ech = true,
            _ => {}
        }
    }
    Parse::Done(FirstFlight::Tls { server_name, ech })
}

/// The server_name extension's host name.
fn sni(data: &[u8]) -> Result<Option<String>, String> {
    let Ok((rest, TlsExtension::SNI(names))) = parse_tls_extension_sni_content(data) else {
        return Err("an unreadable server_name extension".into());
    };
    if !rest.is_empty() {
        return Err("an unreadable server_name extension".into());
    }
    let mut hosts = names.iter().filter(|(t, _)| *t == SNIType::HostName);
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err("two SNI host names".into());
    }
    match host {
        None => Ok(None),
        Some((_, raw)) => match host_name(raw) {
            Some(h) => Ok(Some(h)),
            None => Err("an SNI that is not a host name".into()),
        },
    }
}

/// `raw` as a host name: ASCII letters, digits, `-`, `_`, non-empty labels
/// of at most 63 bytes, at most 253 bytes; lower-cased, one trailing dot
/// dropped.
fn host_name(raw: &[u8]) -> Option<String> {
    let raw = raw.strip_suffix(b".").unwrap_or(raw);
    if raw.is_empty() || raw.len() > 253 {
        return None;
    }
    let ok_label = |l: &[u8]| {
        !l.is_empty()
            && l.len() <= 63
            && l.iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !raw.split(|&b| b == b'.').all(ok_label) {
        return None;
    }
    Some(String::from_utf8_lossy(raw).to_ascii_lowercase())
}

/// An HTTP/1.x request.
fn http(buf: &[u8]) -> Parse {
    let mut headers = [httparse::EMPTY_HEADER; HTTP_MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => Parse::NeedMore,
        Ok(httparse::Status::Complete(_)) => {
            if !matches!(req.version, Some(0 | 1)) {
                return FirstFlight::unknown("an HTTP request of an unknown version");
            }
            let mut hosts = req
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("host"));
            let host = match (hosts.next(), hosts.next()) {
                (Some(h), None) => http_host(h.value),
                _ => None,
            };
            Parse::Done(FirstFlight::Http { host })
        }
        Err(httparse::Error::TooManyHeaders) => FirstFlight::unknown(format!(
            "an HTTP request with over {HTTP_MAX_HEADERS} headers"
        )),
        Err(e) => FirstFlight::unknown(format!("an unreadable HTTP request ({e})")),
    }
}

/// The host of a Host header value: `name`, `name:port`, `[v6]`,
/// `[v6]:port`; None when it is none of these.
fn http_host(value: &[u8]) -> Option<String> {
    let v = value.trim_ascii();
    let (host, port) = if let Some(inner) = v.strip_prefix(b"[") {
        let end = inner.iter().position(|&b| b == b']')?;
        let addr: std::net::Ipv6Addr = std::str::from_utf8(&inner[..end]).ok()?.parse().ok()?;
        let port = &inner[end + 1..];
        let port = if port.is_empty() {
            None
        } else {
            Some(port.strip_prefix(b":")?)
        };
        (Some(addr.to_string()), port)
    } else {
        match v.iter().rposition(|&b| b == b':') {
            Some(i) => (host_name(&v[..i]), Some(&v[i + 1..])),
            None => (host_name(v), None),
        }
    };
    if let Some(p) = port {
        if p.len() > 5 || !p.iter().all(u8::is_ascii_digit) {
            return None;
        }
    }
    host
}
