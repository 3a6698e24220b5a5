//! CPU time, peak memory and OOM kills of a run, from a cgroup of its own.
//!
//! Each run's container gets `CgroupParent: /cordon-sandbox/<name>`. The
//! container's own cgroup disappears when it exits, but the parent keeps
//! the hierarchical totals: on cgroup v1 `cpuacct.usage`,
//! `memory.max_usage_in_bytes` and `memory.oom_control`'s `oom_kill`; on v2
//! `cpu.stat`'s `usage_usec`, `memory.peak` and `memory.events`'s
//! `oom_kill`. The parent is removed when the guard drops. With Docker's
//! systemd cgroup driver no parent is used and the figures are unknown.

use std::path::PathBuf;
use std::time::Duration;

const ROOT: &str = "/sys/fs/cgroup";

/// The parent cgroup of one run.
#[derive(Debug)]
pub struct RunCgroup {
    rel: String,
    v2: bool,
}

/// What the kernel counted for a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time of all its processes.
    pub cpu: Option<Duration>,
    /// Highest memory use in bytes (page cache and tmpfs included).
    pub peak_memory: Option<u64>,
    /// Processes the OOM killer ended.
    pub oom_kills: u64,
}

impl RunCgroup {
    /// The cgroup `/cordon-sandbox/<name>` (created by the runtime when the
    /// container starts).
    pub fn new(name: &str) -> RunCgroup {
        RunCgroup {
            rel: format!("cordon-sandbox/{name}"),
            v2: std::path::Path::new(ROOT)
                .join("cgroup.controllers")
                .exists(),
        }
    }

    /// The value for `HostConfig.CgroupParent`.
    pub fn parent(&self) -> String {
        format!("/{}", self.rel)
    }

    fn file(&self, controller: &str, name: &str) -> PathBuf {
        if self.v2 {
            PathBuf::from(ROOT).join(&self.rel).join(name)
        } else {
            PathBuf::from(ROOT)
                .join(controller)
                .join(&self.rel)
                .join(name)
        }
    }

    fn read(&self, controller: &str, name: &str) -> Option<String> {
        std::fs::read_to_string(self.file(controller, name)).ok()
    }

    /// CPU time so far.
    pub fn cpu(&self) -> Option<Duration> {
        if self.v2 {
            let usec = keyed(&self.read("", "cpu.stat")?, "usage_usec")?;
            Some(Duration::from_micros(usec))
        } else {
            let ns = self.read("cpuacct", "cpuacct.usage")?.trim().parse().ok()?;
            Some(Duration::from_nanos(ns))
        }
    }

    /// Everything counted so far.
    pub fn usage(&self) -> Usage {
        let (peak, oom) = if self.v2 {
            (
                self.read("", "memory.peak")
                    .and_then(|s| s.trim().parse().ok()),
                self.read("", "memory.events")
                    .and_then(|s| keyed(&s, "oom_kill")),
            )
        } else {
            (
                self.read("memory", "memory.max_usage_in_bytes")
                    .and_then(|s| s.trim().parse().ok()),
                self.read("memory", "memory.oom_control")
                    .and_then(|s| keyed(&s, "oom_kill")),
            )
        };
        Usage {
            cpu: self.cpu(),
            peak_memory: peak,
            oom_kills: oom.unwrap_or(0),
        }
    }
}

/// The value of `key` in a `key value` per line file.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        let dirs: Vec<PathBuf> = if self.v2 {
            vec![PathBuf::from(ROOT).join(&self.rel)]
        } else {
            std::fs::read_dir(ROOT)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path().join(&self.rel))
                .collect()
        };
        for d in dirs {
            if d.is_dir() {
                if let Err(e) = std::fs::remove_dir(&d) {
                    tracing::warn!("cannot remove cgroup {}: {e}", d.display());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files_parse() {
        let s = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(s, "oom_kill"), Some(3));
        assert_eq!(
            keyed("usage_usec 1500\nuser_usec 1000\n", "usage_usec"),
            Some(1500)
        );
        assert_eq!(keyed("a 1\n", "b"), None);
    }
}
