//! `cordon daemon`, first version: a level-triggered reconciler.
//!
//! It installs the full ruleset at start, then re-applies whenever Docker
//! reports a container or network change, and every few seconds compares
//! what is installed with what should be (repairing a deleted table). Each
//! apply is one atomic transaction. Incremental element updates, boot-time
//! fail-closed install and the admin socket are the daemon issue's work.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bollard::query_parameters::EventsOptions;
use cordon_dataplane::{check_environment, Nft};
use futures_util::StreamExt;
use tracing::{info, warn};

use crate::{apply, load, CmdResult, Failure};

/// How often the installed ruleset is compared with the desired one.
const RECONCILE_EVERY: Duration = Duration::from_secs(2);
/// Events arriving within this window are handled by one apply.
const DEBOUNCE: Duration = Duration::from_millis(20);

/// Runs until interrupted.
pub fn run(config: Option<&Path>) -> CmdResult {
    let policy = load::policy(config)?;
    check_environment().map_err(Failure::env)?;
    let rt = load::runtime()?;
    rt.block_on(async move {
        let docker = cordon_docker::connect().await.map_err(Failure::env)?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(64);
        // Subscribe before the first listing so no change falls between.
        let mut filters = HashMap::new();
        filters.insert("type".to_string(), vec!["container".into(), "network".into()]);
        let mut events = docker.events(Some(EventsOptions {
            filters: Some(filters),
            ..Default::default()
        }));
        let watcher = tokio::spawn(async move {
            while let Some(ev) = events.next().await {
                match ev {
                    Ok(_) => {
                        let _ = tx.try_send(());
                    }
                    Err(e) => {
                        warn!("Docker event stream ended: {e}");
                        break;
                    }
                }
            }
        });
        let nft = Nft::host();
        let mut last: Option<cordon_compiler::nft::Ruleset> = None;
        let mut tick = tokio::time::interval(RECONCILE_EVERY);
        loop {
            let inv = cordon_docker::collect(&docker).await.map_err(Failure::env)?;
            let installed = nft.installed().map_err(Failure::env)?;
            let state = cordon_dataplane::StateDir::default();
            let compiled = apply::build(&policy, &inv, &state)?;
            if !installed || last.as_ref() != Some(&compiled.ruleset) {
                match apply::install_compiled(&compiled) {
                    Ok(()) => {
                        for w in &compiled.warnings {
                            warn!("{w}");
                        }
                        info!(
                            containers = compiled.assignments.len(),
                            repaired = !installed && last.is_some(),
                            "ruleset installed"
                        );
                        last = Some(compiled.ruleset);
                    }
                    Err(f) => warn!("apply failed, the previous ruleset stays: {}", f.message),
                }
            }
            if watcher.is_finished() {
                return Err(Failure::env("lost the Docker event stream; restart cordon daemon"));
            }
            tokio::select! {
                _ = rx.recv() => {
                    tokio::time::sleep(DEBOUNCE).await;
                    while rx.try_recv().is_ok() {}
                }
                _ = tick.tick() => {}
                _ = tokio::signal::ctrl_c() => {
                    info!("stopping; the installed ruleset stays in force (cordon down removes it)");
                    return Ok(());
                }
            }
        }
    })
}
