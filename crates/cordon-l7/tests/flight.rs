//! The first-flight parser on real ClientHellos (openssl's, captured as
//! fixtures), edits of them, HTTP requests and junk.

mod common;

use common::hello::*;
use cordon_l7::{parse_first_flight, parse_first_flight_within, FirstFlight, Parse};
use proptest::prelude::*;

fn tls(name: Option<&str>, ech: bool) -> Parse {
    Parse::Done(FirstFlight::Tls {
        server_name: name.map(str::to_string),
        ech,
    })
}

fn http(host: Option<&str>) -> Parse {
    Parse::Done(FirstFlight::Http {
        host: host.map(str::to_string),
    })
}

fn unknown(p: &Parse) -> bool {
    matches!(p, Parse::Done(FirstFlight::Unknown { .. }))
}

/// Every strict prefix of `flight` needs more; the whole gives `want`.
fn check_prefixes(flight: &[u8], want: &Parse) {
    for n in 0..flight.len() {
        assert_eq!(
            parse_first_flight(&flight[..n]),
            Parse::NeedMore,
            "prefix of {n} bytes"
        );
    }
    assert_eq!(&parse_first_flight(flight), want);
}

#[test]
fn openssl_tls13_hello_gives_its_sni_lower_cased() {
    check_prefixes(TLS13_SNI, &tls(Some("api.example.com"), false));
}

#[test]
fn openssl_tls12_hello_gives_its_sni() {
    check_prefixes(TLS12_SNI, &tls(Some("www.example.org"), false));
}

#[test]
fn a_hello_without_sni_has_no_name() {
    check_prefixes(NO_SNI, &tls(None, false));
    assert_eq!(tls(None, false), parse_first_flight(NO_SNI));
}

#[test]
fn an_ech_extension_is_reported() {
    let hs = add_extension(&handshake(TLS13_SNI), 0xfe0d, &[0, 1, 2, 3, 4, 5]);
    assert_eq!(
        parse_first_flight(&frame(&hs, &[])),
        tls(Some("api.example.com"), true)
    );
}

#[test]
fn a_trailing_dot_is_dropped() {
    assert_eq!(
        parse_first_flight(&hello_for("Files.Example.NET.")),
        tls(Some("files.example.net"), false)
    );
}

#[test]
fn a_hello_split_across_records_and_reads() {
    let hs = handshake(TLS13_SNI);
    for sizes in [&[1usize][..], &[4, 1, 100], &[50, 50, 50], &[3]] {
        let framed = frame(&hs, sizes);
        assert!(framed.len() > TLS13_SNI.len(), "more than one record");
        check_prefixes(&framed, &tls(Some("api.example.com"), false));
    }
}

#[test]
fn a_64k_hello_is_unknown_as_soon_as_its_length_is_seen() {
    let big = big_hello("api.example.com", 64 * 1024);
    assert!(big.len() > 64 * 1024);
    // The handshake header declares the size: no need to read 16 KiB.
    assert!(unknown(&parse_first_flight(&big[..9])));
    assert!(unknown(&parse_first_flight(&big[..16 * 1024])));
    assert!(unknown(&parse_first_flight(&big)));
    // Control: the same hello padded to 8 KiB is read.
    assert_eq!(
        parse_first_flight(&big_hello("api.example.com", 8 * 1024)),
        tls(Some("api.example.com"), false)
    );
}

#[test]
fn a_smaller_limit_is_honoured() {
    let hello = big_hello("api.example.com", 8 * 1024);
    assert!(unknown(&parse_first_flight_within(&hello, 4096)));
    assert!(unknown(&parse_first_flight_within(&hello[..100], 4096)));
    assert!(!unknown(&parse_first_flight_within(&hello, 16 * 1024)));
}

#[test]
fn ambiguous_hellos_are_unknown() {
    // Two server_name extensions.
    let hs = add_extension(&handshake(TLS13_SNI), 0, &sni_ext("evil.test"));
    assert!(unknown(&parse_first_flight(&frame(&hs, &[]))));
    // Two host names in one extension.
    let mut two = sni_ext("a.test");
    let b = sni_ext("b.test");
    two.extend_from_slice(&b[2..]);
    let l = (two.len() - 2) as u16;
    two[..2].copy_from_slice(&l.to_be_bytes());
    let hs = add_extension(&handshake(NO_SNI), 0, &two);
    assert!(unknown(&parse_first_flight(&frame(&hs, &[]))));
    // A name that is no host name.
    for bad in ["a b.test", "a..test", "", "x\0.test", "é.test"] {
        assert!(
            unknown(&parse_first_flight(&hello_for(bad))),
            "{bad:?} accepted"
        );
    }
}

#[test]
fn tls_records_that_are_not_a_hello_are_unknown() {
    let mut alert = TLS13_SNI.to_vec();
    alert[0] = 0x15;
    assert!(unknown(&parse_first_flight(&alert)));
    let mut server_hello = TLS13_SNI.to_vec();
    server_hello[5] = 2;
    assert!(unknown(&parse_first_flight(&server_hello)));
    // A truncated hello body inside a complete record.
    let mut hs = handshake(TLS13_SNI);
    hs.truncate(60);
    let l = (hs.len() - 4) as u32;
    hs[1..4].copy_from_slice(&l.to_be_bytes()[1..]);
    assert!(unknown(&parse_first_flight(&frame(&hs, &[]))));
}

#[test]
fn http_hosts() {
    let cases: &[(&[u8], Option<&str>)] = &[
        (
            b"GET / HTTP/1.1\r\nHost: Example.COM\r\n\r\n",
            Some("example.com"),
        ),
        (
            b"GET / HTTP/1.1\r\nhost: example.com:8080\r\nAccept: */*\r\n\r\n",
            Some("example.com"),
        ),
        (
            b"POST /x HTTP/1.0\r\nHost: example.com.\r\n\r\nbody",
            Some("example.com"),
        ),
        (
            b"GET / HTTP/1.1\r\nHost: [2001:DB8::1]:80\r\n\r\n",
            Some("2001:db8::1"),
        ),
        (
            b"GET / HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n",
            Some("2001:db8::1"),
        ),
        (
            b"GET / HTTP/1.1\r\nHost: 198.51.100.7:80\r\n\r\n",
            Some("198.51.100.7"),
        ),
        (b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", None),
        (b"GET / HTTP/1.0\r\n\r\n", None),
        (
            b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
            None,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a.test\r\nhOsT: a.test\r\n\r\n",
            None,
        ),
        (b"GET / HTTP/1.1\r\nHost: a.test:80x\r\n\r\n", None),
        (b"GET / HTTP/1.1\r\nHost: [2001:db8::1\r\n\r\n", None),
        (b"GET / HTTP/1.1\r\nHost: user@a.test\r\n\r\n", None),
        (b"GET / HTTP/1.1\r\nHost: \r\n\r\n", None),
    ];
    for (req, want) in cases {
        assert_eq!(
            parse_first_flight(req),
            http(*want),
            "{}",
            String::from_utf8_lossy(req)
        );
    }
}

#[test]
fn an_http_request_split_across_reads() {
    let req = b"GET /path HTTP/1.1\r\nUser-Agent: t\r\nHost: api.example.com\r\n\r\n";
    check_prefixes(req, &http(Some("api.example.com")));
}

#[test]
fn other_protocols_and_junk_are_unknown() {
    for junk in [
        &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..],
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10",
        b"\x00\x00\x00\x00",
        b"get / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/3.0\r\nHost: a.test\r\n\r\n",
    ] {
        assert!(
            unknown(&parse_first_flight(junk)),
            "{}",
            String::from_utf8_lossy(junk)
        );
    }
    // Random bytes (a fixed xorshift stream).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut junk = Vec::new();
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        junk.push(x as u8);
    }
    assert!(unknown(&parse_first_flight(&junk)));
}

#[test]
fn an_endless_request_line_is_unknown_at_the_limit() {
    let mut req = b"GET /".to_vec();
    req.resize(16 * 1024, b'a');
    assert!(unknown(&parse_first_flight(&req)));
    assert_eq!(parse_first_flight(&req[..16 * 1024 - 1]), Parse::NeedMore);
}

proptest! {
    #[test]
    fn any_bytes_parse_without_panic(data in proptest::collection::vec(any::<u8>(), 0..20_000)) {
        let p = parse_first_flight(&data);
        if data.len() >= 16 * 1024 {
            prop_assert!(matches!(p, Parse::Done(_)));
        }
        if let Parse::Done(f) = p {
            if let Some(n) = f.name() {
                prop_assert!(!n.is_empty() && !n.ends_with('.'));
                prop_assert_eq!(n.to_ascii_lowercase(), n);
            }
        }
    }

    #[test]
    fn any_edit_of_a_real_hello_parses_without_panic(
        at in 0usize..400, byte in any::<u8>(), cut in 0usize..400
    ) {
        let mut h = TLS13_SNI.to_vec();
        let at = at % h.len();
        h[at] = byte;
        h.truncate(cut.max(1));
        let _ = parse_first_flight(&h);
    }
}
