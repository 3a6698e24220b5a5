//! The daemon's state and the one way it changes the kernel.
//!
//! The engine holds the policy, the inventory as Docker last reported it,
//! and the ruleset it last installed (or verified) in the kernel. Every
//! change, whatever caused it (a Docker event, a `cordon set`, a tampered
//! table), goes through [`Engine::sync`] or [`Engine::reconcile`]:
//! compile the desired ruleset (a pure function), compute the way from the
//! installed ruleset (or from what the kernel holds) to it, and apply that
//! in one transaction: element changes when only containers, networks or
//! named sets changed, a whole replacement otherwise. A failed transaction
//! changes nothing and the previous ruleset stays in force.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Instant;

use cordon_compiler::{compile, Compiled, SetOverrides};
use cordon_dataplane::{install_whole, InForce, Nft, StateDir};
use cordon_inventory::{Container, Inventory};
use cordon_policy::PolicyFile;
use cordon_ruleset::diff::{self, Update};
use cordon_ruleset::nft::{Family, Ruleset, Set, Table};
use tracing::{debug, info, warn};

use crate::{boot, DaemonError};

/// Counters of what the engine did, for `cordon status` and logs.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Element-change transactions applied.
    pub element_updates: u64,
    /// Whole replacements applied.
    pub replacements: u64,
    /// Reconciliations run (periodic or after a foreign change).
    pub reconciles: u64,
    /// Reconciliations that found the kernel different and repaired it.
    pub repairs: u64,
    /// Tracked connections ended after repairs because the policy does
    /// not allow them (they were opened while the tables were gone).
    #[serde(default)]
    pub connections_ended: u64,
    /// Reconciliations that read only the sets a foreign change touched
    /// (the nftables monitor saw it change only their elements).
    #[serde(default)]
    pub targeted: u64,
    /// Reconciliations that read cordon's tables whole.
    #[serde(default)]
    pub whole: u64,
    /// Periodic checks that compared nothing because the nftables monitor
    /// had accounted for every commit since the last one.
    #[serde(default)]
    pub accounted: u64,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// The most periodic checks in a row that may rely on the nftables
/// monitor ([`Engine::reconcile_if_committed`]) while commits keep
/// happening: the next one compares whole. A safety net, so a monitor
/// that misses something without noticing (a notification the kernel
/// never sent, a foreign process given a recycled pid of ours) cannot
/// leave drift in place for longer than 30 periods: 5 minutes at the
/// default 10 s, for one whole comparison (about 250 ms of CPU at 10,000
/// containers), less than 0.1 % of a core. With no commit at all since
/// the last whole comparison, nothing is compared, as before.
pub const SAFETY_EVERY: u32 = 30;

/// How long a periodic check waits for the monitor to process the batch
/// that made the kernel's current generation before comparing whole: the
/// monitor's thread reads a batch within microseconds of its commit, so
/// this only covers a commit made just before the check.
const CATCH_UP: std::time::Duration = std::time::Duration::from_millis(20);

/// What one sync did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The kernel already held the desired ruleset.
    Unchanged,
    /// This many elements were changed.
    Elements(usize),
    /// The tables were replaced, for this reason.
    Replaced(String),
}

/// The daemon's state.
pub struct Engine {
    policy: PolicyFile,
    in_force: Option<InForce>,
    recorded: Option<String>,
    inventory: Inventory,
    state: StateDir,
    nft: Nft,
    /// True when the kernel holds `compiled`'s ruleset as the engine
    /// installed it (not kept twice: the installed ruleset is
    /// `compiled.ruleset`).
    trusted: bool,
    compiled: Option<Compiled>,
    boot_networks: Option<Vec<cordon_inventory::Network>>,
    overrides: Option<SetOverrides>,
    clients: Option<crate::dns::Clients>,
    generation: crate::dns::Generation,
    /// True when the policy, inventory or live sets changed since the last
    /// compile: the next reconcile compiles again instead of reusing
    /// `compiled`.
    dirty: bool,
    /// The kernel's nftables generation id read just before the last
    /// reconcile that found the kernel equal to `compiled`: while it has
    /// not moved (nothing was committed since) and nothing is `dirty`, a
    /// periodic reconcile lists nothing.
    verified_generation: Option<u32>,
    /// What the nftables monitor saw, when the engine follows it
    /// ([`Engine::follow`]).
    watch: Option<std::sync::Arc<crate::watch::Watched>>,
    /// Periodic checks answered by the monitor since the last whole
    /// comparison.
    since_whole: u32,
    /// A reported foreign change was taken but its repair failed: until a
    /// whole reconcile succeeds, the monitor's account is not enough.
    unsettled: bool,
    /// What the engine did so far.
    pub stats: Stats,
}

impl Engine {
    /// An engine for `policy` that installs into `nft` and keeps its state
    /// in `state`. Nothing is read or installed until the first sync.
    pub fn new(policy: PolicyFile, nft: Nft, state: StateDir) -> Self {
        Engine {
            policy,
            in_force: None,
            recorded: None,
            inventory: Inventory::default(),
            state,
            nft,
            trusted: false,
            compiled: None,
            boot_networks: None,
            overrides: None,
            clients: None,
            generation: Default::default(),
            dirty: true,
            verified_generation: None,
            watch: None,
            since_whole: 0,
            unsettled: false,
            stats: Stats::default(),
        }
    }

    /// Keeps `clients` (container address → policy key, for the DNS
    /// proxy) current from now on.
    pub fn share_clients(&mut self, clients: crate::dns::Clients) {
        self.clients = Some(clients);
        self.publish_clients();
    }

    /// Follows the nftables monitor's account ([`crate::watch::start`],
    /// subscribed before this call): foreign changes are repaired by
    /// [`Engine::repair_reported`], and the periodic check compares
    /// nothing while the monitor accounts for every commit. What was
    /// installed is forgotten, so trust is rebuilt from a comparison made
    /// while the monitor listens.
    pub fn follow(&mut self, watch: std::sync::Arc<crate::watch::Watched>) {
        self.watch = Some(watch);
        self.forget_installed();
    }

    /// Counts whole replacements (shared with the DNS proxy).
    pub fn generation(&self) -> crate::dns::Generation {
        self.generation.clone()
    }

    fn publish_clients(&self) {
        let (Some(shared), Some(c)) = (&self.clients, &self.compiled) else {
            return;
        };
        let map = crate::directory::Directory::build(&c.assignments, &self.inventory);
        if let Ok(mut w) = shared.write() {
            *w = map;
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &PolicyFile {
        &self.policy
    }

    /// Where the policy in force came from (its path and content), which
    /// the engine records in the state directory once it is installed.
    pub fn set_in_force(&mut self, in_force: InForce) {
        self.in_force = Some(in_force);
    }

    /// The record of the policy in force, if the engine was given one.
    pub fn in_force(&self) -> Option<&InForce> {
        self.in_force.as_ref()
    }

    /// Puts `policy` (read from `in_force`) in force: the new ruleset goes
    /// in as one transaction, live set edits kept, and the tracked
    /// connections the new policy does not allow are ended. When the
    /// kernel refuses it, the previous policy stays in force, in the
    /// engine and in the kernel.
    ///
    /// Before the first sync (Docker not listed yet) the policy is only
    /// taken: the first sync installs it.
    pub fn reload(
        &mut self,
        policy: PolicyFile,
        in_force: InForce,
    ) -> Result<Outcome, DaemonError> {
        if self.compiled.is_none() {
            self.policy = policy;
            self.in_force = Some(in_force);
            return Ok(Outcome::Unchanged);
        }
        self.dirty = true;
        let old_policy = std::mem::replace(&mut self.policy, policy);
        let old_in_force = self.in_force.replace(in_force);
        match self.sync() {
            Ok(outcome) => {
                self.end_disallowed();
                Ok(outcome)
            }
            Err(e) => {
                self.policy = old_policy;
                self.in_force = old_in_force;
                Err(e)
            }
        }
    }

    /// Records the policy in force in the state directory when it changed
    /// since the last record.
    fn record_in_force(&mut self) {
        let Some(p) = &self.in_force else { return };
        if self.recorded.as_deref() == Some(p.sha256.as_str()) {
            return;
        }
        // The time is when it went in, not when the file was read.
        let now = InForce::new(&p.path, &p.content);
        match self.state.save_in_force(&now) {
            Ok(()) => {
                self.recorded = Some(now.sha256.clone());
                self.in_force = Some(now);
            }
            Err(e) => warn!("cannot record the policy in force: {e}"),
        }
    }

    /// The state directory.
    pub fn state(&self) -> &StateDir {
        &self.state
    }

    /// The inventory as last reported by Docker.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// The ruleset the kernel holds as the engine installed it, if it
    /// trusts that.
    fn installed(&self) -> Option<&Ruleset> {
        self.compiled
            .as_ref()
            .filter(|_| self.trusted)
            .map(|c| &c.ruleset)
    }

    /// The last compiled ruleset with its assignments.
    pub fn compiled(&self) -> Option<&Compiled> {
        self.compiled.as_ref()
    }

    /// Replaces the whole inventory (initial sync, Docker reconnects,
    /// network changes).
    pub fn set_inventory(&mut self, inv: Inventory) {
        self.dirty = true;
        self.inventory = inv;
    }

    /// Puts (or replaces) one container; `None` for `id` removes it.
    pub fn put_container(&mut self, id: &str, c: Option<Container>) {
        self.dirty = true;
        let list = &mut self.inventory.containers;
        list.retain(|x| x.id != id);
        if let Some(c) = c {
            let at = list
                .binary_search_by(|x| x.name.cmp(&c.name).then_with(|| x.id.cmp(&c.id)))
                .unwrap_or_else(|i| i);
            list.insert(at, c);
        }
    }

    /// True when the container is in the inventory (running).
    pub fn has_container(&self, id: &str) -> bool {
        self.inventory.containers.iter().any(|c| c.id == id)
    }

    /// Removes a container (it stopped or was destroyed).
    pub fn remove_container(&mut self, id: &str) -> bool {
        self.dirty = true;
        let before = self.inventory.containers.len();
        self.inventory.containers.retain(|x| x.id != id);
        before != self.inventory.containers.len()
    }

    /// The live set edits, read from the state directory once and kept.
    pub fn overrides(&mut self) -> Result<SetOverrides, DaemonError> {
        if self.overrides.is_none() {
            self.overrides = Some(self.state.set_overrides()?);
        }
        Ok(self.overrides.clone().unwrap_or_default())
    }

    /// Records new live set edits (on disk first, then in memory); the
    /// next sync applies them.
    pub fn set_overrides(&mut self, o: SetOverrides) -> Result<(), DaemonError> {
        self.state.save_set_overrides(&o)?;
        self.overrides = Some(o);
        self.dirty = true;
        Ok(())
    }

    fn desired(&mut self) -> Result<Compiled, DaemonError> {
        let overrides = self.overrides()?;
        Ok(compile(&self.policy, &self.inventory, &overrides))
    }

    /// Brings the kernel to the desired ruleset, from what the engine last
    /// installed (or, the first time, from what the kernel holds, so a
    /// restarted daemon takes over without replacing anything that is
    /// already right).
    ///
    /// When the kernel held something else than the desired ruleset (the
    /// daemon's first start, a host that ran without cordon), the
    /// connections opened meanwhile that the policy does not allow are
    /// ended, as after a [`reconcile`](Engine::reconcile) repair.
    pub fn sync(&mut self) -> Result<Outcome, DaemonError> {
        let mut desired = self.desired()?;
        // Unless the tables are replaced, the sets keep the sizes the kernel
        // holds (cordon_ruleset::size), and so does the ruleset kept as
        // installed.
        let (update, from_kernel) = match self.installed() {
            Some(installed) => {
                let update = diff::between(installed, &desired.ruleset);
                if !matches!(update, Update::Replace(_)) {
                    diff::keep_sizes(&mut desired.ruleset, installed);
                }
                (update, false)
            }
            None => {
                let seen = self.nft.observe_compared(&desired.ruleset)?;
                let update = diff::against_kernel(&seen, &desired.ruleset);
                if !matches!(update, Update::Replace(_)) {
                    diff::keep_kernel_sizes(&mut desired.ruleset, &seen);
                }
                (update, true)
            }
        };
        let repairing = from_kernel && !update.is_none();
        let outcome = self.apply(update, desired, !from_kernel)?;
        if repairing {
            self.end_disallowed();
        }
        Ok(outcome)
    }

    /// Compares what the kernel holds with the desired ruleset and repairs
    /// any difference (a deleted table, a flushed chain, a deleted or added
    /// element). After a repair, the tracked connections the policy does
    /// not allow (opened while the kernel held less) are ended.
    ///
    /// When nothing changed in the engine since the last compile, the
    /// ruleset compiled then is compared (no compile); when the kernel
    /// holds it, nothing else is done.
    pub fn reconcile(&mut self) -> Result<Outcome, DaemonError> {
        let r = self.reconcile_whole();
        if r.is_ok() {
            // Read after any earlier failed repair: it covers it.
            self.unsettled = false;
            self.since_whole = 0;
        }
        r
    }

    fn reconcile_whole(&mut self) -> Result<Outcome, DaemonError> {
        self.stats.reconciles += 1;
        self.stats.whole += 1;
        // Read before listing: a commit made after this moves it, so the
        // next periodic check compares again.
        let generation = self.nft.generation().ok();
        let (desired, update) = match (&self.compiled, self.dirty) {
            (Some(c), false) => {
                let seen = self.nft.observe_compared(&c.ruleset)?;
                let update = diff::against_kernel(&seen, &c.ruleset);
                if update.is_none() {
                    if let Some(c) = self.compiled.as_mut() {
                        diff::keep_kernel_sizes(&mut c.ruleset, &seen);
                    }
                    drop(seen);
                    self.verified_generation = generation;
                    crate::memory::trim();
                    return Ok(Outcome::Unchanged);
                }
                let mut desired = c.clone();
                if !matches!(update, Update::Replace(_)) {
                    diff::keep_kernel_sizes(&mut desired.ruleset, &seen);
                }
                (desired, update)
            }
            _ => {
                let mut desired = self.desired()?;
                let seen = self.nft.observe_compared(&desired.ruleset)?;
                let update = diff::against_kernel(&seen, &desired.ruleset);
                if !matches!(update, Update::Replace(_)) {
                    diff::keep_kernel_sizes(&mut desired.ruleset, &seen);
                }
                (desired, update)
            }
        };
        self.verified_generation = if update.is_none() { generation } else { None };
        if !update.is_none() {
            self.stats.repairs += 1;
            warn!(
                what = %describe(&update),
                "cordon's tables differ from what they should be; repairing"
            );
        }
        let repairing = !update.is_none();
        let outcome = self.apply(update, desired, false)?;
        if repairing {
            self.end_disallowed();
        }
        crate::memory::trim();
        Ok(outcome)
    }

    /// The periodic reconcile: when nothing changed in the engine and the
    /// kernel's nftables generation id is the one read before the last
    /// reconcile that found the kernel right, no transaction was committed
    /// since (by anyone), so cordon's tables are as they were: nothing is
    /// listed or compiled.
    ///
    /// When commits were made, and the engine follows the nftables monitor
    /// ([`Engine::follow`]), nothing is compared either when the monitor
    /// accounts for them ([`crate::watch::Watched::accounts_for`]): it has
    /// processed the batch that made the kernel's current generation, and
    /// every foreign change to cordon's tables it saw was taken and
    /// repaired. Commits to other tables (Docker's own rules) and the
    /// engine's own cost nothing then. Why that is enough:
    ///
    /// * Trust starts from a whole comparison or an install made while the
    ///   monitor listened ([`Engine::follow`] forgets what was installed
    ///   before).
    /// * Every commit since then is a batch the kernel announced, in commit
    ///   order (commits are serialised and announced before the next one
    ///   starts), with its generation id last; a lost announcement is an
    ///   `ENOBUFS` on the monitor's socket, reported as a structural change
    ///   and repaired by a whole reconcile, which reads after the loss.
    /// * The kernel's id is read first, the monitor's account second. If a
    ///   commit lands in between, the monitor has either not processed it
    ///   (its id still equals the one read, and that commit is reported
    ///   later) or has (the ids differ: compare whole). If the monitor is
    ///   behind (a commit made just before, often our own), it is waited
    ///   for up to 20 ms; still behind: compare whole.
    /// * A foreign change is taken and repaired on this same thread before
    ///   the next check runs; a repair that fails leaves the engine
    ///   `unsettled` until a whole reconcile succeeds.
    ///
    /// When in doubt (the monitor stopped, a report waits, the ids differ,
    /// a `NEWGEN` without an id) the whole comparison runs, and at least
    /// every [`SAFETY_EVERY`] periods in which something was committed.
    /// Without the monitor, any commit (the DNS proxy's answers and Docker's
    /// own rules included) makes the whole comparison run.
    pub fn reconcile_if_committed(&mut self) -> Result<Outcome, DaemonError> {
        if self.watch.as_ref().is_some_and(|w| w.pending()) {
            // A foreign change not yet repaired (reported while Docker was
            // not listed yet, or its wake-up is still queued).
            return self.repair_reported();
        }
        if !self.dirty && self.trusted && !self.unsettled {
            let now = self.nft.generation().ok();
            if now.is_some() && now == self.verified_generation {
                self.stats.reconciles += 1;
                return Ok(Outcome::Unchanged);
            }
            let accounted = self.since_whole < SAFETY_EVERY
                && self.verified_generation.is_some()
                && now.is_some_and(|g| {
                    self.watch.as_ref().is_some_and(|w| {
                        // A commit made just before (often our own) may
                        // not be processed yet: a short wait for it.
                        w.accounts_for(g) || (w.wait_for(g, CATCH_UP) && w.accounts_for(g))
                    })
                });
            if accounted {
                self.since_whole += 1;
                self.stats.reconciles += 1;
                self.stats.accounted += 1;
                return Ok(Outcome::Unchanged);
            }
        }
        self.reconcile()
    }

    /// Repairs the foreign changes to cordon's tables the nftables monitor
    /// reported since the last call: when they touched only elements of
    /// named sets cordon has, only those sets are read and compared, and
    /// the difference applied as one element update; anything else
    /// (structural, a loss of notifications, a set cordon does not have)
    /// is a whole
    /// [`reconcile`](Engine::reconcile). Nothing reported: nothing done.
    /// Without the monitor, a whole reconcile.
    pub fn repair_reported(&mut self) -> Result<Outcome, DaemonError> {
        let Some(watch) = &self.watch else {
            return self.reconcile();
        };
        let r = match watch.take() {
            None => return Ok(Outcome::Unchanged),
            Some(cordon_dataplane::Touched::Elements(sets)) => self.repair_sets(&sets),
            Some(cordon_dataplane::Touched::Structure) => self.reconcile(),
        };
        if r.is_err() {
            self.unsettled = true;
        }
        r
    }

    /// Reads only `sets` from the kernel, compares their elements with the
    /// desired ones (as bytes, as the whole reconcile does) and applies
    /// the difference as one element update. The engine's state must be
    /// current (nothing `dirty`, the kernel trusted) and every set one of
    /// the compiled ruleset's; otherwise, or when a set or table is gone
    /// by the time it is read, a whole [`reconcile`](Engine::reconcile).
    /// Timeout sets (the DNS proxy's) are not compared, as in the whole
    /// reconcile.
    fn repair_sets(&mut self, sets: &[(Family, String)]) -> Result<Outcome, DaemonError> {
        let Some(c) = self
            .compiled
            .as_ref()
            .filter(|_| !self.dirty && self.trusted)
        else {
            return self.reconcile();
        };
        let mut wanted: Vec<(&Table, Vec<&Set>)> = Vec::new();
        for (family, name) in sets {
            let Some(table) = c.ruleset.table(*family) else {
                return self.reconcile();
            };
            let Some(set) = table.sets.iter().find(|s| s.name == *name) else {
                return self.reconcile();
            };
            if set.timeout {
                continue;
            }
            match wanted.iter_mut().find(|(t, _)| t.family == *family) {
                Some((_, list)) => list.push(set),
                None => wanted.push((table, vec![set])),
            }
        }
        self.stats.reconciles += 1;
        self.stats.targeted += 1;
        let mut changes = Vec::new();
        for (table, list) in &wanted {
            let Some(read) = self.nft.observe_sets(table.family, &table.name, list)? else {
                return self.reconcile();
            };
            let observed = cordon_dataplane::kernel::KernelTable {
                sets: read,
                ..Default::default()
            }
            .into_observed();
            changes.extend(diff::sets_against_kernel(&observed, table));
        }
        if changes.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        self.stats.repairs += 1;
        let update = Update::Elements(changes);
        warn!(
            what = %describe(&update),
            "cordon's sets differ from what they should be; repairing"
        );
        let applied = self.nft.apply_update(&update, &c.ruleset);
        applied.map_err(|e| self.failed(e))?;
        self.stats.element_updates += 1;
        let Update::Elements(changes) = &update else {
            unreachable!("built as element changes")
        };
        let n = diff::element_count(changes);
        self.end_disallowed();
        Ok(Outcome::Elements(n))
    }

    /// Ends the tracked connections the policy in force does not allow
    /// ([`crate::repair`]); a failure is logged, the ruleset stays.
    fn end_disallowed(&mut self) {
        let started = Instant::now();
        let overrides = self.overrides.clone().unwrap_or_default();
        // The last compile is of the current inventory: this runs only
        // right after one was applied (or, for a targeted repair, with
        // nothing dirty).
        let assigned = self
            .compiled
            .as_ref()
            .filter(|_| !self.dirty)
            .map(|c| c.assignments.as_slice());
        match crate::repair::end_disallowed_assigned(
            &self.policy,
            &self.inventory,
            &overrides,
            assigned,
            &self.nft,
        ) {
            Ok(0) => debug!(took = ?started.elapsed(), "no tracked connection to end"),
            Ok(n) => {
                self.stats.connections_ended += n as u64;
                warn!(
                    ended = n,
                    took = ?started.elapsed(),
                    "ended tracked connections the policy does not allow"
                );
            }
            Err(e) => warn!("{e}"),
        }
    }

    /// Brings the kernel to `desired` by `update`. `trusted` says the
    /// kernel holds what the engine last installed (the update was diffed
    /// against it, not read from the kernel), so a replacement need not
    /// read the kernel first.
    fn apply(
        &mut self,
        update: Update,
        desired: Compiled,
        trusted: bool,
    ) -> Result<Outcome, DaemonError> {
        let started = Instant::now();
        let outcome = match &update {
            Update::None => Outcome::Unchanged,
            Update::Elements(changes) => {
                self.nft
                    .apply_update(&update, &desired.ruleset)
                    .map_err(|e| self.failed(e))?;
                self.stats.element_updates += 1;
                Outcome::Elements(diff::element_count(changes))
            }
            Update::Replace(why) => {
                let previous = self.installed().filter(|_| trusted);
                install_whole(&self.nft, &self.state, &desired.ruleset, previous)
                    .map_err(|e| self.failed(e))?;
                self.stats.replacements += 1;
                self.generation
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                info!(reason = %why, containers = desired.assignments.len(), "ruleset installed whole");
                Outcome::Replaced(why.clone())
            }
        };
        if outcome != Outcome::Unchanged {
            debug!(?outcome, took = ?started.elapsed(), "kernel updated");
        }
        if let Some(prev) = &self.compiled {
            let gone = departed(prev, &desired);
            if !gone.is_empty() {
                // Connections tracked for an address that left must not
                // carry over to the next container given that address.
                if let Err(e) = cordon_dataplane::conntrack::forget(&gone) {
                    warn!("cannot flush conntrack entries of departed containers: {e}");
                }
            }
        }
        for w in &desired.warnings {
            if self
                .compiled
                .as_ref()
                .is_none_or(|p| !p.warnings.contains(w))
            {
                warn!("{w}");
            }
        }
        self.save_boot_ruleset();
        self.record_in_force();
        self.compiled = Some(desired);
        self.trusted = true;
        self.dirty = false;
        self.publish_clients();
        if matches!(outcome, Outcome::Replaced(_)) {
            crate::memory::trim();
        }
        Ok(outcome)
    }

    fn failed(&mut self, e: impl std::fmt::Display) -> DaemonError {
        let err = DaemonError::Refused(e.to_string());
        self.stats.last_error = Some(err.to_string());
        // The kernel may now hold something else: compare next time.
        self.trusted = false;
        self.verified_generation = None;
        err
    }

    /// Writes the fail-closed boot ruleset when the networks changed.
    fn save_boot_ruleset(&mut self) {
        if self.boot_networks.as_ref() == Some(&self.inventory.networks) {
            return;
        }
        let overrides = self.overrides.clone().unwrap_or_default();
        match boot::save(
            &self.policy,
            &self.inventory.networks,
            &overrides,
            &self.state,
        ) {
            Ok(()) => self.boot_networks = Some(self.inventory.networks.clone()),
            Err(e) => warn!("cannot save the boot ruleset: {e}"),
        }
    }

    /// Forgets what was installed, so the next sync compares with the
    /// kernel (after an error or a long disconnection).
    pub fn forget_installed(&mut self) {
        self.trusted = false;
        self.verified_generation = None;
    }
}

/// Addresses enforced for some container before and for none after.
fn departed(before: &Compiled, after: &Compiled) -> Vec<IpAddr> {
    let now: BTreeSet<(IpAddr, &str)> = after
        .assignments
        .iter()
        .flat_map(|a| a.addresses.iter().map(move |x| (*x, a.id.as_str())))
        .collect();
    before
        .assignments
        .iter()
        .flat_map(|a| a.addresses.iter().map(move |x| (*x, a.id.as_str())))
        .filter(|k| !now.contains(k))
        .map(|(a, _)| a)
        .collect()
}

fn describe(u: &Update) -> String {
    match u {
        Update::None => "nothing".into(),
        Update::Elements(c) => format!(
            "{} element(s) in {}",
            diff::element_count(c),
            c.iter()
                .map(|c| c.set.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Update::Replace(why) => why.clone(),
    }
}
