//! The daemon's main loop.
//!
//! One task owns the [`Engine`]; everything that changes the kernel reaches
//! it as a message: Docker events (batched: all pending events are applied,
//! then one sync), foreign changes to cordon's tables seen by the nftables
//! monitor ([`crate::watch`]; repaired at once), a periodic reconcile, and
//! admin requests. When Docker goes away the installed ruleset stays in force and
//! the daemon reconnects, then lists everything again.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use cordon_dataplane::{Nft, StateDir};
use cordon_inventory::Shown;
use cordon_policy::PolicyFile;
use cordon_ruleset::nft::Family;
use cordon_ruleset::TABLE;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::admin::{self, Pending, Request, Response};
use crate::engine::{Engine, Outcome};
use crate::follow::{self, Change, Event};
use crate::observe::Observe;
use crate::{sets, status, DaemonError};
use std::sync::Arc;

/// The wait before the first retry after Docker could not be reached or
/// listed, and before reconnecting when its event stream is lost: short,
/// so a restarted dockerd is followed again within a fraction of a second.
const RECONNECT_FIRST: Duration = Duration::from_millis(250);

/// The longest wait between two attempts to reach Docker (the wait doubles
/// from [`RECONNECT_FIRST`] up to this). The installed ruleset stays in
/// force meanwhile, so a longer wait only delays the first sync once Docker
/// is back; 5 s keeps that delay short without spinning on a dead socket.
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// Admin requests (status, set, reload, a metrics scrape) waiting for the
/// main loop, which answers one between two of its steps. Each client waits
/// for its answer, so few queue at once; when full, senders wait
/// (back-pressure) instead of the queue growing.
const ADMIN_QUEUE: usize = 16;

/// The async runtime's worker threads: the main loop plus the admin socket,
/// the metrics listener, the DNS proxy and the drop log's task. Two keep
/// the sockets answering while the main loop waits on nft, on a host whose
/// cores belong to its containers.
const WORKER_THREADS: usize = 2;

/// How the daemon runs.
pub struct Options {
    /// The policy in force.
    pub policy: PolicyFile,
    /// Where it was read from and its text (recorded as the policy in
    /// force once installed; `cordon reload` re-reads that path).
    pub source: cordon_dataplane::InForce,
    /// The admin socket's path.
    pub socket: PathBuf,
    /// How often the kernel is compared with the desired state even when
    /// nothing was reported.
    pub reconcile_every: Duration,
    /// Where the state lives.
    pub state: StateDir,
    /// A loopback address to serve `GET /metrics` on, if any.
    pub metrics: Option<std::net::SocketAddr>,
    /// The bearer token every request to `metrics` must show, if any (see
    /// [`crate::metrics::read_token`]).
    pub metrics_token: Option<String>,
}

/// Runs until SIGINT or SIGTERM. The installed ruleset stays in force
/// after it returns (`cordon down` removes it).
pub fn run(opts: Options) -> Result<(), DaemonError> {
    crate::memory::configure();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .enable_all()
        .build()
        .map_err(|source| DaemonError::Setup {
            what: "start the async runtime",
            source,
        })?;
    rt.block_on(main_loop(opts))
}

async fn main_loop(opts: Options) -> Result<(), DaemonError> {
    let (admin_tx, mut admin_rx) = mpsc::channel::<Pending>(ADMIN_QUEUE);
    let obs = Arc::new(Observe::default());
    // The metrics port first: an error there leaves nothing behind.
    if let Some(addr) = opts.metrics {
        if !addr.ip().is_loopback() {
            return Err(DaemonError::MetricsNotLoopback(addr));
        }
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DaemonError::MetricsBind { addr, source })?;
        if opts.metrics_token.is_none() {
            warn!(%addr, "metrics over HTTP without a token: every local user can read them (container names, policies, drops); give --metrics-token-file, or use `cordon metrics`");
        }
        let token = opts.metrics_token.clone();
        tokio::spawn(crate::metrics::serve_http(l, admin_tx.clone(), token));
        info!(%addr, "metrics at http://{addr}/metrics");
    }
    let listener = admin::bind(&opts.socket)?;
    tokio::spawn(admin::serve(listener, admin_tx, obs.clone()));

    // Foreign changes to cordon's tables, from a thread of its own.
    let (watched, mut mon_rx) =
        crate::watch::start(&Nft::host()).map_err(|source| DaemonError::Setup {
            what: "watch nftables",
            source,
        })?;

    let clients: crate::dns::Clients = Default::default();
    let mut engine = Engine::new(opts.policy, Nft::host(), opts.state);
    engine.follow(watched);
    engine.set_in_force(opts.source);
    engine.share_clients(clients.clone());
    crate::observe::start(obs.clone(), clients.clone());
    let mut dns = Dns {
        service: None,
        l7: None,
        clients,
        generation: engine.generation(),
        obs: obs.clone(),
    };
    dns.prepare(engine.policy())?;
    dns.follow(engine.policy());
    let mut tick = tokio::time::interval(opts.reconcile_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| DaemonError::Setup {
            what: "catch SIGTERM",
            source,
        })?;
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|source| DaemonError::Setup {
            what: "catch SIGHUP",
            source,
        })?;
    let mut docker: Option<Docker> = None;
    let (_, mut ev_rx) = mpsc::unbounded_channel::<Result<Event, String>>();
    let mut backoff = RECONNECT_FIRST;
    let mut next_connect = Instant::now();
    // No sync before Docker has been listed once: an empty inventory would
    // cut off the running containers.
    let mut synced = false;

    loop {
        if docker.is_none() && Instant::now() >= next_connect {
            match connect_and_list(&mut engine).await {
                Ok((d, since)) => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    ev_rx = rx;
                    tokio::spawn(follow::pump(d.clone(), since, tx));
                    docker = Some(d);
                    backoff = RECONNECT_FIRST;
                    synced = true;
                    let first = engine.sync();
                    if first.is_ok() {
                        notify_ready();
                    }
                    log_outcome("initial sync", first, &engine);
                }
                Err(e) => {
                    warn!(
                        "{}; the installed ruleset stays in force, retrying in {backoff:?}",
                        Shown(&e.to_string())
                    );
                    next_connect = Instant::now() + backoff;
                    backoff = (backoff * 2).min(RECONNECT_MAX);
                }
            }
        }
        let wait_connect = tokio::time::sleep_until(next_connect.into());
        tokio::select! {
            ev = ev_rx.recv(), if docker.is_some() => {
                let mut batch = Vec::new();
                let mut lost = None;
                match ev {
                    Some(Ok(e)) => batch.push(e),
                    Some(Err(why)) => lost = Some(why),
                    None => lost = Some("the event stream ended".into()),
                }
                while let Ok(more) = ev_rx.try_recv() {
                    match more {
                        Ok(e) => batch.push(e),
                        Err(why) => lost = Some(why),
                    }
                }
                if let Some(d) = &docker {
                    if !batch.is_empty() {
                        handle_events(d, &mut engine, &batch, &obs).await;
                    }
                }
                if let Some(why) = lost {
                    warn!(
                        "{}; the installed ruleset stays in force, reconnecting",
                        Shown(&why.to_string())
                    );
                    docker = None;
                    next_connect = Instant::now() + RECONNECT_FIRST;
                }
            }
            _ = mon_rx.recv() => {
                // Several notifications may be queued: what they reported
                // is merged, and repaired once.
                while mon_rx.try_recv().is_ok() {}
                if synced {
                    let t = Instant::now();
                    let r = engine.repair_reported();
                    obs.reconcile_seconds.observe(t.elapsed().as_secs_f64());
                    log_outcome("repair", r, &engine);
                }
            }
            _ = tick.tick() => {
                if synced {
                    let t = Instant::now();
                    let r = engine.reconcile_if_committed();
                    obs.reconcile_seconds.observe(t.elapsed().as_secs_f64());
                    log_outcome("reconcile", r, &engine);
                }
            }
            req = admin_rx.recv() => {
                if let Some((req, reply)) = req {
                    let _ = reply.send(handle_admin(&mut engine, &mut dns, &obs, req));
                }
            }
            _ = sighup.recv() => {
                // As `cordon reload`: the daemon's own file, read again.
                let r = reload(&mut engine, &mut dns, None);
                if r.code != 0 {
                    warn!("SIGHUP: {}", r.message.lines().next().unwrap_or(""));
                }
            }
            _ = wait_connect, if docker.is_none() => {}
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
        }
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    info!("stopping; the installed ruleset stays in force (cordon down removes it)");
    let _ = std::fs::remove_file(&opts.socket);
    Ok(())
}

/// The DNS proxy, while the policy in force names DNS names, and the L7
/// proxy, while it has rules with `match: server-name`.
struct Dns {
    service: Option<crate::dns::DnsService>,
    l7: Option<crate::l7::L7Service>,
    clients: crate::dns::Clients,
    generation: crate::dns::Generation,
    obs: Arc<Observe>,
}

impl Dns {
    fn names_dns(policy: &PolicyFile) -> bool {
        cordon_dns::allow::Allowlist::from_policy(policy) != Default::default()
    }

    /// Before `policy` goes in: its proxy's port is bound when it names DNS
    /// names.
    fn prepare(&mut self, policy: &PolicyFile) -> Result<(), DaemonError> {
        if Self::names_dns(policy) && self.service.is_none() {
            self.service = Some(crate::dns::DnsService::bind(
                self.clients.clone(),
                self.generation.clone(),
                self.obs.clone(),
            )?);
        }
        if let (true, None, Some(dns)) = (crate::l7::wanted(policy), &self.l7, &self.service) {
            self.l7 = Some(crate::l7::L7Service::bind(
                self.clients.clone(),
                dns.learned(),
                self.obs.clone(),
            )?);
        }
        Ok(())
    }

    /// Once `policy` is in force: the proxy serves with it, or is gone
    /// when it names no DNS names.
    fn follow(&mut self, policy: &PolicyFile) {
        if !crate::l7::wanted(policy) {
            if self.l7.take().is_some() {
                info!("L7 proxy stopped: the policy in force has no server-name rule");
            }
        } else if let Some(l7) = &mut self.l7 {
            l7.serve(policy);
        }
        if !Self::names_dns(policy) {
            if self.service.take().is_some() {
                info!("DNS proxy stopped: the policy in force names no DNS names");
            }
            return;
        }
        if let Some(s) = &mut self.service {
            s.serve(policy);
        }
    }
}

/// Tells systemd (`Type=notify`) the daemon is ready: its first ruleset is
/// installed. Sent once; nothing happens outside systemd.
fn notify_ready() {
    static SENT: std::sync::Once = std::sync::Once::new();
    SENT.call_once(|| {
        if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
            warn!("cannot tell systemd the daemon is ready: {e}");
        }
    });
}

/// Connects to Docker, subscribes (from a second before now) and lists
/// everything. Returns the client and the subscription's `since`.
async fn connect_and_list(engine: &mut Engine) -> Result<(Docker, String), DaemonError> {
    let docker = cordon_docker::connect().await?;
    let since = follow::since(1);
    let inv = cordon_docker::collect(&docker).await?;
    info!(
        containers = inv.containers.len(),
        networks = inv.networks.len(),
        "listed Docker"
    );
    engine.set_inventory(inv);
    Ok((docker, since))
}

/// Applies a batch of events, then syncs once.
async fn handle_events(docker: &Docker, engine: &mut Engine, batch: &[Event], obs: &Observe) {
    let mut relist = batch.iter().any(|e| e.change == Change::Networks);
    let mut todo: Vec<&Change> = Vec::new();
    let mut seen = BTreeSet::new();
    // The last change per container wins.
    for e in batch.iter().rev() {
        let id = match &e.change {
            Change::Container(id) | Change::Gone(id) | Change::Attached(id) => id,
            Change::Networks => continue,
        };
        if seen.insert(id.clone()) {
            todo.push(&e.change);
        }
    }
    if !relist {
        for change in todo.into_iter().rev() {
            match change {
                Change::Gone(id) => {
                    engine.remove_container(id);
                }
                Change::Attached(id) if !engine.has_container(id) => {}
                Change::Container(id) | Change::Attached(id) => {
                    let networks = engine.inventory().networks.clone();
                    match cordon_docker::single::container(docker, id, &networks).await {
                        Ok(c) => {
                            // An endpoint on a network cordon has not listed
                            // yet: list everything, so its bridge is managed.
                            let unknown = c.as_ref().is_some_and(|c| {
                                c.endpoints
                                    .iter()
                                    .any(|ep| !networks.iter().any(|n| n.name == ep.network))
                            });
                            if unknown {
                                relist = true;
                                break;
                            }
                            engine.put_container(id, c);
                        }
                        Err(e) => {
                            warn!(container = %Shown(id), error = %Shown(&e.to_string()), "cannot inspect a container; listing everything again");
                            relist = true;
                            break;
                        }
                    }
                }
                Change::Networks => {}
            }
        }
    }
    if relist {
        match cordon_docker::collect(docker).await {
            Ok(inv) => engine.set_inventory(inv),
            Err(e) => {
                warn!("{}; keeping the previous inventory", Shown(&e.to_string()));
                return;
            }
        }
    }
    let result = engine.sync();
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    if let Some(first) = batch
        .iter()
        .filter(|e| e.time_nano > 0)
        .min_by_key(|e| e.time_nano)
    {
        // From Docker's event to the policy live in the kernel.
        let lag_us = (now_ns - first.time_nano).max(0) / 1000;
        let handled_us = first.received.elapsed().as_micros() as u64;
        debug!(events = batch.len(), lag_us, handled_us, "events applied");
        if result.is_ok() {
            obs.event_lag_seconds.observe(lag_us as f64 / 1e6);
            info!(target: "cordon::latency", events = batch.len(), lag_us, handled_us, "policy live");
        }
    }
    log_outcome("event", result, engine);
}

fn log_outcome(what: &str, r: Result<Outcome, DaemonError>, engine: &Engine) {
    match r {
        Ok(Outcome::Unchanged) => debug!("{what}: nothing to change"),
        Ok(Outcome::Elements(n)) => debug!(
            containers = engine.inventory().containers.len(),
            "{what}: {n} element(s) changed"
        ),
        Ok(Outcome::Replaced(why)) => info!("{what}: tables replaced ({why})"),
        Err(e) => warn!("{what}: {}", Shown(&e.to_string())),
    }
}

/// The status as the daemon sees it: the kernel's counters, plus what the
/// drop log saw of each container.
fn daemon_status(engine: &Engine, obs: &Observe) -> status::Status {
    let nft = Nft::host();
    let inet = nft
        .read_table(Family::Inet, TABLE, &status::keys)
        .ok()
        .flatten();
    let bridge = nft
        .read_table(Family::Bridge, TABLE, &status::keys)
        .ok()
        .flatten();
    let assignments = engine
        .compiled()
        .map(|c| c.assignments.clone())
        .unwrap_or_default();
    let mut s = status::build("daemon", &assignments, inet.as_ref(), bridge.as_ref());
    s.daemon = Some(engine.stats.clone());
    s.policy = engine.in_force().map(cordon_dataplane::InForce::describe);
    let r = obs.recorder.lock().unwrap_or_else(|p| p.into_inner());
    let logged = r.logged_by_container();
    for c in &mut s.containers {
        c.last_drop = r.last().get(&c.name).cloned();
        c.logged = Some(
            ["egress", "ingress", "other"]
                .iter()
                .filter_map(|side| logged.get(&(c.name.clone(), *side)))
                .sum(),
        );
    }
    s
}

/// Re-reads the daemon's policy file, or `path` (which then becomes the
/// daemon's file), and puts it in force. An unreadable or invalid file
/// changes nothing: the answer carries every located error (exit 1), the
/// log one line.
fn reload(engine: &mut Engine, dns: &mut Dns, path: Option<&str>) -> Response {
    let own = engine.in_force().map(|p| p.path.clone());
    let path = match path.map(String::from).or(own) {
        Some(p) => p,
        None => cordon_policy::EMBEDDED_SOURCE.to_string(),
    };
    let read = if path == cordon_policy::EMBEDDED_SOURCE {
        Ok((
            cordon_policy::embedded_default(),
            cordon_policy::EMBEDDED_DEFAULT.to_string(),
        ))
    } else {
        cordon_policy::read(std::path::Path::new(&path))
    };
    let (policy, text) = match read {
        Ok(r) => r,
        Err(e) => {
            let code = match e {
                cordon_policy::LoadError::Invalid(_) => 1,
                cordon_policy::LoadError::Io { .. } => 2,
            };
            let message = e.to_string();
            warn!(
                file = %path,
                errors = message.lines().count(),
                "reload refused: the policy in force stays"
            );
            return Response::error(code, message);
        }
    };
    let t = Instant::now();
    // The DNS proxy's port first: a policy that names DNS names and cannot
    // get its proxy changes nothing.
    if let Err(e) = dns.prepare(&policy) {
        warn!(file = %path, "reload refused: {e}");
        return Response::error(
            2,
            format!("reload of {path} refused, the policy in force stays: {e}"),
        );
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
    let result = engine.reload(policy, cordon_dataplane::InForce::new(&path, &text));
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    match result {
        Ok(outcome) => {
            dns.follow(engine.policy());
            let took = t.elapsed();
            info!(file = %path, ?outcome, ?took, "policy reloaded");
            Response {
                message: format!("reloaded {path} in {:.1} ms", took.as_secs_f64() * 1e3),
                policy: engine.in_force().cloned(),
                ..Default::default()
            }
        }
        Err(e) => {
            warn!(file = %path, "reload failed, the policy in force stays: {e}");
            Response::error(
                2,
                format!("reload of {path} failed, the policy in force stays: {e}"),
            )
        }
    }
}

fn handle_admin(engine: &mut Engine, dns: &mut Dns, obs: &Observe, req: Request) -> Response {
    match req {
        Request::Status => Response {
            status: Some(daemon_status(engine, obs)),
            ..Default::default()
        },
        Request::Policy => Response {
            policy: engine.in_force().cloned(),
            ..Default::default()
        },
        Request::Reload { path } => reload(engine, dns, path.as_deref()),
        Request::Metrics => {
            let s = daemon_status(engine, obs);
            Response {
                metrics: Some(crate::metrics::render(&s, &engine.stats, obs)),
                ..Default::default()
            }
        }
        Request::Suggest { since_ms } => {
            let flows = obs
                .recorder
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .flows(since_ms);
            Response {
                suggestion: Some(crate::suggest::suggest(
                    engine.policy(),
                    engine.inventory(),
                    &flows,
                    &obs.names(),
                )),
                ..Default::default()
            }
        }
        // Answered by the admin task itself.
        Request::Logs { .. } => Response::error(2, "logs are served by the admin socket"),
        Request::Set { name, op, addrs } => {
            let overrides = match engine.overrides() {
                Ok(o) => o,
                Err(e) => return Response::error(2, e.to_string()),
            };
            let new = match sets::edited(engine.policy(), &overrides, &name, op, &addrs) {
                Ok(n) => n,
                Err(e) => return Response::error(1, e.0),
            };
            let members = match sets::members(engine.policy(), &new, &name) {
                Ok(m) => m,
                Err(e) => return Response::error(1, e.0),
            };
            if op != sets::Op::List {
                if let Err(e) = engine.set_overrides(new) {
                    return Response::error(2, e.to_string());
                }
                if let Err(e) = engine.sync() {
                    // Put the record back: the kernel did not change.
                    let _ = engine.set_overrides(overrides);
                    return Response::error(2, e.to_string());
                }
            }
            Response {
                message: format!("set {name}: {} member(s)", members.len()),
                members: Some(members.iter().map(ToString::to_string).collect()),
                ..Default::default()
            }
        }
    }
}
