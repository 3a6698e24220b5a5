//! Following the nftables monitor ([`cordon_dataplane::monitor`]) from a
//! thread of its own, so the engine knows what happened to the kernel's
//! ruleset without reading it.
//!
//! The thread reads every committed batch (anyone's, on any table) and
//! keeps, in one [`Watched`] shared with the engine:
//!
//! * the generation id of the last batch it processed (`NFTA_GEN_ID` of
//!   its `NEWGEN`);
//! * what foreign batches did to cordon's tables and the engine has not
//!   yet taken ([`Touched`]: only the elements of named sets, or
//!   something structural; a loss of notifications counts as structural);
//! * whether it stopped (then nothing it says is trusted any more).
//!
//! Both change together under one lock, a batch's report before its
//! generation, and the thread wakes the engine's loop for every foreign
//! change. [`Watched::accounts_for`] is the periodic reconcile's question
//! "did the monitor see everything up to this generation, with nothing
//! left to repair?"; see [`crate::engine::Engine::reconcile_if_committed`]
//! for why the answer can be trusted.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cordon_dataplane::{Change, Nft, Touched};
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// What the monitor thread has seen, shared with the engine.
#[derive(Debug, Default)]
pub struct Watched {
    seen: Mutex<Seen>,
    moved: Condvar,
}

#[derive(Debug, Default)]
struct Seen {
    /// The generation id of the last batch processed; `None` before the
    /// first, after a loss until the next batch, or when a `NEWGEN` came
    /// without one.
    generation: Option<u32>,
    /// What foreign batches did to cordon's tables, not yet taken.
    pending: Option<Touched>,
    /// The monitor failed and stopped.
    stopped: bool,
}

impl Watched {
    fn lock(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one batch or loss as the monitor thread saw it; true when
    /// it concerns cordon's tables (the engine must repair).
    pub fn record(&self, change: Change) -> bool {
        let mut s = self.lock();
        let wake = change.concerns_cordon();
        match change {
            Change::Commit {
                generation,
                foreign,
                ..
            } => {
                if let Some(t) = foreign {
                    Touched::merge(&mut s.pending, t);
                }
                s.generation = generation;
            }
            Change::Overflow => {
                Touched::merge(&mut s.pending, Touched::Structure);
                s.generation = None;
            }
        }
        drop(s);
        self.moved.notify_all();
        wake
    }

    /// Records that the monitor stopped: from now on the engine compares
    /// whole again after every commit.
    pub fn stop(&self) {
        let mut s = self.lock();
        s.stopped = true;
        s.generation = None;
        Touched::merge(&mut s.pending, Touched::Structure);
        drop(s);
        self.moved.notify_all();
    }

    /// What foreign changes to cordon's tables were reported since the
    /// last call, if any.
    pub fn take(&self) -> Option<Touched> {
        self.lock().pending.take()
    }

    /// True when a foreign change waits to be taken.
    pub fn pending(&self) -> bool {
        self.lock().pending.is_some()
    }

    /// True when the monitor runs, has processed the batch that made
    /// generation `now` (and so every batch before it), and every foreign
    /// change it saw was taken.
    pub fn accounts_for(&self, now: u32) -> bool {
        let s = self.lock();
        !s.stopped && s.pending.is_none() && s.generation == Some(now)
    }

    /// Waits up to `timeout` until the monitor has processed the batch
    /// that made generation `generation` or a later one; false on timeout
    /// or once the monitor stopped.
    pub fn wait_for(&self, generation: u32, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            if s.stopped {
                return false;
            }
            // Generation ids wrap; "at or after" is a signed distance.
            if s.generation
                .is_some_and(|g| g.wrapping_sub(generation) as i32 >= 0)
            {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = self
                .moved
                .wait_timeout(s, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Subscribes to `nft`'s nftables notifications and follows them from a
/// thread named `cordon-nft-monitor`: what it sees goes into the returned
/// [`Watched`], and every foreign change to cordon's tables (or loss)
/// sends one wake-up on the returned channel. The thread ends when the
/// channel's receiver is gone or the monitor fails (then the watch is
/// [stopped](Watched::stop)).
pub fn start(nft: &Nft) -> std::io::Result<(Arc<Watched>, mpsc::UnboundedReceiver<()>)> {
    let mut monitor = nft.monitor()?;
    let watched = Arc::new(Watched::default());
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = watched.clone();
    std::thread::Builder::new()
        .name("cordon-nft-monitor".into())
        .spawn(move || loop {
            match monitor.next_commit() {
                Ok(c) => {
                    if c.concerns_cordon() {
                        debug!(?c, "cordon's tables changed");
                    }
                    if shared.record(c) && tx.send(()).is_err() {
                        shared.stop();
                        return;
                    }
                }
                Err(e) => {
                    warn!("nftables monitor failed: {e}; relying on the periodic reconcile");
                    shared.stop();
                    let _ = tx.send(());
                    return;
                }
            }
        })?;
    Ok((watched, rx))
}
