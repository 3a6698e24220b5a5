//! What a probe saw, and whether that means the network let it through.

use std::fmt;

use serde::Serialize;

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome", content = "detail")]
pub enum Observed {
    /// TCP: the handshake completed.
    Connected,
    /// TCP: the target answered with a reset (nothing listens): the
    /// network let the probe through.
    Refused,
    /// UDP: a datagram came back.
    Reply,
    /// UDP: an ICMP port unreachable came back (nothing listens): the
    /// network let the probe through.
    PortUnreachable,
    /// ICMP: an echo reply came back.
    EchoReply,
    /// TCP: no answer within the timeout (dropped).
    TimedOut,
    /// UDP or ICMP: nothing came back within the timeout. Counted as
    /// blocked, though a UDP service may simply not answer.
    NoReply,
    /// The kernel reported the destination unreachable (no route, or an
    /// ICMP error on the way).
    Unreachable(String),
    /// The probe could not be run (a local error).
    Failed(String),
}

impl Observed {
    /// True when the probe reached the target (through the network).
    pub fn reached(&self) -> bool {
        matches!(
            self,
            Observed::Connected
                | Observed::Refused
                | Observed::Reply
                | Observed::PortUnreachable
                | Observed::EchoReply
        )
    }

    /// True when the probe could not be run at all.
    pub fn failed(&self) -> bool {
        matches!(self, Observed::Failed(_))
    }
}

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Observed::Connected => f.write_str("reached (connected)"),
            Observed::Refused => f.write_str("reached (refused: nothing listens)"),
            Observed::Reply => f.write_str("reached (reply)"),
            Observed::PortUnreachable => f.write_str("reached (port unreachable: nothing listens)"),
            Observed::EchoReply => f.write_str("reached (echo reply)"),
            Observed::TimedOut => f.write_str("blocked (timed out)"),
            Observed::NoReply => f.write_str("blocked (no reply)"),
            Observed::Unreachable(why) => write!(f, "blocked (unreachable: {why})"),
            Observed::Failed(why) => write!(f, "probe failed: {why}"),
        }
    }
}
