//! The environment checks every command that touches the kernel makes first.

use std::process::Command;

/// Why cordon cannot touch the kernel here. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// Not running as root.
    #[error("cordon must run as root: it edits the kernel's firewall (try sudo)")]
    NotRoot,
    /// No `nft` binary.
    #[error("the nft command is missing: install nftables (apt-get install nftables)")]
    NoNft,
    /// `nft` runs but the kernel refuses nftables.
    #[error("the kernel refused nftables: {0}")]
    Kernel(String),
}

/// True when this process runs as root (effective uid 0): the one place
/// cordon asks.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Checks that this process is root and that nftables works.
pub fn check_environment() -> Result<(), EnvError> {
    if !is_root() {
        return Err(EnvError::NotRoot);
    }
    let out = match Command::new("nft").args(["list", "tables"]).output() {
        Ok(out) => out,
        Err(_) => return Err(EnvError::NoNft),
    };
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        return Err(EnvError::Kernel(
            msg.lines()
                .next()
                .unwrap_or("nft list tables failed")
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_root_is_the_effective_uid_the_kernel_shows() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let euid: u32 = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().nth(1))
            .and_then(|u| u.parse().ok())
            .unwrap();
        assert_eq!(super::is_root(), euid == 0);
    }
}
