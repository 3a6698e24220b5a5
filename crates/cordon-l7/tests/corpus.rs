//! The fuzz corpus (crates/cordon-l7/fuzz/corpus/first_flight/) run through
//! the fuzz target's own body on the stable toolchain, so every input a
//! fuzzer kept or crashed on stays checked by `cargo test`.
//!
//! `cargo test -p cordon-l7 --test corpus -- --ignored write_seeds`
//! rewrites the hand-made seeds (`seed-*`).

#[path = "../fuzz/src/lib.rs"]
mod target;

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use common::hello::*;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/first_flight")
}

#[test]
fn the_corpus_holds_the_invariants() {
    let mut files: Vec<_> = std::fs::read_dir(dir())
        .expect("corpus dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 20, "the corpus has {} files", files.len());
    let mut kinds = HashSet::new();
    for p in &files {
        let b = std::fs::read(p).expect("corpus file");
        match std::panic::catch_unwind(|| target::first_flight(&b)) {
            Ok(shape) => {
                kinds.insert(shape.map(|(k, n, ech)| (k, n.is_some(), ech)));
            }
            Err(_) => panic!("{} breaks an invariant (see above)", p.display()),
        }
    }
    // Control of the harness: the corpus reaches every kind of decision.
    for want in [
        Some((0, true, false)),
        Some((0, false, false)),
        Some((0, true, true)),
        Some((1, true, false)),
        Some((1, false, false)),
        Some((2, false, false)),
        None,
    ] {
        assert!(kinds.contains(&want), "no input gives {want:?}: {kinds:?}");
    }
}

#[test]
#[ignore = "rewrites the hand-made seeds"]
fn write_seeds() {
    let hs = handshake(TLS13_SNI);
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("tls13-sni", TLS13_SNI.to_vec()),
        ("tls12-sni", TLS12_SNI.to_vec()),
        ("no-sni", NO_SNI.to_vec()),
        (
            "ech",
            frame(&add_extension(&hs, 0xfe0d, &[0, 1, 2, 3]), &[]),
        ),
        ("split-records", frame(&hs, &[7, 30, 100])),
        ("one-byte-records", frame(&hs[..64], &[1; 64])),
        ("truncated", TLS13_SNI[..100].to_vec()),
        (
            "two-sni",
            frame(&add_extension(&hs, 0, &sni_ext("b.test")), &[]),
        ),
        ("bad-sni", hello_for("a b.test")),
        ("trailing-dot", hello_for("Files.Example.NET.")),
        ("padded-8k", big_hello("a.test", 8 * 1024)),
        (
            "huge-64k",
            big_hello("a.test", 64 * 1024)[..20_000].to_vec(),
        ),
        (
            "http-host",
            b"GET / HTTP/1.1\r\nHost: Example.COM:8080\r\n\r\n".to_vec(),
        ),
        (
            "http-v6",
            b"GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n".to_vec(),
        ),
        ("http-nohost", b"GET / HTTP/1.0\r\n\r\n".to_vec()),
        (
            "http-twohosts",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(),
        ),
        ("http-partial", b"POST /x HTTP/1.1\r\nHost: a".to_vec()),
        ("http2", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
        (
            "sslv2",
            b"\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10".to_vec(),
        ),
        ("ssh", b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()),
        ("empty", Vec::new()),
        ("header-only", TLS13_SNI[..5].to_vec()),
    ];
    let d = dir();
    std::fs::create_dir_all(&d).expect("corpus dir");
    for (name, bytes) in seeds {
        std::fs::write(d.join(format!("seed-{name}")), bytes).expect("write seed");
    }
}
