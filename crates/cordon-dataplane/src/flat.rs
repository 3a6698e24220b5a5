//! The install's fill batches written straight into bytes.
//!
//! [`crate::elements::fill`] sends hundreds of thousands of elements at
//! 10,000 containers. Built as netlink-packet-netfilter's typed messages,
//! each element cost several small allocations (its key bytes, its
//! attribute list, its verdict's chain name, its pre-serialised copy) and
//! a walk of the nested attribute lengths; written here, an element is a
//! few appends to the batch's one buffer. The layout is the crate's, byte
//! for byte (the tests compare both). The kernel's inserts remain almost
//! all of the fill's time (docs/benchmarks.md).
//!
//! A batch: `NFNL_MSG_BATCH_BEGIN`, `NFT_MSG_NEWSETELEM` messages of at
//! most [`CHUNK`] elements (flags `REQUEST | ACK | CREATE`), and
//! `NFNL_MSG_BATCH_END`.

use cordon_ruleset::nft::{Element, Family, Value, Verdict};

/// `NFNL_SUBSYS_NFTABLES`.
const SUBSYS_NFTABLES: u16 = 10;
/// `NFNL_MSG_BATCH_BEGIN`, `NFNL_MSG_BATCH_END`.
const BATCH_BEGIN: u16 = 0x10;
const BATCH_END: u16 = 0x11;
/// `NFT_MSG_NEWSETELEM` in the nftables subsystem.
const NEWSETELEM: u16 = (SUBSYS_NFTABLES << 8) | 12;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;
/// `NFTA_SET_ELEM_LIST_*`.
const LIST_TABLE: u16 = 1;
const LIST_SET: u16 = 2;
const LIST_ELEMENTS: u16 = 3;
/// `NFTA_LIST_ELEM`.
const LIST_ELEM: u16 = 1;
/// `NFTA_SET_ELEM_KEY`, `NFTA_SET_ELEM_DATA`.
const ELEM_KEY: u16 = 1;
const ELEM_DATA: u16 = 2;
/// `NFTA_DATA_VALUE`, `NFTA_DATA_VERDICT`.
const DATA_VALUE: u16 = 1;
const DATA_VERDICT: u16 = 2;
/// `NFTA_VERDICT_CODE`, `NFTA_VERDICT_CHAIN`.
const VERDICT_CODE: u16 = 1;
const VERDICT_CHAIN: u16 = 2;
/// Verdict codes, as the kernel reads them (big-endian on the wire).
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
const NFT_RETURN: u32 = -5i32 as u32;
const NFT_JUMP: u32 = -3i32 as u32;
const NFT_GOTO: u32 = -4i32 as u32;
const IFNAMSIZ: usize = 16;
/// Elements per message, as [`crate::elements`] sends them.
pub(crate) const CHUNK: usize = 256;

/// A batch being written: its bytes, its next sequence number and how many
/// of its messages ask for an acknowledgement.
pub(crate) struct Batch {
    /// The bytes written so far.
    pub(crate) out: Vec<u8>,
    seq: u32,
    /// Messages that ask for an acknowledgement.
    pub(crate) acks: usize,
}

impl Batch {
    /// A batch opened with `BATCH_BEGIN`; `seq` is the last sequence number
    /// used before it.
    pub(crate) fn begin(seq: u32, capacity: usize) -> Batch {
        let mut b = Batch {
            out: Vec::with_capacity(capacity),
            seq,
            acks: 0,
        };
        b.control(BATCH_BEGIN);
        b
    }

    /// Closes the batch with `BATCH_END`: its bytes, its acknowledgements
    /// and its last sequence number.
    pub(crate) fn end(mut self) -> (Vec<u8>, usize, u32) {
        self.control(BATCH_END);
        (self.out, self.acks, self.seq)
    }

    fn control(&mut self, kind: u16) {
        let start = self.header(kind, NLM_F_REQUEST);
        // nfgenmsg: family AF_UNSPEC, version 0, the subsystem as res_id.
        self.out.extend_from_slice(&[0, 0]);
        self.out.extend_from_slice(&SUBSYS_NFTABLES.to_be_bytes());
        self.close_message(start);
    }

    /// Writes an `nlmsghdr` with a length to fill in; returns its offset.
    fn header(&mut self, kind: u16, flags: u16) -> usize {
        self.seq += 1;
        let start = self.out.len();
        self.out.extend_from_slice(&0u32.to_ne_bytes());
        self.out.extend_from_slice(&kind.to_ne_bytes());
        self.out.extend_from_slice(&flags.to_ne_bytes());
        self.out.extend_from_slice(&self.seq.to_ne_bytes());
        self.out.extend_from_slice(&0u32.to_ne_bytes());
        start
    }

    fn close_message(&mut self, start: usize) {
        let len = (self.out.len() - start) as u32;
        self.out[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// One `NEWSETELEM` message adding `elems` (at most [`CHUNK`], every
    /// key [`key_len`]-encodable) to `table`'s `set`. On an element that
    /// cannot be encoded, nothing is written and it is returned.
    pub(crate) fn add_elements<'e>(
        &mut self,
        family: Family,
        table: &str,
        set: &str,
        elems: &'e [Element],
    ) -> Result<(), &'e Element> {
        let rollback = (self.out.len(), self.seq);
        let start = self.header(NEWSETELEM, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE);
        let family = match family {
            Family::Inet => 1u8,
            Family::Bridge => 7,
        };
        self.out.extend_from_slice(&[family, 0, 0, 0]);
        string_attr(&mut self.out, LIST_TABLE, table);
        string_attr(&mut self.out, LIST_SET, set);
        let list = open(&mut self.out, LIST_ELEMENTS | NLA_F_NESTED);
        for e in elems {
            if !element(&mut self.out, e) {
                self.out.truncate(rollback.0);
                self.seq = rollback.1;
                return Err(e);
            }
        }
        close(&mut self.out, list);
        self.close_message(start);
        self.acks += 1;
        Ok(())
    }
}

/// Opens a nested attribute; returns its offset for [`close`].
fn open(out: &mut Vec<u8>, kind: u16) -> usize {
    let start = out.len();
    out.extend_from_slice(&0u16.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    start
}

/// Writes the length of the attribute opened at `start` and pads to four
/// bytes.
fn close(out: &mut Vec<u8>, start: usize) {
    let len = (out.len() - start) as u16;
    out[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    pad(out);
}

fn pad(out: &mut Vec<u8>) {
    out.resize(out.len().div_ceil(4) * 4, 0);
}

fn string_attr(out: &mut Vec<u8>, kind: u16, s: &str) {
    let start = open(out, kind);
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    close(out, start);
}

/// One `NFTA_LIST_ELEM`: the key and, for a map, the verdict. False (and
/// partial bytes written) when the key cannot be encoded.
fn element(out: &mut Vec<u8>, e: &Element) -> bool {
    let elem = open(out, LIST_ELEM | NLA_F_NESTED);
    let key = open(out, ELEM_KEY | NLA_F_NESTED);
    let value = open(out, DATA_VALUE);
    if !key_bytes(out, &e.key) {
        return false;
    }
    close(out, value);
    close(out, key);
    if let Some(v) = &e.verdict {
        let data = open(out, ELEM_DATA | NLA_F_NESTED);
        let verdict = open(out, DATA_VERDICT | NLA_F_NESTED);
        let code = match v {
            Verdict::Accept => NF_ACCEPT,
            Verdict::Drop => NF_DROP,
            Verdict::Return => NFT_RETURN,
            Verdict::Jump(_) => NFT_JUMP,
            Verdict::Goto(_) => NFT_GOTO,
        };
        let c = open(out, VERDICT_CODE);
        out.extend_from_slice(&code.to_be_bytes());
        close(out, c);
        if let Verdict::Jump(chain) | Verdict::Goto(chain) = v {
            string_attr(out, VERDICT_CHAIN, chain);
        }
        close(out, verdict);
        close(out, data);
    }
    close(out, elem);
    true
}

/// Appends a key as the kernel stores it (each component of a
/// concatenation in its register-aligned size): the same bytes as
/// [`crate::elements`]'s `key_bytes`. False for a value that has no such
/// form (a prefix, a bad MAC, a long interface name).
pub(crate) fn key_bytes(out: &mut Vec<u8>, key: &[Value]) -> bool {
    let concat = key.len() > 1;
    for v in key {
        let start = out.len();
        match v {
            Value::Net(n) if n.prefix_len() == n.max_prefix_len() => match n.addr() {
                std::net::IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                std::net::IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
            },
            Value::Net(_) => return false,
            Value::Ifname(s) => {
                if s.len() >= IFNAMSIZ || s.contains('\0') {
                    return false;
                }
                out.extend_from_slice(s.as_bytes());
                out.resize(start + IFNAMSIZ, 0);
            }
            Value::Mac(s) => {
                let mut n = 0;
                for h in s.split(':') {
                    if n == 6 {
                        return false;
                    }
                    match u8::from_str_radix(h, 16) {
                        Ok(b) => out.push(b),
                        Err(_) => return false,
                    }
                    n += 1;
                }
                if n != 6 {
                    return false;
                }
            }
            // `mark` is host byte order.
            Value::Mark(m) => out.extend_from_slice(&m.to_ne_bytes()),
        }
        if concat {
            out.resize(start + (out.len() - start).div_ceil(4) * 4, 0);
        }
    }
    true
}

/// True when every key can be written over netlink (no allocation).
pub(crate) fn encodable(key: &[Value]) -> bool {
    key.iter().all(|v| match v {
        Value::Net(n) => n.prefix_len() == n.max_prefix_len(),
        Value::Ifname(s) => s.len() < IFNAMSIZ && !s.contains('\0'),
        Value::Mac(s) => {
            let mut n = 0;
            for h in s.split(':') {
                if n == 6 || u8::from_str_radix(h, 16).is_err() {
                    return false;
                }
                n += 1;
            }
            n == 6
        }
        Value::Mark(_) => true,
    })
}
