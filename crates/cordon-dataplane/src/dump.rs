//! Reads one of cordon's tables straight from nftables over netlink: its
//! chains, rules (counters and log prefixes), named sets and their
//! elements, with `NLM_F_DUMP` requests, no `nft` process and no JSON. At
//! 10,000 containers the sets hold about 165,000 elements, which
//! `nft -j list table` took seconds and hundreds of megabytes to print and
//! parse; here each element is decoded from its bytes as the dump arrives,
//! or, for a reconcile ([`read_table_compared`]), compared as bytes with the
//! desired elements and decoded only when it differs.
//!
//! Elements are decoded in the key types the caller names per set (those
//! of the desired ruleset's set of that name, or none: then the set's
//! elements are not requested at all). Keys are laid out as the element
//! writer ([`crate::elements`]) writes them: an address in network order,
//! an interface name in 16 bytes, a MAC in 6, a mark in host order, and in
//! a concatenation each field padded to a multiple of 4 bytes. An interval
//! set holds each interval as a start and an end element (the end one past
//! the last address, flagged `NFT_SET_ELEM_INTERVAL_END`), read back as the
//! prefixes that cover it.
//!
//! Every length is checked against the bytes received; anything this
//! reader cannot decode is an error naming what, never a panic. The dumps
//! run between two reads of the generation id and are retried when a
//! commit came in between, so the chains, rules and sets read belong to
//! one ruleset.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use cordon_ruleset::diff::FastMap;
use cordon_ruleset::listing::{CountedElement, Counter, ListedRule};
use cordon_ruleset::nft::{
    format_compact, Element, Family, Key, KeyType, Set, Table, Value, Verdict,
};
use ipnet::{IpNet, Ipv4Subnets, Ipv6Subnets};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

use crate::kernel::{KernelSet, KernelTable, Keys};
use cordon_ruleset::nft::smallvec;

// Message types of the nftables subsystem (`NFNL_SUBSYS_NFTABLES` << 8).
const SUBSYS: u16 = 10 << 8;
const GETTABLE: u16 = 1;
const NEWCHAIN: u16 = 3;
const GETCHAIN: u16 = 4;
const NEWRULE: u16 = 6;
const GETRULE: u16 = 7;
const NEWSET: u16 = 9;
const GETSET: u16 = 10;
const NEWSETELEM: u16 = 12;
const GETSETELEM: u16 = 13;
const NEWGEN: u16 = 15;
const GETGEN: u16 = 16;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_DUMP_INTR: u16 = 0x10;

// Attributes (linux/netfilter/nf_tables.h).
const TABLE_NAME: u16 = 1;
const CHAIN_TABLE: u16 = 1;
const CHAIN_NAME: u16 = 3;
const RULE_TABLE: u16 = 1;
const RULE_CHAIN: u16 = 2;
const RULE_EXPRESSIONS: u16 = 4;
const LIST_ELEM: u16 = 1;
const EXPR_NAME: u16 = 1;
const EXPR_DATA: u16 = 2;
const COUNTER_BYTES: u16 = 1;
const COUNTER_PACKETS: u16 = 2;
const LOG_PREFIX: u16 = 2;
const SET_TABLE: u16 = 1;
const SET_NAME: u16 = 2;
const SET_FLAGS: u16 = 3;
const SET_DESC: u16 = 9;
const SET_DESC_SIZE: u16 = 1;
const SET_EXPR: u16 = 17;
const SET_EXPRESSIONS: u16 = 18;
const SET_ANONYMOUS: u32 = 0x1;
const SET_INTERVAL: u32 = 0x4;
const ELEM_LIST_TABLE: u16 = 1;
const ELEM_LIST_SET: u16 = 2;
const ELEM_LIST_ELEMENTS: u16 = 3;
const ELEM_KEY: u16 = 1;
const ELEM_DATA: u16 = 2;
const ELEM_FLAGS: u16 = 3;
const ELEM_EXPR: u16 = 7;
const ELEM_KEY_END: u16 = 10;
const ELEM_EXPRESSIONS: u16 = 11;
const ELEM_INTERVAL_END: u32 = 0x1;
const ELEM_CATCHALL: u32 = 0x2;
const DATA_VALUE: u16 = 1;
const DATA_VERDICT: u16 = 2;
const VERDICT_CODE: u16 = 1;
const VERDICT_CHAIN: u16 = 2;
const GEN_ID: u16 = 1;

// Verdict codes (`NF_DROP`, `NF_ACCEPT`, `NFT_JUMP`, `NFT_GOTO`,
// `NFT_RETURN`).
const V_DROP: i32 = 0;
const V_ACCEPT: i32 = 1;
const V_JUMP: i32 = -3;
const V_GOTO: i32 = -4;
const V_RETURN: i32 = -5;

const IFNAMSIZ: usize = 16;
/// How often the dumps are retried when a commit comes in between.
const ATTEMPTS: usize = 5;

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// The attributes in `data`: `(type without flags, value)`. A length that
/// does not fit the bytes is an error.
fn attrs(data: &[u8]) -> impl Iterator<Item = io::Result<(u16, &[u8])>> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let parsed = (|| {
            let hdr = rest
                .get(..4)
                .ok_or_else(|| bad("netlink: truncated attribute"))?;
            let len = usize::from(u16::from_ne_bytes([hdr[0], hdr[1]]));
            let kind = u16::from_ne_bytes([hdr[2], hdr[3]]) & 0x3fff;
            let value = rest
                .get(4..len.max(4))
                .filter(|_| len >= 4)
                .ok_or_else(|| bad("netlink: attribute longer than its message"))?;
            Ok(((len + 3) & !3, kind, value))
        })();
        Some(match parsed {
            Ok((step, kind, value)) => {
                rest = rest.get(step..).unwrap_or_default();
                Ok((kind, value))
            }
            Err(e) => {
                rest = &[];
                Err(e)
            }
        })
    })
}

/// The first attribute of this type, if any.
fn attr(data: &[u8], kind: u16) -> io::Result<Option<&[u8]>> {
    for a in attrs(data) {
        let (k, v) = a?;
        if k == kind {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

fn string(v: &[u8]) -> io::Result<String> {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8(v[..end].to_vec()).map_err(|_| bad("netlink: a name is not UTF-8"))
}

fn be32(v: &[u8]) -> io::Result<u32> {
    let b: [u8; 4] = v
        .try_into()
        .map_err(|_| bad("netlink: a 32-bit value of another size"))?;
    Ok(u32::from_be_bytes(b))
}

fn be64(v: &[u8]) -> io::Result<u64> {
    let b: [u8; 8] = v
        .try_into()
        .map_err(|_| bad("netlink: a 64-bit value of another size"))?;
    Ok(u64::from_be_bytes(b))
}

fn nfproto(f: Family) -> u8 {
    match f {
        Family::Inet => libc::NFPROTO_INET as u8,
        Family::Bridge => libc::NFPROTO_BRIDGE as u8,
    }
}

/// One request: `nlmsghdr`, `nfgenmsg` for `family`, and string attributes.
fn request(kind: u16, flags: u16, seq: u32, family: u8, strings: &[(u16, &str)]) -> Vec<u8> {
    let mut out = vec![0u8; 16];
    out.extend_from_slice(&[family, 0, 0, 0]);
    for (k, s) in strings {
        let len = 4 + s.len() + 1;
        out.extend_from_slice(&(len as u16).to_ne_bytes());
        out.extend_from_slice(&k.to_ne_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
        out.resize((out.len() + 3) & !3, 0);
    }
    let len = out.len() as u32;
    out[..4].copy_from_slice(&len.to_ne_bytes());
    out[4..6].copy_from_slice(&(SUBSYS | kind).to_ne_bytes());
    out[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    out[8..12].copy_from_slice(&seq.to_ne_bytes());
    out
}

/// What one received datagram said.
enum Step {
    /// More to come.
    More,
    /// The answer is complete.
    Done,
}

/// Walks the messages of one datagram: each answer of type `want` goes to
/// `each` (its attributes after the `nfgenmsg`); `NLMSG_DONE` ends a dump,
/// an error ends it with that error. A message that does not fit the
/// datagram is an error. `interrupted` is set when the kernel flagged the
/// dump as interrupted by a commit.
fn walk(
    data: &[u8],
    seq: u32,
    want: u16,
    interrupted: &mut bool,
    each: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<Step> {
    let mut rest = data;
    while !rest.is_empty() {
        let hdr = rest
            .get(..16)
            .ok_or_else(|| bad("netlink: truncated message header"))?;
        let len = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        let kind = u16::from_ne_bytes([hdr[4], hdr[5]]);
        let flags = u16::from_ne_bytes([hdr[6], hdr[7]]);
        let mseq = u32::from_ne_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]);
        if len < 16 {
            return Err(bad("netlink: message shorter than its header"));
        }
        let body = rest
            .get(16..len)
            .ok_or_else(|| bad("netlink: message longer than the datagram"))?;
        rest = rest.get((len + 3) & !3..).unwrap_or_default();
        if mseq != seq {
            continue;
        }
        if flags & NLM_F_DUMP_INTR != 0 {
            *interrupted = true;
        }
        match kind {
            NLMSG_DONE => return Ok(Step::Done),
            NLMSG_ERROR => {
                let code = body
                    .get(..4)
                    .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or_else(|| bad("netlink: truncated error message"))?;
                if code == 0 {
                    return Ok(Step::Done);
                }
                return Err(io::Error::from_raw_os_error(-code));
            }
            k if k == SUBSYS | want => {
                let attrs = body
                    .get(4..)
                    .ok_or_else(|| bad("netlink: truncated nfgenmsg"))?;
                each(attrs)?;
            }
            _ => return Err(bad(format!("netlink: unexpected message type {kind:#x}"))),
        }
    }
    Ok(Step::More)
}

/// A socket in the calling thread's network namespace and its buffer.
struct Conn {
    sock: Socket,
    buf: Vec<u8>,
    seq: u32,
}

impl Conn {
    fn open() -> io::Result<Conn> {
        let mut sock = Socket::new(NETLINK_NETFILTER)?;
        sock.bind_auto()?;
        crate::nl::set_read_timeout(&sock, Duration::from_secs(10))?;
        Ok(Conn {
            sock,
            // A dump's datagrams stay under 32 KiB (the kernel's cap).
            buf: vec![0u8; 1 << 17],
            seq: 0,
        })
    }

    /// Dumps the elements of set `set` of table `table` in family `family`,
    /// handing each answer's attributes to `each`; returns whether the
    /// kernel flagged the dump as interrupted.
    fn dump_elements(
        &mut self,
        family: u8,
        table: &str,
        set: &str,
        each: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<bool> {
        self.exchange(
            GETSETELEM,
            NLM_F_DUMP,
            family,
            &[(ELEM_LIST_TABLE, table), (ELEM_LIST_SET, set)],
            NEWSETELEM,
            each,
        )
    }

    /// Sends one request and hands every answer of type `want` to `each`,
    /// until the dump ends or the kernel acknowledges. Returns whether the
    /// kernel flagged the dump as interrupted.
    fn exchange(
        &mut self,
        kind: u16,
        flags: u16,
        family: u8,
        strings: &[(u16, &str)],
        want: u16,
        each: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<bool> {
        self.seq += 1;
        let req = request(kind, flags, self.seq, family, strings);
        if self.sock.send(&req, 0)? != req.len() {
            return Err(io::Error::other("netlink: short write"));
        }
        let mut interrupted = false;
        loop {
            let n = self.sock.recv(&mut &mut self.buf[..], libc::MSG_TRUNC)?;
            if n > self.buf.len() {
                return Err(bad("netlink: a datagram larger than the receive buffer"));
            }
            if let Step::Done = walk(&self.buf[..n], self.seq, want, &mut interrupted, each)? {
                return Ok(interrupted);
            }
            if flags & NLM_F_DUMP == 0 {
                // Not a dump: one answer, no acknowledgement asked for.
                return Ok(interrupted);
            }
        }
    }

    fn generation(&mut self) -> io::Result<u32> {
        let mut id = None;
        self.exchange(GETGEN, 0, 0, &[], NEWGEN, &mut |a| {
            if let Some(v) = attr(a, GEN_ID)? {
                id = Some(be32(v)?);
            }
            Ok(())
        })?;
        id.ok_or_else(|| bad("netlink: no generation id in the answer"))
    }
}

/// Reads table `family name` of the calling thread's network namespace;
/// `None` when it does not exist. The elements of a set are read only when
/// `keys` names its key types.
pub fn read_table(family: Family, name: &str, keys: Keys<'_>) -> io::Result<Option<KernelTable>> {
    read_with(family, name, keys, None)
}

/// [`read_table`] for reconciling with `desired` (the desired ruleset's
/// table of this family and name): the elements of each plain set or map
/// are compared with the desired ones as the kernel's bytes, the desired
/// elements encoded once by the element writer's key encoder (`flat.rs`),
/// and only the elements that differ are decoded, into
/// [`KernelSet::unmatched`]. The
/// elements of timeout sets (the DNS proxy's, never compared) are not
/// read; interval sets, and sets whose desired elements do not encode to
/// exactly the bytes that decode back to them, are read as by
/// [`read_table`].
pub fn read_table_compared(
    family: Family,
    name: &str,
    desired: &Table,
) -> io::Result<Option<KernelTable>> {
    let keys = |set: &str| {
        desired
            .sets
            .iter()
            .find(|d| d.name == set)
            .map(|d| d.key.clone())
    };
    read_with(family, name, &keys, Some(desired))
}

fn read_with(
    family: Family,
    name: &str,
    keys: Keys<'_>,
    compare: Option<&Table>,
) -> io::Result<Option<KernelTable>> {
    let mut conn = Conn::open()?;
    for _ in 0..ATTEMPTS {
        let before = conn.generation()?;
        let (table, interrupted) = match read_once(&mut conn, family, name, keys, compare) {
            Ok(t) => t,
            // The table went away mid-read (or a set did): read again.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => (None, true),
            Err(e) => return Err(e),
        };
        if !interrupted && conn.generation()? == before {
            return Ok(table);
        }
    }
    Err(io::Error::other(
        "the ruleset kept changing while it was read; try again",
    ))
}

/// One read of the table: its chains, rules, sets and elements, and
/// whether a dump was interrupted.
fn read_once(
    conn: &mut Conn,
    family: Family,
    name: &str,
    keys: Keys<'_>,
    compare: Option<&Table>,
) -> io::Result<(Option<KernelTable>, bool)> {
    let fam = nfproto(family);
    let mut interrupted = false;
    match conn.exchange(GETTABLE, 0, fam, &[(TABLE_NAME, name)], 0, &mut |_| Ok(())) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok((None, false)),
        Err(e) => return Err(e),
    }
    let mut out = KernelTable::default();
    interrupted |= conn.exchange(
        GETCHAIN,
        NLM_F_DUMP,
        fam,
        &[(CHAIN_TABLE, name)],
        NEWCHAIN,
        &mut |a| {
            if let Some(chain) = chain_of(a, name)? {
                out.chains.push(chain);
            }
            Ok(())
        },
    )?;
    interrupted |= conn.exchange(
        GETRULE,
        NLM_F_DUMP,
        fam,
        &[(RULE_TABLE, name)],
        NEWRULE,
        &mut |a| {
            if let Some(rule) = rule_of(a, name)? {
                out.rules.push(rule);
            }
            Ok(())
        },
    )?;
    let mut sets = Vec::new();
    interrupted |= conn.exchange(
        GETSET,
        NLM_F_DUMP,
        fam,
        &[(SET_TABLE, name)],
        NEWSET,
        &mut |a| {
            if let Some(s) = set_of(a, name)? {
                sets.push(s);
            }
            Ok(())
        },
    )?;
    for (set, flags) in sets {
        let mut s = KernelSet {
            name: set.name,
            counted: set.counted,
            size: set.size,
            elements: Vec::new(),
            unmatched: None,
        };
        let desired = compare.and_then(|t| t.sets.iter().find(|d| d.name == s.name));
        if desired.is_some_and(|d| d.timeout) {
            // The DNS proxy's elements, never compared: not read.
            out.sets.push(s);
            continue;
        }
        if let Some(d) = desired.filter(|d| !d.interval && flags & SET_INTERVAL == 0) {
            let compared = compare_set(conn, fam, name, d).map_err(|e| match e.kind() {
                io::ErrorKind::InvalidData => bad(format!("set {}: {e}", s.name)),
                _ => e,
            })?;
            if let Some((unmatched, intr)) = compared {
                interrupted |= intr;
                s.unmatched = Some(unmatched);
                out.sets.push(s);
                continue;
            }
        }
        if let Some(key) = keys(&s.name) {
            // A plain set's elements are decoded as they arrive; an
            // interval set's points are paired once all are in.
            let interval = flags & SET_INTERVAL != 0;
            let (mut raw, mut plain) = (Vec::new(), Vec::new());
            let read = conn.dump_elements(fam, name, &s.name, &mut |a| {
                elements_of(a, &mut |r| {
                    if interval {
                        raw.push(r);
                    } else {
                        plain.push(decode_plain(r, &key)?);
                    }
                    Ok(())
                })
            });
            let decoded = read.and_then(|intr| {
                interrupted |= intr;
                if interval {
                    decode_set(flags, &key, raw)
                } else {
                    Ok(plain)
                }
            });
            s.elements = decoded.map_err(|e| match e.kind() {
                io::ErrorKind::InvalidData => bad(format!("set {}: {e}", s.name)),
                _ => e,
            })?;
        }
        out.sets.push(s);
    }
    Ok((Some(out), interrupted))
}

/// Reads only the elements of `sets` (sets of the desired table `family
/// name`) from the kernel, compared with their desired elements as
/// [`read_table_compared`] compares them: for a foreign change the
/// nftables monitor saw touch only these sets' elements. The dumps run
/// between two reads of the generation id and are retried when a commit
/// came in between. `Ok(None)` when the table or one of the sets does not
/// exist (something structural changed: only a whole read tells what).
///
/// Each returned set has `unmatched` (a plain set compared as bytes) or
/// its decoded `elements` (an interval set, or one whose desired elements
/// do not encode canonically); `counted` is the desired set's (the
/// declaration is not read).
pub fn read_sets_compared(
    family: Family,
    name: &str,
    sets: &[&Set],
) -> io::Result<Option<Vec<KernelSet>>> {
    let mut conn = Conn::open()?;
    let fam = nfproto(family);
    for _ in 0..ATTEMPTS {
        let before = conn.generation()?;
        let mut interrupted = false;
        let mut out = Vec::with_capacity(sets.len());
        for d in sets {
            match read_one_set(&mut conn, fam, name, d) {
                Ok((s, intr)) => {
                    interrupted |= intr;
                    out.push(s);
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    return Err(bad(format!("set {}: {e}", d.name)))
                }
                Err(e) => return Err(e),
            }
        }
        if !interrupted && conn.generation()? == before {
            return Ok(Some(out));
        }
    }
    Err(io::Error::other(
        "the ruleset kept changing while it was read; try again",
    ))
}

/// One set of [`read_sets_compared`], and whether its dump was
/// interrupted.
fn read_one_set(conn: &mut Conn, fam: u8, table: &str, d: &Set) -> io::Result<(KernelSet, bool)> {
    let mut s = KernelSet {
        name: d.name.clone(),
        counted: d.counter,
        // Not read: only the elements are compared here. A set's size
        // changes only with its declaration, a structural commit, which
        // the whole reconcile handles.
        size: None,
        elements: Vec::new(),
        unmatched: None,
    };
    if !d.interval {
        if let Some((unmatched, intr)) = compare_set(conn, fam, table, d)? {
            s.unmatched = Some(unmatched);
            return Ok((s, intr));
        }
    }
    let mut raw = Vec::new();
    let intr = conn.dump_elements(fam, table, &d.name, &mut |a| {
        elements_of(a, &mut |r| {
            raw.push(r);
            Ok(())
        })
    })?;
    let flags = if d.interval { SET_INTERVAL } else { 0 };
    s.elements = decode_set(flags, &d.key, raw)?;
    Ok((s, intr))
}

/// The chain's name, when it is in table `table`.
fn chain_of(a: &[u8], table: &str) -> io::Result<Option<String>> {
    let (mut t, mut n) = (None, None);
    for x in attrs(a) {
        match x? {
            (CHAIN_TABLE, v) => t = Some(string(v)?),
            (CHAIN_NAME, v) => n = Some(string(v)?),
            _ => {}
        }
    }
    if t.as_deref() != Some(table) {
        return Ok(None);
    }
    n.map(Some)
        .ok_or_else(|| bad("netlink: a chain without a name"))
}

/// The rule's chain, first counter and first log prefix, when it is in
/// table `table`.
fn rule_of(a: &[u8], table: &str) -> io::Result<Option<ListedRule>> {
    let (mut t, mut chain, mut exprs) = (None, None, None);
    for x in attrs(a) {
        match x? {
            (RULE_TABLE, v) => t = Some(string(v)?),
            (RULE_CHAIN, v) => chain = Some(string(v)?),
            (RULE_EXPRESSIONS, v) => exprs = Some(v),
            _ => {}
        }
    }
    if t.as_deref() != Some(table) {
        return Ok(None);
    }
    let mut rule = ListedRule {
        chain: chain.ok_or_else(|| bad("netlink: a rule without its chain"))?,
        counter: None,
        log_prefix: None,
    };
    for x in attrs(exprs.unwrap_or_default()) {
        let (kind, e) = x?;
        if kind != LIST_ELEM {
            continue;
        }
        let (name, data) = expression(e)?;
        match name.as_str() {
            "counter" if rule.counter.is_none() => rule.counter = Some(counter(data)?),
            "log" if rule.log_prefix.is_none() => {
                if let Some(p) = attr(data, LOG_PREFIX)? {
                    rule.log_prefix = Some(string(p)?);
                }
            }
            _ => {}
        }
    }
    Ok(Some(rule))
}

/// An expression's name and data.
fn expression(e: &[u8]) -> io::Result<(String, &[u8])> {
    let name = attr(e, EXPR_NAME)?.ok_or_else(|| bad("netlink: an expression without a name"))?;
    Ok((string(name)?, attr(e, EXPR_DATA)?.unwrap_or_default()))
}

fn counter(data: &[u8]) -> io::Result<Counter> {
    let mut c = Counter::default();
    for x in attrs(data) {
        match x? {
            (COUNTER_BYTES, v) => c.bytes = be64(v)?,
            (COUNTER_PACKETS, v) => c.packets = be64(v)?,
            _ => {}
        }
    }
    Ok(c)
}

/// The counter among an element's or a set's expressions (`*_EXPR`: one;
/// `*_EXPRESSIONS`: a list).
fn counter_in(one: Option<&[u8]>, list: Option<&[u8]>) -> io::Result<Option<Counter>> {
    if let Some(e) = one {
        let (name, data) = expression(e)?;
        if name == "counter" {
            return Ok(Some(counter(data)?));
        }
    }
    for x in attrs(list.unwrap_or_default()) {
        let (kind, e) = x?;
        if kind == LIST_ELEM {
            let (name, data) = expression(e)?;
            if name == "counter" {
                return Ok(Some(counter(data)?));
            }
        }
    }
    Ok(None)
}

/// A named set of table `table`.
struct SetHead {
    name: String,
    counted: bool,
    /// `NFTA_SET_DESC_SIZE` in `NFTA_SET_DESC`: the declared size.
    size: Option<u32>,
}

fn set_of(a: &[u8], table: &str) -> io::Result<Option<(SetHead, u32)>> {
    let (mut t, mut name, mut flags, mut one, mut list) = (None, None, 0, None, None);
    let mut size = None;
    for x in attrs(a) {
        match x? {
            (SET_TABLE, v) => t = Some(string(v)?),
            (SET_NAME, v) => name = Some(string(v)?),
            (SET_FLAGS, v) => flags = be32(v)?,
            // The kernel writes no size attribute for a set without one
            // (and nft lists none for a size of 0).
            (SET_DESC, v) => {
                size = attr(v, SET_DESC_SIZE)?
                    .map(be32)
                    .transpose()?
                    .filter(|n| *n != 0)
            }
            (SET_EXPR, v) => one = Some(v),
            (SET_EXPRESSIONS, v) => list = Some(v),
            _ => {}
        }
    }
    if t.as_deref() != Some(table) || flags & SET_ANONYMOUS != 0 {
        return Ok(None);
    }
    let name = name.ok_or_else(|| bad("netlink: a set without a name"))?;
    let counted = counter_in(one, list)?.is_some();
    Ok(Some((
        SetHead {
            name,
            counted,
            size,
        },
        flags,
    )))
}

/// One element as dumped, not yet decoded.
#[derive(Debug, Default)]
struct RawElem {
    key: Vec<u8>,
    key_end: Option<Vec<u8>>,
    flags: u32,
    verdict: Option<Verdict>,
    counter: Option<Counter>,
}

/// One element as dumped, its parts still the received bytes.
#[derive(Default)]
struct ElemView<'a> {
    key: &'a [u8],
    key_end: Option<&'a [u8]>,
    flags: u32,
    /// `NFTA_SET_ELEM_DATA`.
    data: Option<&'a [u8]>,
    /// `NFTA_SET_ELEM_EXPR` and `NFTA_SET_ELEM_EXPRESSIONS`.
    one: Option<&'a [u8]>,
    many: Option<&'a [u8]>,
}

impl ElemView<'_> {
    /// The element with its verdict and counter decoded.
    fn to_raw(&self) -> io::Result<RawElem> {
        Ok(RawElem {
            key: self.key.to_vec(),
            key_end: self.key_end.map(<[u8]>::to_vec),
            flags: self.flags,
            verdict: self.data.map(verdict).transpose()?,
            counter: counter_in(self.one, self.many)?,
        })
    }
}

/// The elements of one `NEWSETELEM` answer, undecoded.
fn element_views(a: &[u8], each: &mut dyn FnMut(ElemView<'_>) -> io::Result<()>) -> io::Result<()> {
    let list = attr(a, ELEM_LIST_ELEMENTS)?.unwrap_or_default();
    for x in attrs(list) {
        let (kind, e) = x?;
        if kind != LIST_ELEM {
            continue;
        }
        let mut v = ElemView::default();
        for y in attrs(e) {
            match y? {
                (ELEM_KEY, x) => v.key = data_value(x)?,
                (ELEM_KEY_END, x) => v.key_end = Some(data_value(x)?),
                (ELEM_FLAGS, x) => v.flags = be32(x)?,
                (ELEM_DATA, x) => v.data = Some(x),
                (ELEM_EXPR, x) => v.one = Some(x),
                (ELEM_EXPRESSIONS, x) => v.many = Some(x),
                _ => {}
            }
        }
        each(v)?;
    }
    Ok(())
}

/// The elements of one `NEWSETELEM` answer.
fn elements_of(a: &[u8], each: &mut dyn FnMut(RawElem) -> io::Result<()>) -> io::Result<()> {
    element_views(a, &mut |v| each(v.to_raw()?))
}

/// The bytes of an `NFTA_DATA_VALUE`.
fn data_value(v: &[u8]) -> io::Result<&[u8]> {
    attr(v, DATA_VALUE)?.ok_or_else(|| bad("netlink: a key without a value"))
}

/// True when an element's data (`NFTA_SET_ELEM_DATA`, or none) is what
/// [`verdict`] would decode to `want`, read in place; false as well when
/// it would not decode.
fn verdict_is(data: Option<&[u8]>, want: Option<&Verdict>) -> bool {
    let (Some(data), Some(want)) = (data, want) else {
        return data.is_none() && want.is_none();
    };
    let Ok(Some(v)) = attr(data, DATA_VERDICT) else {
        return false;
    };
    let Some(code) = attr(v, VERDICT_CODE)
        .ok()
        .flatten()
        .and_then(|c| be32(c).ok())
    else {
        return false;
    };
    let chain = || match attr(v, VERDICT_CHAIN) {
        Ok(Some(c)) => Some(&c[..c.iter().position(|&b| b == 0).unwrap_or(c.len())]),
        _ => None,
    };
    match (code as i32, want) {
        (V_ACCEPT, Verdict::Accept) | (V_DROP, Verdict::Drop) | (V_RETURN, Verdict::Return) => true,
        (V_JUMP, Verdict::Jump(c)) | (V_GOTO, Verdict::Goto(c)) => chain() == Some(c.as_bytes()),
        _ => false,
    }
}

/// True when `key`'s values, encoded, are bytes that [`decode_key`] reads
/// back as the same values in the key types `types` (a host address of
/// the type's family, a MAC in lower-case pairs; names and marks always
/// are once they encode).
fn canonical(key: &[Value], types: &[KeyType]) -> bool {
    key.len() == types.len()
        && key.iter().zip(types).all(|(v, t)| match (v, t) {
            (Value::Net(IpNet::V4(n)), KeyType::Ipv4) => n.prefix_len() == 32,
            (Value::Net(IpNet::V6(n)), KeyType::Ipv6) => n.prefix_len() == 128,
            (Value::Ifname(_), KeyType::Ifname) | (Value::Mark(_), KeyType::Mark) => true,
            (Value::Mac(s), KeyType::Ether) => {
                s.len() == 17
                    && s.split(':').all(|h| {
                        h.len() == 2 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                    })
            }
            _ => false,
        })
}

/// Dumps the elements of plain set `d` (no intervals) and compares them
/// with its desired elements as key bytes and verdicts: the kernel's
/// elements not desired (decoded, in the kernel's order) and the desired
/// ones the kernel lacks (in the desired order), and whether the dump was
/// interrupted. `None`, before anything is dumped, when some desired
/// element does not encode to bytes that decode back to it, or two share
/// a key; the caller then reads the set decoded.
///
/// The result is what comparing the decoded elements gives: an element
/// matched by bytes decodes to the desired element; one the kernel holds
/// in bytes that are not the encoding of what they decode to (a name with
/// bytes after its NUL) is compared decoded.
#[allow(clippy::type_complexity)]
fn compare_set(
    conn: &mut Conn,
    fam: u8,
    table: &str,
    d: &Set,
) -> io::Result<Option<((Vec<Element>, Vec<Element>), bool)>> {
    let concat = d.key.len() > 1;
    let klen: usize = d
        .key
        .iter()
        .map(|t| {
            if concat {
                field_len(*t).1
            } else {
                field_len(*t).0
            }
        })
        .sum();
    if klen == 0 {
        return Ok(None);
    }
    let mut keys = Vec::with_capacity(klen * d.elements.len());
    for (i, e) in d.elements.iter().enumerate() {
        if !canonical(&e.key, &d.key)
            || !crate::flat::key_bytes(&mut keys, &e.key)
            || keys.len() != klen * (i + 1)
        {
            return Ok(None);
        }
    }
    let mut index: FastMap<&[u8], u32> =
        FastMap::with_capacity_and_hasher(d.elements.len(), Default::default());
    for (i, k) in keys.chunks_exact(klen).enumerate() {
        if index.insert(k, i as u32).is_some() {
            return Ok(None);
        }
    }
    let mut seen = vec![false; d.elements.len()];
    let mut extra = Vec::new();
    let interrupted = conn.dump_elements(fam, table, &d.name, &mut |a| {
        element_views(a, &mut |v| {
            if v.flags & (ELEM_INTERVAL_END | ELEM_CATCHALL) == 0 && v.key_end.is_none() {
                if let Some(&i) = index.get(v.key) {
                    let i = i as usize;
                    if verdict_is(v.data, d.elements[i].verdict.as_ref()) {
                        seen[i] = true;
                        return Ok(());
                    }
                }
            }
            extra.push(v.to_raw()?);
            Ok(())
        })
    })?;
    let (mut delete, mut held) = (Vec::with_capacity(extra.len()), Vec::new());
    let mut again = Vec::with_capacity(klen);
    for r in extra {
        let raw = r.key.clone();
        let e = decode_plain(r, &d.key)?.element;
        again.clear();
        let exact = crate::flat::key_bytes(&mut again, &e.key) && again == raw;
        if !exact && d.elements.contains(&e) {
            // Other bytes for a desired element: held, as decoded.
            held.push(e);
        } else {
            delete.push(e);
        }
    }
    let add = d
        .elements
        .iter()
        .zip(&seen)
        .filter(|(e, seen)| !**seen && !held.contains(e))
        .map(|(e, _)| e.clone())
        .collect();
    Ok(Some(((delete, add), interrupted)))
}

/// An element's verdict (`NFTA_DATA_VERDICT`).
fn verdict(v: &[u8]) -> io::Result<Verdict> {
    let v =
        attr(v, DATA_VERDICT)?.ok_or_else(|| bad("a map element whose data is not a verdict"))?;
    let code = attr(v, VERDICT_CODE)?.ok_or_else(|| bad("netlink: a verdict without a code"))?;
    let chain = || -> io::Result<String> {
        string(attr(v, VERDICT_CHAIN)?.ok_or_else(|| bad("netlink: a jump without a chain"))?)
    };
    Ok(match be32(code)? as i32 {
        V_ACCEPT => Verdict::Accept,
        V_DROP => Verdict::Drop,
        V_RETURN => Verdict::Return,
        V_JUMP => Verdict::Jump(chain()?.into()),
        V_GOTO => Verdict::Goto(chain()?.into()),
        other => return Err(bad(format!("an unknown verdict code {other}"))),
    })
}

/// The size of one key field alone, and in a concatenation.
fn field_len(t: KeyType) -> (usize, usize) {
    match t {
        KeyType::Ipv4 => (4, 4),
        KeyType::Ipv6 => (16, 16),
        KeyType::Ifname => (IFNAMSIZ, IFNAMSIZ),
        KeyType::Ether => (6, 8),
        KeyType::Mark => (4, 4),
    }
}

/// A key's bytes in the key types `key`.
fn decode_key(bytes: &[u8], key: &[KeyType]) -> io::Result<Key> {
    let concat = key.len() > 1;
    let want: usize = key
        .iter()
        .map(|t| {
            if concat {
                field_len(*t).1
            } else {
                field_len(*t).0
            }
        })
        .sum();
    if bytes.len() != want {
        return Err(bad(format!(
            "a key of {} bytes, not the {want} of {}",
            bytes.len(),
            key.iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(" . ")
        )));
    }
    let mut at = 0;
    let mut out = Key::with_capacity(key.len());
    for t in key {
        let (len, padded) = field_len(*t);
        let f = &bytes[at..at + len];
        at += if concat { padded } else { len };
        out.push(match t {
            KeyType::Ipv4 => Value::Net(IpNet::from(IpAddr::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(f).expect("4 bytes"),
            )))),
            KeyType::Ipv6 => Value::Net(IpNet::from(IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(f).expect("16 bytes"),
            )))),
            KeyType::Ifname => Value::Ifname(string(f)?.into()),
            KeyType::Ether => Value::Mac(format_compact!(
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                f[0],
                f[1],
                f[2],
                f[3],
                f[4],
                f[5]
            )),
            KeyType::Mark => Value::Mark(u32::from_ne_bytes(f.try_into().expect("4 bytes"))),
        });
    }
    Ok(out)
}

/// A single-field interval key as a big-endian number: an address, or an
/// interface name's 16 bytes.
fn point(bytes: &[u8], t: KeyType) -> io::Result<u128> {
    match (t, bytes.len()) {
        (KeyType::Ipv4, 4) => Ok(u128::from(u32::from_be_bytes(bytes.try_into().expect("4")))),
        (KeyType::Ipv6 | KeyType::Ifname, 16) => {
            Ok(u128::from_be_bytes(bytes.try_into().expect("16")))
        }
        (_, n) => Err(bad(format!(
            "an interval key of {n} bytes for {}",
            t.as_str()
        ))),
    }
}

/// The values covering `a..=b`: the prefixes of an address range; for
/// interface names, a whole name or a name prefix (`br-0a*`, the range of
/// every name starting so).
fn values(a: u128, b: u128, t: KeyType) -> io::Result<Vec<Value>> {
    if a > b {
        return Err(bad("an interval that ends before it starts"));
    }
    match t {
        KeyType::Ipv4 => {
            let (a, b) = (u32::try_from(a), u32::try_from(b));
            let (Ok(a), Ok(b)) = (a, b) else {
                return Err(bad("an IPv4 interval beyond 32 bits"));
            };
            Ok(Ipv4Subnets::new(a.into(), b.into(), 0)
                .map(|n| Value::Net(IpNet::V4(n)))
                .collect())
        }
        KeyType::Ipv6 => Ok(Ipv6Subnets::new(a.into(), b.into(), 0)
            .map(|n| Value::Net(IpNet::V6(n)))
            .collect()),
        KeyType::Ifname => Ipv6Subnets::new(a.into(), b.into(), 0)
            .map(|n| {
                let bytes = n.network().octets();
                match n.prefix_len() {
                    128 => Ok(Value::Ifname(string(&bytes)?.into())),
                    l if l % 8 == 0 && !bytes[..usize::from(l / 8)].contains(&0) => {
                        Ok(Value::Ifname(format_compact!(
                            "{}*",
                            string(&bytes[..usize::from(l / 8)])?
                        )))
                    }
                    _ => Err(bad("an interface name range that is no name prefix")),
                }
            })
            .collect(),
        other => Err(bad(format!("an interval set of {}", other.as_str()))),
    }
}

/// One element of a plain set (no intervals) in the key types `key`.
fn decode_plain(r: RawElem, key: &[KeyType]) -> io::Result<CountedElement> {
    if r.flags & (ELEM_INTERVAL_END | ELEM_CATCHALL) != 0 || r.key_end.is_some() {
        return Err(bad("an interval or catch-all element in a plain set"));
    }
    Ok(CountedElement {
        element: Element {
            key: decode_key(&r.key, key)?,
            verdict: r.verdict,
        },
        counter: r.counter,
    })
}

/// The elements of a set in the key types `key`.
fn decode_set(flags: u32, key: &[KeyType], raw: Vec<RawElem>) -> io::Result<Vec<CountedElement>> {
    let mut out = Vec::with_capacity(raw.len());
    let interval = flags & SET_INTERVAL != 0;
    if !interval {
        for r in raw {
            out.push(decode_plain(r, key)?);
        }
        return Ok(out);
    }
    if key.len() > 1 {
        // Ranges of concatenations (pipapo): each element carries its end.
        for r in raw {
            let end = r.key_end.as_deref().unwrap_or(&r.key);
            if end != r.key.as_slice() {
                return Err(bad("a range in a concatenation (not one cordon writes)"));
            }
            out.push(CountedElement {
                element: Element {
                    key: decode_key(&r.key, key)?,
                    verdict: r.verdict,
                },
                counter: r.counter,
            });
        }
        return Ok(out);
    }
    let [t] = *key else {
        return Err(bad("an interval set without a key type"));
    };
    let top = if t == KeyType::Ipv4 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    let mut push = |a: u128, b: u128, r: &RawElem| -> io::Result<()> {
        for v in values(a, b, t)? {
            out.push(CountedElement {
                element: Element {
                    key: smallvec![v],
                    verdict: r.verdict.clone(),
                },
                counter: r.counter,
            });
        }
        Ok(())
    };
    let mut points = Vec::with_capacity(raw.len());
    for r in raw {
        if r.flags & ELEM_CATCHALL != 0 {
            return Err(bad("a catch-all element (not one cordon writes)"));
        }
        let a = point(&r.key, t)?;
        if let Some(end) = &r.key_end {
            // An element that carries its own (inclusive) end.
            push(a, point(end, t)?, &r)?;
            continue;
        }
        points.push((a, r.flags & ELEM_INTERVAL_END == 0, r));
    }
    // Start and end points (the end one past the last value): sorted, an
    // end before a start at the same point (adjacent intervals); an end
    // with no start before it is the marker at zero, and a start with no
    // end runs to the top.
    points.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.cmp(&y.1)));
    let mut open: Option<(u128, RawElem)> = None;
    for (a, is_start, r) in points {
        if is_start {
            if open.is_some() {
                return Err(bad("two interval starts without an end"));
            }
            open = Some((a, r));
        } else if let Some((s, start)) = open.take() {
            let last = a
                .checked_sub(1)
                .ok_or_else(|| bad("an interval ending at zero"))?;
            push(s, last, &start)?;
        }
    }
    if let Some((s, start)) = open {
        push(s, top, &start)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_ruleset::nft::smallvec;

    fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(((4 + value.len()) as u16).to_ne_bytes());
        v.extend(kind.to_ne_bytes());
        v.extend(value);
        v.resize((v.len() + 3) & !3, 0);
        v
    }

    fn nested(kind: u16, parts: &[Vec<u8>]) -> Vec<u8> {
        nla(kind | 0x8000, &parts.concat())
    }

    fn message(kind: u16, seq: u32, attrs: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(((20 + attrs.len()) as u32).to_ne_bytes());
        v.extend(kind.to_ne_bytes());
        v.extend(2u16.to_ne_bytes()); // NLM_F_MULTI
        v.extend(seq.to_ne_bytes());
        v.extend(0u32.to_ne_bytes());
        v.extend([1, 0, 0, 0]);
        v.extend(attrs);
        v
    }

    /// An element of `ingress4`: 172.17.0.2 → jump in_fwd_web, counted.
    fn element() -> Vec<u8> {
        nested(
            LIST_ELEM,
            &[
                nested(ELEM_KEY, &[nla(DATA_VALUE, &[172, 17, 0, 2])]),
                nested(
                    ELEM_DATA,
                    &[nested(
                        DATA_VERDICT,
                        &[
                            nla(VERDICT_CODE, &(V_JUMP as u32).to_be_bytes()),
                            nla(VERDICT_CHAIN, b"in_fwd_web\0"),
                        ],
                    )],
                ),
                nested(
                    ELEM_EXPR,
                    &[
                        nla(EXPR_NAME, b"counter\0"),
                        nested(
                            EXPR_DATA,
                            &[
                                nla(COUNTER_BYTES, &540u64.to_be_bytes()),
                                nla(COUNTER_PACKETS, &9u64.to_be_bytes()),
                            ],
                        ),
                    ],
                ),
            ],
        )
    }

    fn dump() -> Vec<u8> {
        let attrs = [
            nla(ELEM_LIST_TABLE, b"cordon\0"),
            nla(ELEM_LIST_SET, b"ingress4\0"),
            nested(ELEM_LIST_ELEMENTS, &[element()]),
        ]
        .concat();
        let mut d = message(SUBSYS | NEWSETELEM, 7, &attrs);
        d.extend(message(NLMSG_DONE, 7, &[]));
        d
    }

    fn read(d: &[u8]) -> io::Result<Vec<CountedElement>> {
        let mut raw = Vec::new();
        let mut intr = false;
        walk(d, 7, NEWSETELEM, &mut intr, &mut |a| {
            elements_of(a, &mut |r| {
                raw.push(r);
                Ok(())
            })
        })?;
        decode_set(0, &[KeyType::Ipv4], raw)
    }

    #[test]
    fn a_counted_verdict_map_element_is_decoded() {
        let got = read(&dump()).unwrap();
        assert_eq!(
            got,
            vec![CountedElement {
                element: Element {
                    key: smallvec![Value::Net("172.17.0.2/32".parse().unwrap())],
                    verdict: Some(Verdict::Jump("in_fwd_web".into())),
                },
                counter: Some(Counter {
                    packets: 9,
                    bytes: 540
                }),
            }]
        );
    }

    #[test]
    fn truncated_or_garbage_answers_are_errors_not_panics() {
        let d = dump();
        // Every truncation of the datagram: an error or (cut between
        // messages) fewer elements, never a panic.
        for cut in 0..d.len() {
            let _ = read(&d[..cut]);
        }
        assert!(read(&d[..d.len() - 30]).is_err());
        // Every byte flipped in turn.
        for i in 0..d.len() {
            let mut x = d.clone();
            x[i] ^= 0xff;
            let _ = read(&x);
        }
        // A length field pointing past the end.
        let mut x = d.clone();
        x[0..4].copy_from_slice(&10_000u32.to_ne_bytes());
        assert!(read(&x).is_err());
        // Garbage.
        assert!(read(&[0xff; 64]).is_err());
        // A key of the wrong size for the set's type.
        let mut raw = Vec::new();
        elements_of(
            &nested(
                ELEM_LIST_ELEMENTS,
                &[nested(
                    LIST_ELEM,
                    &[nested(ELEM_KEY, &[nla(DATA_VALUE, &[1, 2, 3])])],
                )],
            ),
            &mut |r| {
                raw.push(r);
                Ok(())
            },
        )
        .unwrap();
        let e = decode_set(0, &[KeyType::Ipv4], raw).unwrap_err();
        assert!(e.to_string().contains("3 bytes"), "{e}");
        // An error answer.
        let mut err = message(NLMSG_ERROR, 7, &[]);
        err[16..20].copy_from_slice(&(-libc::ENOENT).to_ne_bytes());
        assert_eq!(read(&err).unwrap_err().raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn interval_points_become_prefixes() {
        let p = |a: [u8; 4], end: bool| RawElem {
            key: a.to_vec(),
            flags: if end { ELEM_INTERVAL_END } else { 0 },
            ..Default::default()
        };
        // The kernel's end marker at zero, 10.0.0.0-10.0.2.255, then
        // 10.0.3.0/24 adjacent, then 255.255.255.255 with no end.
        let raw = vec![
            p([10, 0, 3, 0], false),
            p([0, 0, 0, 0], true),
            p([10, 0, 4, 0], true),
            p([10, 0, 0, 0], false),
            p([10, 0, 3, 0], true),
            p([255, 255, 255, 255], false),
        ];
        let got: Vec<String> = decode_set(SET_INTERVAL, &[KeyType::Ipv4], raw)
            .unwrap()
            .into_iter()
            .map(|e| match &e.element.key[0] {
                Value::Net(n) => n.to_string(),
                v => panic!("{v:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                "10.0.0.0/23",
                "10.0.2.0/24",
                "10.0.3.0/24",
                "255.255.255.255/32"
            ]
        );
    }

    #[test]
    fn interface_name_intervals_become_names_and_prefixes() {
        let name = |n: &[u8], last: u8, end: bool| {
            let mut key = n.to_vec();
            key.resize(16, 0);
            key[15] += last;
            RawElem {
                key,
                flags: if end { ELEM_INTERVAL_END } else { 0 },
                ..Default::default()
            }
        };
        // As the kernel holds `{ "abc", "br-0a*" }`.
        let raw = vec![
            name(b"br-0b", 0, true),
            name(b"br-0a", 0, false),
            name(b"abc", 1, true),
            name(b"abc", 0, false),
            name(b"", 0, true),
        ];
        let got = decode_set(SET_INTERVAL, &[KeyType::Ifname], raw).unwrap();
        let got: Vec<Value> = got.into_iter().map(|e| e.element.key[0].clone()).collect();
        assert_eq!(
            got,
            [Value::Ifname("abc".into()), Value::Ifname("br-0a*".into())]
        );
    }

    #[test]
    fn a_verdict_is_compared_in_place_as_decoded() {
        let mut data = None;
        element_views(&nested(ELEM_LIST_ELEMENTS, &[element()]), &mut |v| {
            data = v.data.map(<[u8]>::to_vec);
            Ok(())
        })
        .unwrap();
        let data = data.expect("the element's data");
        assert!(verdict_is(
            Some(&data),
            Some(&Verdict::Jump("in_fwd_web".into()))
        ));
        for other in [
            Verdict::Jump("in_fwd_we".into()),
            Verdict::Goto("in_fwd_web".into()),
            Verdict::Accept,
        ] {
            assert!(!verdict_is(Some(&data), Some(&other)), "{other:?}");
        }
        assert!(!verdict_is(Some(&data), None));
        assert!(!verdict_is(None, Some(&Verdict::Accept)));
        assert!(verdict_is(None, None));
    }

    #[test]
    fn only_keys_that_decode_back_are_compared_as_bytes() {
        let v4 = Value::Net("172.17.0.2/32".parse().unwrap());
        let mac = |s: &str| Value::Mac(s.into());
        let name = Value::Ifname("veth1".into());
        let concat = [KeyType::Ifname, KeyType::Ether, KeyType::Ipv4];
        assert!(canonical(
            &[name.clone(), mac("02:42:ac:11:00:02"), v4.clone()],
            &concat
        ));
        // Upper case, a short pair: they encode, but decode otherwise.
        assert!(!canonical(
            &[name.clone(), mac("02:42:AC:11:00:02"), v4.clone()],
            &concat
        ));
        assert!(!canonical(
            &[name.clone(), mac("2:42:ac:11:00:02"), v4.clone()],
            &concat
        ));
        // A prefix, another family, another arity.
        assert!(!canonical(
            &[Value::Net("10.0.0.0/8".parse().unwrap())],
            &[KeyType::Ipv4]
        ));
        assert!(!canonical(std::slice::from_ref(&v4), &[KeyType::Ipv6]));
        assert!(!canonical(&[v4], &concat));
    }

    #[test]
    fn concatenated_keys_are_padded_fields() {
        let mut b = b"veth1".to_vec();
        b.resize(16, 0);
        b.extend([2, 0x42, 0xac, 0x11, 0, 2, 0, 0]);
        b.extend([172, 17, 0, 2]);
        let v = decode_key(&b, &[KeyType::Ifname, KeyType::Ether, KeyType::Ipv4]).unwrap();
        assert_eq!(
            v.to_vec(),
            vec![
                Value::Ifname("veth1".into()),
                Value::Mac("02:42:ac:11:00:02".into()),
                Value::Net("172.17.0.2/32".parse().unwrap()),
            ]
        );
        assert!(decode_key(&b[..27], &[KeyType::Ifname, KeyType::Ether, KeyType::Ipv4]).is_err());
    }
}
