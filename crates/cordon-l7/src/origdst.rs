//! The original destination of a connection nft `redirect`ed to the proxy.

use std::net::SocketAddr;

/// `SO_ORIGINAL_DST` (IPv4) or `IP6T_SO_ORIGINAL_DST` (IPv6) of an
/// accepted, redirected socket: the address the client connected to before
/// the nat rule rewrote it. A socket that was not redirected returns its own
/// local address; one with no conntrack entry is an error.
pub fn original_dst(stream: &tokio::net::TcpStream) -> std::io::Result<SocketAddr> {
    let _ = stream;
    Err(std::io::Error::other("original_dst: not built yet"))
}
