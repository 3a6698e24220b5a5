//! br_netfilter: traffic between two containers on one bridge reaches the
//! inet hooks only when `net.bridge.bridge-nf-call-iptables` (and
//! `-ip6tables`) is 1. Docker sets it when it manages iptables; cordon sets
//! it when it is not, and remembers the old value for `cordon down`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde::{Deserialize, Serialize};

const KEYS: [&str; 2] = ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"];

/// Sysctl values cordon changed: key → the value before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// `bridge-nf-call-*` → previous value.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

/// A sysctl that could not be read or set.
#[derive(Debug, thiserror::Error)]
#[error("cannot set net.bridge.{key}: {message}")]
pub struct SysctlError {
    /// The key under net.bridge.
    pub key: String,
    /// Why.
    pub message: String,
}

/// br_netfilter switches under `/proc/sys/net/bridge` (of this process's
/// network namespace).
#[derive(Debug, Clone)]
pub struct BrNetfilter {
    dir: PathBuf,
}

impl Default for BrNetfilter {
    fn default() -> Self {
        BrNetfilter {
            dir: PathBuf::from("/proc/sys/net/bridge"),
        }
    }
}

impl BrNetfilter {
    /// Turns both switches on; returns what it changed (empty when they
    /// already were on).
    pub fn ensure(&self) -> Result<Saved, SysctlError> {
        if !self.dir.join(KEYS[0]).exists() {
            // Built as a module on most distributions.
            let _ = Command::new("modprobe").arg("br_netfilter").status();
        }
        let mut saved = Saved::default();
        for key in KEYS {
            let path = self.dir.join(key);
            let old = std::fs::read_to_string(&path).map_err(|e| SysctlError {
                key: key.into(),
                message: format!("{e} (is the br_netfilter module available?)"),
            })?;
            let old = old.trim().to_string();
            if old != "1" {
                std::fs::write(&path, "1").map_err(|e| SysctlError {
                    key: key.into(),
                    message: e.to_string(),
                })?;
                saved.values.insert(key.into(), old);
            }
        }
        Ok(saved)
    }

    /// Puts back values recorded by [`BrNetfilter::ensure`].
    pub fn restore(&self, saved: &Saved) -> Result<(), SysctlError> {
        for (key, value) in &saved.values {
            if !KEYS.contains(&key.as_str()) {
                continue;
            }
            std::fs::write(self.dir.join(key), value).map_err(|e| SysctlError {
                key: key.clone(),
                message: e.to_string(),
            })?;
        }
        Ok(())
    }
}
