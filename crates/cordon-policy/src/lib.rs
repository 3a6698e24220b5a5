//! cordon's policy language.
//!
//! [`parse`] turns the text of a policy file into a validated
//! [`PolicyFile`], or into every [`Diagnostic`] found, each located as
//! `FILE:LINE:COL: message`. [`PolicyFile::select`] decides which policy a
//! container gets.

pub mod ast;
pub mod dns_defaults;
mod glob;
mod parse;
mod peers;
pub mod print;
mod select;

use std::path::Path;

pub use ast::*;
pub use glob::glob_match;
pub use parse::parse;
pub use peers::{valid_name, RESERVED, RESERVED_NAMES};
pub use print::to_yaml;
pub use select::{Candidate, Selection};

/// The policy cordon runs on when no file is given: every container may
/// reach the internet and its user-defined networks, nothing else.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.yaml");

/// The name shown for the embedded default in messages.
pub const EMBEDDED_SOURCE: &str = "<embedded default>";

/// The embedded default, parsed.
pub fn embedded_default() -> PolicyFile {
    parse(EMBEDDED_SOURCE, EMBEDDED_DEFAULT).expect("the embedded default is valid")
}

/// Why a policy file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The path as given.
        path: String,
        /// The reason.
        error: std::io::Error,
    },
    /// The file is not a valid policy; every error found.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
}

/// Reads and parses a policy file.
pub fn load(path: &Path) -> Result<PolicyFile, LoadError> {
    read(path).map(|(p, _)| p)
}

/// Reads and parses a policy file; returns it with the text it was parsed
/// from (what cordon records as the policy in force).
pub fn read(path: &Path) -> Result<(PolicyFile, String), LoadError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| LoadError::Io {
        path: shown.clone(),
        error,
    })?;
    let policy = parse(&shown, &text).map_err(LoadError::Invalid)?;
    Ok((policy, text))
}

impl PolicyFile {
    /// The set with this name.
    pub fn set(&self, name: &str) -> Option<&NamedSet> {
        self.sets.iter().find(|s| s.name == name)
    }

    /// The policy with this name.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }
}
