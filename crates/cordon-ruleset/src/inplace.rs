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

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Value as J};

use crate::json::{chain_shape, element, render_text, set_shape};
use crate::listing::Listing;
use crate::nft::{Element, Family, Ruleset, Table};

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
                "comment": b["comment"].as_str().unwrap_or_default(),
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
    let mut kept: HashMap<(&str, &str, &str), HashSet<&Element>> = HashMap::new();
    for t in &ruleset.tables {
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
        for s in &t.sets {
            if p.sets.get(&s.name) != Some(&set_shape(s)) {
                continue;
            }
            let have: &[Element] = p.elements.get(&s.name).map_or(&[], Vec::as_slice);
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
                (t.family.as_str(), t.name.as_str(), s.name.as_str()),
                have.iter()
                    .filter(|e| s.timeout || want.contains(e))
                    .collect(),
            );
        }
        for (name, shape) in &p.sets {
            if !kept.contains_key(&(t.family.as_str(), t.name.as_str(), name.as_str())) {
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
    render_text(head, ruleset, &|t, s, e| {
        kept.get(&(t.family.as_str(), t.name.as_str(), s.name.as_str()))
            .is_none_or(|have| !have.contains(e))
    })
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

    fn ruleset() -> Ruleset {
        let mut vmap = Set::new("disp4", vec![KeyType::Ipv4], "address → chain");
        vmap.verdict_map = true;
        vmap.counter = true;
        vmap.elements.push(Element {
            key: vec![Value::Net("172.17.0.2/32".parse().unwrap())],
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
                "map": "verdict", "stmt": [{"counter": null}]}}),
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
            key: vec![Value::Net(a.parse().unwrap())],
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
            key: vec![Value::Net("198.51.100.7/32".parse().unwrap())],
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
}
