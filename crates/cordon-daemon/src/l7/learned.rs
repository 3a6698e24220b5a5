//! Which addresses the DNS proxy learned for which rule, and until when:
//! the second half of a server-name rule's check (the connection's
//! destination must have been learned for a name of the rule whose name
//! the connection presents).
//!
//! The DNS proxy notes every address it lets through for a rule
//! ([`Learned::note`]); the L7 proxy's decider asks ([`Learned::holds`]).
//! Entries are keyed by the rule's set and its names ([`Learned::key`]),
//! so that after a reload a rule at the same place with other names starts
//! empty. They live for the answer's lifetime, across reloads and
//! replacements of the tables, as the kernel's DNS sets do when their
//! declarations stay the same. A set the kernel created anew (empty) is
//! harmless here: a connection is redirected to the proxy only when its
//! destination is in one of its policy's server-name sets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use cordon_dns::allow::DnsRule;

/// Keys kept before expired entries are swept.
const SWEEP_AT: usize = 65_536;

/// rule key → address → until when.
type Table = HashMap<String, HashMap<IpAddr, Instant>>;

/// The learned addresses per rule, shared by the DNS and L7 proxies.
#[derive(Default)]
pub struct Learned {
    /// The table and how many addresses it holds.
    inner: Mutex<(Table, usize)>,
}

impl Learned {
    /// The key of `rule`'s addresses of family `fam` (4 or 6): its set and
    /// its names.
    pub fn key(rule: &DnsRule, fam: u8) -> String {
        let (v4, v6) = rule.sets();
        let names: Vec<String> = rule.patterns.iter().map(|p| p.to_string()).collect();
        format!("{} {}", if fam == 4 { v4 } else { v6 }, names.join(","))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Table, usize)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `addrs` were let through for `rule` until `until` (an address keeps
    /// the latest of its lifetimes).
    pub fn note(&self, rule: &DnsRule, addrs: &[IpAddr], until: Instant) {
        let mut g = self.lock();
        let (table, count) = &mut *g;
        if *count > SWEEP_AT {
            let now = Instant::now();
            for m in table.values_mut() {
                m.retain(|_, t| *t > now);
            }
            table.retain(|_, m| !m.is_empty());
            *count = table.values().map(HashMap::len).sum();
        }
        for a in addrs {
            let fam = if a.is_ipv4() { 4 } else { 6 };
            let m = table.entry(Learned::key(rule, fam)).or_default();
            let t = m.entry(*a).or_insert_with(|| {
                *count += 1;
                until
            });
            *t = (*t).max(until);
        }
    }

    /// True when `addr` is learned for `rule` now.
    pub fn holds(&self, rule: &DnsRule, addr: IpAddr) -> bool {
        let fam = if addr.is_ipv4() { 4 } else { 6 };
        let now = Instant::now();
        self.lock()
            .0
            .get(&Learned::key(rule, fam))
            .and_then(|m| m.get(&addr))
            .is_some_and(|t| *t > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_dns::allow::Pattern;
    use cordon_ruleset::PolicyKey;
    use std::time::Duration;

    fn rule(idx: usize, name: &str) -> DnsRule {
        DnsRule {
            policy: PolicyKey::Named("web".into()),
            rule: idx,
            patterns: vec![Pattern::Exact(name.into())],
            scope: Default::default(),
            server_name: true,
        }
    }

    #[test]
    fn an_address_is_held_for_its_rule_until_it_expires() {
        let l = Learned::default();
        let a: IpAddr = "198.51.100.9".parse().unwrap();
        let b: IpAddr = "2001:db8::9".parse().unwrap();
        let (r0, r1) = (rule(0, "a.example.com"), rule(1, "b.example.com"));
        let soon = Instant::now() + Duration::from_millis(40);
        l.note(&r0, &[a, b], soon);
        assert!(l.holds(&r0, a) && l.holds(&r0, b));
        assert!(!l.holds(&r1, a), "learned for another rule");
        // The same place with other names after a reload: not held.
        assert!(!l.holds(&rule(0, "c.example.com"), a));
        // A later lifetime wins over an earlier one.
        l.note(&r0, &[a], Instant::now() + Duration::from_secs(60));
        l.note(&r0, &[a], soon);
        std::thread::sleep(Duration::from_millis(60));
        assert!(l.holds(&r0, a));
        assert!(!l.holds(&r0, b), "expired");
    }
}
