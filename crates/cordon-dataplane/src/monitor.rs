//! Watching nftables for changes to cordon's tables made by anyone else.
//!
//! The kernel announces every committed nftables change on the netlink
//! multicast group `NFNLGRP_NFTABLES`: one message per object touched
//! (table, chain, rule, set, element), then a `NEWGEN` message with the
//! generation id the commit made and the thread that committed the batch.
//! [`Monitor`] reads them and reports every batch with its generation id,
//! and, for a batch that touched `inet cordon` or `bridge cordon` and was
//! committed by a process other than this one or the `nft` children it
//! spawned, what it touched: only elements of named sets, or something
//! structural ([`Touched`]). The daemon then repairs at once (reading only
//! the touched sets when it can), so a deleted table or flushed chain is
//! back within milliseconds rather than at the next periodic check, and
//! its periodic check knows which commits it has already accounted for.

use std::collections::VecDeque;
use std::io;
use std::sync::Mutex;

use cordon_ruleset::nft::Family;
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

/// `NFT_MSG_DESTROYSETELEM` (kernel 6.3+), which the crate does not name:
/// laid out as `NFT_MSG_DELSETELEM`.
const DESTROYSETELEM: u8 = 30;

static OWN_PIDS: Mutex<VecDeque<u32>> = Mutex::new(VecDeque::new());

/// Records the pid of an `nft` process this process spawned, so its
/// commits are not reported as foreign.
pub fn note_own_pid(pid: u32) {
    let mut pids = OWN_PIDS.lock().unwrap_or_else(|e| e.into_inner());
    if pids.contains(&pid) {
        return;
    }
    if pids.len() >= 256 {
        pids.pop_front();
    }
    pids.push_back(pid);
}

/// Records the calling thread's id as one of this process's: the kernel
/// names the committing *thread* in `NEWGEN` (`task_pid_nr(current)`), so
/// a commit made over netlink from any thread but the main one would
/// otherwise look foreign.
pub fn note_own_thread() {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    note_own_pid(tid as u32);
}

fn is_own(pid: u32) -> bool {
    pid == std::process::id()
        || OWN_PIDS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&pid)
}

/// What a foreign batch did to cordon's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// Only elements of these named sets were added or deleted (each once,
    /// in the order first seen).
    Elements(Vec<(Family, String)>),
    /// Something else: a table, chain, rule, set declaration or any other
    /// object, or an element message without its set's name.
    Structure,
}

impl Touched {
    /// Adds `what` to what `this` already holds: the union of the sets,
    /// or structural when either is.
    pub fn merge(this: &mut Option<Touched>, what: Touched) {
        match (this.as_mut(), what) {
            (Some(Touched::Structure), _) => {}
            (_, Touched::Structure) => *this = Some(Touched::Structure),
            (Some(Touched::Elements(have)), Touched::Elements(more)) => {
                for s in more {
                    if !have.contains(&s) {
                        have.push(s);
                    }
                }
            }
            (None, t) => *this = Some(t),
        }
    }
}

/// What the monitor saw: every committed batch, or a loss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A batch was committed (its `NEWGEN` message).
    Commit {
        /// The generation id the commit made (`NFTA_GEN_ID`), if given.
        generation: Option<u32>,
        /// The committing process (`NFTA_GEN_PROC_PID`; 0 when not given).
        pid: u32,
        /// What it did to `inet cordon` or `bridge cordon`, when it was
        /// committed by a process other than this one and the `nft`
        /// children it spawned and touched them; `None` otherwise (a commit
        /// of ours, or one to other tables).
        foreign: Option<Touched>,
    },
    /// Notifications were lost (the socket's buffer overflowed): anything
    /// may have changed.
    Overflow,
}

impl Change {
    /// True when this is a foreign change to cordon's tables or a loss.
    pub fn concerns_cordon(&self) -> bool {
        !matches!(self, Change::Commit { foreign: None, .. })
    }
}

/// A subscription to nftables change notifications.
pub struct Monitor {
    socket: Socket,
    buf: Vec<u8>,
    batch: Option<Touched>,
    ready: VecDeque<Change>,
}

impl Monitor {
    /// Subscribes to nftables notifications of the calling thread's network
    /// namespace (needs CAP_NET_ADMIN).
    pub fn open() -> io::Result<Monitor> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket.add_membership(GROUP_NFTABLES)?;
        // Large element transactions announce thousands of elements.
        let _ = socket.set_rx_buf_sz(8 * 1024 * 1024);
        Ok(Monitor {
            socket,
            buf: vec![0; 1 << 16],
            batch: None,
            ready: VecDeque::new(),
        })
    }

    /// Blocks until the next committed batch (anyone's, on any table) or
    /// a loss of notifications.
    pub fn next_commit(&mut self) -> io::Result<Change> {
        loop {
            if let Some(c) = self.ready.pop_front() {
                return Ok(c);
            }
            let n = match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.batch = None;
                    return Ok(Change::Overflow);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            scan(&self.buf[..n], &mut self.batch, is_own, &mut self.ready);
        }
    }
}

/// Scans one datagram of netlink messages, appending each batch it ends
/// (each `NEWGEN`) to `out`. `batch` carries what the batch so far did to
/// cordon's tables across datagrams: a batch's object messages may arrive
/// before its `NEWGEN`.
///
/// Each message is read with the crate's nftables types, but only the
/// attributes needed (the generation id and committing pid, the table's
/// name, an element message's set name) are parsed: a whole-message parse
/// would build every element and expression of a large transaction, and
/// one the crate cannot read (an expression it does not know) would hide
/// the table it was made in.
fn scan(
    data: &[u8],
    batch: &mut Option<Touched>,
    own: impl Fn(u32) -> bool,
    out: &mut VecDeque<Change>,
) {
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
            })
            .unwrap_or(0);
            let generation = find_attr(attrs, |a| match a {
                GenAttribute::Id(id) => Some(id),
                _ => None,
            });
            let foreign = batch.take().filter(|_| pid == 0 || !own(pid));
            out.push_back(Change::Commit {
                generation,
                pid,
                foreign,
            });
            continue;
        }
        let family = match header.family {
            NetfilterProtoFamily::Inet => Family::Inet,
            NetfilterProtoFamily::Bridge => Family::Bridge,
            _ => continue,
        };
        if table_of(kind, attrs).is_some_and(|t| t == TABLE) {
            let what = match kind {
                Kind::NewSetElement | Kind::DeleteSetElement | Kind::Other(DESTROYSETELEM) => {
                    find_attr(attrs, |a| match a {
                        SetElementList::Set(n) => Some(n),
                        _ => None,
                    })
                    .map_or(Touched::Structure, |set| {
                        Touched::Elements(vec![(family, set)])
                    })
                }
                _ => Touched::Structure,
            };
            Touched::merge(batch, what);
        }
    }
}

/// The table an object message (table, chain, rule, set, element, or any
/// other object) is about; `None` for other messages.
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
        Kind::NewSetElement
        | Kind::GetSetElement
        | Kind::DeleteSetElement
        | Kind::Other(DESTROYSETELEM) => find_attr(attrs, |a| match a {
            SetElementList::Table(n) => Some(n),
            _ => None,
        }),
        Kind::NewGen | Kind::GetGen | Kind::Trace => None,
        // Objects, flowtables and kinds the crate does not know (the
        // `DESTROY*` messages): every nftables object message carries its
        // table's name as attribute 1 (`NFTA_*_TABLE`).
        _ => netlink_packet_core::NlasIterator::new(attrs)
            .map_while(Result::ok)
            .find(|nla| nla.kind() & 0x3fff == 1)
            .map(|nla| {
                let v = nla.value();
                let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
                String::from_utf8_lossy(&v[..end]).into_owned()
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{DefaultNla, NetlinkMessage, NLA_F_NESTED};
    use netlink_packet_netfilter::nftables::{
        GenMessage, NfTablesMessage, RuleMessage, SetElementMessage,
    };
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

    /// Scans `data` and returns the batches it ended.
    fn run(data: &[u8], batch: &mut Option<Touched>, own: impl Fn(u32) -> bool) -> Vec<Change> {
        let mut out = VecDeque::new();
        scan(data, batch, own, &mut out);
        out.into()
    }

    fn commit(generation: u32, pid: u32, foreign: Option<Touched>) -> Change {
        Change::Commit {
            generation: Some(generation),
            pid,
            foreign,
        }
    }

    #[test]
    fn a_captured_commit_is_reported_with_its_pid() {
        let (objects, gen) = (hex(OBJECTS), hex(NEWGEN));
        assert_eq!(crate::nl::frames(&objects).count(), 5);
        let mut t = None;
        assert_eq!(run(&objects, &mut t, |_| false), []);
        assert_eq!(
            t,
            Some(Touched::Structure),
            "the table, chain, rule, set and element are cordon's"
        );
        assert_eq!(
            run(&gen, &mut t, |_| false),
            [commit(2, 29666, Some(Touched::Structure))]
        );
        assert_eq!(t, None);
        // The same commit by one of ours is seen, as not foreign.
        assert_eq!(
            run(&[objects, gen].concat(), &mut t, |p| p == 29666),
            [commit(2, 29666, None)]
        );
        // A NEWGEN after nothing of cordon's is not foreign.
        assert_eq!(
            run(&hex(NEWGEN), &mut t, |_| false),
            [commit(2, 29666, None)]
        );
    }

    /// The element message of the captured commit alone (`add element inet
    /// cordon s { 198.51.100.7 }`): elements of set `s` only.
    #[test]
    fn a_captured_element_commit_names_its_set() {
        let objects = hex(OBJECTS);
        let element = crate::nl::frames(&objects).last().unwrap().buffer.to_vec();
        let mut t = None;
        assert_eq!(
            run(&[element, hex(NEWGEN)].concat(), &mut t, |_| false),
            [commit(
                2,
                29666,
                Some(Touched::Elements(vec![(Family::Inet, "s".into())]))
            )]
        );
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

    fn elements(family: NetfilterProtoFamily, table: &str, set: Option<&str>) -> Vec<u8> {
        let mut attributes = vec![SetElementList::Table(table.into())];
        if let Some(set) = set {
            attributes.push(SetElementList::Set(set.into()));
        }
        msg(
            family,
            NfTablesMessage::DeleteSetElement(SetElementMessage { attributes }),
        )
    }

    fn gen_id(id: u32, pid: u32) -> Vec<u8> {
        msg(
            NetfilterProtoFamily::Unspec,
            NfTablesMessage::NewGen(GenMessage {
                attributes: vec![GenAttribute::Id(id), GenAttribute::ProcPid(pid)],
            }),
        )
    }

    fn foreign(c: &[Change]) -> Vec<Option<Touched>> {
        c.iter()
            .map(|c| match c {
                Change::Commit { foreign, .. } => foreign.clone(),
                Change::Overflow => Some(Touched::Structure),
            })
            .collect()
    }

    #[test]
    fn reports_foreign_batches_on_cordons_tables_only() {
        use NetfilterProtoFamily::{Bridge, IPv4, Inet};
        let own = |p: u32| p == 42;
        let mut t = None;
        let s = Some(Touched::Structure);
        let batch = [rule(Inet, "cordon"), gen(7)].concat();
        assert_eq!(run(&batch, &mut t, own), [commit(3, 7, s.clone())]);
        // Our own commit is seen, not foreign.
        let batch = [rule(Inet, "cordon"), gen(42)].concat();
        assert_eq!(run(&batch, &mut t, own), [commit(3, 42, None)]);
        // Another table's change is not foreign to cordon, nor a table of
        // the same name in another family.
        let batch = [rule(Inet, "filter"), gen(7)].concat();
        assert_eq!(foreign(&run(&batch, &mut t, own)), [None]);
        let batch = [rule(IPv4, "cordon"), gen(7)].concat();
        assert_eq!(foreign(&run(&batch, &mut t, own)), [None]);
        // A batch split over two datagrams.
        assert_eq!(run(&rule(Inet, "cordon"), &mut t, own), []);
        assert_eq!(
            foreign(&run(&gen(9), &mut t, own)),
            [Some(Touched::Structure)]
        );
        // The bridge family counts; garbage does not panic.
        let batch = [rule(Bridge, "cordon"), gen(5)].concat();
        assert_eq!(
            foreign(&run(&batch, &mut t, own)),
            [Some(Touched::Structure)]
        );
        assert_eq!(run(&[1, 2, 3], &mut t, own), []);
        assert_eq!(run(&[0xff; 40], &mut t, own), []);
        // A NEWGEN without a pid is still reported.
        let no_pid = msg(
            NetfilterProtoFamily::Unspec,
            NfTablesMessage::NewGen(GenMessage {
                attributes: vec![GenAttribute::Id(3)],
            }),
        );
        let batch = [rule(Inet, "cordon"), no_pid].concat();
        assert_eq!(run(&batch, &mut t, own), [commit(3, 0, s)]);
    }

    #[test]
    fn element_only_batches_name_their_sets() {
        use NetfilterProtoFamily::{Bridge, IPv4, Inet};
        let own = |p: u32| p == 42;
        let mut t = None;
        // Two sets of two families in one batch, one set twice.
        let batch = [
            elements(Inet, "cordon", Some("known4")),
            elements(Bridge, "cordon", Some("macs")),
            elements(Inet, "cordon", Some("known4")),
            gen_id(11, 7),
        ]
        .concat();
        assert_eq!(
            run(&batch, &mut t, own),
            [commit(
                11,
                7,
                Some(Touched::Elements(vec![
                    (Family::Inet, "known4".into()),
                    (Family::Bridge, "macs".into())
                ]))
            )]
        );
        // Elements plus anything structural is structural, in either order.
        let batch = [
            elements(Inet, "cordon", Some("known4")),
            rule(Inet, "cordon"),
            elements(Inet, "cordon", Some("known6")),
            gen_id(12, 7),
        ]
        .concat();
        assert_eq!(
            foreign(&run(&batch, &mut t, own)),
            [Some(Touched::Structure)]
        );
        // An element message without its set's name is structural.
        let batch = [elements(Inet, "cordon", None), gen_id(13, 7)].concat();
        assert_eq!(
            foreign(&run(&batch, &mut t, own)),
            [Some(Touched::Structure)]
        );
        // Elements of other tables or families, or ours, are not foreign.
        let batch = [
            elements(Inet, "filter", Some("known4")),
            elements(IPv4, "cordon", Some("known4")),
            gen_id(14, 7),
            elements(Inet, "cordon", Some("known4")),
            gen_id(15, 42),
        ]
        .concat();
        assert_eq!(
            run(&batch, &mut t, own),
            [commit(14, 7, None), commit(15, 42, None)]
        );
        // Two batches in one datagram stay apart.
        let batch = [
            elements(Inet, "cordon", Some("a")),
            gen_id(16, 7),
            elements(Inet, "cordon", Some("b")),
            gen_id(17, 8),
        ]
        .concat();
        assert_eq!(
            foreign(&run(&batch, &mut t, own)),
            [
                Some(Touched::Elements(vec![(Family::Inet, "a".into())])),
                Some(Touched::Elements(vec![(Family::Inet, "b".into())]))
            ]
        );
    }

    /// An object of a kind the crate does not know (`NFT_MSG_DESTROYRULE`,
    /// 28) in cordon's table is structural: its table is read from
    /// attribute 1; in another table it is nothing.
    #[test]
    fn unknown_kinds_in_cordons_table_are_structural() {
        let unknown = |table: &str| {
            let mut out = Vec::new();
            let nla = emitted(&[DefaultNla::new(1, format!("{table}\0").into_bytes())]);
            let len = 16 + 4 + nla.len();
            out.extend_from_slice(&(len as u32).to_ne_bytes());
            out.extend_from_slice(&((10u16 << 8) | 28).to_ne_bytes());
            out.extend_from_slice(&[0; 10]);
            out.extend_from_slice(&[libc::NFPROTO_INET as u8, 0, 0, 0]);
            out.extend_from_slice(&nla);
            out
        };
        let mut t = None;
        let batch = [unknown("cordon"), gen(7)].concat();
        assert_eq!(
            foreign(&run(&batch, &mut t, |_| false)),
            [Some(Touched::Structure)]
        );
        let batch = [unknown("other"), gen(7)].concat();
        assert_eq!(foreign(&run(&batch, &mut t, |_| false)), [None]);
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
        let mut t = None;
        let batch = [bad, gen(7)].concat();
        assert_eq!(
            foreign(&run(&batch, &mut t, |_| false)),
            [Some(Touched::Structure)]
        );
    }

    fn emitted(nlas: &[DefaultNla]) -> Vec<u8> {
        use netlink_packet_core::Emitable;
        let mut v = vec![0; nlas.buffer_len()];
        nlas.emit(&mut v);
        v
    }
}
