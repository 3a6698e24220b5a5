//! How large cordon declares its sets: the one sizing policy.
//!
//! A set or map declared without a size gets the kernel's resizable hash
//! table (rhashtable), which grows and rehashes as elements come in; one
//! declared with `size N` gets a fixed hash table (`nft_hash`, or
//! `nft_hash_fast` for 4-byte keys) whose buckets are allocated once, at
//! `roundup_pow_of_two(N × 4/3)` pointers. Measured on kernel 6.18, adding
//! 100,000 elements with one `nft -f` took the kernel 2 to 3 times less
//! system time with a size (plain address sets, concatenated
//! `ifname . ether_addr . ipv4_addr` sets and verdict maps alike), and the
//! netlink fill of an install at 10,000 containers, almost all kernel
//! inserts, took about half the kernel time (docs/benchmarks.md). A lookup in the fixed table is a hash and
//! a walk of one bucket's short chain, as in the resizable one.
//!
//! The price is a hard cap: the kernel refuses an element that would put
//! the set above its size (`ENFILE`). So:
//!
//! - Every set or map that is neither `interval` nor `timeout` gets [`capacity`] of its element count when
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
//! [`capacity`] of `n` elements is three quarters of [`buckets`], the
//! next power of two at or above `2n` (at least 512): the largest size for
//! which the kernel allocates exactly that many buckets (it allocates
//! `roundup_pow_of_two(size × 4/3)`). So a freshly installed set is at
//! most half full (a lookup walks a chain of less than one element on
//! average) and can grow to at least 1.5 times its elements, 0.75 of its
//! buckets, before it must be replaced: replacements come geometrically
//! rarely, and a small host never replaces for growth below 384 elements
//! per set.
//!
//! Memory: the buckets are 8-byte pointers, so 16 to 32 bytes per element
//! installed (besides the elements themselves, which cost the same in
//! either table), about twice the resizable table's (which keeps between
//! 4/3 and 8/3 buckets per element). At the floor, 512 buckets, 4 KiB per
//! set: the benchmarks' policy compiles 39 sized sets, 156 KiB at 10
//! containers. At 10,000 containers (265,000 elements) its sized sets
//! have 872,448 buckets, 6.7 MiB, against about 3.3 MiB for the resizable
//! tables' buckets.

use crate::nft::{Ruleset, Set};

/// The fewest buckets a sized set gets: 512 (4 KiB), a size of 384.
pub const FLOOR_BUCKETS: u32 = 512;

/// The largest bucket count [`buckets`] gives: 2^31.
const MAX_BUCKETS: u64 = 1 << 31;

/// The buckets the kernel's fixed hash should have for `elements`
/// elements: the next power of two at or above twice that, at least
/// [`FLOOR_BUCKETS`] (at most 2^31).
pub fn buckets(elements: usize) -> u32 {
    let want = (elements as u64)
        .saturating_mul(2)
        .max(u64::from(FLOOR_BUCKETS));
    want.checked_next_power_of_two()
        .unwrap_or(MAX_BUCKETS)
        .min(MAX_BUCKETS) as u32
}

/// The size declared for a set of `elements` elements: three quarters of
/// [`buckets`], the largest size the kernel gives exactly that many
/// buckets, and at least 1.5 times `elements`.
pub fn capacity(elements: usize) -> u32 {
    buckets(elements) / 4 * 3
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

    /// The buckets the kernel allocates for a size (`nft_hash_buckets`).
    fn kernel_buckets(size: u32) -> u64 {
        (u64::from(size) * 4 / 3).next_power_of_two()
    }

    #[test]
    fn capacity_is_three_quarters_of_twice_the_elements_rounded_up() {
        assert_eq!(capacity(0), 384);
        assert_eq!(capacity(10), 384);
        assert_eq!(capacity(256), 384);
        assert_eq!(capacity(257), 768);
        assert_eq!(capacity(10_000), 24_576);
        assert_eq!(capacity(16_384), 24_576);
        assert_eq!(capacity(16_385), 49_152);
        assert_eq!(capacity(usize::MAX), 3 << 29);
        for n in [0, 1, 127, 128, 129, 256, 257, 1000, 65_536, 100_000] {
            let c = capacity(n);
            // Room to grow by half, and the kernel allocates exactly the
            // buckets meant: at most half full when installed.
            assert!(u64::from(c) * 2 >= 3 * n as u64, "{n}: {c}");
            assert_eq!(kernel_buckets(c), u64::from(buckets(n)), "{n}");
            assert!(u64::from(buckets(n)) >= 2 * n as u64);
            assert!(buckets(n) >= FLOOR_BUCKETS && buckets(n).is_power_of_two());
        }
    }

    #[test]
    fn only_plain_sets_and_maps_get_a_size() {
        let mut plain = Set::new("p", vec![KeyType::Ipv4], "");
        plain.elements = (0..300)
            .map(|i| Element {
                key: crate::nft::smallvec![Value::Mark(i)],
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
        assert_eq!(sizes, [Some(768), None, None]);
        assert!(fits(&r.tables[0].sets[0], Some(300)));
        assert!(!fits(&r.tables[0].sets[0], Some(299)));
        assert!(fits(&r.tables[0].sets[0], None));
    }
}
