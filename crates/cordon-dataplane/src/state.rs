//! cordon's small persistent state: the policy in force, live set edits and
//! the sysctl values it changed, written atomically (temporary file,
//! fsync, rename, fsync of the directory).

use std::path::{Path, PathBuf};

use cordon_compiler::SetOverrides;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::sysctl::Saved;

/// The directory holding cordon's state (`/var/lib/cordon`, or
/// `$CORDON_STATE_DIR`).
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// State that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct StateError {
    /// The file.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// The policy a ruleset was installed from, as `apply`, `daemon`, `boot`
/// and `reload` record it: the commands that read a policy without `-c`
/// take this one, so they never act on another policy than the kernel's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InForce {
    /// The file's path (`<embedded default>` for the embedded one).
    pub path: String,
    /// Its content when it was installed.
    pub content: String,
    /// The SHA-256 of `content`, in hex.
    pub sha256: String,
    /// When it was installed, in seconds since the epoch.
    pub since: u64,
}

impl InForce {
    /// The record for `content` read from `path`, installed now.
    pub fn new(path: &str, content: &str) -> InForce {
        InForce {
            path: path.to_string(),
            content: content.to_string(),
            sha256: sha256_hex(content),
            since: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    /// `/srv/p.yaml (sha256 1a2b3c4d5e6f, in force since 10:02:11)`, the
    /// time in UTC (`YYYY-MM-DD HH:MM:SS` when not today).
    pub fn describe(&self) -> String {
        format!(
            "{} (sha256 {}, in force since {})",
            self.path,
            &self.sha256[..self.sha256.len().min(12)],
            since_text(self.since)
        )
    }
}

/// The SHA-256 of `text`, in lower-case hex.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A time as `HH:MM:SS` UTC when it is today, else `YYYY-MM-DD HH:MM:SS`.
fn since_text(secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let full = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
    )
    .to_string();
    // 2026-11-30T10:02:11Z
    let (date, time) = full.split_once('T').unwrap_or((&full, ""));
    let time = time.trim_end_matches('Z');
    if secs / 86_400 == now / 86_400 {
        format!("{time} UTC")
    } else {
        format!("{date} {time} UTC")
    }
}

impl Default for StateDir {
    fn default() -> Self {
        let root = std::env::var_os("CORDON_STATE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/lib/cordon"));
        StateDir { root }
    }
}

impl StateDir {
    /// A state directory at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The policy last installed, if any was recorded.
    pub fn in_force(&self) -> Result<Option<InForce>, StateError> {
        self.read("policy.json")
    }

    /// Records the policy just installed.
    pub fn save_in_force(&self, p: &InForce) -> Result<(), StateError> {
        self.write("policy.json", p)
    }

    /// Live set edits (empty when none were made).
    pub fn set_overrides(&self) -> Result<SetOverrides, StateError> {
        self.read("sets.json")
    }

    /// Saves live set edits.
    pub fn save_set_overrides(&self, o: &SetOverrides) -> Result<(), StateError> {
        self.write("sets.json", o)
    }

    /// The sysctl values cordon changed, to restore on `cordon down`.
    pub fn saved_sysctls(&self) -> Result<Saved, StateError> {
        self.read("sysctl.json")
    }

    /// Records the sysctl values cordon changed.
    pub fn save_sysctls(&self, s: &Saved) -> Result<(), StateError> {
        self.write("sysctl.json", s)
    }

    /// Forgets the recorded sysctl values (after restoring them).
    pub fn clear_sysctls(&self) -> Result<(), StateError> {
        let path = self.root.join("sysctl.json");
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(err(&path, e)),
        }
    }

    fn read<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T, StateError> {
        let path = self.root.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| err(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
            Err(e) => Err(err(&path, e)),
        }
    }

    fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StateError> {
        std::fs::create_dir_all(&self.root).map_err(|e| err(&self.root, e))?;
        let path = self.root.join(name);
        let tmp = self.root.join(format!(".{name}.tmp"));
        let text = serde_json::to_string_pretty(value).expect("state serialises");
        {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp).map_err(|e| err(&tmp, e))?;
            f.write_all(text.as_bytes()).map_err(|e| err(&tmp, e))?;
            f.sync_all().map_err(|e| err(&tmp, e))?;
        }
        std::fs::rename(&tmp, &path).map_err(|e| err(&path, e))?;
        // The rename itself is durable once the directory is synced.
        std::fs::File::open(&self.root)
            .and_then(|d| d.sync_all())
            .map_err(|e| err(&self.root, e))
    }
}

fn err(path: &Path, e: impl std::fmt::Display) -> StateError {
    StateError {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_round_trip_and_default_when_absent() {
        let dir = tempfile::tempdir().unwrap();
        let st = StateDir::at(dir.path().join("state"));
        assert_eq!(st.set_overrides().unwrap(), SetOverrides::default());
        let mut o = SetOverrides::default();
        o.add("office", "203.0.113.7/32".parse().unwrap());
        st.save_set_overrides(&o).unwrap();
        assert_eq!(st.set_overrides().unwrap(), o);
    }

    #[test]
    fn the_policy_in_force_round_trips_with_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let st = StateDir::at(dir.path().join("state"));
        assert_eq!(st.in_force().unwrap(), None);
        let p = InForce::new("/srv/p.yaml", "version: 1\n");
        assert_eq!(p.sha256.len(), 64);
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        st.save_in_force(&p).unwrap();
        assert_eq!(st.in_force().unwrap(), Some(p.clone()));
        let shown = p.describe();
        assert!(
            shown.starts_with(&format!(
                "/srv/p.yaml (sha256 {}, in force since ",
                &p.sha256[..12]
            )),
            "{shown}"
        );
        assert!(!dir.path().join("state/.policy.json.tmp").exists());
    }

    #[test]
    fn corrupt_state_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sets.json"), "{nope").unwrap();
        let e = StateDir::at(dir.path()).set_overrides().unwrap_err();
        assert!(e.to_string().contains("sets.json"), "{e}");
    }
}
