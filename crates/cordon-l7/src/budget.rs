//! The proxy's share of the process's descriptors.
//!
//! The proxy runs inside the daemon, whose own work (netlink, Docker's
//! socket, the DNS proxy, `nft` children, the admin socket) needs
//! descriptors too, and `RLIMIT_NOFILE` bounds them all together. Hostile
//! containers, each within its per-container cap, could together hold
//! enough proxied connections to leave the daemon none. So the proxy takes
//! descriptors from a [`Budget`]: the soft limit less
//! [`crate::Limits::reserved_descriptors`]. A connection takes two (its two
//! sockets) when admitted, or is reset; a bulk flow's splice pipe takes two
//! more, or the flow keeps copying.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The descriptors left to the rest of the process by default (at most
/// half the limit).
pub const DEFAULT_RESERVE: usize = 1024;

/// Descriptors the proxy may hold at once, and those it holds.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
    most: AtomicUsize,
}

/// Descriptors taken from a [`Budget`], given back on drop.
#[derive(Debug)]
pub struct Taken {
    budget: Arc<Budget>,
    n: usize,
}

impl Budget {
    /// A budget of `limit` descriptors.
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            used: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
        })
    }

    /// No bound (for a relay outside the proxy, e.g. a benchmark's).
    pub fn unbounded() -> Arc<Budget> {
        Budget::new(usize::MAX)
    }

    /// The budget of this process: its soft `RLIMIT_NOFILE` less `reserved`
    /// (see [`crate::Limits::reserved_descriptors`]), or by default less
    /// [`DEFAULT_RESERVE`] or half the limit, whichever is smaller (a
    /// process limited to 1,024 descriptors gives the proxy 512); no bound
    /// when the limit is infinite or cannot be read.
    pub fn of_process(reserved: Option<usize>) -> Arc<Budget> {
        use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};
        match getrlimit(Resource::RLIMIT_NOFILE) {
            Ok((soft, _)) if soft != RLIM_INFINITY => {
                let soft = usize::try_from(soft).unwrap_or(usize::MAX);
                let reserved = reserved.unwrap_or(DEFAULT_RESERVE.min(soft / 2));
                Budget::new(soft.saturating_sub(reserved))
            }
            _ => Budget::unbounded(),
        }
    }

    /// Takes `n` descriptors, or None when that would exceed the budget.
    pub fn take(self: &Arc<Self>, n: usize) -> Option<Taken> {
        let before = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&u| u <= self.limit)
            })
            .ok()?;
        self.most.fetch_max(before + n, Ordering::AcqRel);
        Some(Taken {
            budget: self.clone(),
            n,
        })
    }

    /// The descriptors the budget allows.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The descriptors taken now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The most descriptors taken at once so far.
    pub fn most(&self) -> usize {
        self.most.load(Ordering::Acquire)
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.n, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_up_to_the_limit_and_gives_back_on_drop() {
        let b = Budget::new(5);
        let a = b.take(2).expect("2 of 5");
        let c = b.take(2).expect("4 of 5");
        assert!(b.take(2).is_none(), "6 of 5");
        assert_eq!(b.used(), 4, "a refused take takes nothing");
        let d = b.take(1).expect("5 of 5");
        drop(a);
        assert_eq!(b.used(), 3);
        let _e = b.take(2).expect("given back");
        drop((c, d));
        assert_eq!(b.used(), 2);
        assert_eq!(b.most(), 5);
    }

    #[test]
    fn the_process_budget_leaves_the_reserve_or_half_the_limit() {
        use nix::sys::resource::{getrlimit, Resource};
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        let soft = soft as usize;
        assert!(soft >= 200, "soft RLIMIT_NOFILE {soft}");
        assert_eq!(Budget::of_process(Some(100)).limit(), soft - 100);
        assert_eq!(Budget::of_process(Some(soft + 1)).limit(), 0);
        assert_eq!(
            Budget::of_process(None).limit(),
            soft - DEFAULT_RESERVE.min(soft / 2)
        );
    }
}
