//! cordon's small persistent state: live set edits and the sysctl values it
//! changed, written atomically (temporary file, then rename).

use std::path::{Path, PathBuf};

use cordon_compiler::SetOverrides;
use serde::{de::DeserializeOwned, Serialize};

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
        std::fs::write(&tmp, text).map_err(|e| err(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| err(&path, e))
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
    fn corrupt_state_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sets.json"), "{nope").unwrap();
        let e = StateDir::at(dir.path()).set_overrides().unwrap_err();
        assert!(e.to_string().contains("sets.json"), "{e}");
    }
}
