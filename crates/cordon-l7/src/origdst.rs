//! The original destination of a connection nft `redirect`ed to the proxy.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use nix::sys::socket::{getsockopt, sockopt};

/// `SO_ORIGINAL_DST` (IPv4) or `IP6T_SO_ORIGINAL_DST` (IPv6) of an
/// accepted, redirected socket: the address the client connected to before
/// the nat rule rewrote it (conntrack's original tuple). A socket that was
/// not redirected gets its own local address back; one with no conntrack
/// entry is an error. The family is the socket's (listeners are bound
/// `IPV6_V6ONLY`, so an IPv6 socket carries IPv6 only).
pub fn original_dst(stream: &tokio::net::TcpStream) -> std::io::Result<SocketAddr> {
    let local = stream.local_addr()?;
    if local.is_ipv4() {
        let sin = getsockopt(stream, sockopt::OriginalDst).map_err(std::io::Error::from)?;
        Ok(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
            u16::from_be(sin.sin_port),
        )))
    } else {
        let sin6 = getsockopt(stream, sockopt::Ip6tOriginalDst).map_err(std::io::Error::from)?;
        Ok(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(sin6.sin6_addr.s6_addr),
            u16::from_be(sin6.sin6_port),
            u32::from_be(sin6.sin6_flowinfo),
            sin6.sin6_scope_id,
        )))
    }
}
