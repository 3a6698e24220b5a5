//! Set and map element changes written straight to nftables over netlink:
//! one batch (`NFNL_MSG_BATCH_BEGIN` … `END`), so the kernel applies it
//! whole or not at all, with no process spawned and no ruleset cache
//! loaded. This is the daemon's hot path: a container start is a handful
//! of elements.
//!
//! Only plain sets and verdict maps keyed by addresses, interface names,
//! MACs and their concatenations are written this way; a change that
//! touches an interval or timeout set (network subnets, named sets) goes
//! through `nft` (see [`encodable`]).
//!
//! The messages are netlink-packet-netfilter's nftables types
//! (`NfTablesMessage::NewSetElement`/`DeleteSetElement`, the control
//! messages `BatchBegin`/`BatchEnd`); only the key bytes ([`key_bytes`]:
//! how the kernel stores an address, an interface name, a MAC or a
//! concatenation of them) are packed here. An install's [`fill`], hundreds
//! of thousands of elements, writes the same bytes without the typed
//! messages (`flat.rs`).

use std::io;
use std::time::Duration;

use cordon_ruleset::diff::SetChange;
use cordon_ruleset::nft::{Element, Family, Ruleset, Set, Verdict};
use netlink_packet_core::{DefaultNla, Nla, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST};
use netlink_packet_netfilter::nftables::{
    DataAttribute, ListAttribute, NfTablesMessage, SetElementAttribute, SetElementList,
    SetElementMessage, Verdict as NftVerdict, VerdictAttribute,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterProtoFamily};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

use crate::{flat, nl};

/// `NFNL_SUBSYS_NFTABLES`: the batch messages' resource id (the crate
/// exports no constant for it).
const SUBSYS_NFTABLES: u16 = 10;
/// `NF_ACCEPT`, `NF_DROP`: netfilter verdicts, which the crate's
/// [`NftVerdict`] (the `NFT_*` codes only) names as `Other`.
const VERDICT_ACCEPT: u32 = 1;
const VERDICT_DROP: u32 = 0;
/// Elements per message, to keep each well under the socket's buffer.
const CHUNK: usize = 256;
const IFNAMSIZ: usize = 16;

/// True when every change can be written over netlink: no interval or
/// timeout set, and every key a host address, an interface name or a MAC.
pub fn encodable(changes: &[SetChange], desired: &Ruleset) -> bool {
    changes.iter().all(|c| {
        let decl = desired
            .tables
            .iter()
            .find(|t| t.family == c.family && t.name == c.table)
            .and_then(|t| t.sets.iter().find(|s| s.name == c.set));
        decl.is_some_and(|d| !d.interval && !d.timeout)
            && c.delete
                .iter()
                .chain(&c.add)
                .all(|e| key_bytes(e).is_some())
    })
}

/// The key of an element as the kernel stores it: each component in its
/// register-aligned size when concatenated ([`flat::key_bytes`]).
fn key_bytes(e: &Element) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(if e.key.len() > 1 { 48 } else { IFNAMSIZ });
    flat::key_bytes(&mut out, &e.key).then_some(out)
}

/// One `NFTA_LIST_ELEM`: the key, the lifetime, and (for a map) the
/// verdict.
fn element_attr(
    e: &Element,
    with_data: bool,
    timeout: Option<Duration>,
) -> ListAttribute<SetElementAttribute> {
    let key = key_bytes(e).expect("checked by encodable");
    let mut attrs = Vec::with_capacity(3);
    attrs.push(SetElementAttribute::Key(DataAttribute::Value(key)));
    if let Some(t) = timeout {
        // Milliseconds.
        attrs.push(SetElementAttribute::Timeout(t.as_millis() as u64));
    }
    if with_data {
        if let Some(v) = &e.verdict {
            let verdict = match v {
                Verdict::Jump(c) => vec![
                    VerdictAttribute::Code(NftVerdict::Jump),
                    VerdictAttribute::Chain(c.to_string()),
                ],
                Verdict::Goto(c) => vec![
                    VerdictAttribute::Code(NftVerdict::Goto),
                    VerdictAttribute::Chain(c.to_string()),
                ],
                Verdict::Accept => vec![VerdictAttribute::Code(NftVerdict::Other(VERDICT_ACCEPT))],
                Verdict::Drop => vec![VerdictAttribute::Code(NftVerdict::Other(VERDICT_DROP))],
                Verdict::Return => vec![VerdictAttribute::Code(NftVerdict::Return)],
            };
            attrs.push(SetElementAttribute::Data(DataAttribute::Verdict(verdict)));
        }
    }
    ListAttribute::Element(attrs)
}

/// `elem` serialised once, carried as the same attribute with its value
/// already in bytes. The crate's emitter recomputes a nested attribute's
/// length at every level above it, several times per level, so a message
/// of 256 typed elements cost about three times what the bytes do; an
/// element serialised on its own and then copied costs what it did before.
fn presized(elem: ListAttribute<SetElementAttribute>) -> ListAttribute<SetElementAttribute> {
    let mut value = vec![0; elem.value_len()];
    elem.emit_value(&mut value);
    ListAttribute::Other(DefaultNla::new(elem.kind(), value))
}

fn nfproto(f: Family) -> NetfilterProtoFamily {
    match f {
        Family::Inet => NetfilterProtoFamily::Inet,
        Family::Bridge => NetfilterProtoFamily::Bridge,
    }
}

/// The whole batch, and how many of its messages ask for an answer.
fn batch(changes: &[SetChange], timeout: Option<Duration>) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut seq = 0u32;
    let mut next = || {
        seq += 1;
        seq
    };
    let control = NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, SUBSYS_NFTABLES);
    nl::emit(
        &mut out,
        NLM_F_REQUEST,
        next(),
        NetfilterMessage::new(control.clone(), ControlMessage::BatchBegin),
    );
    let mut acks = 0;
    for delete in [true, false] {
        for c in changes {
            let elems = if delete { &c.delete } else { &c.add };
            for chunk in elems.chunks(CHUNK) {
                let list = chunk
                    .iter()
                    .map(|e| presized(element_attr(e, !delete, timeout.filter(|_| !delete))))
                    .collect();
                let msg = SetElementMessage {
                    attributes: vec![
                        SetElementList::Table(c.table.clone()),
                        SetElementList::Set(c.set.clone()),
                        SetElementList::Elements(list),
                    ],
                };
                let (msg, flags) = if delete {
                    (
                        NfTablesMessage::DeleteSetElement(msg),
                        NLM_F_REQUEST | NLM_F_ACK,
                    )
                } else {
                    (
                        NfTablesMessage::NewSetElement(msg),
                        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
                    )
                };
                let header = NetfilterHeader::new(nfproto(c.family), 0, 0);
                nl::emit(&mut out, flags, next(), NetfilterMessage::new(header, msg));
                acks += 1;
            }
        }
    }
    nl::emit(
        &mut out,
        NLM_F_REQUEST,
        next(),
        NetfilterMessage::new(control, ControlMessage::BatchEnd),
    );
    (out, acks)
}

/// Writes the changes in one batch in this thread's network namespace.
/// The kernel applies all of it or none of it; an error names the first
/// message it refused.
pub fn apply(changes: &[SetChange]) -> io::Result<()> {
    send(batch(changes, None))
}

/// Like [`apply`], with every added element given a lifetime of `timeout`
/// (for sets declared with `flags timeout`, such as the DNS proxy's). The
/// keys must be [`encodable`] ones; the set must have the timeout flag.
pub fn apply_with_timeout(changes: &[SetChange], timeout: Duration) -> io::Result<()> {
    if changes
        .iter()
        .flat_map(|c| c.delete.iter().chain(&c.add))
        .any(|e| key_bytes(e).is_none())
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an element key cannot be written over netlink",
        ));
    }
    send(batch(changes, Some(timeout)))
}

/// True when every element of `s` can be written over netlink by [`fill`]:
/// a plain set or verdict map (no interval, no timeout) whose keys are host
/// addresses, interface names, MACs and marks.
pub fn set_encodable(s: &Set) -> bool {
    !s.interval && !s.timeout && s.elements.iter().all(|e| flat::encodable(&e.key))
}

/// Bytes of elements per batch [`fill`] sends: each batch is a transaction
/// of its own, and a few large ones cost less than many small ones.
const FILL_BATCH_BYTES: usize = 4 << 20;

/// Adds every element of each `(family, table, set)` over netlink, in as
/// many batches as their size needs: several transactions, so only for
/// sets no rule refers to yet (an install's fresh sets, before its switch).
/// The sets must be [`set_encodable`]. The batches are written straight
/// into bytes (`flat.rs`).
pub fn fill(sets: &[(Family, &str, &Set)]) -> io::Result<()> {
    for batch in fill_batches(sets, FILL_BATCH_BYTES) {
        send(batch?)?;
    }
    Ok(())
}

/// The batches [`fill`] sends, each closed once it holds `bytes` or more:
/// (bytes, acknowledgements to read). An element that cannot be encoded
/// ends them with an error.
fn fill_batches<'a>(
    sets: &'a [(Family, &'a str, &'a Set)],
    bytes: usize,
) -> impl Iterator<Item = io::Result<(Vec<u8>, usize)>> + 'a {
    // Room for one more message past the threshold, so a batch's buffer
    // is never grown.
    let capacity = bytes + (1 << 16);
    let mut chunks = sets.iter().flat_map(|(family, table, set)| {
        set.elements
            .chunks(flat::CHUNK)
            .map(move |c| (*family, *table, set, c))
    });
    let mut seq = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut b = flat::Batch::begin(seq, capacity);
        loop {
            let Some((family, table, set, chunk)) = chunks.next() else {
                done = true;
                break;
            };
            if b.add_elements(family, table, &set.name, chunk).is_err() {
                done = true;
                return Some(Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "an element of set {} cannot be written over netlink",
                        set.name
                    ),
                )));
            }
            if b.out.len() >= bytes {
                break;
            }
        }
        let (out, acks, last) = b.end();
        seq = last;
        Some(Ok((out, acks)))
    })
}

thread_local! {
    /// This thread's netlink socket and receive buffer, kept between
    /// batches: the DNS proxy writes one batch per answer, and a socket per
    /// batch cost more than the batch itself. Dropped after any error, so
    /// a half-read reply never meets the next batch.
    /// The third field is the send buffer's size as last set or read, so
    /// a small batch costs no socket-option call.
    static WRITER: std::cell::RefCell<Option<(Socket, Vec<u8>, usize)>> = const { std::cell::RefCell::new(None) };
}

fn send((bytes, acks): (Vec<u8>, usize)) -> io::Result<()> {
    if acks == 0 {
        return Ok(());
    }
    WRITER.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut sock = Socket::new(NETLINK_NETFILTER)?;
            sock.bind_auto()?;
            let _ = sock.set_rx_buf_sz(1 << 20);
            nl::set_read_timeout(&sock, Duration::from_secs(5))?;
            *slot = Some((sock, vec![0u8; 1 << 16], 0));
        }
        let (sock, buf, sndbuf) = slot.as_mut().expect("just set");
        let result = nl::ensure_send_buffer(sock, sndbuf, bytes.len())
            .and_then(|()| exchange(sock, buf, &bytes, acks));
        if result.is_err() {
            *slot = None;
        }
        result
    })
}

/// Sends one batch and reads its `acks` acknowledgements.
fn exchange(sock: &Socket, buf: &mut [u8], bytes: &[u8], mut acks: usize) -> io::Result<()> {
    let sent = sock.send(bytes, 0)?;
    if sent != bytes.len() {
        return Err(io::Error::other("netlink: short write"));
    }
    while acks > 0 {
        let n = sock.recv(&mut &mut buf[..], 0)?;
        for answer in nl::messages(&buf[..n]).filter_map(|m| nl::ack(&m)) {
            answer?;
            acks -= 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_ruleset::nft::smallvec;
    use cordon_ruleset::nft::Value;
    use netlink_packet_core::NetlinkPayload;
    use netlink_packet_netfilter::NetfilterMessageInner;

    fn el(key: Vec<Value>) -> Element {
        Element {
            key: key.into(),
            verdict: None,
        }
    }

    #[test]
    fn keys_are_encoded_in_register_aligned_sizes() {
        let v4 = Value::Net("172.17.0.2/32".parse().unwrap());
        let mac = Value::Mac("02:42:ac:11:00:02".into());
        let port = Value::Ifname("veth1".into());
        assert_eq!(
            key_bytes(&el(vec![v4.clone()])).unwrap(),
            vec![172, 17, 0, 2]
        );
        assert_eq!(key_bytes(&el(vec![mac.clone()])).unwrap().len(), 6);
        let c = key_bytes(&el(vec![port.clone(), mac, v4])).unwrap();
        assert_eq!(c.len(), 16 + 8 + 4);
        assert_eq!(&c[..5], b"veth1");
        assert_eq!(&c[16..24], &[2, 0x42, 0xac, 0x11, 0, 2, 0, 0]);
        assert!(key_bytes(&el(vec![Value::Net("10.0.0.0/8".parse().unwrap())])).is_none());
        assert!(key_bytes(&el(vec![Value::Mac("zz".into())])).is_none());
        assert!(key_bytes(&el(vec![Value::Ifname("a-very-long-name-x".into())])).is_none());
    }

    #[test]
    fn a_batch_is_framed_and_counts_its_acks() {
        let change = SetChange {
            family: Family::Inet,
            table: "cordon".into(),
            set: "ingress4".into(),
            delete: vec![el(vec![Value::Net("172.17.0.3/32".parse().unwrap())])],
            add: (0..300)
                .map(|i| Element {
                    key: smallvec![Value::Net(
                        format!("172.18.{}.{}/32", i / 250, i % 250)
                            .parse()
                            .unwrap(),
                    )],
                    verdict: Some(Verdict::Jump("in_fwd_web".into())),
                })
                .collect(),
        };
        let (bytes, acks) = batch(&[change], None);
        // One delete message, two add messages (256 + 44).
        assert_eq!(acks, 3);
        let msgs: Vec<_> = nl::messages(&bytes).collect();
        assert_eq!(msgs.len(), 5);
        let inner = |i: usize| match &msgs[i].payload {
            NetlinkPayload::InnerMessage(m) => m.clone(),
            other => panic!("{other:?}"),
        };
        // BATCH_BEGIN/END name the nftables subsystem in the resource id.
        for (i, want) in [
            (0, ControlMessage::BatchBegin),
            (4, ControlMessage::BatchEnd),
        ] {
            let m = inner(i);
            assert_eq!(m.header.res_id, SUBSYS_NFTABLES);
            assert_eq!(m.inner, NetfilterMessageInner::None(want));
            assert_eq!(msgs[i].header.flags, NLM_F_REQUEST);
        }
        let seqs: Vec<u32> = msgs.iter().map(|m| m.header.sequence_number).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        assert_eq!(msgs[1].header.flags, NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(
            msgs[2].header.flags,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE
        );
        let elements = |m: NetfilterMessage| {
            assert_eq!(m.header.family, NetfilterProtoFamily::Inet);
            let (NetfilterMessageInner::NfTables(NfTablesMessage::DeleteSetElement(m))
            | NetfilterMessageInner::NfTables(NfTablesMessage::NewSetElement(m))) = m.inner
            else {
                panic!("{:?}", m.inner)
            };
            assert_eq!(m.attributes[0], SetElementList::Table("cordon".into()));
            assert_eq!(m.attributes[1], SetElementList::Set("ingress4".into()));
            let SetElementList::Elements(list) = &m.attributes[2] else {
                panic!("{m:?}")
            };
            list.clone()
        };
        assert!(matches!(
            inner(1).inner,
            NetfilterMessageInner::NfTables(NfTablesMessage::DeleteSetElement(_))
        ));
        // A deleted element carries its key only.
        assert_eq!(
            elements(inner(1)),
            [ListAttribute::Element(vec![SetElementAttribute::Key(
                DataAttribute::Value(vec![172, 17, 0, 3])
            )])]
        );
        let added = elements(inner(2));
        assert_eq!(added.len(), 256);
        assert_eq!(elements(inner(3)).len(), 44);
        assert_eq!(
            added[1],
            ListAttribute::Element(vec![
                SetElementAttribute::Key(DataAttribute::Value(vec![172, 18, 0, 1])),
                SetElementAttribute::Data(DataAttribute::Verdict(vec![
                    VerdictAttribute::Code(NftVerdict::Jump),
                    VerdictAttribute::Chain("in_fwd_web".into()),
                ])),
            ])
        );
    }

    /// The fill's batches, written byte by byte, are the bytes the
    /// crate's typed messages make for the same elements (the element
    /// updates' [`batch`]): plain sets, verdict maps with every verdict,
    /// concatenations of names, MACs, addresses and marks; and a fill
    /// past the batch size splits into batches that each begin and end.
    #[test]
    fn the_fill_writes_the_bytes_the_typed_messages_make() {
        let v = |i: usize| -> Vec<Element> {
            (0..i)
                .map(|k| Element {
                    key: smallvec![
                        Value::Ifname(format!("veth{k:x}").into()),
                        Value::Mac(format!("02:42:ac:11:{:02x}:{:02x}", k >> 8, k & 0xff).into()),
                        Value::Net(format!("2001:db8::{k:x}/128").parse().unwrap()),
                    ],
                    verdict: None,
                })
                .collect()
        };
        let verdicts = [
            Verdict::Jump("eg_fwd_web".into()),
            Verdict::Goto("eg_fwd_db".into()),
            Verdict::Accept,
            Verdict::Drop,
            Verdict::Return,
        ];
        let map: Vec<Element> = (0..600)
            .map(|k| Element {
                key: smallvec![Value::Net(
                    format!("10.{}.{}.2/32", k / 250, k % 250).parse().unwrap(),
                )],
                verdict: Some(verdicts[k % verdicts.len()].clone()),
            })
            .collect();
        let marks: Vec<Element> = (0..3u32)
            .map(|k| Element {
                key: smallvec![Value::Ifname("veth1".into()), Value::Mark(k * 77_777)],
                verdict: None,
            })
            .collect();
        for (family, elements) in [
            (Family::Bridge, v(300)),
            (Family::Inet, map),
            (Family::Bridge, marks),
        ] {
            let mut set = Set::new("s", vec![], "");
            set.elements = elements.clone();
            let sets = [(family, "cordon", &set)];
            let got: Vec<_> = fill_batches(&sets, FILL_BATCH_BYTES)
                .map(Result::unwrap)
                .collect();
            let change = SetChange {
                family,
                table: "cordon".into(),
                set: "s".into(),
                delete: vec![],
                add: elements,
            };
            assert_eq!(got, vec![batch(&[change], None)]);
        }
        // A small batch size: each batch is framed and counts its own
        // acknowledgements; the sequence numbers run on.
        let mut set = Set::new("s", vec![], "");
        set.elements = v(1000);
        let sets = [(Family::Bridge, "cordon", &set)];
        let batches: Vec<_> = fill_batches(&sets, 20_000).map(Result::unwrap).collect();
        assert!(batches.len() > 1, "{}", batches.len());
        let mut seqs = Vec::new();
        let mut added = 0;
        for (bytes, acks) in &batches {
            let msgs: Vec<_> = nl::messages(bytes).collect();
            assert_eq!(msgs.len(), acks + 2);
            seqs.extend(msgs.iter().map(|m| m.header.sequence_number));
            for m in &msgs[1..msgs.len() - 1] {
                let NetlinkPayload::InnerMessage(NetfilterMessage {
                    inner: NetfilterMessageInner::NfTables(NfTablesMessage::NewSetElement(m)),
                    ..
                }) = &m.payload
                else {
                    panic!("{m:?}")
                };
                let SetElementList::Elements(list) = &m.attributes[2] else {
                    panic!("{m:?}")
                };
                added += list.len();
            }
        }
        assert_eq!(added, 1000);
        assert_eq!(seqs, (1..=seqs.len() as u32).collect::<Vec<_>>());
        // An element that has no netlink form ends the fill with an error.
        set.elements[700].key[1] = Value::Mac("zz".into());
        let sets = [(Family::Bridge, "cordon", &set)];
        assert!(fill_batches(&sets, 20_000).any(|b| b.is_err()));
    }

    /// The bytes of one element as the kernel reads them: nested
    /// attributes flagged, the timeout in milliseconds and the verdict code
    /// big-endian, the chain name NUL-terminated and padded.
    #[test]
    fn an_element_is_laid_out_as_the_kernel_expects() {
        use netlink_packet_core::Emitable;
        let e = Element {
            key: smallvec![Value::Net("172.17.0.2/32".parse().unwrap())],
            verdict: Some(Verdict::Jump("c".into())),
        };
        let a = element_attr(&e, true, Some(Duration::from_millis(1500)));
        let mut got = vec![0; a.buffer_len()];
        a.emit(&mut got);
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &[52, 0, 1, 0x80][..],                          // NFTA_LIST_ELEM
            &[12, 0, 1, 0x80, 8, 0, 1, 0, 172, 17, 0, 2],   // KEY { VALUE }
            &[12, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0x05, 0xdc],   // TIMEOUT 1500
            &[24, 0, 2, 0x80, 20, 0, 2, 0x80],              // DATA { VERDICT {
            &[8, 0, 1, 0, 0xff, 0xff, 0xff, 0xfd],          //   CODE NFT_JUMP
            &[6, 0, 2, 0, b'c', 0, 0, 0],                   //   CHAIN "c" } }
        ]
        .concat();
        assert_eq!(got, want);
        // A goto carries NFT_GOTO and the chain, as a jump does NFT_JUMP.
        let g = Element {
            key: e.key.clone(),
            verdict: Some(Verdict::Goto("eg_fwd_web".into())),
        };
        let ListAttribute::Element(attrs) = element_attr(&g, true, None) else {
            unreachable!()
        };
        assert_eq!(
            attrs[1],
            SetElementAttribute::Data(DataAttribute::Verdict(vec![
                VerdictAttribute::Code(NftVerdict::Goto),
                VerdictAttribute::Chain("eg_fwd_web".into()),
            ]))
        );
        assert_eq!(u32::from(NftVerdict::Goto), (-4i32) as u32, "NFT_GOTO");
        // Accept and drop are the netfilter codes 1 and 0.
        for (v, code) in [(Verdict::Accept, 1u32), (Verdict::Drop, 0)] {
            let e = Element {
                key: e.key.clone(),
                verdict: Some(v),
            };
            let ListAttribute::Element(attrs) = element_attr(&e, true, None) else {
                unreachable!()
            };
            assert_eq!(
                attrs[1],
                SetElementAttribute::Data(DataAttribute::Verdict(vec![VerdictAttribute::Code(
                    NftVerdict::from(code)
                )]))
            );
        }
    }
}
