//! The host-wide lab lock.
//!
//! All end-to-end tests share the host's single `inet cordon` and `bridge
//! cordon` tables and Docker's bridges, so each one holds this lock for its
//! whole duration: an exclusive `flock` on [`LOCK_PATH`] (across processes:
//! several test binaries, several `cargo test` runs), and within a process a
//! mutex between the harness's test threads.
//!
//! The lock is re-entrant on one thread: a test that holds it may create a
//! [`Lab`](crate::Lab), which takes it again, without deadlocking.
//!
//! The first acquisition also removes what killed earlier runs left behind
//! (namespaces named for a process that no longer exists), and the last
//! release restores any host sysctl a leaked guard still holds changed.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;

/// Where the lock lives.
pub const LOCK_PATH: &str = "/run/cordon-lab.lock";

struct State {
    owner: Option<ThreadId>,
    depth: usize,
    file: Option<File>,
}

static STATE: Mutex<State> = Mutex::new(State {
    owner: None,
    depth: 0,
    file: None,
});
static FREED: Condvar = Condvar::new();

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Holds the host-wide lab lock until dropped.
#[must_use = "the lab lock is released when this guard drops"]
#[derive(Debug)]
pub struct LabLock {
    _private: (),
}

/// Takes the host-wide lab lock, waiting for other tests (threads of this
/// process or other processes) to release it.
///
/// # Panics
/// When [`LOCK_PATH`] cannot be opened or locked.
pub fn lock() -> LabLock {
    LabLock::acquire()
}

impl LabLock {
    /// Takes the lock; see [`lock`].
    pub fn acquire() -> LabLock {
        let me = std::thread::current().id();
        let mut st = state();
        loop {
            match st.owner {
                None => break,
                Some(owner) if owner == me => {
                    st.depth += 1;
                    return LabLock { _private: () };
                }
                Some(_) => st = FREED.wait(st).unwrap_or_else(|e| e.into_inner()),
            }
        }
        st.owner = Some(me);
        st.depth = 1;
        drop(st);
        // Outside the mutex: waiting for another process can take long.
        let file = match flock_file() {
            Ok(f) => f,
            Err(e) => {
                release_ownership();
                panic!("cannot lock {LOCK_PATH}: {e}");
            }
        };
        state().file = Some(file);
        crate::netns::sweep_stale();
        LabLock { _private: () }
    }

    /// True when the current thread holds the lab lock.
    pub fn held() -> bool {
        state().owner == Some(std::thread::current().id())
    }
}

fn flock_file() -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_PATH)?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(file);
    }
    crate::warn(&format!("waiting for {LOCK_PATH} (another lab test runs)"));
    loop {
        // SAFETY: as above.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(file);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn release_ownership() {
    let mut st = state();
    st.owner = None;
    st.depth = 0;
    st.file = None;
    drop(st);
    FREED.notify_all();
}

impl Drop for LabLock {
    fn drop(&mut self) {
        let mut st = state();
        st.depth = st.depth.saturating_sub(1);
        if st.depth > 0 {
            return;
        }
        drop(st);
        crate::sysctl::restore_all_leaked();
        // Closing the file releases the flock.
        release_ownership();
    }
}
