//! Decoding: a logged packet (its payload from the network header on)
//! and its log prefix into an [`Event`], attributed to a container.

use std::net::IpAddr;
use std::time::SystemTime;

use cordon_dataplane::nflog::Logged;
use cordon_ruleset::LogPrefix;
use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};

use super::event::{stamp, Event};
use crate::directory::Directory;

/// What the packet itself says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packet {
    /// Protocol word.
    pub proto: String,
    /// Source address.
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// Source port.
    pub sport: Option<u16>,
    /// Destination port.
    pub dport: Option<u16>,
    /// Length.
    pub bytes: u64,
}

/// Decodes a logged payload (from the network header on; possibly cut
/// short). Never panics: what cannot be read stays empty.
pub fn decode(payload: &[u8]) -> Packet {
    let mut p = Packet {
        proto: "unknown".into(),
        bytes: payload.len() as u64,
        ..Default::default()
    };
    let Ok(sliced) = LaxSlicedPacket::from_ip(payload) else {
        // Not IP: an ARP packet from the bridge table.
        if let Ok(arp) = etherparse::ArpPacketSlice::from_slice(payload) {
            p.proto = "arp".into();
            if let Ok(b) = <[u8; 4]>::try_from(arp.sender_protocol_addr()) {
                p.src = Some(IpAddr::from(b));
            }
        }
        return p;
    };
    let ip_number = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            p.src = Some(h.source_addr().into());
            p.dst = Some(h.destination_addr().into());
            p.bytes = u64::from(h.total_len());
            Some(v4.payload().ip_number)
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            p.src = Some(h.source_addr().into());
            p.dst = Some(h.destination_addr().into());
            p.bytes = 40 + u64::from(h.payload_length());
            Some(v6.payload().ip_number)
        }
        _ => None,
    };
    if let Some(n) = ip_number {
        p.proto = match n {
            etherparse::IpNumber::TCP => "tcp".into(),
            etherparse::IpNumber::UDP => "udp".into(),
            etherparse::IpNumber::ICMP => "icmp".into(),
            etherparse::IpNumber::IPV6_ICMP => "icmpv6".into(),
            other => other.0.to_string(),
        };
    }
    match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => {
            p.sport = Some(t.source_port());
            p.dport = Some(t.destination_port());
        }
        Some(TransportSlice::Udp(u)) => {
            p.sport = Some(u.source_port());
            p.dport = Some(u.destination_port());
        }
        _ => {}
    }
    p
}

/// A logged packet as an event, attributed with `dir`: egress by its
/// source, ingress by its destination, spoofing by the port it came in on.
/// `ifname` names an interface index. `None` for foreign log lines.
pub fn event(
    l: &Logged,
    dir: &Directory,
    ifname: impl Fn(u32) -> Option<String>,
    at: SystemTime,
) -> Option<Event> {
    let prefix = LogPrefix::parse(&l.prefix)?;
    let (direction, policy, verdict, reason) = (
        prefix.direction_word().to_string(),
        prefix.subject().to_string(),
        prefix.verdict().word().to_string(),
        prefix.reason().map(str::to_string),
    );
    let p = decode(&l.payload);
    let who = match direction.as_str() {
        "spoof" => l
            .in_ifindex
            .and_then(&ifname)
            .and_then(|i| dir.by_iface.get(&i)),
        d if d.starts_with("ingress") => p.dst.and_then(|a| dir.by_addr.get(&a)),
        _ => p.src.and_then(|a| dir.by_addr.get(&a)),
    };
    let (time, unix_ms) = stamp(at);
    Some(Event {
        time,
        unix_ms,
        container: who.map(|c| c.container.clone()),
        id: who.map(|c| c.id.clone()),
        policy,
        direction,
        verdict,
        reason,
        proto: p.proto,
        src: p.src,
        dst: p.dst,
        sport: p.sport,
        dport: p.dport,
        bytes: p.bytes,
        name: None,
        suppressed: 0,
    })
}

/// Interface index → name (`if_indextoname`).
pub fn ifname(index: u32) -> Option<String> {
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: the buffer holds IF_NAMESIZE bytes, as the call requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr().cast()) };
    if p.is_null() {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::droplog::fixtures::{dir, logged, v4_tcp};

    #[test]
    fn events_name_the_container_by_direction() {
        let d = dir();
        let name = |i: u32| (i == 7).then(|| "veth1".to_string());
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let out = v4_tcp([172, 20, 0, 2], [10, 9, 0, 2], 80);
        let e = event(&logged("cordon egress web drop ", out), &d, name, at).unwrap();
        assert_eq!(e.container.as_deref(), Some("web-1"));
        assert_eq!(e.id.as_deref(), Some("0123456789ab"));
        assert_eq!((e.proto.as_str(), e.dport), ("tcp", Some(80)));
        assert_eq!(e.dst, Some("10.9.0.2".parse().unwrap()));
        assert_eq!(e.bytes, 40);
        assert_eq!(e.time, "2023-11-14T22:13:20.000Z");
        // Ingress is attributed by destination.
        let inbound = v4_tcp([203, 0, 113, 9], [172, 20, 0, 2], 22);
        let e = event(
            &logged("cordon ingress web drop ", inbound.clone()),
            &d,
            name,
            at,
        )
        .unwrap();
        assert_eq!(e.container.as_deref(), Some("web-1"));
        // Spoofing by the port: the forged source names nobody.
        let forged = v4_tcp([172, 20, 0, 99], [203, 0, 113, 9], 80);
        let e = event(&logged("cordon spoof ip drop ", forged), &d, name, at).unwrap();
        assert_eq!(
            (
                e.direction.as_str(),
                e.reason.as_deref(),
                e.container.as_deref()
            ),
            ("spoof", Some("ip"), Some("web-1"))
        );
        // Fail-closed drops name no container when none has the address.
        let stray = v4_tcp([172, 20, 0, 77], [203, 0, 113, 9], 80);
        let e = event(
            &logged("cordon egress unknown-source drop ", stray),
            &d,
            name,
            at,
        )
        .unwrap();
        assert_eq!((e.policy.as_str(), e.container), ("unknown-source", None));
        // Foreign prefixes are not cordon's.
        assert!(event(&logged("IN=eth0 ", inbound), &d, name, at).is_none());
    }

    #[test]
    fn decode_survives_anything() {
        assert_eq!(decode(&[]).proto, "unknown");
        let full = v4_tcp([1, 2, 3, 4], [5, 6, 7, 8], 443);
        for n in 0..full.len() {
            let _ = decode(&full[..n]);
        }
        // Cut inside the TCP header: the addresses are still read, and
        // the length is the header's, not what was copied.
        let cut = decode(&full[..30]);
        assert_eq!(cut.dst, Some("5.6.7.8".parse().unwrap()));
        assert_eq!((cut.bytes, cut.dport), (40, None));
        assert_eq!(decode(&full).dport, Some(443));
        let mut v6 = Vec::new();
        etherparse::PacketBuilder::ipv6(
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .udp(5000, 53)
        .write(&mut v6, &[1, 2, 3])
        .unwrap();
        let p = decode(&v6);
        assert_eq!((p.proto.as_str(), p.dport, p.bytes), ("udp", Some(53), 51));
    }
}
