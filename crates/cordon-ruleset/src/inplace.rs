//! Replacing cordon's tables without deleting them.
//!
//! A transaction that deletes a table and creates it again is atomic for
//! the ruleset but not for every packet: a packet inside the old table's
//! chains when the transaction commits can look up a verdict map whose
//! elements the delete has just deactivated, miss, and fall through to the
//! fail-closed drop. Measured in a lab namespace, a flood of new flows lost
//! about one packet per replacement that way.
//!
//! Flushing a set and adding the same elements back in one transaction has
//! the same flaw on the kernels tested (6.18): for an instant, a lookup of
//! a key that is in the set before and after finds neither copy. So the
//! in-place transaction never takes away an element that stays: it keeps
//! the tables and every set whose declaration is unchanged, deletes only
//! the elements that go, adds only the ones that come, and flushes and
//! refills the chains (rule changes are atomic per packet: a packet walks
//! one generation's rules from its base chain to its verdict). Sets and
//! chains the new ruleset lacks, or declares differently, and objects
//! cordon never makes are deleted.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::{json, Value as J};

use crate::json::{
    add_chain, add_set, chain_shape, element, render_text, set_id, set_kind, set_shape,
    write_element, Write,
};
use crate::listing::Listing;
use crate::nft::{Element, Family, Ruleset, Set, Table};

/// True when the set the kernel holds, of shape `have`, can stay as
/// `s`: the same shape, or one that differs only in a declared size that
/// still holds `s`'s elements. A set declared anew takes its elements away,
/// for an instant, from the packets looking them up; a size that moved
/// because the containers crossed a boundary is no reason for that, so
/// the kernel's larger (or still large enough) size stays, and a set is
/// declared anew only when it must grow.
pub fn keeps(have: &J, s: &Set) -> bool {
    let want = set_shape(s);
    if *have == want {
        return true;
    }
    let without_size = |j: &J| {
        let mut j = j.clone();
        if let Some(o) = j.as_object_mut() {
            o.remove("size");
        }
        j
    };
    let fits = match (have.get("size").and_then(J::as_u64), s.size) {
        (Some(k), Some(_)) => k >= s.elements.len() as u64,
        _ => false,
    };
    fits && without_size(have) == without_size(&want)
}

/// What one of cordon's tables holds in the kernel, as far as the in-place
/// transaction needs to know: its chains and sets with their shapes, and
/// any other object (which cordon never creates, so it is deleted).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Present {
    /// Chain name → its shape ([`chain_shape`]).
    pub chains: BTreeMap<String, Option<J>>,
    /// Set or map name → its shape ([`set_shape`]).
    pub sets: BTreeMap<String, J>,
    /// Other named objects: (kind as `nft -j` names it, name).
    pub others: Vec<(String, String)>,
    /// Set or map name → its elements, for the sets whose elements were
    /// read (the dataplane reads them in the key types of the desired set
    /// of that name). A set missing here is taken to be empty.
    pub elements: BTreeMap<String, Vec<Element>>,
    /// Sets known to hold exactly the new ruleset's elements (filled just
    /// before the transaction): nothing is deleted from or added to them.
    pub complete: BTreeSet<String>,
}

impl Present {
    /// What the kernel holds when it holds exactly `table` (the ruleset an
    /// install left there): its chains, sets and elements, no listing
    /// needed.
    pub fn from_table(table: &Table) -> Present {
        Present {
            chains: table
                .chains
                .iter()
                .map(|c| (c.name.clone(), chain_shape(c)))
                .collect(),
            sets: table
                .sets
                .iter()
                .map(|s| (s.name.clone(), set_shape(s)))
                .collect(),
            others: Vec::new(),
            elements: table
                .sets
                .iter()
                .map(|s| (s.name.clone(), s.elements.clone()))
                .collect(),
            complete: BTreeSet::new(),
        }
    }

    /// Reads the shapes out of `nft -j [-t] list table FAMILY NAME` output
    /// (elements and rules are ignored).
    pub fn from_listing(listing: &J) -> Present {
        let listing = Listing::parse(listing);
        let mut out = Present::default();
        for c in &listing.chains {
            let b = &c.body;
            let shape = b.get("hook").map(|_| {
                json!({
                    "type": b["type"], "hook": b["hook"],
                    "prio": b["prio"], "policy": b["policy"],
                })
            });
            out.chains.insert(c.name.clone(), shape);
        }
        for s in &listing.sets {
            let b = &s.body;
            let mut flags: Vec<&str> = b["flags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(J::as_str)
                .collect();
            flags.sort_unstable();
            let shape = json!({
                "map": b.get("map").cloned().unwrap_or(J::Null),
                "type": b["type"],
                "flags": flags,
                "counter": s.counted(),
                "size": s.size(),
            });
            out.sets.insert(s.name.clone(), shape);
        }
        out.others = listing.others;
        out
    }
}

/// The transaction that brings cordon's tables to `ruleset` in place, as
/// JSON text for `nft -j -f`. `present` holds what the kernel has of each
/// table (a table missing from it does not exist yet and is created).
///
/// Per table, in this order (the kernel checks references as it goes):
/// flush every chain (no rule refers to anything any more); delete the
/// elements that go from the sets that stay (no verdict map element jumps
/// to a chain that goes); delete the sets, chains and other objects that go
/// or change shape; then declare everything, add the rules, and add the
/// elements that are not there yet.
pub fn transaction_text(ruleset: &Ruleset, present: &[(Family, String, Present)]) -> String {
    let mut head = Vec::new();
    // (family, table, set) → the elements the kernel keeps.
    let mut kept: HashMap<(usize, usize), Kept> = HashMap::new();
    // Sets that stay at the size the kernel holds ([`keeps`]).
    let mut resized: Vec<(usize, usize, u32)> = Vec::new();
    for (ti, t) in ruleset.tables.iter().enumerate() {
        let fam = t.family.as_str();
        head.push(json!({"add": {"table": {"family": fam, "name": t.name}}}));
        let Some((_, _, p)) = present
            .iter()
            .find(|(f, n, _)| *f == t.family && *n == t.name)
        else {
            continue;
        };
        let id = |name: &str| json!({"family": fam, "table": t.name, "name": name});
        for name in p.chains.keys() {
            head.push(json!({"flush": {"chain": id(name)}}));
        }
        let mut stays = HashSet::new();
        for (si, s) in t.sets.iter().enumerate() {
            let Some(have) = p.sets.get(&s.name).filter(|have| keeps(have, s)) else {
                continue;
            };
            if let Some(k) = have.get("size").and_then(J::as_u64) {
                if s.size != Some(k as u32) {
                    resized.push((ti, si, k as u32));
                }
            }
            stays.insert(s.name.as_str());
            let key = (ti, si);
            let have: &[Element] = p.elements.get(&s.name).map_or(&[], Vec::as_slice);
            // The common case, a set whose elements did not change (or one
            // filled before this transaction), needs no hashing.
            if p.complete.contains(&s.name) || have == s.elements.as_slice() {
                kept.insert(key, Kept::All);
                continue;
            }
            let want: HashSet<&Element> = s.elements.iter().collect();
            // Elements of a timeout set belong to the DNS proxy: they stay.
            let gone: Vec<J> = have
                .iter()
                .filter(|e| !s.timeout && !want.contains(e))
                .map(element)
                .collect();
            if !gone.is_empty() {
                let mut obj = id(&s.name);
                obj["elem"] = J::Array(gone);
                head.push(json!({"delete": {"element": obj}}));
            }
            kept.insert(
                key,
                Kept::Some(
                    have.iter()
                        .filter(|e| s.timeout || want.contains(e))
                        .collect(),
                ),
            );
        }
        for (name, shape) in &p.sets {
            if !stays.contains(name.as_str()) {
                head.push(json!({"delete": {kind_of(shape): id(name)}}));
            }
        }
        for (name, shape) in &p.chains {
            let keep = t
                .chains
                .iter()
                .any(|c| c.name == *name && chain_shape(c) == *shape);
            if !keep {
                head.push(json!({"delete": {"chain": id(name)}}));
            }
        }
        for (kind, name) in &p.others {
            head.push(json!({"delete": {kind.as_str(): id(name)}}));
        }
    }
    // Declared at the kernel's size (a declaration of another size would
    // be refused, or resize the set): a copy, in the rare install where a
    // size moved.
    let adjusted;
    let ruleset = if resized.is_empty() {
        ruleset
    } else {
        let mut r = ruleset.clone();
        for (ti, si, k) in resized {
            r.tables[ti].sets[si].size = Some(k);
        }
        adjusted = r;
        &adjusted
    };
    render_text(head, ruleset, &|ti, si| match kept.get(&(ti, si)) {
        None => Write::All,
        Some(Kept::All) => Write::None,
        Some(Kept::Some(have)) => Write::Except(have),
    })
}

/// What the kernel keeps of a set that stays.
enum Kept<'a> {
    /// Every element the new ruleset wants, and nothing else.
    All,
    /// These elements.
    Some(HashSet<&'a Element>),
}

/// An install in steps, so that the set elements, almost all of a large
/// ruleset, need not go through `nft` nor through the transaction that
/// puts the ruleset in force. See [`staged`].
#[derive(Debug, Clone, PartialEq)]
pub struct Staged {
    /// JSON text for `nft -j -f`, run first: creates the tables if absent,
    /// declares the *fresh* sets (those the kernel does not hold under
    /// their name) empty, flushed in case an interrupted install left them,
    /// declares the fresh regular chains empty, and adds the elements of
    /// the fresh sets that do not go over netlink. Inert: no rule refers to
    /// any of it, so no packet sees it.
    pub prepare: String,
    /// The fresh sets to fill over netlink after `prepare` and before
    /// `switch`: (table index, set index) in `ruleset`. Inert too.
    pub fill: Vec<(usize, usize)>,
    /// The one transaction that puts the ruleset in force:
    /// [`transaction_text`] with the fresh sets and chains counted as
    /// present and complete, so it carries the rules and only the element
    /// changes of the sets that were there before.
    pub switch: String,
    /// JSON text deleting what `prepare` created (the fresh sets, then the
    /// fresh chains), run when the fill or the switch fails so a refused
    /// install leaves nothing behind.
    pub cleanup: String,
}

impl Staged {
    /// `prepare` and `switch` as one transaction: for a ruleset with few
    /// elements, where two `nft` runs cost more than parsing them (plan it
    /// with no set `over_netlink`, so `fill` is empty).
    pub fn one_transaction(&self) -> String {
        let head = self
            .prepare
            .strip_suffix("]}")
            .expect("a JSON command list");
        let tail = self
            .switch
            .strip_prefix("{\"nftables\":[")
            .expect("a JSON command list");
        format!("{head},{tail}")
    }
}

/// Plans an install of `ruleset` over what the kernel holds (`present`,
/// as for [`transaction_text`]), in three steps: `prepare`, `fill`,
/// `switch` (see [`Staged`]). `over_netlink` says which fresh sets' elements
/// the caller sends over netlink; the others' are added by `prepare`.
///
/// Nothing is staged when a chain the kernel holds changes between base
/// and regular (or its hook): the switch deletes and recreates it, and a
/// prefilled verdict map jumping to it would stop the delete. Then every
/// set goes through the switch, as with [`transaction_text`] alone.
pub fn staged(
    ruleset: &Ruleset,
    present: &[(Family, String, Present)],
    over_netlink: &dyn Fn(&Set) -> bool,
) -> Staged {
    let find = |t: &Table| {
        present
            .iter()
            .find(|(f, n, _)| *f == t.family && *n == t.name)
            .map(|(_, _, p)| p)
    };
    let reshaped = ruleset.tables.iter().any(|t| {
        find(t).is_some_and(|p| {
            t.chains.iter().any(|c| {
                p.chains
                    .get(&c.name)
                    .is_some_and(|shape| *shape != chain_shape(c))
            })
        })
    });
    let mut prepare = Vec::new();
    let mut fill = Vec::new();
    let mut after = Vec::new();
    let mut slow: Vec<(usize, usize)> = Vec::new();
    let (mut gone_sets, mut gone_chains) = (Vec::new(), Vec::new());
    for (ti, t) in ruleset.tables.iter().enumerate() {
        prepare.push(json!({"add": {"table": {"family": t.family.as_str(), "name": t.name}}}));
        let mut p = find(t).cloned().unwrap_or_default();
        if reshaped {
            after.extend(find(t).map(|p| (t.family, t.name.clone(), p.clone())));
            continue;
        }
        for c in t.chains.iter().filter(|c| c.base.is_none()) {
            if !p.chains.contains_key(&c.name) {
                prepare.push(add_chain(t, c));
                gone_chains.push(json!({"delete": {"chain": {
                    "family": t.family.as_str(), "table": t.name, "name": c.name
                }}}));
                p.chains.insert(c.name.clone(), None);
            }
        }
        for (si, s) in t.sets.iter().enumerate() {
            if p.sets.contains_key(&s.name) {
                continue;
            }
            prepare.push(add_set(t, s, false));
            prepare.push(json!({"flush": {set_kind(s): set_id(t, s)}}));
            gone_sets.push(json!({"delete": {set_kind(s): set_id(t, s)}}));
            p.sets.insert(s.name.clone(), set_shape(s));
            p.complete.insert(s.name.clone());
            if s.elements.is_empty() {
                continue;
            }
            if over_netlink(s) {
                fill.push((ti, si));
            } else {
                slow.push((ti, si));
            }
        }
        after.push((t.family, t.name.clone(), p));
    }
    let mut text = serde_json::to_string(&json!({ "nftables": prepare })).expect("JSON");
    if !slow.is_empty() {
        text.truncate(text.len() - 2);
        for (ti, si) in slow {
            let (t, s) = (&ruleset.tables[ti], &ruleset.tables[ti].sets[si]);
            let mut obj = set_id(t, s).to_string();
            obj.truncate(obj.len() - 1);
            text.push_str(&format!(",{{\"add\":{{\"element\":{obj},\"elem\":["));
            for (i, e) in s.elements.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                write_element(&mut text, e);
            }
            text.push_str("]}}}");
        }
        text.push_str("]}");
    }
    Staged {
        prepare: text,
        fill,
        switch: transaction_text(ruleset, &after),
        cleanup: json!({ "nftables": J::Array([gone_sets, gone_chains].concat()) }).to_string(),
    }
}

fn kind_of(shape: &J) -> &'static str {
    if shape["map"].is_null() {
        "set"
    } else {
        "map"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::{BaseChain, Chain, ChainType, Element, Hook, KeyType, Set, Table, Value};
    use smallvec::smallvec;

    fn ruleset() -> Ruleset {
        let mut vmap = Set::new("disp4", vec![KeyType::Ipv4], "address → chain");
        vmap.verdict_map = true;
        vmap.counter = true;
        vmap.size = Some(256);
        vmap.elements.push(Element {
            key: smallvec![Value::Net("172.17.0.2/32".parse().unwrap())],
            verdict: Some(crate::nft::Verdict::Jump("pol".into())),
        });
        let mut nets = Set::new("nets4", vec![KeyType::Ipv4], "nets");
        nets.interval = true;
        Ruleset {
            tables: vec![Table {
                family: Family::Inet,
                name: "cordon".into(),
                sets: vec![vmap, nets],
                chains: vec![
                    Chain {
                        name: "pol".into(),
                        base: None,
                        rules: vec![],
                    },
                    Chain {
                        name: "fwd".into(),
                        base: Some(BaseChain {
                            kind: ChainType::Filter,
                            hook: Hook::Forward,
                            priority: -10,
                        }),
                        rules: vec![],
                    },
                ],
            }],
        }
    }

    /// The terse listing `nft -j -t list table inet cordon` prints for
    /// [`ruleset`], with `extra` objects appended.
    fn listing(extra: &[J]) -> J {
        let mut objs = vec![
            json!({"metainfo": {"version": "1.0.6"}}),
            json!({"table": {"family": "inet", "name": "cordon", "handle": 3}}),
            json!({"map": {"family": "inet", "name": "disp4", "table": "cordon",
                "type": "ipv4_addr", "handle": 4, "comment": "address → chain",
                "map": "verdict", "size": 256, "stmt": [{"counter": null}]}}),
            json!({"set": {"family": "inet", "name": "nets4", "table": "cordon",
                "type": "ipv4_addr", "handle": 5, "comment": "nets", "flags": ["interval"]}}),
            json!({"chain": {"family": "inet", "table": "cordon", "name": "pol", "handle": 1}}),
            json!({"chain": {"family": "inet", "table": "cordon", "name": "fwd", "handle": 2,
                "type": "filter", "hook": "forward", "prio": -10, "policy": "accept"}}),
            json!({"rule": {"family": "inet", "table": "cordon", "chain": "fwd", "handle": 9,
                "expr": [{"accept": null}]}}),
        ];
        objs.extend_from_slice(extra);
        json!({ "nftables": objs })
    }

    fn commands(text: &str) -> Vec<J> {
        let doc: J = serde_json::from_str(text).expect("valid JSON");
        doc["nftables"].as_array().expect("commands").clone()
    }

    fn verbs(cmds: &[J], verb: &str) -> Vec<String> {
        cmds.iter()
            .filter_map(|c| c.get(verb))
            .map(|o| {
                let (kind, body) = o.as_object().unwrap().iter().next().unwrap();
                format!("{kind} {}", body["name"].as_str().unwrap_or_default())
            })
            .collect()
    }

    /// nft 1.0.6 drops a set's comment given in JSON: the kernel then
    /// lists every set without one. That is no change of shape, so a
    /// reinstall reading the kernel keeps the sets (and their elements)
    /// instead of deleting and creating each again.
    #[test]
    fn a_set_listed_without_its_comment_keeps_its_shape() {
        let mut l = listing(&[]);
        for o in l["nftables"].as_array_mut().unwrap() {
            for kind in ["set", "map"] {
                if let Some(body) = o.get_mut(kind).and_then(J::as_object_mut) {
                    body.remove("comment");
                }
            }
        }
        let r = ruleset();
        assert!(r.tables[0].sets.iter().any(|s| !s.comment.is_empty()));
        for s in &r.tables[0].sets {
            assert_eq!(
                Present::from_listing(&l).sets[&s.name],
                set_shape(s),
                "set {}",
                s.name
            );
        }
        let have = r.tables[0].sets[0].elements.clone();
        let text = staged(&r, &present(&l, &[("disp4", have)]), &|_| false).one_transaction();
        assert!(!text.contains("delete set"), "{text}");
        assert!(!text.contains("delete map"), "{text}");
    }

    #[test]
    fn the_listed_shapes_equal_the_declared_ones() {
        let p = Present::from_listing(&listing(&[]));
        let r = ruleset();
        for c in &r.tables[0].chains {
            assert_eq!(p.chains[&c.name], chain_shape(c), "chain {}", c.name);
        }
        for s in &r.tables[0].sets {
            assert_eq!(p.sets[&s.name], set_shape(s), "set {}", s.name);
        }
        assert!(p.others.is_empty());
    }

    fn present(listing: &J, elements: &[(&str, Vec<Element>)]) -> Vec<(Family, String, Present)> {
        let mut p = Present::from_listing(listing);
        for (name, elems) in elements {
            p.elements.insert(name.to_string(), elems.clone());
        }
        vec![(Family::Inet, "cordon".to_string(), p)]
    }

    fn addr(a: &str, to: &str) -> Element {
        Element {
            key: smallvec![Value::Net(a.parse().unwrap())],
            verdict: Some(crate::nft::Verdict::Jump(to.into())),
        }
    }

    #[test]
    fn an_unchanged_table_keeps_its_sets_and_elements_and_refills_its_chains() {
        let r = ruleset();
        let have = r.tables[0].sets[0].elements.clone();
        let cmds = commands(&transaction_text(
            &r,
            &present(&listing(&[]), &[("disp4", have)]),
        ));
        assert!(verbs(&cmds, "delete").is_empty(), "{cmds:?}");
        assert_eq!(verbs(&cmds, "flush"), ["chain fwd", "chain pol"]);
        assert!(
            !verbs(&cmds, "add").contains(&"element disp4".to_string()),
            "an element that stays is neither deleted nor added again: {cmds:?}"
        );
    }

    #[test]
    fn only_the_elements_that_go_are_deleted_and_only_new_ones_added() {
        let mut r = ruleset();
        r.tables[0].sets[0]
            .elements
            .push(addr("172.17.0.3/32", "pol"));
        let have = vec![addr("172.17.0.2/32", "pol"), addr("172.17.0.9/32", "pol")];
        let cmds = commands(&transaction_text(
            &r,
            &present(&listing(&[]), &[("disp4", have)]),
        ));
        let deleted: Vec<&J> = cmds
            .iter()
            .filter_map(|c| c["delete"].get("element"))
            .collect();
        assert_eq!(deleted.len(), 1);
        assert_eq!(
            deleted[0]["elem"],
            json!([["172.17.0.9", {"jump": {"target": "pol"}}]])
        );
        let added: Vec<&J> = cmds
            .iter()
            .filter_map(|c| c["add"].get("element"))
            .collect();
        assert_eq!(added.len(), 1);
        assert_eq!(
            added[0]["elem"],
            json!([["172.17.0.3", {"jump": {"target": "pol"}}]])
        );
        // The deletion comes before any declaration is added back.
        let del = cmds
            .iter()
            .position(|c| c["delete"].get("element").is_some())
            .unwrap();
        let chain = cmds
            .iter()
            .position(|c| c["add"].get("chain").is_some())
            .unwrap();
        assert!(del < chain);
    }

    #[test]
    fn elements_of_a_timeout_set_belong_to_the_dns_proxy_and_stay() {
        let mut r = ruleset();
        r.tables[0].sets[1].timeout = true;
        let mut l = listing(&[]);
        for o in l["nftables"].as_array_mut().unwrap() {
            if o["set"]["name"] == "nets4" {
                o["set"]["flags"] = json!(["interval", "timeout"]);
            }
        }
        let learned = Element {
            key: smallvec![Value::Net("198.51.100.7/32".parse().unwrap())],
            verdict: None,
        };
        let cmds = commands(&transaction_text(
            &r,
            &present(&l, &[("nets4", vec![learned])]),
        ));
        assert!(verbs(&cmds, "delete").is_empty(), "{cmds:?}");
    }

    #[test]
    fn changed_and_foreign_objects_are_deleted_after_every_flush() {
        let extra = [
            // A chain the ruleset does not have (someone added it).
            json!({"chain": {"family": "inet", "table": "cordon", "name": "sneaky", "handle": 7,
                "type": "filter", "hook": "forward", "prio": -300, "policy": "accept"}}),
            // A named counter: cordon never makes one.
            json!({"counter": {"family": "inet", "table": "cordon", "name": "c1", "handle": 8}}),
        ];
        let mut l = listing(&extra);
        // nets4 lost its interval flag; fwd moved to another priority.
        for o in l["nftables"].as_array_mut().unwrap() {
            if o["set"]["name"] == "nets4" {
                o["set"].as_object_mut().unwrap().remove("flags");
            }
            if o["chain"]["name"] == "fwd" {
                o["chain"]["prio"] = json!(0);
            }
        }
        let cmds = commands(&transaction_text(&ruleset(), &present(&l, &[])));
        assert_eq!(
            verbs(&cmds, "delete"),
            ["set nets4", "chain fwd", "chain sneaky", "counter c1"]
        );
        let first_delete = cmds.iter().position(|c| c.get("delete").is_some()).unwrap();
        let last_flush = cmds.iter().rposition(|c| c.get("flush").is_some()).unwrap();
        assert!(last_flush < first_delete, "deletes only after every flush");
    }

    /// A map whose declared size moved but that still holds its elements
    /// stays (nothing deleted: its elements never leave the packets'
    /// lookups); one its elements outgrew is declared anew, with all of
    /// them (the kernel cannot resize a fixed hash table).
    #[test]
    fn a_set_is_declared_anew_only_when_its_elements_outgrow_it() {
        let have = ruleset().tables[0].sets[0].elements.clone();
        let mut r = ruleset();
        r.tables[0].sets[0].size = Some(512);
        let cmds = commands(&transaction_text(
            &r,
            &present(&listing(&[]), &[("disp4", have.clone())]),
        ));
        assert!(verbs(&cmds, "delete").is_empty(), "{cmds:?}");
        let declared: Vec<&J> = cmds.iter().filter_map(|c| c["add"].get("map")).collect();
        assert_eq!(declared[0]["size"], 256, "declared at the kernel's size");

        // The kernel's map holds 256; the new one has 300 elements.
        r.tables[0].sets[0].elements.extend(
            (0..299).map(|i| addr(&format!("172.18.{}.{}/32", i / 250, i % 250 + 1), "pol")),
        );
        let cmds = commands(&transaction_text(
            &r,
            &present(&listing(&[]), &[("disp4", have)]),
        ));
        assert_eq!(verbs(&cmds, "delete"), ["map disp4"]);
        let added: Vec<&J> = cmds.iter().filter_map(|c| c["add"].get("map")).collect();
        assert_eq!(added[0]["size"], 512);
        assert!(verbs(&cmds, "add").contains(&"element disp4".to_string()));
    }

    #[test]
    fn a_table_reads_as_its_listing_would() {
        let r = ruleset();
        let mut from_listing = Present::from_listing(&listing(&[]));
        from_listing.elements = r.tables[0]
            .sets
            .iter()
            .map(|s| (s.name.clone(), s.elements.clone()))
            .collect();
        assert_eq!(Present::from_table(&r.tables[0]), from_listing);
    }

    #[test]
    fn an_absent_table_is_created_like_a_fresh_install() {
        let cmds = commands(&transaction_text(&ruleset(), &[]));
        assert!(verbs(&cmds, "delete").is_empty());
        assert!(verbs(&cmds, "flush").is_empty());
        assert_eq!(
            verbs(&cmds, "add")[..3],
            ["table cordon", "table cordon", "chain pol"]
        );
    }

    /// A first install in steps: the prepare transaction makes the table,
    /// the regular chain and the empty sets (flushed), with the interval
    /// set's elements, and no base chain; the map is left to the fill; the
    /// switch adds the base chain and the rules and no element; the
    /// cleanup deletes exactly what the prepare made.
    #[test]
    fn a_first_install_in_steps_prepares_inert_sets_and_switches_once() {
        let mut r = ruleset();
        r.tables[0].sets[1].elements.push(Element {
            key: smallvec![Value::Net("10.0.0.0/8".parse().unwrap())],
            verdict: None,
        });
        let st = staged(&r, &[], &|s| !s.interval);
        let prep = commands(&st.prepare);
        assert_eq!(
            verbs(&prep, "add"),
            [
                "table cordon",
                "chain pol",
                "map disp4",
                "set nets4",
                "element nets4"
            ]
        );
        assert_eq!(verbs(&prep, "flush"), ["map disp4", "set nets4"]);
        assert_eq!(st.fill, [(0, 0)], "the map goes over netlink");
        let switch = commands(&st.switch);
        assert!(verbs(&switch, "add").contains(&"chain fwd".to_string()));
        assert!(verbs(&switch, "add")
            .iter()
            .all(|v| !v.starts_with("element")));
        assert!(verbs(&switch, "delete").is_empty());
        let cleanup = commands(&st.cleanup);
        assert_eq!(
            verbs(&cleanup, "delete"),
            ["map disp4", "set nets4", "chain pol"]
        );
    }

    /// Over a table that holds the sets, nothing is staged: the switch is
    /// the in-place transaction alone, element changes included.
    #[test]
    fn a_reinstall_stages_only_the_sets_that_are_new() {
        let old = ruleset();
        let mut new = ruleset();
        new.tables[0].sets[0].elements.push(Element {
            key: smallvec![Value::Net("172.17.0.3/32".parse().unwrap())],
            verdict: Some(crate::nft::Verdict::Jump("pol".into())),
        });
        new.tables[0]
            .sets
            .push(Set::new("fresh4", vec![KeyType::Ipv4], "new"));
        new.tables[0].sets[2].elements.push(Element {
            key: smallvec![Value::Net("172.17.0.9/32".parse().unwrap())],
            verdict: None,
        });
        let present = vec![(
            Family::Inet,
            "cordon".to_string(),
            Present::from_table(&old.tables[0]),
        )];
        let st = staged(&new, &present, &|_| true);
        assert_eq!(
            verbs(&commands(&st.prepare), "add"),
            ["table cordon", "set fresh4"]
        );
        assert_eq!(st.fill, [(0, 2)]);
        let switch = commands(&st.switch);
        let added: Vec<_> = switch
            .iter()
            .filter_map(|c| c["add"].get("element"))
            .collect();
        assert_eq!(added.len(), 1, "{added:?}");
        assert_eq!(added[0]["name"], "disp4", "only the old set's new element");
        // The in-place transaction with the fresh set counted complete.
        let mut after = present.clone();
        after[0]
            .2
            .sets
            .insert("fresh4".into(), set_shape(&new.tables[0].sets[2]));
        after[0].2.complete.insert("fresh4".into());
        assert_eq!(st.switch, transaction_text(&new, &after));
    }

    /// With no set over netlink, prepare and switch make one transaction:
    /// the fresh sets declared, flushed and filled, then the switch.
    #[test]
    fn a_small_install_is_one_transaction() {
        let st = staged(&ruleset(), &[], &|_| false);
        assert!(st.fill.is_empty());
        let one = commands(&st.one_transaction());
        let (prep, switch) = (commands(&st.prepare), commands(&st.switch));
        assert_eq!(one, [prep, switch].concat());
        assert!(verbs(&one, "add").contains(&"element disp4".to_string()));
    }
}
