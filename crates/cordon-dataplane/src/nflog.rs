//! Reading the packets cordon's ruleset logs (`log group 100`) from the
//! kernel over nfnetlink_log.
//!
//! Every drop (and every audited packet) in cordon's tables carries a log
//! statement whose prefix names the direction, the policy and the verdict
//! (`cordon egress web drop `). [`NflogReader`] binds that group and
//! returns each logged packet with its prefix, the first bytes of its
//! network header onward and the interfaces it came in on; decoding the
//! packet and naming the container is the daemon's job.
//!
//! Only one socket may bind a group at a time: a second daemon (or ulogd
//! on group 100) gets `EBUSY`, reported as an error naming the group.

use std::io;

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_netfilter::nflog::{
    config_request, ConfigCmd, ConfigMode, PacketNla, Timeout, ULogMessage,
};
use netlink_packet_netfilter::{NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

/// Bytes of each packet copied to user space: enough for an IPv6 header
/// with a few extension headers and the transport header's ports.
pub const COPY_RANGE: u32 = 128;

/// One logged packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The log statement's prefix, e.g. `cordon egress web drop `.
    pub prefix: String,
    /// The packet from its network header, at most [`COPY_RANGE`] bytes.
    pub payload: Vec<u8>,
    /// The bridge port it came in on (a container's host-side veth), or
    /// the input interface.
    pub in_ifindex: Option<u32>,
}

/// A bound nfnetlink_log socket.
pub struct NflogReader {
    socket: Socket,
    buf: Vec<u8>,
    pending: std::collections::VecDeque<Logged>,
}

impl NflogReader {
    /// Binds log group `group` in the calling thread's network namespace.
    pub fn bind(group: u16) -> io::Result<NflogReader> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        // A bigger buffer rides out bursts; overflow loses log lines only.
        let _ = socket.set_rx_buf_sz(4 << 20);
        let mut r = NflogReader {
            socket,
            buf: vec![0; 1 << 16],
            pending: Default::default(),
        };
        let timeout: Timeout = std::time::Duration::from_millis(20).into();
        r.request(
            group,
            vec![
                ConfigCmd::Bind.into(),
                ConfigMode::new_packet(COPY_RANGE).into(),
                timeout.into(),
            ],
        )
        .map_err(|e| {
            let busy = e.raw_os_error() == Some(libc::EBUSY);
            io::Error::new(
                e.kind(),
                if busy {
                    format!("nflog group {group} is bound by another process (another cordon daemon, or ulogd)")
                } else {
                    format!("cannot bind nflog group {group}: {e}")
                },
            )
        })?;
        Ok(r)
    }

    fn request(
        &mut self,
        group: u16,
        nlas: Vec<netlink_packet_netfilter::nflog::ConfigNla>,
    ) -> io::Result<()> {
        let msg = config_request(NetfilterProtoFamily::Unspec, group, nlas);
        let mut out = vec![0; msg.header.length as usize];
        msg.serialize(&mut out);
        self.socket.send(&out, 0)?;
        loop {
            let n = self.socket.recv(&mut &mut self.buf[..], 0)?;
            for m in crate::nl::messages(&self.buf[..n]) {
                if let NetlinkPayload::Error(e) = m.payload {
                    return match e.code {
                        None => Ok(()),
                        Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                    };
                }
            }
        }
    }

    /// How long [`NflogReader::read`] waits before failing with
    /// `WouldBlock`; `None` waits for ever.
    pub fn set_read_timeout(&mut self, t: Option<std::time::Duration>) -> io::Result<()> {
        crate::nl::set_read_timeout(&self.socket, t.unwrap_or_default())
    }

    /// Blocks until the next logged packet.
    pub fn read(&mut self) -> io::Result<Logged> {
        loop {
            if let Some(l) = self.pending.pop_front() {
                return Ok(l);
            }
            let n = match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => n,
                // ENOBUFS: the kernel dropped log messages; go on.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
                Err(e) => return Err(e),
            };
            for m in crate::nl::messages(&self.buf[..n]) {
                if let Some(l) = logged(m) {
                    self.pending.push_back(l);
                }
            }
        }
    }
}

fn logged(m: NetlinkMessage<NetfilterMessage>) -> Option<Logged> {
    let NetlinkPayload::InnerMessage(NetfilterMessage {
        inner: NetfilterMessageInner::ULog(ULogMessage::Packet(nlas)),
        ..
    }) = m.payload
    else {
        return None;
    };
    let mut l = Logged {
        prefix: String::new(),
        payload: Vec::new(),
        in_ifindex: None,
    };
    let mut physin = None;
    for nla in nlas {
        match nla {
            PacketNla::Prefix(p) => l.prefix = p.to_string_lossy().into_owned(),
            PacketNla::Payload(p) => l.payload = p,
            PacketNla::IfIndexInDev(i) => l.in_ifindex = l.in_ifindex.or(Some(i)),
            PacketNla::IfIndexPhysInDev(i) => physin = Some(i),
            _ => {}
        }
    }
    l.in_ifindex = physin.or(l.in_ifindex);
    Some(l)
}
