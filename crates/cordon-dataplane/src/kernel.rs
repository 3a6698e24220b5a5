//! Reading cordon's tables back from the kernel, for reconciliation and
//! `cordon status`: which chains exist, their rules (with counters and log
//! prefixes), and every set's elements in the types of the desired
//! ruleset's sets, with their per-element counters.
//!
//! The kernel is read over netlink ([`crate::dump`]) into a
//! [`KernelTable`]; [`KernelTable::from_listing`] reads the same from
//! `nft -j list table` output (the reference the netlink reader is tested
//! against).

use cordon_ruleset::diff::{Observed, ObservedTable};
use cordon_ruleset::listing::{CountedElement, ListedRule};
use cordon_ruleset::nft::{Element, Family, KeyType, Ruleset, Table};
use cordon_ruleset::Listing;
use serde_json::Value as J;

use crate::error::NftError;

/// One set or map of a table as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KernelSet {
    /// Its name.
    pub name: String,
    /// True when every element counts its packets (`counter` on the set).
    pub counted: bool,
    /// Its declared size (`size N`), if any.
    pub size: Option<u32>,
    /// Its elements with their counters, in the key types asked for (an
    /// interval becomes the prefixes that cover it); empty when no key
    /// types were given for this set.
    pub elements: Vec<CountedElement>,
    /// When the reader compared the elements with the desired set's as
    /// bytes ([`crate::dump::read_table_compared`]): the kernel's elements
    /// not desired and the desired ones the kernel lacks (`elements` is
    /// then empty).
    pub unmatched: Option<(Vec<Element>, Vec<Element>)>,
}

/// One of cordon's tables as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KernelTable {
    /// Its chains' names.
    pub chains: Vec<String>,
    /// Its rules, chain by chain, in order.
    pub rules: Vec<ListedRule>,
    /// Its named sets and maps (not the anonymous sets inside rules).
    pub sets: Vec<KernelSet>,
}

/// The key types of a set by name, or `None` when its elements are not
/// wanted.
pub type Keys<'a> = &'a (dyn Fn(&str) -> Option<Vec<KeyType>> + Sync);

/// The key types of `desired`'s set of this name in the `family` table.
pub fn desired_keys(
    desired: &Ruleset,
    family: Family,
) -> impl Fn(&str) -> Option<Vec<KeyType>> + Sync + '_ {
    let want = desired.table(family);
    move |name| {
        want.and_then(|t| t.sets.iter().find(|d| d.name == name))
            .map(|d| d.key.clone())
    }
}

impl KernelTable {
    /// Reads `nft -j list table FAMILY NAME` output; elements in the key
    /// types `keys` gives (a range becomes the prefixes that cover it).
    pub fn from_listing(listing: &J, keys: Keys<'_>) -> Result<KernelTable, NftError> {
        let listing = Listing::parse(listing);
        let mut out = KernelTable {
            chains: listing.chains.iter().map(|c| c.name.clone()).collect(),
            rules: listing.rules.clone(),
            sets: Vec::new(),
        };
        for s in &listing.sets {
            let elements = match keys(&s.name) {
                Some(key) => s
                    .counted_elements(&key)
                    .map_err(|e| NftError::Output(e.to_string()))?,
                None => Vec::new(),
            };
            out.sets.push(KernelSet {
                name: s.name.clone(),
                counted: s.counted(),
                size: s.size(),
                elements,
                unmatched: None,
            });
        }
        Ok(out)
    }

    /// What [`cordon_ruleset::diff::against_kernel`] compares: chains with
    /// their rule counts, sets with their elements, counters and sizes.
    pub fn observed(&self) -> ObservedTable {
        let mut out = ObservedTable::default();
        for c in &self.chains {
            out.chains.entry(c.clone()).or_insert(0);
        }
        for r in &self.rules {
            *out.chains.entry(r.chain.clone()).or_insert(0) += 1;
        }
        for s in &self.sets {
            if s.counted {
                out.counted.insert(s.name.clone());
            }
            if let Some(n) = s.size {
                out.sizes.insert(s.name.clone(), n);
            }
            if let Some(u) = &s.unmatched {
                out.unmatched.insert(s.name.clone(), u.clone());
            }
            out.sets.insert(
                s.name.clone(),
                s.elements.iter().map(|e| e.element.clone()).collect(),
            );
        }
        out
    }

    /// [`KernelTable::observed`], consuming the table (no element copied).
    pub fn into_observed(self) -> ObservedTable {
        let mut out = ObservedTable::default();
        for c in self.chains {
            out.chains.entry(c).or_insert(0);
        }
        for r in self.rules {
            *out.chains.entry(r.chain).or_insert(0) += 1;
        }
        for s in self.sets {
            if s.counted {
                out.counted.insert(s.name.clone());
            }
            if let Some(n) = s.size {
                out.sizes.insert(s.name.clone(), n);
            }
            if let Some(u) = s.unmatched {
                out.unmatched.insert(s.name.clone(), u);
            }
            out.sets
                .insert(s.name, s.elements.into_iter().map(|e| e.element).collect());
        }
        out
    }
}

/// Parses `nft -j list table FAMILY NAME` output into what
/// [`cordon_ruleset::diff::against_kernel`] compares. Set elements are read
/// in the key types of `desired`'s set of the same name (a set the desired
/// ruleset does not have is recorded with no elements: its presence alone
/// makes the shapes differ). An interval listed as a range becomes the
/// prefixes that cover it.
pub fn parse_table(
    family: Family,
    listing: &J,
    desired: &Ruleset,
) -> Result<ObservedTable, NftError> {
    let keys = desired_keys(desired, family);
    Ok(KernelTable::from_listing(listing, &keys)?.into_observed())
}

/// Reads each of `desired`'s tables back from the kernel through `read`
/// (given the desired table), which returns `Ok(None)` for a table that
/// does not exist: [`observe`] for a reader that compares elements itself.
pub fn observe_compared(
    desired: &Ruleset,
    mut read: impl FnMut(&Table) -> Result<Option<KernelTable>, NftError>,
) -> Result<Observed, NftError> {
    let mut tables = Vec::new();
    for t in &desired.tables {
        if let Some(table) = read(t)? {
            tables.push((t.family, t.name.clone(), table.into_observed()));
        }
    }
    Ok(Observed { tables })
}

/// Reads each of `desired`'s tables back from the kernel through `read`,
/// which returns `Ok(None)` for a table that does not exist.
pub fn observe(
    desired: &Ruleset,
    mut read: impl FnMut(Family, &str, Keys<'_>) -> Result<Option<KernelTable>, NftError>,
) -> Result<Observed, NftError> {
    let mut tables = Vec::new();
    for t in &desired.tables {
        let keys = desired_keys(desired, t.family);
        if let Some(table) = read(t.family, &t.name, &keys)? {
            tables.push((t.family, t.name.clone(), table.into_observed()));
        }
    }
    Ok(Observed { tables })
}
