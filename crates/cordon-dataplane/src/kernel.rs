//! Reading cordon's tables back from the kernel, for reconciliation: which
//! chains exist with how many rules, and every set's elements, in the types
//! of the desired ruleset's sets (read by [`cordon_ruleset::listing`]).

use cordon_ruleset::diff::{Observed, ObservedTable};
use cordon_ruleset::nft::{Family, Ruleset};
use cordon_ruleset::Listing;
use serde_json::Value as J;

use crate::error::NftError;

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
    let want = desired.tables.iter().find(|t| t.family == family);
    let listing = Listing::parse(listing);
    let mut out = ObservedTable::default();
    for c in &listing.chains {
        out.chains.entry(c.name.clone()).or_insert(0);
    }
    for r in &listing.rules {
        *out.chains.entry(r.chain.clone()).or_insert(0) += 1;
    }
    for s in &listing.sets {
        let key = want
            .and_then(|t| t.sets.iter().find(|d| d.name == s.name))
            .map(|d| d.key.clone());
        let elems = match key {
            Some(key) => s
                .elements(&key)
                .map_err(|e| NftError::Output(e.to_string()))?,
            None => Vec::new(),
        };
        if s.counted() {
            out.counted.insert(s.name.clone());
        }
        out.sets.insert(s.name.clone(), elems);
    }
    Ok(out)
}

/// Reads each of `desired`'s tables back from the kernel through `list`,
/// which returns `Ok(None)` for a table that does not exist.
pub fn observe(
    desired: &Ruleset,
    mut list: impl FnMut(Family, &str) -> Result<Option<J>, NftError>,
) -> Result<Observed, NftError> {
    let mut tables = Vec::new();
    for t in &desired.tables {
        if let Some(listing) = list(t.family, &t.name)? {
            tables.push((
                t.family,
                t.name.clone(),
                parse_table(t.family, &listing, desired)?,
            ));
        }
    }
    Ok(Observed { tables })
}
