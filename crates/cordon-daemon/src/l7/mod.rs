//! The daemon's side of the L7 proxy (`cordon-l7`, rules with `match:
//! server-name`): the listeners on the host's port
//! [`L7_PROXY_PORT`](cordon_ruleset::L7_PROXY_PORT), IPv4 and IPv6, the
//! decision ([`decide`]), the addresses learned per rule ([`learned`]) and
//! what is logged and counted ([`report`]).
//!
//! Only connections the ruleset redirected reach the listeners (`egress_host`
//! drops any other container connection to the port). A reload swaps the
//! rules the decider reads; a new `l7.max_connections_per_container` restarts
//! the listeners (connections being relayed carry on).

pub mod decide;
pub mod learned;
pub mod report;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use cordon_l7::budget::Budget;
use cordon_l7::{Limits, Proxy};
use cordon_policy::PolicyFile;
use cordon_ruleset::L7_PROXY_PORT;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::directory::Shared;
use crate::observe::Observe;
use crate::DaemonError;
use decide::{PolicyDecider, Rules};
use learned::Learned;

/// True when `policy` has a rule with `match: server-name`.
pub fn wanted(policy: &PolicyFile) -> bool {
    std::iter::once(&policy.default)
        .chain(policy.policies.iter().map(|p| &p.body))
        .any(|b| b.egress.iter().any(|r| r.server_name))
}

/// The addresses the proxy listens on: both families' wildcards.
fn addrs() -> [SocketAddr; 2] {
    [
        SocketAddr::from(([0, 0, 0, 0], L7_PROXY_PORT)),
        SocketAddr::from(([0u16; 8], L7_PROXY_PORT)),
    ]
}

/// Binds the listeners: both families, or IPv4 alone when the host has no
/// IPv6.
fn bind() -> std::io::Result<Proxy> {
    let [v4, v6] = addrs();
    Proxy::bind(&[v4, v6]).or_else(|e| {
        let proxy = Proxy::bind(&[v4]).map_err(|_| e)?;
        warn!("L7 proxy: IPv4 only (cannot listen on [::]:{L7_PROXY_PORT})");
        Ok(proxy)
    })
}

/// The L7 proxy of the running daemon.
pub struct L7Service {
    /// Bound, not serving yet.
    bound: Option<Proxy>,
    stop: Option<watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
    rules: Arc<RwLock<Arc<Rules>>>,
    per_container: usize,
    /// The proxy's share of the daemon's descriptors, one for every
    /// restart of the listeners (connections outlive them).
    budget: Arc<Budget>,
    dir: Shared,
    learned: Arc<Learned>,
    obs: Arc<Observe>,
}

impl L7Service {
    /// Binds the proxy's port; serves nothing until [`L7Service::serve`].
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub fn bind(
        dir: Shared,
        learned: Arc<Learned>,
        obs: Arc<Observe>,
    ) -> Result<L7Service, DaemonError> {
        // Each relayed connection holds two sockets and two pipes.
        if let Err(e) = cordon_l7::raise_nofile_limit() {
            warn!("L7 proxy: cannot raise the open-files limit: {e}");
        }
        Ok(L7Service {
            bound: Some(bind().map_err(DaemonError::L7Proxy)?),
            stop: None,
            task: None,
            rules: Default::default(),
            per_container: 0,
            budget: Budget::of_process(None),
            dir,
            learned,
            obs,
        })
    }

    /// Serves `policy`'s server-name rules (on the current runtime), in
    /// place of those served until now.
    pub fn serve(&mut self, policy: &PolicyFile) {
        let rules = Rules::from_policy(policy);
        let per_container = rules.per_container;
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rules);
        if self.task.is_some() && per_container == self.per_container {
            return;
        }
        self.per_container = per_container;
        let limits = Limits {
            per_source: per_container,
            ..Limits::default()
        };
        let decider = Arc::new(PolicyDecider {
            rules: self.rules.clone(),
            dir: self.dir.clone(),
            learned: self.learned.clone(),
            obs: self.obs.clone(),
        });
        let observer = report::observer(self.obs.clone(), self.dir.clone());
        let (tx, rx) = watch::channel(false);
        if let Some(old) = self.stop.replace(tx) {
            let _ = old.send(true);
        }
        let bound = self.bound.take();
        let previous = self.task.take();
        let budget = self.budget.clone();
        self.task = Some(tokio::spawn(async move {
            let proxy = match bound {
                Some(p) => p,
                None => {
                    // A new cap: the old listeners close first.
                    if let Some(t) = previous {
                        let _ = t.await;
                    }
                    match bind() {
                        Ok(p) => p,
                        Err(e) => {
                            warn!("L7 proxy on port {L7_PROXY_PORT} not restarted: {e}");
                            return;
                        }
                    }
                }
            };
            proxy
                .with_budget(budget)
                .serve(limits, decider, observer, rx)
                .await;
        }));
        info!(
            port = L7_PROXY_PORT,
            per_container, "L7 proxy serving (rules with match: server-name)"
        );
    }
}

impl Drop for L7Service {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
    }
}
