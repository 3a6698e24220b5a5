//! The two-way relay between the client and the original destination.

use tokio::net::TcpStream;

/// Relays both ways until both sides are closed, shutting down the write
/// side of one socket when the other reaches end of file (half-close).
/// Returns the bytes moved (client to server, server to client).
pub async fn relay(client: TcpStream, server: TcpStream) -> std::io::Result<(u64, u64)> {
    let (mut client, mut server) = (client, server);
    tokio::io::copy_bidirectional(&mut client, &mut server).await
}
