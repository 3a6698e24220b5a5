//! Real ClientHellos (captured from `openssl s_client` into
//! `tests/fixtures/`) and edits of them: an extension added, the handshake
//! re-framed over several records, grown past the limit.

#![allow(dead_code)]

/// `openssl s_client -tls1_3 -servername Api.Example.COM`.
pub const TLS13_SNI: &[u8] = include_bytes!("../fixtures/openssl-tls13-sni.bin");
/// `openssl s_client -tls1_2 -servername www.example.org`.
pub const TLS12_SNI: &[u8] = include_bytes!("../fixtures/openssl-tls12-sni.bin");
/// `openssl s_client -noservername`.
pub const NO_SNI: &[u8] = include_bytes!("../fixtures/openssl-nosni.bin");

/// The handshake message (header included) of a one-record ClientHello.
pub fn handshake(record: &[u8]) -> Vec<u8> {
    let len = usize::from(u16::from_be_bytes([record[3], record[4]]));
    record[5..5 + len].to_vec()
}

/// `hs` framed in records of the given payload sizes (the last one takes
/// the rest).
pub fn frame(hs: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = hs;
    let mut sizes = sizes.iter();
    while !rest.is_empty() {
        let n = sizes.next().copied().unwrap_or(1 << 14).min(rest.len());
        out.extend_from_slice(&[0x16, 3, 1]);
        out.extend_from_slice(&(n as u16).to_be_bytes());
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

/// The handshake `hs` with one more extension, lengths fixed.
pub fn add_extension(hs: &[u8], ty: u16, data: &[u8]) -> Vec<u8> {
    let body = &hs[4..];
    // version, random, session id, ciphers, compressions, extensions.
    let mut at = 2 + 32;
    at += 1 + usize::from(body[at]);
    at += 2 + usize::from(u16::from_be_bytes([body[at], body[at + 1]]));
    at += 1 + usize::from(body[at]);
    let ext_len = usize::from(u16::from_be_bytes([body[at], body[at + 1]]));
    let mut exts = body[at + 2..at + 2 + ext_len].to_vec();
    exts.extend_from_slice(&ty.to_be_bytes());
    exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
    exts.extend_from_slice(data);
    let mut nb = body[..at].to_vec();
    nb.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    nb.extend_from_slice(&exts);
    let mut out = vec![1];
    out.extend_from_slice(&(nb.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&nb);
    out
}

/// A server_name extension's data naming `name`.
pub fn sni_ext(name: &str) -> Vec<u8> {
    let n = name.as_bytes();
    let mut d = ((n.len() + 3) as u16).to_be_bytes().to_vec();
    d.push(0);
    d.extend_from_slice(&(n.len() as u16).to_be_bytes());
    d.extend_from_slice(n);
    d
}

/// A one-record ClientHello (openssl's, TLS 1.3) naming `name`.
pub fn hello_for(name: &str) -> Vec<u8> {
    frame(&add_extension(&handshake(NO_SNI), 0, &sni_ext(name)), &[])
}

/// A ClientHello of `size` bytes of handshake (padded with the padding
/// extension, split over 16 KiB records), naming `name`.
pub fn big_hello(name: &str, size: usize) -> Vec<u8> {
    let hs = add_extension(&handshake(NO_SNI), 0, &sni_ext(name));
    let pad = size.saturating_sub(hs.len() + 4).min(0xffff);
    frame(&add_extension(&hs, 21, &vec![0; pad]), &[])
}
