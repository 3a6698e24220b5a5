//! `cordon authz`: cordon as a Docker authorization plugin (see
//! docs/authz.md); a thin wrapper over `cordon-authz`.

use std::path::{Path, PathBuf};

use crate::{load, CmdResult, Failure};

/// Serves the plugin on `socket` until SIGINT or SIGTERM.
pub fn run(config: Option<&Path>, socket: Option<PathBuf>) -> CmdResult {
    let policy = load::policy(config)?;
    let socket = socket.unwrap_or_else(|| PathBuf::from(cordon_authz::serve::DEFAULT_SOCKET));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::env(format!("cordon authz: cannot start a runtime: {e}")))?;
    rt.block_on(cordon_authz::serve::serve(cordon_authz::serve::Options {
        socket,
        policy,
    }))
    .map_err(|e| Failure::env(format!("cordon authz: {e}")))
}
