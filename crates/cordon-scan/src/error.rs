//! What can go wrong in a scan, each with a one-line message.

/// A scan failure.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The vulnerability database cannot be read.
    #[error("{path}: {message}")]
    Db {
        /// The file (or `archive.zip:entry`), with `:LINE:COLUMN` for a
        /// malformed record.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Docker has no such image.
    #[error("no such image: {0}")]
    NoImage(String),
    /// The Docker API failed.
    #[error("Docker: {0}")]
    Docker(String),
    /// The image export is not a `docker save` archive cordon can read.
    #[error("image {image}: {message}")]
    Export {
        /// The image.
        image: String,
        /// What is wrong.
        message: String,
    },
}
