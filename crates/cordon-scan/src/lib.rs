//! `cordon scan`: known vulnerabilities in the OS packages of Docker
//! images. The image is streamed out of the Docker API ([`export`]), its
//! layers stacked with their whiteouts ([`layers`]), its package databases
//! read ([`inventory`]) and matched against OSV records ([`osv`]) with
//! each ecosystem's version ordering ([`version`]), release by release
//! ([`matching`]), into [`findings`]. Nothing is downloaded at run time.

pub mod error;
pub mod export;
pub mod findings;
pub mod inventory;
pub mod layers;
pub mod matching;
pub mod osrelease;
pub mod osv;
pub mod pkgdb;
pub mod render;
pub mod severity;
pub mod version;

pub use error::ScanError;
pub use findings::{find, Finding};
pub use severity::Severity;
