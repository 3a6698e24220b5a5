//! Watching nftables for changes to cordon's tables made by anyone else.
//!
//! The kernel announces every committed nftables change on the netlink
//! multicast group `NFNLGRP_NFTABLES`: one message per object touched
//! (table, chain, rule, set, element), then a `NEWGEN` message naming the
//! process that committed the batch. [`Monitor`] reads them and reports a
//! batch that touched `inet cordon` or `bridge cordon` and was committed by
//! a process other than this one or the `nft` children it spawned. The
//! daemon then reconciles at once, so a deleted table or flushed chain is
//! back within milliseconds rather than at the next periodic check.

use std::collections::VecDeque;
use std::io;
use std::sync::Mutex;

use cordon_ruleset::TABLE;
use netlink_packet_netfilter::nftables::{
    ChainAttribute, GenAttribute, NfTablesMessageType as Kind, RuleAttribute, SetAttribute,
    SetElementList, TableAttribute,
};
use netlink_packet_netfilter::{NetfilterProtoFamily, NetfilterSubsystem};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

use crate::nl::{find_attr, frames, netfilter_parts};

/// `NFNLGRP_NFTABLES`.
const GROUP_NFTABLES: u32 = 7;

static OWN_PIDS: Mutex<VecDeque<u32>> = Mutex::new(VecDeque::new());

/// Records the pid of an `nft` process this process spawned, so its
/// commits are not reported as foreign.
pub fn note_own_pid(pid: u32) {
    let mut pids = OWN_PIDS.lock().unwrap_or_else(|e| e.into_inner());
    if pids.len() >= 256 {
        pids.pop_front();
    }
    pids.push_back(pid);
}

fn is_own(pid: u32) -> bool {
    pid == std::process::id()
        || OWN_PIDS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&pid)
}

/// A change to cordon's tables that this process did not make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Committed by the process with this pid.
    Foreign(u32),
    /// Notifications were lost (the socket's buffer overflowed): anything
    /// may have changed.
    Overflow,
}

/// A subscription to nftables change notifications.
pub struct Monitor {
    socket: Socket,
    buf: Vec<u8>,
    touched: bool,
}

impl Monitor {
    /// Subscribes to nftables notifications (needs CAP_NET_ADMIN).
    pub fn open() -> io::Result<Monitor> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket.add_membership(GROUP_NFTABLES)?;
        // Large element transactions announce thousands of elements.
        let _ = socket.set_rx_buf_sz(8 * 1024 * 1024);
        Ok(Monitor {
            socket,
            buf: vec![0; 1 << 16],
            touched: false,
        })
    }

    /// Blocks until a foreign change to cordon's tables is committed.
    pub fn next_change(&mut self) -> io::Result<Change> {
        loop {
            let n = match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.touched = false;
                    return Ok(Change::Overflow);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if let Some(c) = scan(&self.buf[..n], &mut self.touched, is_own) {
                return Ok(c);
            }
        }
    }
}

/// Scans one datagram of netlink messages. `touched` carries across
/// datagrams: a batch's object messages may arrive before its `NEWGEN`.
///
/// Each message is read with the crate's nftables types, but only the one
/// attribute needed (the committing pid, the table's name) is parsed: a
/// whole-message parse would build every element and expression of a
/// large transaction, and one the crate cannot read (an expression it
/// does not know) would hide the table it was made in.
fn scan(data: &[u8], touched: &mut bool, own: impl Fn(u32) -> bool) -> Option<Change> {
    let mut found = None;
    for frame in frames(data) {
        let ty = frame.message_type();
        if NetfilterSubsystem::from((ty >> 8) as u8) != NetfilterSubsystem::NfTables {
            continue;
        }
        let Some((header, attrs)) = netfilter_parts(&frame) else {
            continue;
        };
        let kind = Kind::from(ty as u8);
        if kind == Kind::NewGen {
            let pid = find_attr(attrs, |a| match a {
                GenAttribute::ProcPid(p) => Some(p),
                _ => None,
            });
            if std::mem::take(touched) {
                match pid {
                    Some(p) if own(p) => {}
                    Some(p) => found = Some(Change::Foreign(p)),
                    None => found = Some(Change::Foreign(0)),
                }
            }
        } else if matches!(
            header.family,
            NetfilterProtoFamily::Inet | NetfilterProtoFamily::Bridge
        ) && table_of(kind, attrs).is_some_and(|t| t == TABLE)
        {
            *touched = true;
        }
    }
    found
}

/// The table an object message (table, chain, rule, set or element) is
/// about; `None` for other messages.
fn table_of(kind: Kind, attrs: &[u8]) -> Option<String> {
    match kind {
        Kind::NewTable | Kind::GetTable | Kind::DeleteTable => find_attr(attrs, |a| match a {
            TableAttribute::Name(n) => Some(n),
            _ => None,
        }),
        Kind::NewChain | Kind::GetChain | Kind::DeleteChain => find_attr(attrs, |a| match a {
            ChainAttribute::Table(n) => Some(n),
            _ => None,
        }),
        Kind::NewRule | Kind::GetRule | Kind::DeleteRule => find_attr(attrs, |a| match a {
            RuleAttribute::Table(n) => Some(n),
            _ => None,
        }),
        Kind::NewSet | Kind::GetSet | Kind::DeleteSet => find_attr(attrs, |a| match a {
            SetAttribute::Table(n) => Some(n),
            _ => None,
        }),
        Kind::NewSetElement | Kind::GetSetElement | Kind::DeleteSetElement => {
            find_attr(attrs, |a| match a {
                SetElementList::Table(n) => Some(n),
                _ => None,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{DefaultNla, NetlinkMessage, NLA_F_NESTED};
    use netlink_packet_netfilter::nftables::{GenMessage, NfTablesMessage, RuleMessage};
    use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// What the kernel sent a subscriber for
    /// `nft 'add table inet cordon; add chain inet cordon c; add rule inet
    /// cordon c meta mark 7 counter accept; add set inet cordon s { type
    /// ipv4_addr; }; add element inet cordon s { 198.51.100.7 }'`
    /// (captured on kernel 6.x): one datagram with the five objects, then
    /// the NEWGEN naming `nft`, pid 29666.
    const OBJECTS: &str = "3c000000000a000001000000e2730000010000020b000100636f72646f6e000008000300000000020c000400000000000000000108000200000000003c000000030a000402000000e2730000010000020b000100636f72646f6e000006000300630000000c00020000000000000000010800060000000001e4000000060a000c03000000e2730000010000020b000100636f72646f6e000006000200630000000c0003000000000000000002b000040024000100090001006d6574610000000014000200080002000000000308000100000000012c00010008000100636d700020000200080001000000000108000200000000000c00030008000100070000002c0001000c000100636f756e746572001c0002000c00010000000000000000000c0002000000000000000000300001000e000100696d6d6564696174650000001c0002000800010000000000100002000c000200080001000000000174000000090a000404000000e2730000010000020b000100636f72646f6e000006000200730000000c0010000000000000000003080004000000000708000500000000040a000d0000040200000000000400090017001300307866666666666666663832353037663430000008001400000000013c0000000c0a000400000000e2730000010000020b000100636f72646f6e0000060002007300000014000300100001000c00010008000100c6336407";
    const NEWGEN: &str =
        "2c0000000f0a000001000000e273000000000002080001000000000208000200000073e2080003006e667400";

    #[test]
    fn a_captured_commit_is_reported_with_its_pid() {
        let (objects, gen) = (hex(OBJECTS), hex(NEWGEN));
        assert_eq!(crate::nl::frames(&objects).count(), 5);
        let mut t = false;
        assert_eq!(scan(&objects, &mut t, |_| false), None);
        assert!(t, "the table, chain, rule, set and element are cordon's");
        assert_eq!(scan(&gen, &mut t, |_| false), Some(Change::Foreign(29666)));
        assert!(!t);
        // The same commit by one of ours is not reported.
        assert_eq!(scan(&[objects, gen].concat(), &mut t, |p| p == 29666), None);
        // A NEWGEN after nothing of cordon's is not reported.
        assert_eq!(scan(&hex(NEWGEN), &mut t, |_| false), None);
    }

    fn msg(family: NetfilterProtoFamily, m: NfTablesMessage) -> Vec<u8> {
        let mut out = Vec::new();
        crate::nl::emit(
            &mut out,
            0,
            0,
            NetfilterMessage::new(NetfilterHeader::new(family, 0, 0), m),
        );
        out
    }

    fn rule(family: NetfilterProtoFamily, table: &str) -> Vec<u8> {
        msg(
            family,
            NfTablesMessage::DeleteRule(RuleMessage {
                attributes: vec![RuleAttribute::Table(table.into())],
            }),
        )
    }

    fn gen(pid: u32) -> Vec<u8> {
        msg(
            NetfilterProtoFamily::Unspec,
            NfTablesMessage::NewGen(GenMessage {
                attributes: vec![GenAttribute::Id(3), GenAttribute::ProcPid(pid)],
            }),
        )
    }

    #[test]
    fn reports_foreign_batches_on_cordons_tables_only() {
        use NetfilterProtoFamily::{Bridge, IPv4, Inet};
        let own = |p: u32| p == 42;
        let mut t = false;
        let batch = [rule(Inet, "cordon"), gen(7)].concat();
        assert_eq!(scan(&batch, &mut t, own), Some(Change::Foreign(7)));
        // Our own commit is not reported.
        let batch = [rule(Inet, "cordon"), gen(42)].concat();
        assert_eq!(scan(&batch, &mut t, own), None);
        // Another table's change is not reported, nor a table of the same
        // name in another family.
        let batch = [rule(Inet, "filter"), gen(7)].concat();
        assert_eq!(scan(&batch, &mut t, own), None);
        let batch = [rule(IPv4, "cordon"), gen(7)].concat();
        assert_eq!(scan(&batch, &mut t, own), None);
        // A batch split over two datagrams.
        assert_eq!(scan(&rule(Inet, "cordon"), &mut t, own), None);
        assert_eq!(scan(&gen(9), &mut t, own), Some(Change::Foreign(9)));
        // The bridge family counts; garbage does not panic.
        let batch = [rule(Bridge, "cordon"), gen(5)].concat();
        assert_eq!(scan(&batch, &mut t, own), Some(Change::Foreign(5)));
        assert_eq!(scan(&[1, 2, 3], &mut t, own), None);
        assert_eq!(scan(&[0xff; 40], &mut t, own), None);
        // A NEWGEN without a pid is still reported.
        let no_pid = msg(
            NetfilterProtoFamily::Unspec,
            NfTablesMessage::NewGen(GenMessage {
                attributes: vec![GenAttribute::Id(3)],
            }),
        );
        let batch = [rule(Inet, "cordon"), no_pid].concat();
        assert_eq!(scan(&batch, &mut t, own), Some(Change::Foreign(0)));
    }

    /// A rule whose expressions the crate cannot parse (a `meta` key of one
    /// byte) still names its table: only that attribute is read.
    #[test]
    fn an_unparseable_rule_still_counts() {
        let meta = [
            DefaultNla::new(1, b"meta\0".to_vec()),
            DefaultNla::new(2 | NLA_F_NESTED, vec![5, 0, 2, 0, 9, 0, 0, 0]),
        ];
        let elem = DefaultNla::new(1 | NLA_F_NESTED, emitted(&meta));
        let bad = msg(
            NetfilterProtoFamily::Inet,
            NfTablesMessage::NewRule(RuleMessage {
                attributes: vec![
                    RuleAttribute::Table("cordon".into()),
                    RuleAttribute::Other(DefaultNla::new(4 | NLA_F_NESTED, emitted(&[elem]))),
                ],
            }),
        );
        assert!(
            NetlinkMessage::<NetfilterMessage>::deserialize(&bad).is_err(),
            "the crate refuses the whole message"
        );
        let mut t = false;
        let batch = [bad, gen(7)].concat();
        assert_eq!(scan(&batch, &mut t, |_| false), Some(Change::Foreign(7)));
    }

    fn emitted(nlas: &[DefaultNla]) -> Vec<u8> {
        use netlink_packet_core::Emitable;
        let mut v = vec![0; nlas.buffer_len()];
        nlas.emit(&mut v);
        v
    }
}
