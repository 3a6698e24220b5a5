//! The body of cordon-l7's fuzz target, shared by the cargo-fuzz target
//! (`fuzz_targets/first_flight.rs`) and the stable-toolchain corpus test
//! (`crates/cordon-l7/tests/corpus.rs` includes this file), so the checked
//! in corpus keeps being run by `cargo test`.
//!
//! [`first_flight`] asserts invariants, not only "no panic":
//!
//! - at [`FIRST_FLIGHT_MAX`] bytes or more there is always a decision;
//! - a name is non-empty, lower-case, without a trailing dot, made of
//!   host-name characters (or an IPv6 literal, from a Host header);
//! - a decision made on a prefix (the proxy decides as soon as it can)
//!   is the decision on the whole input: later bytes change nothing;
//! - a smaller limit never turns an unreadable flight into a readable one.

use cordon_l7::{
    parse_first_flight, parse_first_flight_within, FirstFlight, Parse, FIRST_FLIGHT_MAX,
};

/// The kind and name of a decision (Unknown's reason text aside).
pub fn shape(p: &Parse) -> Option<(u8, Option<String>, bool)> {
    match p {
        Parse::NeedMore => None,
        Parse::Done(FirstFlight::Tls { server_name, ech }) => Some((0, server_name.clone(), *ech)),
        Parse::Done(FirstFlight::Http { host }) => Some((1, host.clone(), false)),
        Parse::Done(FirstFlight::Unknown { .. }) => Some((2, None, false)),
    }
}

/// Whether `n` is a name the parser may return.
pub fn well_formed(n: &str) -> bool {
    if n.parse::<std::net::Ipv6Addr>().is_ok() {
        return n == n.to_ascii_lowercase();
    }
    !n.is_empty()
        && n.len() <= 253
        && !n.ends_with('.')
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
}

/// The parser on fuzzer bytes; returns the decision's shape.
pub fn first_flight(data: &[u8]) -> Option<(u8, Option<String>, bool)> {
    let full = parse_first_flight(data);
    if data.len() >= FIRST_FLIGHT_MAX {
        assert!(matches!(full, Parse::Done(_)), "no decision at the limit");
    }
    if let Parse::Done(f) = &full {
        if let Some(n) = f.name() {
            assert!(well_formed(n), "a malformed name {n:?}");
        }
    }
    let got = shape(&full);
    for cut in [data.len() / 3, data.len() / 2, data.len().saturating_sub(1)] {
        let early = shape(&parse_first_flight(&data[..cut]));
        if early.is_some() {
            assert_eq!(
                early,
                got,
                "decided at {cut} bytes, otherwise on {}",
                data.len()
            );
        }
    }
    let small = shape(&parse_first_flight_within(data, 512));
    if got == Some((2, None, false)) && data.len() <= 512 {
        assert_eq!(small, got, "a smaller limit read an unreadable flight");
    }
    got
}
