//! Incremental updates: what must change in the kernel to go from one
//! ruleset to another, or from what the kernel holds to what it should.
//!
//! The compiler keeps a ruleset's *shape* (tables, chains, rules, set
//! declarations) a function of the policy file alone; containers and
//! networks only ever add or remove set and map *elements*. So when two
//! rulesets have the same shape, the way from one to the other is a list of
//! element deletions and additions, applied in one transaction without
//! touching a rule, a counter or a connection. When the shapes differ (the
//! policy file changed, or someone edited cordon's chains) the tables are
//! replaced whole, which is atomic as well.
//!
//! Timeout sets are never diffed: their elements belong to the DNS proxy.
//!
//! Declared sizes ([`crate::size`]) are not part of the shape: an element
//! update keeps the sizes the kernel holds as long as the new elements fit
//! in them, and becomes a replacement (which declares the sets anew at
//! their new capacity) when they do not. [`keep_sizes`] and
//! [`keep_kernel_sizes`] give the desired ruleset the installed sizes after
//! an element update, so whoever keeps it as "installed" keeps the sizes
//! the kernel really holds.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value as J};

use crate::json;
use crate::nft::{Element, Family, Ruleset, Set, Table};
use crate::size;

/// The element changes of one named set or map.
#[derive(Debug, Clone, PartialEq)]
pub struct SetChange {
    /// The table's family.
    pub family: Family,
    /// The table's name.
    pub table: String,
    /// The set's name.
    pub set: String,
    /// Elements to delete (applied first).
    pub delete: Vec<Element>,
    /// Elements to add.
    pub add: Vec<Element>,
}

/// How to bring the kernel to the desired ruleset.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// Nothing to do.
    None,
    /// Element changes only, in one transaction.
    Elements(Vec<SetChange>),
    /// Replace cordon's tables whole, with the reason.
    Replace(String),
}

impl Update {
    /// True when nothing needs to change.
    pub fn is_none(&self) -> bool {
        matches!(self, Update::None)
    }
}

/// True when the two rulesets differ at most in set elements.
pub fn same_shape(a: &Ruleset, b: &Ruleset) -> bool {
    a.tables.len() == b.tables.len()
        && a.tables.iter().zip(&b.tables).all(|(x, y)| {
            x.family == y.family
                && x.name == y.name
                && x.chains == y.chains
                && x.sets.len() == y.sets.len()
                && x.sets.iter().zip(&y.sets).all(|(s, t)| set_decl_eq(s, t))
        })
}

fn set_decl_eq(s: &Set, t: &Set) -> bool {
    s.name == t.name
        && s.key == t.key
        && s.verdict_map == t.verdict_map
        && s.interval == t.interval
        && s.timeout == t.timeout
        && s.counter == t.counter
}

/// The way from ruleset `from` (installed) to ruleset `to` (desired).
/// Element changes when only elements differ and `to`'s elements fit in the
/// sizes `from`'s sets are declared with (`to`'s own sizes do not matter:
/// see [`keep_sizes`]); a replacement otherwise.
pub fn between(from: &Ruleset, to: &Ruleset) -> Update {
    if !same_shape(from, to) {
        return Update::Replace("the policy's shape changed".into());
    }
    for (a, b) in from.tables.iter().zip(&to.tables) {
        for (s, t) in a.sets.iter().zip(&b.sets) {
            if let Some(why) = outgrown(t, s.size) {
                return Update::Replace(why);
            }
        }
    }
    let mut changes = Vec::new();
    for (a, b) in from.tables.iter().zip(&to.tables) {
        for (s, t) in a.sets.iter().zip(&b.sets) {
            if let Some(c) = set_change(b, &t.name, t.timeout, &s.elements, &t.elements) {
                changes.push(c);
            }
        }
    }
    elements_or_none(changes)
}

/// Why `want`'s elements cannot go into a set declared with `size`, or
/// `None` when they fit.
fn outgrown(want: &Set, size: Option<u32>) -> Option<String> {
    match size {
        Some(n) if !size::fits(want, size) => Some(format!(
            "set {} grows past its size ({} elements, {n} at most)",
            want.name,
            want.elements.len()
        )),
        _ => None,
    }
}

/// Gives `desired`'s sets the sizes of the sets of the same table and name
/// in `installed` (none where `installed` declares none): after an element
/// update, `desired` is what the kernel holds, sizes included. A set
/// `installed` lacks keeps its own.
pub fn keep_sizes(desired: &mut Ruleset, installed: &Ruleset) {
    for t in &mut desired.tables {
        let Some(it) = installed
            .tables
            .iter()
            .find(|x| x.family == t.family && x.name == t.name)
        else {
            continue;
        };
        for s in &mut t.sets {
            if let Some(is) = it.sets.iter().find(|x| x.name == s.name) {
                s.size = is.size;
            }
        }
    }
}

/// [`keep_sizes`] from what the kernel holds: `desired`'s sets get the
/// sizes the kernel reports for them (none where it reports none).
pub fn keep_kernel_sizes(desired: &mut Ruleset, observed: &Observed) {
    for t in &mut desired.tables {
        let Some(o) = observed.table(t.family, &t.name) else {
            continue;
        };
        for s in &mut t.sets {
            if o.sets.contains_key(&s.name) {
                s.size = o.sizes.get(&s.name).copied();
            }
        }
    }
}

fn elements_or_none(changes: Vec<SetChange>) -> Update {
    if changes.is_empty() {
        Update::None
    } else {
        Update::Elements(changes)
    }
}

fn set_change(
    table: &Table,
    set: &str,
    timeout: bool,
    have: &[Element],
    want: &[Element],
) -> Option<SetChange> {
    if timeout || have == want {
        return None;
    }
    let want_set: FastSet<&Element> = want.iter().collect();
    // The kernel lists a set's elements in its own order and never twice:
    // as many elements, each wanted, is the same set.
    if have.len() == want.len() && have.iter().all(|e| want_set.contains(e)) {
        return None;
    }
    let have_set: FastSet<&Element> = have.iter().collect();
    // A map element whose verdict changes is deleted and added again (the
    // kernel matches deletions by key).
    let delete: Vec<Element> = have
        .iter()
        .filter(|e| !want_set.contains(e))
        .cloned()
        .collect();
    let add: Vec<Element> = want
        .iter()
        .filter(|e| !have_set.contains(e))
        .cloned()
        .collect();
    if delete.is_empty() && add.is_empty() {
        return None;
    }
    Some(SetChange {
        family: table.family,
        table: table.name.clone(),
        set: set.to_string(),
        delete,
        add,
    })
}

/// A hash set with foldhash's fast hasher: the element comparison of a
/// whole reconcile hashes every element of every set (265,000 at 10,000
/// containers), and the default SipHash cost a large share of it.
pub type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;

/// A hash map with foldhash's fast hasher (see [`FastSet`]).
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// What the kernel holds of one of cordon's tables, as read back by the
/// dataplane: enough to tell whether its shape is intact and which elements
/// differ.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObservedTable {
    /// Chain name → number of rules in it.
    pub chains: BTreeMap<String, usize>,
    /// Set name → its elements (in the key types of the desired set).
    pub sets: BTreeMap<String, Vec<Element>>,
    /// The sets declared with per-element counters.
    pub counted: std::collections::BTreeSet<String>,
    /// Set name → its declared size, for the sets declared with one.
    pub sizes: BTreeMap<String, u32>,
    /// Set name → the kernel's elements that are not among the desired
    /// set's, and the desired elements the kernel lacks, when the reader
    /// compared them itself (as key and verdict bytes, see the dataplane's
    /// `read_table_compared`); such a set's entry in `sets` is empty.
    pub unmatched: BTreeMap<String, (Vec<Element>, Vec<Element>)>,
}

/// What the kernel holds of cordon's tables, keyed by (family, name);
/// a missing table is absent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    /// The tables found.
    pub tables: Vec<(Family, String, ObservedTable)>,
}

impl Observed {
    fn table(&self, family: Family, name: &str) -> Option<&ObservedTable> {
        self.tables
            .iter()
            .find(|(f, n, _)| *f == family && n == name)
            .map(|(_, _, t)| t)
    }
}

/// The way from what the kernel holds to the desired ruleset: a
/// replacement when a table, chain, rule or set is missing or extra, when
/// a set's desired elements do not fit in the size the kernel declares it
/// with, or when a set that should have no size has one; otherwise the
/// element changes (which also repair deleted or added elements). A size
/// the kernel reports that the elements fit in is accepted, whatever
/// `desired` declares (see [`keep_kernel_sizes`]).
pub fn against_kernel(observed: &Observed, desired: &Ruleset) -> Update {
    let mut changes = Vec::new();
    for t in &desired.tables {
        let Some(o) = observed.table(t.family, &t.name) else {
            return Update::Replace(format!("table {} {} is missing", t.family.as_str(), t.name));
        };
        if o.chains.len() != t.chains.len() {
            return Update::Replace(format!(
                "table {} {} has {} chains, not {}",
                t.family.as_str(),
                t.name,
                o.chains.len(),
                t.chains.len()
            ));
        }
        for c in &t.chains {
            match o.chains.get(&c.name) {
                Some(n) if *n == c.rules.len() => {}
                Some(n) => {
                    return Update::Replace(format!(
                        "chain {} has {n} rules, not {}",
                        c.name,
                        c.rules.len()
                    ))
                }
                None => return Update::Replace(format!("chain {} is missing", c.name)),
            }
        }
        if o.sets.len() != t.sets.len() {
            return Update::Replace(format!(
                "table {} {} has {} sets, not {}",
                t.family.as_str(),
                t.name,
                o.sets.len(),
                t.sets.len()
            ));
        }
        for s in &t.sets {
            let Some(have) = o.sets.get(&s.name) else {
                return Update::Replace(format!("set {} is missing", s.name));
            };
            if s.counter && !o.counted.contains(&s.name) {
                // E.g. installed by a version without per-element counters.
                return Update::Replace(format!("set {} has no counters", s.name));
            }
            let declared = o.sizes.get(&s.name).copied();
            if let Some(why) = outgrown(s, declared) {
                return Update::Replace(why);
            }
            if let (Some(n), false) = (declared, size::sized(s)) {
                // A cap on a set cordon never caps (the DNS proxy's).
                return Update::Replace(format!("set {} is declared with size {n}", s.name));
            }
            // Elements already compared by the reader: only the unmatched
            // ones are left, and the change between them is the change.
            let change = match o.unmatched.get(&s.name) {
                Some((extra, missing)) => set_change(t, &s.name, s.timeout, extra, missing),
                None => set_change(t, &s.name, s.timeout, have, &s.elements),
            };
            if let Some(c) = change {
                changes.push(c);
            }
        }
    }
    elements_or_none(changes)
}

/// The element changes that bring the sets of `desired` that `observed`
/// holds to their desired elements, compared as [`against_kernel`]
/// compares them; sets `observed` lacks are left out. For a change known
/// to have touched only these sets' elements (nothing else is compared).
pub fn sets_against_kernel(observed: &ObservedTable, desired: &Table) -> Vec<SetChange> {
    desired
        .sets
        .iter()
        .filter_map(|s| {
            let have = observed.sets.get(&s.name)?;
            match observed.unmatched.get(&s.name) {
                Some((extra, missing)) => set_change(desired, &s.name, s.timeout, extra, missing),
                None => set_change(desired, &s.name, s.timeout, have, &s.elements),
            }
        })
        .collect()
}

/// The transaction for element changes: every deletion, then every
/// addition, so the kernel applies them whole or not at all.
pub fn transaction(changes: &[SetChange]) -> J {
    let mut cmds = Vec::new();
    for verb in ["delete", "add"] {
        for c in changes {
            let elems = if verb == "delete" { &c.delete } else { &c.add };
            if elems.is_empty() {
                continue;
            }
            cmds.push(json!({verb: {"element": {
                "family": c.family.as_str(),
                "table": c.table,
                "name": c.set,
                "elem": elems.iter().map(json::element).collect::<Vec<_>>(),
            }}}));
        }
    }
    json!({ "nftables": cmds })
}

/// How many elements the changes touch (for logs and metrics).
pub fn element_count(changes: &[SetChange]) -> usize {
    changes.iter().map(|c| c.delete.len() + c.add.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::{KeyType, Value, Verdict};
    use smallvec::smallvec;

    fn table(elements: Vec<Element>) -> Table {
        let mut s = Set::new("m4", vec![KeyType::Ipv4], "");
        s.verdict_map = true;
        s.elements = elements;
        Table {
            family: Family::Inet,
            name: "cordon".into(),
            chains: vec![],
            sets: vec![s],
        }
    }

    fn el(addr: &str, chain: &str) -> Element {
        Element {
            key: smallvec![Value::Net(addr.parse().unwrap())],
            verdict: Some(Verdict::Jump(chain.into())),
        }
    }

    #[test]
    fn the_kernels_order_is_no_change_and_a_swap_of_equal_size_is_seen() {
        let want = vec![
            el("10.0.0.1/32", "a"),
            el("10.0.0.2/32", "a"),
            el("10.0.0.3/32", "b"),
        ];
        let t = table(want.clone());
        let mut have = want.clone();
        have.reverse();
        assert_eq!(set_change(&t, "m4", false, &have, &want), None);
        // As many elements, one of them different (another verdict).
        have[0] = el("10.0.0.3/32", "a");
        let c = set_change(&t, "m4", false, &have, &want).expect("a change");
        assert_eq!(c.delete, vec![el("10.0.0.3/32", "a")]);
        assert_eq!(c.add, vec![el("10.0.0.3/32", "b")]);
    }

    /// A ruleset whose map holds `n` elements, sized by the policy.
    fn sized(n: u32) -> Ruleset {
        let elements = (0..n)
            .map(|i| {
                el(
                    &format!("10.{}.{}.{}/32", i >> 16, (i >> 8) & 255, i & 255),
                    "a",
                )
            })
            .collect();
        let mut r = Ruleset {
            tables: vec![table(elements)],
        };
        size::declare(&mut r);
        r
    }

    #[test]
    fn growing_past_the_installed_size_is_a_replacement_naming_the_set() {
        let installed = sized(100);
        assert_eq!(installed.tables[0].sets[0].size, Some(384));
        let grown = sized(385);
        match between(&installed, &grown) {
            Update::Replace(why) => {
                assert!(why.contains("set m4") && why.contains("384"), "{why}")
            }
            other => panic!("expected a replacement, got {other:?}"),
        }
        // Up to the size itself, element changes.
        assert!(matches!(
            between(&installed, &sized(384)),
            Update::Elements(_)
        ));
    }

    #[test]
    fn growing_or_shrinking_within_the_installed_size_keeps_it() {
        // Installed at 300 elements: size 768.
        let installed = sized(300);
        assert_eq!(installed.tables[0].sets[0].size, Some(768));
        // 120 elements would be compiled at 384, 700 at 1536: neither
        // replaces, and the kept sizes are the installed ones.
        for n in [120, 700] {
            let mut want = sized(n);
            assert_ne!(want.tables[0].sets[0].size, Some(768));
            let Update::Elements(c) = between(&installed, &want) else {
                panic!("{n} elements fit in 768: element changes expected");
            };
            assert_eq!(c[0].set, "m4");
            keep_sizes(&mut want, &installed);
            assert_eq!(want.tables[0].sets[0].size, Some(768));
            // From there, back and forth around the boundary at 256
            // elements changes nothing but elements.
            for m in [257, 256, 257] {
                assert!(matches!(between(&want, &sized(m)), Update::Elements(_)));
            }
        }
    }

    fn observed_of(r: &Ruleset, size: Option<u32>) -> Observed {
        let t = &r.tables[0];
        let mut o = ObservedTable::default();
        for s in &t.sets {
            o.sets.insert(s.name.clone(), s.elements.clone());
            if let Some(n) = size {
                o.sizes.insert(s.name.clone(), n);
            }
        }
        Observed {
            tables: vec![(t.family, t.name.clone(), o)],
        }
    }

    #[test]
    fn the_kernels_size_is_accepted_when_the_elements_fit() {
        let want = sized(300);
        assert_eq!(want.tables[0].sets[0].size, Some(768));
        // The kernel holds the same elements in a set of another size.
        for kernel in [Some(300), Some(4096), None] {
            let seen = observed_of(&want, kernel);
            assert_eq!(against_kernel(&seen, &want), Update::None, "{kernel:?}");
            let mut kept = want.clone();
            keep_kernel_sizes(&mut kept, &seen);
            assert_eq!(kept.tables[0].sets[0].size, kernel);
        }
        let seen = observed_of(&sized(10), Some(299));
        match against_kernel(&seen, &want) {
            Update::Replace(why) => assert!(why.contains("set m4"), "{why}"),
            other => panic!("300 elements do not fit in 299: {other:?}"),
        }
        // A timeout set the kernel caps is not what cordon declares.
        let mut dns = want.clone();
        dns.tables[0].sets[0].timeout = true;
        size::declare(&mut dns);
        let seen = observed_of(&dns, Some(4096));
        assert!(matches!(against_kernel(&seen, &dns), Update::Replace(_)));
    }
}
