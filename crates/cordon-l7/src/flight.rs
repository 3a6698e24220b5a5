//! The first flight: what a client sends before the server says anything,
//! a TLS ClientHello or an HTTP/1.x request.

/// The most bytes of a first flight the proxy reads and parses.
pub const FIRST_FLIGHT_MAX: usize = 16 * 1024;

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
    if buf.is_empty() {
        return Parse::NeedMore;
    }
    Parse::Done(FirstFlight::Unknown {
        why: "parser not built yet".into(),
    })
}
