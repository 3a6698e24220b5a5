//! Host sysctls the lab changes, restored when no one needs them any more.
//!
//! [`SysctlGuard`]s count references per key: the first one records the
//! old value (and writes the new one only when it differs), the last one
//! dropped writes the old value back. Whatever a leaked guard still holds
//! is restored when the outermost [`LabLock`](crate::LabLock) is released.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

struct Entry {
    original: String,
    changed: bool,
    refs: usize,
}

static REGISTRY: Mutex<Option<HashMap<String, Entry>>> = Mutex::new(None);

fn registry() -> MutexGuard<'static, Option<HashMap<String, Entry>>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

/// Reads a sysctl (e.g. `net.ipv4.ip_forward`), trimmed.
pub fn read(key: &str) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(path(key))?.trim().to_string())
}

/// Keeps a host sysctl at a value; the old value comes back when the last
/// guard for that key drops.
#[must_use = "the sysctl is restored when this guard drops"]
#[derive(Debug)]
pub struct SysctlGuard {
    key: String,
}

impl SysctlGuard {
    /// Sets `key` (dotted, e.g. `net.ipv6.conf.all.forwarding`) to `value`.
    ///
    /// # Panics
    /// When the sysctl cannot be read or written.
    #[track_caller]
    pub fn set(key: &str, value: &str) -> SysctlGuard {
        let mut reg = registry();
        let map = reg.get_or_insert_with(HashMap::new);
        let current = read(key).unwrap_or_else(|e| panic!("cannot read sysctl {key}: {e}"));
        if current != value {
            std::fs::write(path(key), value)
                .unwrap_or_else(|e| panic!("cannot set sysctl {key}={value}: {e}"));
        }
        let entry = map.entry(key.to_string()).or_insert(Entry {
            original: current.clone(),
            changed: false,
            refs: 0,
        });
        entry.refs += 1;
        entry.changed |= current != value;
        SysctlGuard { key: key.into() }
    }

    /// The key this guard holds.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl Drop for SysctlGuard {
    fn drop(&mut self) {
        let mut reg = registry();
        let Some(map) = reg.as_mut() else { return };
        let Some(entry) = map.get_mut(&self.key) else {
            return;
        };
        entry.refs = entry.refs.saturating_sub(1);
        if entry.refs == 0 {
            let entry = map.remove(&self.key).expect("present");
            restore(&self.key, &entry);
        }
    }
}

fn restore(key: &str, entry: &Entry) {
    if entry.changed {
        if let Err(e) = std::fs::write(path(key), &entry.original) {
            crate::warn(&format!(
                "cannot restore sysctl {key}={}: {e}",
                entry.original
            ));
        }
    }
}

/// Restores every value still recorded (guards leaked past the lab lock).
pub(crate) fn restore_all_leaked() {
    let mut reg = registry();
    let Some(map) = reg.as_mut() else { return };
    for (key, entry) in map.drain() {
        crate::warn(&format!(
            "sysctl {key} still held when the lab lock was released; restoring it"
        ));
        restore(&key, &entry);
    }
}

/// IP forwarding on the host, on while this value lives.
#[must_use = "forwarding is restored when this guard drops"]
#[derive(Debug, Default)]
pub struct Forwarding {
    guards: Vec<SysctlGuard>,
}

impl Forwarding {
    /// `net.ipv4.ip_forward=1`.
    pub fn ipv4() -> Forwarding {
        Forwarding {
            guards: vec![SysctlGuard::set("net.ipv4.ip_forward", "1")],
        }
    }

    /// `net.ipv6.conf.all.forwarding=1`.
    pub fn ipv6() -> Forwarding {
        Forwarding {
            guards: vec![SysctlGuard::set("net.ipv6.conf.all.forwarding", "1")],
        }
    }

    /// Both.
    pub fn both() -> Forwarding {
        let mut f = Forwarding::ipv4();
        f.guards.extend(Forwarding::ipv6().guards);
        f
    }
}
