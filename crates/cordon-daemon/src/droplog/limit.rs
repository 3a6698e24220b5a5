//! The rate limit of the events shown: a token bucket per container.
//! What a bucket holds back is counted; the count rides on the
//! container's next event shown, or on a summary (its last held event)
//! once the bucket has refilled.

use std::collections::HashMap;
use std::time::Instant;

use super::event::Event;

/// Events a container may show per second, on average.
pub const RATE_PER_SEC: f64 = 10.0;
/// Events a container may show in a burst.
pub const BURST: f64 = 20.0;

/// A container's token bucket.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    at: Instant,
    suppressed: u64,
    /// The last suppressed event, the template of a summary.
    held: Option<Event>,
}

impl Bucket {
    /// A full bucket, as of `now`.
    fn full(now: Instant) -> Bucket {
        Bucket {
            tokens: BURST,
            at: now,
            suppressed: 0,
            held: None,
        }
    }

    /// Adds the tokens earned since the last refill, up to [`BURST`].
    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at);
        self.tokens = (self.tokens + dt.as_secs_f64() * RATE_PER_SEC).min(BURST);
        self.at = now;
    }
}

/// The buckets of the containers seen lately (full idle buckets are
/// forgotten).
#[derive(Debug, Default)]
pub(super) struct Limiter {
    buckets: HashMap<String, Bucket>,
}

impl Limiter {
    /// `e`, an event of `who` logged at `now`, when `who`'s bucket has a
    /// token, carrying the count held back before it; `None` when it is
    /// held back (then it is the template of the next summary).
    pub(super) fn admit(&mut self, who: String, mut e: Event, now: Instant) -> Option<Event> {
        let b = self.buckets.entry(who).or_insert_with(|| Bucket::full(now));
        b.refill(now);
        if b.tokens < 1.0 {
            b.suppressed += 1;
            b.held = Some(e);
            return None;
        }
        b.tokens -= 1.0;
        e.suppressed = std::mem::take(&mut b.suppressed);
        b.held = None;
        Some(e)
    }

    /// Summaries for containers whose suppressed events were not reported
    /// yet and whose bucket has refilled: the last held event, carrying the
    /// count.
    pub(super) fn due(&mut self, now: Instant) -> Vec<Event> {
        let mut out = Vec::new();
        for b in self.buckets.values_mut() {
            b.refill(now);
            if b.suppressed > 0 && b.tokens >= 1.0 {
                if let Some(mut e) = b.held.take() {
                    b.tokens -= 1.0;
                    // The held event itself was counted as suppressed.
                    e.suppressed = std::mem::take(&mut b.suppressed) - 1;
                    out.push(e);
                }
            }
        }
        // Idle full buckets are forgotten.
        self.buckets
            .retain(|_, b| b.suppressed > 0 || b.tokens < BURST);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::droplog::event;
    use crate::droplog::fixtures::{dir, logged, v4_tcp};

    /// Each container has its own bucket: one container's flood does not
    /// hold back another's events, and an idle full bucket is forgotten.
    #[test]
    fn buckets_are_per_container() {
        let d = dir();
        let e = event(
            &logged(
                "cordon egress web drop ",
                v4_tcp([172, 20, 0, 2], [198, 51, 100, 2], 80),
            ),
            &d,
            |_| None,
            SystemTime::now(),
        )
        .unwrap();
        let mut l = Limiter::default();
        let t0 = Instant::now();
        let passed = (0..50)
            .filter(|_| l.admit("a".into(), e.clone(), t0).is_some())
            .count();
        assert_eq!(passed, BURST as usize);
        // Another container still has its whole burst.
        assert!(l.admit("b".into(), e.clone(), t0).is_some());
        // Once refilled, `a`'s summary carries what it held back.
        let due = l.due(t0 + Duration::from_secs(5));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].suppressed, 29);
        // Both buckets are full again and idle: forgotten.
        l.due(t0 + Duration::from_secs(10));
        assert!(l.buckets.is_empty());
    }
}
