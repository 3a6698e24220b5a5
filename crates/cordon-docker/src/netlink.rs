//! A minimal rtnetlink client: link dumps (`RTM_GETLINK`) and network
//! namespace ids (`RTM_GETNSID`), answered for the network namespace of the
//! calling thread.
//!
//! Every call opens its own `NETLINK_ROUTE` socket, so a thread that has
//! just entered another namespace with `setns(2)` sees that namespace.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{
    Emitable, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator,
    Parseable, ParseableParametrized, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_MULTIPART, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkHeader, LinkInfo, LinkMessage};
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_NEWNSID: u16 = 88;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;

/// How often a dump interrupted by a concurrent change (`NLM_F_DUMP_INTR`)
/// is retried before its last result is used as it is.
const DUMP_ATTEMPTS: usize = 5;

/// One network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Link {
    /// Its ifindex in the namespace it was dumped from.
    pub index: u32,
    /// Its name (`eth0`, `veth1a2b3c4`).
    pub name: String,
    /// Its hardware address when it is a 6-byte MAC, lower-case
    /// `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    /// `IFLA_LINK`: for a veth, the peer's ifindex (in the namespace named
    /// by [`Link::link_netnsid`] when there is one). The kernel leaves it
    /// out when it equals [`Link::index`].
    pub iflink: Option<u32>,
    /// `IFLA_LINK_NETNSID`: the id, in this namespace, of the namespace the
    /// peer lives in, when that is another one.
    pub link_netnsid: Option<i32>,
    /// `IFLA_MASTER`: the ifindex of the bridge (or bond) it is a port of.
    pub master: Option<u32>,
    /// The driver kind from `IFLA_LINKINFO` (`veth`, `bridge`, …).
    pub kind: Option<String>,
}

impl Link {
    /// The ifindex of the link it is tied to: `IFLA_LINK`, or its own
    /// index when the kernel left `IFLA_LINK` out.
    pub fn iflink_or_self(&self) -> u32 {
        self.iflink.unwrap_or(self.index)
    }

    /// True for one end of a veth pair.
    pub fn is_veth(&self) -> bool {
        self.kind.as_deref() == Some("veth")
    }
}

/// Formats a hardware address as lower-case `aa:bb:cc:dd:ee:ff`; `None`
/// unless it is 6 bytes long.
pub fn format_mac(bytes: &[u8]) -> Option<String> {
    if bytes.len() != 6 {
        return None;
    }
    Some(
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// Lists the links of the calling thread's network namespace.
///
/// A dump interrupted by a concurrent change is retried a few times.
/// Attributes the parser does not understand are skipped, never fatal.
pub fn dump_links() -> io::Result<Vec<Link>> {
    let mut last = Vec::new();
    for _ in 0..DUMP_ATTEMPTS {
        let reply = exchange(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_REQUEST | NLM_F_DUMP,
        )?;
        last = reply
            .messages
            .iter()
            .filter(|(kind, _)| *kind == RTM_NEWLINK)
            .filter_map(|(_, payload)| parse_link(payload))
            .collect();
        if !reply.interrupted {
            break;
        }
        tracing::debug!("link dump interrupted by a concurrent change, retrying");
    }
    last.sort_by_key(|l| l.index);
    Ok(last)
}

/// The id the calling thread's network namespace gives the namespace
/// `netns` (an open `/proc/<pid>/ns/net` or `/proc/self/ns/net`), or `None`
/// when it has assigned none.
pub fn netns_id(netns: BorrowedFd<'_>) -> io::Result<Option<i32>> {
    let fd = u32::try_from(netns.as_raw_fd())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "negative fd"))?;
    let mut request = NsidMessage::default();
    request.attributes.push(NsidAttribute::Fd(fd));
    let reply = exchange(RouteNetlinkMessage::GetNsId(request), NLM_F_REQUEST)?;
    for (kind, payload) in &reply.messages {
        if *kind != RTM_NEWNSID {
            continue;
        }
        let msg = NsidMessage::parse(payload.as_slice())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        for attr in msg.attributes {
            if let NsidAttribute::Id(id) = attr {
                return Ok((id >= 0).then_some(id));
            }
        }
    }
    Ok(None)
}

/// The messages of one request's reply, as (type, payload).
struct Reply {
    messages: Vec<(u16, Vec<u8>)>,
    /// `NLM_F_DUMP_INTR` was set: the dump may be inconsistent.
    interrupted: bool,
}

/// Sends one request on a fresh socket and reads its whole reply.
fn exchange(message: RouteNetlinkMessage, flags: u16) -> io::Result<Reply> {
    const SEQ: u32 = 1;
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;

    let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(message));
    packet.header.flags = flags;
    packet.header.sequence_number = SEQ;
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send(&buf, 0)?;

    let mut reply = Reply {
        messages: Vec::new(),
        interrupted: false,
    };
    loop {
        let (datagram, _) = socket.recv_from_full()?;
        let mut offset = 0;
        while offset < datagram.len() {
            let msg = NetlinkBuffer::new_checked(&datagram[offset..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let len = msg.length() as usize;
            let kind = msg.message_type();
            let msg_flags = msg.flags();
            let payload = msg.payload();
            offset += (len + 3) & !3;
            if msg.sequence_number() != SEQ {
                continue;
            }
            if msg_flags & NLM_F_DUMP_INTR != 0 {
                reply.interrupted = true;
            }
            match kind {
                NLMSG_ERROR | NLMSG_DONE => {
                    let code = payload
                        .get(..4)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .unwrap_or(0);
                    if code < 0 {
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    return Ok(reply);
                }
                _ => {
                    reply.messages.push((kind, payload.to_vec()));
                    if msg_flags & NLM_F_MULTIPART == 0 {
                        return Ok(reply);
                    }
                }
            }
        }
    }
}

/// Reads one `RTM_NEWLINK` payload. Attributes that fail to parse are
/// skipped.
fn parse_link(payload: &[u8]) -> Option<Link> {
    let header = LinkHeader::parse(payload).ok()?;
    let attrs = payload.get(header.buffer_len()..)?;
    let mut link = Link {
        index: header.index,
        ..Link::default()
    };
    for nla in NlasIterator::new(attrs) {
        let Ok(nla) = nla else { break };
        match LinkAttribute::parse_with_param(&nla, header.interface_family) {
            Ok(LinkAttribute::IfName(name)) => link.name = name,
            Ok(LinkAttribute::Address(bytes)) => link.mac = format_mac(&bytes),
            Ok(LinkAttribute::Link(index)) => link.iflink = Some(index),
            Ok(LinkAttribute::LinkNetNsId(id)) => link.link_netnsid = Some(id),
            Ok(LinkAttribute::Controller(index)) => link.master = Some(index),
            Ok(LinkAttribute::LinkInfo(infos)) => {
                link.kind = infos.iter().find_map(|info| match info {
                    LinkInfo::Kind(kind) => Some(kind.to_string()),
                    _ => None,
                })
            }
            Ok(_) => {}
            Err(_) if nla.kind() == IFLA_LINKINFO => link.kind = raw_info_kind(nla.value()),
            Err(err) => tracing::trace!(kind = nla.kind(), %err, "skipping a link attribute"),
        }
    }
    Some(link)
}

/// `IFLA_INFO_KIND` read straight from a raw `IFLA_LINKINFO`, for when the
/// library cannot parse the rest of it.
fn raw_info_kind(linkinfo: &[u8]) -> Option<String> {
    NlasIterator::new(linkinfo)
        .map_while(Result::ok)
        .find(|nla| nla.kind() == IFLA_INFO_KIND)
        .map(|nla| {
            let value = nla.value();
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            String::from_utf8_lossy(&value[..end]).into_owned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn mac_is_lower_case_with_colons() {
        assert_eq!(
            format_mac(&[0x02, 0x42, 0xAC, 0x11, 0x00, 0x02]).as_deref(),
            Some("02:42:ac:11:00:02")
        );
        assert_eq!(format_mac(&[]), None);
        assert_eq!(format_mac(&[1, 2, 3, 4]), None);
    }

    #[test]
    fn dump_sees_loopback() {
        // Needs no privilege: any process may list its own namespace's links.
        let links = dump_links().unwrap();
        let lo = links.iter().find(|l| l.name == "lo").expect("lo is listed");
        assert_eq!(lo.index, 1);
        assert_eq!(lo.mac.as_deref(), Some("00:00:00:00:00:00"));
        assert_eq!(lo.iflink_or_self(), 1);
        assert!(!lo.is_veth());
        // Every listed link exists in /sys/class/net with the same index.
        for link in &links {
            let path = format!("/sys/class/net/{}/ifindex", link.name);
            if let Ok(text) = std::fs::read_to_string(&path) {
                assert_eq!(text.trim(), link.index.to_string(), "{}", link.name);
            }
        }
    }

    #[test]
    fn own_namespace_has_no_id_in_itself_or_answers() {
        // Asking about our own namespace is answered (usually "none").
        let own = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
        let id = netns_id(own.as_fd()).unwrap();
        assert!(id.is_none() || id.unwrap() >= 0);
    }

    #[test]
    fn raw_kind_is_read() {
        // IFLA_LINKINFO { IFLA_INFO_KIND "veth\0" } with padding.
        let nla = [9u8, 0, 1, 0, b'v', b'e', b't', b'h', 0, 0, 0, 0];
        assert_eq!(raw_info_kind(&nla).as_deref(), Some("veth"));
    }
}
