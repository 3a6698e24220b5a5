//! `cordon sandbox`: runs untrusted code in a Docker container locked down
//! as tightly as a container can be, with hard limits and a verdict.
//!
//! The security defaults live in [`Profile::default()`] (one documented
//! field per attack it stops); [`seccomp`] generates the syscall filter;
//! [`Sandbox::run`] creates the container through the Engine API, copies
//! files in, attaches stdin/stdout/stderr, starts it, enforces the limits,
//! reads the cgroup's figures, classifies the end ([`Verdict`]) and always
//! removes the container. [`server`] serves the same over HTTP, with an
//! optional [`pool`] of warm containers.

pub mod cgroup;
pub mod config;
pub mod container;
pub mod encoding;
pub mod files;
pub mod image;
pub mod pool;
pub mod profile;
pub mod run;
pub mod seccomp;
pub mod server;
pub mod supervise;
pub mod sweep;
pub mod uid;
pub mod verdict;
pub mod workdir;

use std::path::PathBuf;

pub use files::InputFile;
pub use profile::{Limits, Network, Profile};
pub use run::{RunRequest, Sandbox};
pub use supervise::{OutputKind, OutputSink, StdinSource};
pub use verdict::{Status, Verdict};

/// Where the sandbox keeps its host state (uid locks, work directories):
/// `$CORDON_SANDBOX_STATE`, else `/run/cordon/sandbox`.
pub fn state_dir() -> PathBuf {
    std::env::var_os("CORDON_SANDBOX_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/cordon/sandbox"))
}

/// Why a run could not happen at all (as opposed to a [`Verdict`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request is wrong (bad file name, unknown runtime, missing
    /// image): the caller must change it.
    #[error("{0}")]
    Invalid(String),
    /// Docker or the host failed.
    #[error("{0}")]
    Env(String),
}
