//! Unique non-root uids for concurrent runs.
//!
//! A run holds a slot while it lives; slot `n` is uid and gid
//! `FIRST_UID + n`. Slots are taken in this process under a mutex and
//! across processes (several `cordon sandbox run` at once) with an
//! exclusive `flock` on `STATE_DIR/uids/<n>.lock`, released when the
//! [`Uid`] drops (or the process dies).

use std::collections::HashSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Mutex;

/// The first uid handed out; far above any uid of the host's users.
pub const FIRST_UID: u32 = 100_000;

/// How many runs may hold a uid at once.
pub const SLOTS: u32 = 10_000;

static TAKEN: Mutex<Option<HashSet<u32>>> = Mutex::new(None);

/// A uid (and equal gid) held by one run.
#[derive(Debug)]
pub struct Uid {
    slot: u32,
    _lock: File,
}

impl Uid {
    /// Takes a free uid, or says why none can be had.
    pub fn allocate() -> Result<Uid, String> {
        let dir = crate::state_dir().join("uids");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut taken = TAKEN.lock().unwrap_or_else(|p| p.into_inner());
        let taken = taken.get_or_insert_with(HashSet::new);
        for slot in 0..SLOTS {
            if taken.contains(&slot) {
                continue;
            }
            let path: PathBuf = dir.join(format!("{slot}.lock"));
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            // SAFETY: flock on a descriptor we own.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                taken.insert(slot);
                return Ok(Uid { slot, _lock: file });
            }
        }
        Err(format!("all {SLOTS} sandbox uids are in use"))
    }

    /// The numeric uid (also used as the gid).
    pub fn get(&self) -> u32 {
        FIRST_UID + self.slot
    }
}

impl Drop for Uid {
    fn drop(&mut self) {
        let mut taken = TAKEN.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = taken.as_mut() {
            t.remove(&self.slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_uids_differ_and_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("CORDON_SANDBOX_STATE", dir.path());
        let a = Uid::allocate().unwrap();
        let b = Uid::allocate().unwrap();
        assert_ne!(a.get(), b.get());
        assert!(a.get() >= FIRST_UID && b.get() >= FIRST_UID);
        let freed = a.get();
        drop(a);
        let c = Uid::allocate().unwrap();
        assert_eq!(c.get(), freed);
    }
}
