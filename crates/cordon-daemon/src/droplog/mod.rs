//! The drop log: each packet cordon's ruleset logged (nflog group 100)
//! becomes an [`Event`] naming the container, its policy, the direction,
//! the protocol, the addresses and ports and the verdict (`drop`, or
//! `audit` for a policy in audit mode, which lets the packet through).
//!
//! [`Recorder`] keeps what `cordon logs`, `cordon status`, `cordon suggest`
//! and the metrics read: the recent events, the last drop per container,
//! per-container counts of everything logged, and the distinct flows seen
//! (for suggestions). Events shown are rate-limited per container (a token
//! bucket); what a bucket suppresses is counted and reported on the
//! container's next event, or in a summary event once the bucket refills.
//! Counts and flows see every packet, suppressed or not.
//!
//! - `event`: the [`Event`] itself, its time stamp and its one-line form.
//! - `decode`: a logged packet and its prefix into an [`Event`].
//! - `recorder`: the [`Recorder`] (recent events, tallies, flows).
//! - `limit`: the per-container rate limit of the events shown.

mod decode;
mod event;
mod limit;
mod recorder;

pub use decode::{decode, event, ifname, Packet};
pub use event::{one_line, stamp, Event};
pub use limit::{BURST, RATE_PER_SEC};
pub use recorder::{FlowKey, FlowStat, Recorder, Tally, FLOWS, FOLLOW_STALL, RECENT};

/// Packets, attributions and log lines shared by the tests of the files
/// above.
#[cfg(test)]
mod fixtures {
    use cordon_dataplane::nflog::Logged;

    use crate::directory::{Client, Directory};

    pub fn v4_tcp(src: [u8; 4], dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ipv4(src, dst, 64)
            .tcp(40000, dport, 1, 1000)
            .write(&mut out, &[])
            .unwrap();
        out
    }

    pub fn dir() -> Directory {
        let c = Client {
            key: "web".into(),
            policy: "web".into(),
            container: "web-1".into(),
            id: "0123456789ab".into(),
        };
        let mut d = Directory::default();
        d.by_addr.insert("172.20.0.2".parse().unwrap(), c.clone());
        d.by_iface.insert("veth1".into(), c);
        d
    }

    pub fn logged(prefix: &str, payload: Vec<u8>) -> Logged {
        Logged {
            prefix: prefix.into(),
            payload,
            in_ifindex: Some(7),
        }
    }
}
