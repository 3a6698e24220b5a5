//! How large cordon declares its sets: the one sizing policy.
//!
//! A set or map declared without a size gets the kernel's resizable hash
//! table (rhashtable), which grows and rehashes as elements come in; one
//! declared with `size N` gets a fixed hash table (`nft_hash`, or
//! `nft_hash_fast` for 4-byte keys) whose buckets are allocated once, at
//! `roundup_pow_of_two(N × 4/3)` pointers. Measured on kernel 6.18, adding
//! 100,000 elements in one transaction took the kernel 2 to 3 times less
//! system time with a size (plain address sets, concatenated
//! `ifname . ether_addr . ipv4_addr` sets and verdict maps alike), which
//! is most of an install at 10,000 containers. A lookup in the fixed table
//! is a hash and a walk of one short bucket chain, never slower than in the
//! resizable one.
//!
//! The price is a hard cap: the kernel refuses an element that would put
//! the set above its size (`ENFILE`). So:
//!
//! - Every set or map that holds inventory-sized elements, neither
//!   `interval` nor `timeout`, gets [`capacity`] of its element count when
//!   the ruleset is compiled, and therefore at every whole install. Interval
//!   sets (network subnets, named sets) use other backends, and timeout
//!   sets are filled by the DNS proxy at run time: neither gets a size.
//! - An element update (a container coming or going) keeps the sizes the
//!   kernel holds as long as the new elements fit, even when [`capacity`]
//!   of the new count differs, so containers coming and going around a
//!   boundary never force a replacement; an update that would not fit
//!   becomes a whole replacement, which declares the sets anew at their new
//!   capacity ([`crate::diff::between`], [`crate::diff::against_kernel`]).
//!
//! [`capacity`] is the next power of two at or above twice the count, and
//! at least [`FLOOR`]: a set can double after an install before it must be
//! replaced, so replacements come geometrically rarely (at 2n, 4n, ...
//! elements), and a small host never replaces for growth below 256
//! elements per set.
//!
//! Memory: a size `N` (a power of two) costs the kernel
//! `roundup_pow_of_two(N × 4/3) = 2N` bucket pointers, `16 × N` bytes, so
//! 32 to 64 bytes per element (besides the elements themselves, which cost
//! the same with either table). At the floor, 512 pointers, 4 KiB per set.
//! cordon's compiled ruleset has 26 sized sets, so at 10 containers the
//! buckets take 104 KiB; at 10,000 containers (265,000 elements in the
//! bench's inventory) about 8.2 MiB, against about 2.8 MiB for the
//! resizable tables' buckets.

use crate::nft::{Ruleset, Set};

/// The smallest size declared: 256 elements (4 KiB of buckets).
pub const FLOOR: u32 = 256;

/// The size declared for a set of `elements` elements: the next power of
/// two at or above twice that, at least [`FLOOR`] (at most 2^31).
pub fn capacity(elements: usize) -> u32 {
    let want = (elements as u64).saturating_mul(2).max(FLOOR as u64);
    want.checked_next_power_of_two()
        .unwrap_or(1 << 31)
        .min(1 << 31) as u32
}

/// True for the sets that get a size: neither `interval` nor `timeout`.
pub fn sized(s: &Set) -> bool {
    !s.interval && !s.timeout
}

/// Declares every set's size by the policy above: [`capacity`] of its
/// elements for the [`sized`] ones, none for the others. The compiler calls
/// this on every ruleset it produces.
pub fn declare(ruleset: &mut Ruleset) {
    for t in &mut ruleset.tables {
        for s in &mut t.sets {
            s.size = sized(s).then(|| capacity(s.elements.len()));
        }
    }
}

/// True when `s`'s elements fit in a set of its name declared with `size`
/// (`None`: no cap).
pub fn fits(s: &Set, size: Option<u32>) -> bool {
    size.is_none_or(|n| s.elements.len() as u64 <= u64::from(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::{Element, Family, KeyType, Table, Value};

    #[test]
    fn capacity_is_twice_rounded_up_to_a_power_of_two_with_a_floor() {
        assert_eq!(capacity(0), 256);
        assert_eq!(capacity(10), 256);
        assert_eq!(capacity(128), 256);
        assert_eq!(capacity(129), 512);
        assert_eq!(capacity(10_000), 32_768);
        assert_eq!(capacity(16_384), 32_768);
        assert_eq!(capacity(16_385), 65_536);
        assert_eq!(capacity(usize::MAX), 1 << 31);
        for n in [0, 1, 127, 128, 129, 1000, 65_536, 100_000] {
            let c = capacity(n);
            assert!(c.is_power_of_two() && c as usize >= 2 * n && c >= FLOOR);
        }
    }

    #[test]
    fn only_plain_sets_and_maps_get_a_size() {
        let mut plain = Set::new("p", vec![KeyType::Ipv4], "");
        plain.elements = (0..300)
            .map(|i| Element {
                key: vec![Value::Mark(i)],
                verdict: None,
            })
            .collect();
        let mut interval = Set::new("i", vec![KeyType::Ipv4], "");
        interval.interval = true;
        let mut timeout = Set::new("t", vec![KeyType::Ipv4], "");
        timeout.timeout = true;
        timeout.size = Some(7);
        let mut r = Ruleset {
            tables: vec![Table {
                family: Family::Inet,
                name: "cordon".into(),
                sets: vec![plain, interval, timeout],
                chains: vec![],
            }],
        };
        declare(&mut r);
        let sizes: Vec<_> = r.tables[0].sets.iter().map(|s| s.size).collect();
        assert_eq!(sizes, [Some(1024), None, None]);
        assert!(fits(&r.tables[0].sets[0], Some(300)));
        assert!(!fits(&r.tables[0].sets[0], Some(299)));
        assert!(fits(&r.tables[0].sets[0], None));
    }
}
