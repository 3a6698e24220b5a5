//! Running `nft` with a JSON transaction, optionally inside a network
//! namespace.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cordon_ruleset::diff::{self, Observed, Update};
use cordon_ruleset::inplace::{self, Present};
use cordon_ruleset::nft::{Element, Family, Ruleset, Value};
use cordon_ruleset::{json, names, Listing, TABLE};
use ipnet::IpNet;
use serde_json::{json as j, Value as J};

use crate::error::NftError;
use crate::kernel::{KernelTable, Keys};
use cordon_ruleset::nft::smallvec;

/// Below this many elements to fill over netlink, [`Nft::install_staged`]
/// sends the whole install as one `nft` transaction: libnftables parses
/// 20,000 elements in about 70 ms, about what the second `nft` run costs.
const STAGE_FROM: usize = 20_000;

/// How long each step of [`Nft::install_staged`] took, for the benchmark.
#[derive(Debug, Clone, Copy, Default)]
pub struct Steps {
    /// Planning the steps ([`inplace::staged`]): the element diff and the
    /// rendering of both `nft` transactions.
    pub plan: Duration,
    /// The inert prepare transaction through `nft`.
    pub prepare: Duration,
    /// The netlink fill of the fresh sets.
    pub fill: Duration,
    /// How many elements the fill sent.
    pub filled: usize,
    /// The system (kernel) time the fill's thread used: the kernel's
    /// inserts, almost all of the fill.
    pub fill_system: Duration,
    /// The switch transaction through `nft`.
    pub switch: Duration,
}

/// How to reach nftables: the host's, or a named network namespace's.
#[derive(Debug, Clone, Default)]
pub struct Nft {
    netns: Option<String>,
    /// [`STAGE_FROM`] unless set by [`Nft::staging_from`].
    stage_from: Option<usize>,
}

impl Nft {
    /// The host's nftables.
    pub fn host() -> Self {
        Nft {
            netns: None,
            stage_from: None,
        }
    }

    /// The nftables of the named network namespace (`ip netns exec`).
    pub fn in_netns(name: impl Into<String>) -> Self {
        Nft {
            netns: Some(name.into()),
            stage_from: None,
        }
    }

    /// Installs in steps from `elements` elements to fill on (20,000 by
    /// default; 0: always), for tests of the steps on small rulesets.
    pub fn staging_from(mut self, elements: usize) -> Self {
        self.stage_from = Some(elements);
        self
    }

    fn command(&self) -> Command {
        match &self.netns {
            None => Command::new("nft"),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "nft"]);
                c
            }
        }
    }

    /// Runs one JSON transaction (`nft -j -f -`); with `check_only`, asks
    /// the kernel to validate it without committing (`nft -c`).
    pub fn run(&self, doc: &J, check_only: bool) -> Result<(), NftError> {
        self.run_text(
            serde_json::to_string(doc).expect("JSON serialises"),
            check_only,
        )
    }

    /// [`Nft::run`] with the document already rendered.
    pub fn run_text(&self, text: String, check_only: bool) -> Result<(), NftError> {
        let mut cmd = self.command();
        if check_only {
            cmd.arg("-c");
        }
        cmd.args(["-j", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(NftError::Spawn)?;
        crate::monitor::note_own_pid(child.id());
        let text = text.into_bytes();
        let mut stdin = child.stdin.take().expect("piped stdin");
        let writer = std::thread::spawn(move || stdin.write_all(&text));
        let out = child.wait_with_output().map_err(NftError::Spawn)?;
        let _ = writer.join();
        if out.status.success() {
            Ok(())
        } else {
            Err(NftError::Rejected(first_error(&String::from_utf8_lossy(
                &out.stderr,
            ))))
        }
    }

    /// Replaces cordon's tables with `ruleset`, in place and atomically
    /// for every packet: the tables and unchanged sets stay, elements that
    /// stay are never touched, chains are flushed and refilled, and only
    /// what `ruleset` lacks is deleted (see [`cordon_ruleset::inplace`]:
    /// deleting the tables, or re-adding an element, can drop a packet at
    /// the commit). Sets the kernel does not hold yet are declared and
    /// filled first, inert, their elements sent over netlink; then one
    /// transaction puts the whole ruleset in force ([`Nft::install_staged`]).
    /// When the kernel refuses that (a table changed between the listing
    /// and the commit), the tables are deleted and created anew in one
    /// transaction instead.
    pub fn install(&self, ruleset: &Ruleset) -> Result<(), NftError> {
        let in_place = self
            .present(ruleset)
            .and_then(|present| self.install_staged(ruleset, &present).map(drop));
        match in_place {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!("in-place replacement refused ({e}); replacing the tables whole");
                self.run_text(json::replace_text(ruleset), false)
            }
        }
    }

    /// [`Nft::install`] without reading the kernel first, when the caller
    /// knows what it holds: `previous`, the ruleset it last installed. A
    /// listing of 10,000 containers' tables takes seconds; this is what a
    /// reload pays instead. When the kernel refuses a step (it no longer
    /// holds `previous`, or an interrupted install left something behind),
    /// [`Nft::install`] reads it and tries again.
    pub fn install_over(&self, ruleset: &Ruleset, previous: &Ruleset) -> Result<(), NftError> {
        let present: Vec<_> = previous
            .tables
            .iter()
            .map(|t| (t.family, t.name.clone(), Present::from_table(t)))
            .collect();
        match self.install_staged(ruleset, &present) {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(
                    "the kernel no longer holds the last installed ruleset ({e}); reading it"
                );
                self.install(ruleset)
            }
        }
    }

    /// Installs `ruleset` over `present` in the three steps of
    /// [`inplace::staged`]: one `nft` transaction declares the sets and
    /// chains the kernel lacks (no rule refers to them: inert), netlink
    /// batches fill those sets, then one `nft` transaction, the switch,
    /// puts the ruleset in force; with fewer than 20,000 elements to fill,
    /// the same as one `nft` transaction. When the fill or the switch fails, the
    /// previous ruleset is still in force and what the prepare step made is
    /// deleted; if even that fails (or the process dies mid-way), those
    /// inert leftovers are flushed and refilled by the next install, or
    /// deleted when it reads the kernel.
    pub fn install_staged(
        &self,
        ruleset: &Ruleset,
        present: &[(Family, String, Present)],
    ) -> Result<Steps, NftError> {
        let mut steps = Steps::default();
        let t = Instant::now();
        let plan = inplace::staged(ruleset, present, &crate::elements::set_encodable);
        let to_fill: usize = plan
            .fill
            .iter()
            .map(|&(ti, si)| ruleset.tables[ti].sets[si].elements.len())
            .sum();
        if to_fill < self.stage_from.unwrap_or(STAGE_FROM) {
            // Few elements: one transaction costs less than two `nft` runs.
            let text = inplace::staged(ruleset, present, &|_| false).one_transaction();
            steps.plan = t.elapsed();
            let t = Instant::now();
            self.run_text(text, false)?;
            steps.switch = t.elapsed();
            return Ok(steps);
        }
        steps.plan = t.elapsed();
        let t = Instant::now();
        self.run_text(plan.prepare, false)?;
        steps.prepare = t.elapsed();
        let sets: Vec<_> = plan
            .fill
            .iter()
            .map(|&(ti, si)| {
                let t = &ruleset.tables[ti];
                (t.family, t.name.as_str(), &t.sets[si])
            })
            .collect();
        steps.filled = sets.iter().map(|(_, _, s)| s.elements.len()).sum();
        let t = Instant::now();
        let filled = if sets.is_empty() {
            Ok(())
        } else {
            self.netlink_commit(|| {
                let before = thread_system_time();
                let filled = crate::elements::fill(&sets);
                steps.fill_system = thread_system_time().saturating_sub(before);
                filled
            })
            .map_err(|e| NftError::Rejected(format!("netlink: {e}")))
        };
        steps.fill = t.elapsed();
        let t = Instant::now();
        let done = filled.and_then(|()| self.run_text(plan.switch, false));
        steps.switch = t.elapsed();
        if done.is_err() {
            // Nothing refers to what the prepare step made: take it away.
            if let Err(e) = self.run_text(plan.cleanup, false) {
                tracing::warn!("could not delete the inert sets of a refused install: {e}");
            }
        }
        done.map(|()| steps)
    }

    /// What the kernel holds of `ruleset`'s tables: their chains, sets and
    /// other objects, and the sets' elements (read in the key types of
    /// `ruleset`'s sets).
    fn present(&self, ruleset: &Ruleset) -> Result<Vec<(Family, String, Present)>, NftError> {
        let mut out = Vec::new();
        for t in &ruleset.tables {
            if let Some(listing) = self.list_table(t.family, &t.name)? {
                let mut p = Present::from_listing(&listing);
                p.elements = crate::kernel::parse_table(t.family, &listing, ruleset)?.sets;
                out.push((t.family, t.name.clone(), p));
            }
        }
        Ok(out)
    }

    /// Brings the kernel to `desired` by `update`: element changes in one
    /// transaction, or a whole replacement.
    pub fn apply_update(&self, update: &Update, desired: &Ruleset) -> Result<(), NftError> {
        match update {
            Update::None => Ok(()),
            Update::Elements(changes) if crate::elements::encodable(changes, desired) => self
                .netlink_commit(|| crate::elements::apply(changes))
                .map_err(|e| NftError::Rejected(format!("netlink: {e}"))),
            Update::Elements(changes) => self.run(&diff::transaction(changes), false),
            Update::Replace(_) => self.install(desired),
        }
    }

    /// Adds elements with a lifetime over netlink (see
    /// [`crate::elements::apply_with_timeout`]).
    pub fn add_with_timeout(
        &self,
        changes: &[diff::SetChange],
        timeout: std::time::Duration,
    ) -> Result<(), NftError> {
        self.netlink_commit(|| crate::elements::apply_with_timeout(changes, timeout))
            .map_err(|e| NftError::Rejected(format!("netlink: {e}")))
    }

    /// Runs `f` in this Nft's network namespace: here for the host, on a
    /// thread that entered `/run/netns/NAME` otherwise.
    fn netlink<T: Send>(
        &self,
        f: impl FnOnce() -> std::io::Result<T> + Send,
    ) -> std::io::Result<T> {
        let Some(ns) = &self.netns else { return f() };
        let file = std::fs::File::open(format!("/run/netns/{ns}"))?;
        std::thread::scope(|s| {
            s.spawn(move || {
                use std::os::fd::AsRawFd;
                // SAFETY: setns on a descriptor we own; it moves only this
                // thread, which ends with the closure.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("netlink thread panicked")))
        })
    }

    /// [`Nft::netlink`] for a commit: the committing thread is noted as
    /// this process's ([`crate::monitor::note_own_thread`]), so the
    /// monitor does not report the commit as foreign.
    fn netlink_commit<T: Send>(
        &self,
        f: impl FnOnce() -> std::io::Result<T> + Send,
    ) -> std::io::Result<T> {
        self.netlink(move || {
            crate::monitor::note_own_thread();
            f()
        })
    }

    /// Subscribes to the nftables notifications of this Nft's namespace
    /// ([`crate::monitor`]).
    pub fn monitor(&self) -> std::io::Result<crate::Monitor> {
        self.netlink(crate::Monitor::open)
    }

    /// The kernel's nftables generation id in this Nft's namespace
    /// ([`crate::generation`]): it moves with every committed transaction.
    pub fn generation(&self) -> std::io::Result<u32> {
        self.netlink(crate::generation::current)
    }

    /// One of cordon's tables as `nft -j list table` prints it, or `None`
    /// when it does not exist.
    pub fn list_table(&self, family: Family, name: &str) -> Result<Option<J>, NftError> {
        self.list(&["-j", "list", "table", family.as_str(), name])
    }

    /// Runs a listing command: its JSON, or `None` when the object does not
    /// exist.
    fn list(&self, args: &[&str]) -> Result<Option<J>, NftError> {
        let out = self
            .command()
            .args(args)
            .output()
            .map_err(NftError::Spawn)?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("No such file or directory") {
                return Ok(None);
            }
            return Err(NftError::Rejected(first_error(&err)));
        }
        serde_json::from_slice(&out.stdout)
            .map(Some)
            .map_err(|e| NftError::Output(e.to_string()))
    }

    /// What the kernel holds of `desired`'s tables, read over netlink
    /// ([`Nft::read_table`]).
    pub fn observe(&self, desired: &Ruleset) -> Result<Observed, NftError> {
        crate::kernel::observe(desired, |f, n, keys| self.read_table(f, n, keys))
    }

    /// [`Nft::observe`] for reconciling: each plain set's elements are
    /// compared with the desired ones as bytes while they are read, and
    /// only those that differ are decoded
    /// ([`crate::dump::read_table_compared`]);
    /// [`cordon_ruleset::diff::against_kernel`] gives the same update as
    /// from [`Nft::observe`].
    pub fn observe_compared(&self, desired: &Ruleset) -> Result<Observed, NftError> {
        crate::kernel::observe_compared(desired, |t| {
            self.netlink(|| crate::dump::read_table_compared(t.family, &t.name, t))
                .map_err(netlink_error)
        })
    }

    /// [`Nft::observe`] through `nft -j list table` instead of netlink:
    /// the reference the netlink reader is tested against.
    pub fn observe_listing(&self, desired: &Ruleset) -> Result<Observed, NftError> {
        crate::kernel::observe(desired, |f, n, keys| {
            self.list_table(f, n)?
                .map(|l| KernelTable::from_listing(&l, keys))
                .transpose()
        })
    }

    /// The elements of `sets` of the desired table `family name`, read and
    /// compared with their desired elements
    /// ([`crate::dump::read_sets_compared`]); `None` when the table or a
    /// set does not exist.
    pub fn observe_sets(
        &self,
        family: Family,
        name: &str,
        sets: &[&cordon_ruleset::nft::Set],
    ) -> Result<Option<Vec<crate::kernel::KernelSet>>, NftError> {
        self.netlink(|| crate::dump::read_sets_compared(family, name, sets))
            .map_err(netlink_error)
    }

    /// One of cordon's tables read over netlink ([`crate::dump`]), or
    /// `None` when it does not exist; set elements are read for the sets
    /// `keys` gives key types for.
    pub fn read_table(
        &self,
        family: Family,
        name: &str,
        keys: Keys<'_>,
    ) -> Result<Option<KernelTable>, NftError> {
        self.netlink(|| crate::dump::read_table(family, name, keys))
            .map_err(netlink_error)
    }

    /// Validates `ruleset` against the kernel without changing anything.
    /// The elements of sets an install fills over netlink are left out:
    /// the kernel checks those as they are added, before anything is in
    /// force (see [`Nft::install_staged`]).
    pub fn check(&self, ruleset: &Ruleset) -> Result<(), NftError> {
        self.run_text(
            json::replace_text_with(ruleset, &|s| !crate::elements::set_encodable(s)),
            true,
        )
    }

    /// Deletes cordon's tables (and only those), if present.
    pub fn remove(&self) -> Result<(), NftError> {
        self.run(
            &json::delete_tables(&[(Family::Bridge, TABLE), (Family::Inet, TABLE)]),
            false,
        )
    }

    /// True when cordon's inet table exists.
    pub fn installed(&self) -> Result<bool, NftError> {
        let out = self
            .command()
            .args(["-j", "list", "tables", "inet"])
            .output()
            .map_err(NftError::Spawn)?;
        if !out.status.success() {
            return Err(NftError::Rejected(first_error(&String::from_utf8_lossy(
                &out.stderr,
            ))));
        }
        let doc: J =
            serde_json::from_slice(&out.stdout).map_err(|e| NftError::Output(e.to_string()))?;
        Ok(Listing::parse(&doc).tables.iter().any(|t| t.name == TABLE))
    }

    /// Changes the elements of a named address set pair (`<prefix>4` and
    /// `<prefix>6` of `inet cordon`) in one transaction: `remove` first,
    /// then `add`. Rules are not touched. The kernel refuses deleting an
    /// absent element and adding an overlapping interval, and then nothing
    /// changes, so callers diff against [`Nft::list_set`].
    pub fn replace_elements(
        &self,
        prefix: &str,
        remove: &[IpNet],
        add: &[IpNet],
    ) -> Result<(), NftError> {
        let mut cmds = Vec::new();
        for (verb, nets) in [("delete", remove), ("add", add)] {
            for (fam, want_v4) in [(4, true), (6, false)] {
                let elem: Vec<J> = nets
                    .iter()
                    .filter(|n| matches!(n, IpNet::V4(_)) == want_v4)
                    .map(|n| {
                        json::element(&Element {
                            key: smallvec![Value::Net(n.trunc())],
                            verdict: None,
                        })
                    })
                    .collect();
                if elem.is_empty() {
                    continue;
                }
                cmds.push(j!({verb: {"element": {
                    "family": "inet", "table": TABLE, "name": names::pair(prefix, fam), "elem": elem
                }}}));
            }
        }
        if cmds.is_empty() {
            return Ok(());
        }
        self.run(&j!({ "nftables": cmds }), false)
    }

    /// The addresses in a named set pair (`<prefix>4` and `<prefix>6`).
    pub fn list_set(&self, prefix: &str) -> Result<Vec<IpNet>, NftError> {
        let mut out = Vec::new();
        for fam in names::FAMILIES {
            let o = self
                .command()
                .args([
                    "-j",
                    "list",
                    "set",
                    "inet",
                    TABLE,
                    &names::pair(prefix, fam),
                ])
                .output()
                .map_err(NftError::Spawn)?;
            if !o.status.success() {
                return Err(NftError::Rejected(first_error(&String::from_utf8_lossy(
                    &o.stderr,
                ))));
            }
            let doc: J =
                serde_json::from_slice(&o.stdout).map_err(|e| NftError::Output(e.to_string()))?;
            for set in &Listing::parse(&doc).sets {
                out.extend(
                    set.addresses()
                        .map_err(|e| NftError::Output(e.to_string()))?,
                );
            }
        }
        Ok(out)
    }
}

/// The system time the calling thread has used so far.
fn thread_system_time() -> Duration {
    // SAFETY: rusage is plain integers, for which all zeroes is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes only into the struct it is given.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    Duration::from_secs(usage.ru_stime.tv_sec as u64)
        + Duration::from_micros(usage.ru_stime.tv_usec as u64)
}

/// The most telling line of nft's error output.
fn first_error(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.contains("Error"))
        .or_else(|| stderr.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("nft failed without a message")
        .trim()
        .to_string()
}

/// A netlink reader's error: undecodable bytes are output errors, the
/// rest the kernel's refusals.
fn netlink_error(e: std::io::Error) -> NftError {
    match e.kind() {
        std::io::ErrorKind::InvalidData => NftError::Output(format!("netlink: {e}")),
        _ => NftError::Rejected(format!("netlink: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_line_is_picked() {
        let err = "/dev/stdin:1:1-2: Error: Could not process rule: No such file\nfoo\n";
        assert!(first_error(err).starts_with("/dev/stdin:1:1-2: Error: Could not"));
        assert_eq!(first_error(""), "nft failed without a message");
    }
}
