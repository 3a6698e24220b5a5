//! cordon's DNS proxy started the way the daemon starts it, and, for
//! comparison only, the same proxy with a context that opens nothing.

use std::io::Write;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cordon_dns::allow::{Allowlist, DnsRule, Pattern};
use cordon_dns::answer::{Learned, Limits};
use cordon_dns::proxy::{Config, Context, Proxy};
use cordon_policy::PolicyFile;

/// The policy key the benchmark's clients are assigned to.
const KEY: &str = "bench";

/// The port of the proxy that opens nothing.
pub const NO_OPENING_PORT: u16 = 15354;

/// The daemon's view of the clients, without the firewall.
struct NoOpening(cordon_daemon::dns::Clients);

impl Context for NoOpening {
    fn policy_of(&self, src: IpAddr) -> Option<String> {
        self.0
            .read()
            .ok()?
            .by_addr
            .get(&src)
            .map(|c| c.key.chain_part().to_string())
    }

    fn allow(
        &self,
        _src: IpAddr,
        _rule: &DnsRule,
        _pattern: &Pattern,
        _learned: &[Learned],
    ) -> Result<(), String> {
        Ok(())
    }

    fn refused(&self, _src: IpAddr, _policy: &str, _name: &str) {}
}

/// The daemon's proxy settings with a context that opens nothing.
async fn start_without_opening(
    policy: &PolicyFile,
    clients: cordon_daemon::dns::Clients,
) -> Result<(), String> {
    let proxy = Arc::new(Proxy::new(
        Allowlist::from_policy(policy),
        Config {
            upstreams: cordon_daemon::dns::upstreams(policy),
            upstream_timeout: Duration::from_secs(2),
            limits: Limits::default(),
            nxdomain: false,
            ..Config::default()
        },
        Arc::new(NoOpening(clients)),
    ));
    let sock = tokio::net::UdpSocket::bind(("::", NO_OPENING_PORT))
        .await
        .map_err(|e| format!("port {NO_OPENING_PORT}: {e}"))?;
    tokio::spawn(cordon_dns::proxy::serve_udp(Arc::new(sock), proxy));
    Ok(())
}

/// Runs the daemon's DNS proxy for `policy_path` with `clients` assigned to
/// the policy `bench`, on a runtime like the daemon's, until killed. With
/// `opening`, exactly as the daemon does (`cordon_daemon::dns::start`);
/// without, `cordon_dns::proxy` with a context that opens nothing, on port
/// [`NO_OPENING_PORT`] (UDP only), to show what opening the firewall costs.
pub fn run(policy_path: &str, clients: &[String], opening: bool) -> Result<(), String> {
    let text = std::fs::read_to_string(policy_path).map_err(|e| format!("{policy_path}: {e}"))?;
    let policy = cordon_policy::parse(policy_path, &text).map_err(|d| {
        d.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let mut dir = cordon_daemon::directory::Directory::default();
    for c in clients {
        let ip: IpAddr = c.parse().map_err(|e| format!("client {c}: {e}"))?;
        dir.by_addr.insert(
            ip,
            cordon_daemon::directory::Client {
                key: cordon_ruleset::PolicyKey::Named(KEY.to_string()),
                policy: KEY.to_string(),
                container: format!("client-{c}"),
                id: String::new(),
            },
        );
    }
    let clients = Arc::new(RwLock::new(dir));
    // As crates/cordon-daemon/src/run.rs builds it.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async {
        // Kept alive (serving) until the process ends.
        let mut _service = None;
        if opening {
            let mut s = cordon_daemon::dns::DnsService::bind(
                clients,
                Default::default(),
                Default::default(),
            )
            .map_err(|e| e.to_string())?;
            s.serve(&policy);
            _service = Some(s);
        } else {
            start_without_opening(&policy, clients).await?;
        }
        println!("ready");
        let _ = std::io::stdout().flush();
        std::future::pending::<()>().await;
        Ok(())
    })
}
