//! ICMP and ICMPv6 echo messages for the ping probe (raw sockets, as root).

/// ICMP echo request type.
pub const ECHO_REQUEST_V4: u8 = 8;
/// ICMP echo reply type.
pub const ECHO_REPLY_V4: u8 = 0;
/// ICMPv6 echo request type.
pub const ECHO_REQUEST_V6: u8 = 128;
/// ICMPv6 echo reply type.
pub const ECHO_REPLY_V6: u8 = 129;

/// An echo request: type, code 0, checksum, identifier, sequence, payload.
/// The checksum is filled for ICMP (`v6 = false`); for ICMPv6 the kernel
/// computes it over the pseudo-header.
pub fn echo_request(v6: bool, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let kind = if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 };
    let mut p = vec![kind, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(payload);
    if !v6 {
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

/// The Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// True when `msg` (an ICMP message; for IPv4 the raw socket's datagram
/// still carries the IP header) is the echo reply to (`id`, `seq`).
pub fn is_echo_reply(v6: bool, msg: &[u8], id: u16, seq: u16) -> bool {
    let icmp = if v6 {
        msg
    } else {
        let ihl = usize::from(msg.first().map_or(0, |b| b & 0x0f)) * 4;
        msg.get(ihl..).unwrap_or(&[])
    };
    let want = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
    icmp.len() >= 8
        && icmp[0] == want
        && icmp[4..6] == id.to_be_bytes()
        && icmp[6..8] == seq.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_checksums_to_zero_and_its_reply_is_recognised() {
        let req = echo_request(false, 0x1234, 7, b"cordon");
        assert_eq!(checksum(&req), 0);
        let mut reply = vec![0x45u8; 20];
        reply[0] = 0x45;
        reply.extend_from_slice(&req);
        reply[20] = ECHO_REPLY_V4;
        assert!(is_echo_reply(false, &reply, 0x1234, 7));
        assert!(!is_echo_reply(false, &reply, 0x1234, 8));
        let mut v6 = echo_request(true, 9, 1, b"x");
        assert_eq!(v6[0], ECHO_REQUEST_V6);
        v6[0] = ECHO_REPLY_V6;
        assert!(is_echo_reply(true, &v6, 9, 1));
        assert!(!is_echo_reply(true, &v6, 10, 1));
    }
}
