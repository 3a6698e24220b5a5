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
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

use crate::nl::{attr, messages};

/// `NFNLGRP_NFTABLES`.
const GROUP_NFTABLES: u32 = 7;
/// `NFNL_SUBSYS_NFTABLES`.
const SUBSYS_NFTABLES: u16 = 10;
/// `NFT_MSG_NEWGEN`.
const MSG_NEWGEN: u16 = 15;
/// `NFTA_GEN_PROC_PID`.
const GEN_PROC_PID: u16 = 2;
/// `NFPROTO_INET`, `NFPROTO_BRIDGE`.
const FAMILIES: [u8; 2] = [1, 7];

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
fn scan(data: &[u8], touched: &mut bool, own: impl Fn(u32) -> bool) -> Option<Change> {
    let mut found = None;
    for (ty, msg) in messages(data) {
        if ty >> 8 != SUBSYS_NFTABLES || msg.len() < 4 {
            continue;
        }
        let (kind, family) = (ty & 0xff, msg[0]);
        let attrs = &msg[4..];
        if kind == MSG_NEWGEN {
            let pid = attr(attrs, GEN_PROC_PID)
                .and_then(|v| v.get(..4))
                .map(|v| u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
            if std::mem::take(touched) {
                match pid {
                    Some(p) if own(p) => {}
                    Some(p) => found = Some(Change::Foreign(p)),
                    None => found = Some(Change::Foreign(0)),
                }
            }
        } else if kind <= 14 && FAMILIES.contains(&family) {
            // Attribute 1 is the table's name in every object message.
            if let Some(name) = attr(attrs, 1) {
                let name = name.split(|b| *b == 0).next().unwrap_or_default();
                if name == TABLE.as_bytes() {
                    *touched = true;
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nl::nla;

    fn nlmsg(kind: u16, family: u8, attrs: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        let len = 16 + 4 + attrs.len();
        v.extend((len as u32).to_ne_bytes());
        v.extend(((SUBSYS_NFTABLES << 8) | kind).to_ne_bytes());
        v.extend([0u8; 10]);
        v.extend([family, 0, 0, 0]);
        v.extend(attrs);
        v
    }

    #[test]
    fn reports_foreign_batches_on_cordons_tables_only() {
        let del_rule = nlmsg(8, 1, &nla(1, b"cordon\0"));
        let other = nlmsg(8, 1, &nla(1, b"filter\0"));
        let gen = |pid: u32| nlmsg(MSG_NEWGEN, 0, &nla(GEN_PROC_PID, &pid.to_be_bytes()));
        let own = |p: u32| p == 42;

        let mut t = false;
        let batch = [del_rule.clone(), gen(7)].concat();
        assert_eq!(scan(&batch, &mut t, own), Some(Change::Foreign(7)));
        // Our own commit is not reported.
        let batch = [del_rule.clone(), gen(42)].concat();
        assert_eq!(scan(&batch, &mut t, own), None);
        // Another table's change is not reported.
        let batch = [other, gen(7)].concat();
        assert_eq!(scan(&batch, &mut t, own), None);
        // A batch split over two datagrams.
        assert_eq!(scan(&del_rule, &mut t, own), None);
        assert_eq!(scan(&gen(9), &mut t, own), Some(Change::Foreign(9)));
        // The bridge family counts; garbage does not panic.
        let batch = [nlmsg(2, 7, &nla(1, b"cordon\0")), gen(5)].concat();
        assert_eq!(scan(&batch, &mut t, own), Some(Change::Foreign(5)));
        assert_eq!(scan(&[1, 2, 3], &mut t, own), None);
        assert_eq!(scan(&[0xff; 40], &mut t, own), None);
    }
}
