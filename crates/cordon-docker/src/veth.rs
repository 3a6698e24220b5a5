//! Finding each endpoint's host-side veth: the port on the bridge that *is*
//! the container, as far as cordon's rules are concerned.
//!
//! For every container with a pid, a dedicated, short-lived thread enters
//! the container's network namespace (`setns(2)` on `/proc/<pid>/ns/net`)
//! and lists its links. The link whose MAC is the one Docker assigned to an
//! endpoint is the container side of that endpoint's veth pair; its
//! `IFLA_LINK` is the ifindex of the host side, which the host's own link
//! list names. The netns of the caller, of tokio's workers and of the main
//! thread is never changed.
//!
//! The match is checked from both ends so that nothing the container does
//! inside its namespace can make cordon pick another port: both links must
//! be veths, the container side's peer must live in cordon's own namespace
//! (`IFLA_LINK_NETNSID`), the host side's peer must be the container side,
//! and the host side must be a port of the endpoint's bridge. An endpoint
//! that fails any check keeps `host_iface: None` and is cut off.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use cordon_inventory::{Container, Shown};
use nix::sched::{setns, CloneFlags};

use crate::error::DockerError;
use crate::netlink::{dump_links, netns_id, Link};

/// Why an endpoint's host-side interface could not be determined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// No link in the container has the endpoint's MAC (the container
    /// changed it, or the endpoint is gone).
    #[error("no interface in the container has MAC {0}")]
    NoLinkWithMac(String),
    /// The link with the MAC is not a veth.
    #[error("{0} in the container is not a veth")]
    NotVeth(String),
    /// The link's peer is not in cordon's network namespace.
    #[error("the peer of {0} in the container is not in the host's network namespace")]
    PeerNotOnHost(String),
    /// The host has no link with the peer's ifindex.
    #[error("the host has no interface with index {0}")]
    NoHostLink(u32),
    /// The host link is not the other end of the container's veth.
    #[error("host interface {0} is not the peer of the container's veth")]
    NotPeers(String),
    /// The host link is not a port of the endpoint's bridge.
    #[error("host interface {iface} is on {found} instead of bridge {expected}")]
    WrongBridge {
        /// The host-side interface.
        iface: String,
        /// Its master, or `no bridge`.
        found: String,
        /// The bridge of the endpoint's network.
        expected: String,
    },
    /// More than one link passes every check.
    #[error("several interfaces in the container have MAC {0}")]
    Ambiguous(String),
}

/// Finds the host-side interface of the endpoint with MAC `mac`.
///
/// - `container_links`: the links of the container's network namespace;
/// - `host_nsid`: the id the container's namespace gives the host's
///   namespace (`None` when it gives it none, in which case no peer can be
///   on the host);
/// - `host_links`: the links of the host's namespace;
/// - `bridge`: the bridge of the endpoint's network, when it has one; the
///   host side must then be its port.
///
/// Pure: this is the whole matching logic, without any system call.
pub fn match_host_iface<'h>(
    mac: &str,
    bridge: Option<&str>,
    container_links: &[Link],
    host_nsid: Option<i32>,
    host_links: &'h [Link],
) -> Result<&'h Link, MatchError> {
    let mac = mac.to_ascii_lowercase();
    let mut found: Vec<&'h Link> = Vec::new();
    let mut first_error = None;
    for link in container_links
        .iter()
        .filter(|l| l.mac.as_deref() == Some(mac.as_str()))
    {
        match check_candidate(link, bridge, host_nsid, host_links) {
            Ok(host) => found.push(host),
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    match found.len() {
        1 => Ok(found[0]),
        0 => Err(first_error.unwrap_or(MatchError::NoLinkWithMac(mac))),
        _ => Err(MatchError::Ambiguous(mac)),
    }
}

fn check_candidate<'h>(
    link: &Link,
    bridge: Option<&str>,
    host_nsid: Option<i32>,
    host_links: &'h [Link],
) -> Result<&'h Link, MatchError> {
    if !link.is_veth() {
        return Err(MatchError::NotVeth(link.name.clone()));
    }
    if host_nsid.is_none() || link.link_netnsid != host_nsid {
        return Err(MatchError::PeerNotOnHost(link.name.clone()));
    }
    let peer = link.iflink_or_self();
    let host = host_links
        .iter()
        .find(|h| h.index == peer)
        .ok_or(MatchError::NoHostLink(peer))?;
    if !host.is_veth() || host.iflink_or_self() != link.index {
        return Err(MatchError::NotPeers(host.name.clone()));
    }
    if let Some(expected) = bridge {
        let master = host
            .master
            .and_then(|m| host_links.iter().find(|h| h.index == m));
        if master.map(|m| m.name.as_str()) != Some(expected) {
            return Err(MatchError::WrongBridge {
                iface: host.name.clone(),
                found: master.map_or_else(|| "no bridge".to_string(), |m| m.name.clone()),
                expected: expected.to_string(),
            });
        }
    }
    Ok(host)
}

/// What one container's namespace looks like from inside.
struct NetnsView {
    links: Vec<Link>,
    host_nsid: Option<i32>,
}

/// Why a container's namespace could not be looked at.
#[derive(Debug)]
enum NetnsError {
    /// Not allowed to open or enter it (not root).
    Permission(io::Error),
    /// The process is gone, or anything else.
    Other(String),
}

impl std::fmt::Display for NetnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetnsError::Permission(err) => write!(f, "{err}"),
            NetnsError::Other(reason) => f.write_str(reason),
        }
    }
}

fn io_to_netns(what: &str, err: io::Error) -> NetnsError {
    match err.kind() {
        io::ErrorKind::PermissionDenied => NetnsError::Permission(err),
        _ => NetnsError::Other(format!("{what}: {err}")),
    }
}

/// Everything the dedicated thread brings back.
struct Survey {
    host_links: Vec<Link>,
    views: Vec<(usize, Result<NetnsView, NetnsError>)>,
}

/// Runs on the dedicated thread: lists the host's links, then enters each
/// container's namespace in turn. The thread's namespace is left changed;
/// the thread ends right after.
fn survey(jobs: Vec<(usize, u32)>) -> Result<Survey, DockerError> {
    let host_err = |e: io::Error| DockerError::HostLinks {
        reason: e.to_string(),
    };
    let host_ns = File::open("/proc/thread-self/ns/net").map_err(host_err)?;
    let host_ino = host_ns.metadata().map_err(host_err)?.ino();
    let host_links = dump_links().map_err(host_err)?;
    let views = jobs
        .into_iter()
        .map(|(idx, pid)| (idx, enter_and_list(pid, &host_ns, host_ino)))
        .collect();
    Ok(Survey { host_links, views })
}

fn enter_and_list(pid: u32, host_ns: &File, host_ino: u64) -> Result<NetnsView, NetnsError> {
    let path = format!("/proc/{pid}/ns/net");
    let ns = File::open(&path).map_err(|e| io_to_netns(&path, e))?;
    let ino = ns.metadata().map_err(|e| io_to_netns(&path, e))?.ino();
    if ino == host_ino {
        return Err(NetnsError::Other(format!(
            "pid {pid} is in the host's network namespace"
        )));
    }
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
        .map_err(|errno| io_to_netns("entering its network namespace", io::Error::from(errno)))?;
    let links = dump_links().map_err(|e| io_to_netns("listing its links", e))?;
    // Asked after the dump: dumping a veth whose peer is on the host makes
    // the kernel assign the host's namespace an id here.
    let host_nsid =
        netns_id(host_ns.as_fd()).map_err(|e| io_to_netns("asking for the host's netns id", e))?;
    Ok(NetnsView { links, host_nsid })
}

/// Fills [`Endpoint::host_iface`](cordon_inventory::Endpoint::host_iface)
/// for the endpoints of `containers` that have a MAC and a bridge, and
/// clears it for all others.
///
/// Blocking: the namespaces are entered on a dedicated thread, spawned and
/// joined here. A container whose namespace cannot be entered (it exited
/// meanwhile, or cordon is not root) keeps `None` with a warning, as does an
/// endpoint whose interface fails a check (see [`match_host_iface`]) or that
/// two endpoints would share. Fails only when the host's own links cannot
/// be listed.
pub fn find_host_ifaces(containers: &mut [Container]) -> Result<(), DockerError> {
    for ep in containers.iter_mut().flat_map(|c| c.endpoints.iter_mut()) {
        ep.host_iface = None;
    }
    let jobs: Vec<(usize, u32)> = containers
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.endpoints
                .iter()
                .any(|e| e.mac.is_some() && e.bridge.is_some())
        })
        .filter_map(|(i, c)| c.pid.filter(|&p| p > 0).map(|p| (i, p)))
        .collect();
    if jobs.is_empty() {
        return Ok(());
    }
    let survey = std::thread::Builder::new()
        .name("cordon-netns".into())
        .spawn(move || survey(jobs))
        .map_err(|e| DockerError::HostLinks {
            reason: format!("cannot start a thread: {e}"),
        })?
        .join()
        .map_err(|_| DockerError::HostLinks {
            reason: "the namespace thread panicked".into(),
        })??;
    apply(containers, survey);
    Ok(())
}

/// Writes the matches into the containers and logs what was not found.
fn apply(containers: &mut [Container], survey: Survey) {
    let mut denied = Vec::new();
    for (idx, view) in survey.views {
        let container = &mut containers[idx];
        let view = match view {
            Ok(view) => view,
            Err(NetnsError::Permission(err)) => {
                denied.push((container.name.clone(), err));
                continue;
            }
            Err(err) => {
                tracing::warn!(
                    container = %Shown(&container.name),
                    "cannot enter the container's network namespace ({err}); its endpoints are cut off"
                );
                continue;
            }
        };
        for ep in &mut container.endpoints {
            let (Some(mac), Some(bridge)) = (ep.mac.as_deref(), ep.bridge.as_deref()) else {
                continue;
            };
            match match_host_iface(
                mac,
                Some(bridge),
                &view.links,
                view.host_nsid,
                &survey.host_links,
            ) {
                Ok(host) => ep.host_iface = Some(host.name.clone()),
                Err(err) => tracing::warn!(
                    container = %Shown(&container.name),
                    network = %Shown(&ep.network),
                    "host interface not found ({err}); the endpoint is cut off"
                ),
            }
        }
    }
    if let Some((first, err)) = denied.first() {
        tracing::warn!(
            containers = denied.len(),
            "cannot enter containers' network namespaces ({err}, first: {first}); run cordon as root. Their endpoints are cut off"
        );
    }
    clear_shared(containers);
}

/// An interface claimed by two endpoints identifies neither: both are
/// cleared.
fn clear_shared(containers: &mut [Container]) {
    let mut uses: HashMap<String, usize> = HashMap::new();
    for ep in containers.iter().flat_map(|c| &c.endpoints) {
        if let Some(iface) = &ep.host_iface {
            *uses.entry(iface.clone()).or_default() += 1;
        }
    }
    for c in containers.iter_mut() {
        for ep in &mut c.endpoints {
            if let Some(iface) = &ep.host_iface {
                if uses[iface] > 1 {
                    tracing::warn!(
                        container = %Shown(&c.name),
                        network = %Shown(&ep.network),
                        "host interface {iface} is claimed by several endpoints; the endpoint is cut off"
                    );
                    ep.host_iface = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_inventory::Endpoint;

    const MAC: &str = "02:42:0a:e7:01:02";
    const HOST_NSID: i32 = 0;

    fn link(index: u32, name: &str, mac: &str, kind: &str) -> Link {
        Link {
            index,
            name: name.into(),
            mac: Some(mac.into()),
            kind: Some(kind.into()),
            ..Link::default()
        }
    }

    /// The host: eth0 (2), br-x (3), a veth on br-x (10) and one on docker0 (12).
    fn host() -> Vec<Link> {
        let mut eth0 = link(2, "eth0", "02:fc:00:00:00:01", "");
        eth0.kind = None;
        let br = link(3, "br-x", "02:42:00:00:00:03", "bridge");
        let docker0 = link(4, "docker0", "02:42:00:00:00:04", "bridge");
        let mut v10 = link(10, "veth10", "aa:00:00:00:00:10", "veth");
        v10.iflink = Some(9);
        v10.link_netnsid = Some(0);
        v10.master = Some(3);
        let mut v12 = link(12, "veth12", "aa:00:00:00:00:12", "veth");
        v12.iflink = Some(11);
        v12.link_netnsid = Some(1);
        v12.master = Some(4);
        vec![eth0, br, docker0, v10, v12]
    }

    /// The container: lo and eth0 (9), the peer of veth10.
    fn container() -> Vec<Link> {
        let lo = link(1, "lo", "00:00:00:00:00:00", "");
        let mut eth0 = link(9, "eth0", MAC, "veth");
        eth0.iflink = Some(10);
        eth0.link_netnsid = Some(HOST_NSID);
        vec![lo, eth0]
    }

    #[test]
    fn mac_leads_to_the_host_veth() {
        let host = host();
        let got = match_host_iface(MAC, Some("br-x"), &container(), Some(HOST_NSID), &host);
        assert_eq!(got.unwrap().name, "veth10");
        // Docker may report the MAC in upper case.
        let upper = MAC.to_uppercase();
        let got = match_host_iface(&upper, None, &container(), Some(HOST_NSID), &host);
        assert_eq!(got.unwrap().name, "veth10");
    }

    #[test]
    fn changed_mac_is_not_found() {
        let host = host();
        let err = match_host_iface(
            "02:42:de:ad:be:ef",
            Some("br-x"),
            &container(),
            Some(HOST_NSID),
            &host,
        );
        assert_eq!(
            err.unwrap_err(),
            MatchError::NoLinkWithMac("02:42:de:ad:be:ef".into())
        );
    }

    #[test]
    fn wrong_bridge_is_refused() {
        let host = host();
        let err = match_host_iface(MAC, Some("docker0"), &container(), Some(HOST_NSID), &host);
        assert_eq!(
            err.unwrap_err().to_string(),
            "host interface veth10 is on br-x instead of bridge docker0"
        );
    }

    #[test]
    fn non_veth_with_the_mac_is_refused() {
        // A dummy (or macvlan) the container made with Docker's MAC, whose
        // IFLA_LINK happens to name a host veth.
        let host = host();
        let mut fake = link(9, "dummy0", MAC, "dummy");
        fake.iflink = Some(10);
        fake.link_netnsid = Some(HOST_NSID);
        let err = match_host_iface(MAC, Some("br-x"), &[fake], Some(HOST_NSID), &host);
        assert_eq!(err.unwrap_err(), MatchError::NotVeth("dummy0".into()));
    }

    #[test]
    fn veth_pair_inside_the_container_is_refused() {
        // A veth pair made inside the container, crafted so that its
        // indexes mirror a host veth: its peer is not on the host.
        let host = host();
        let mut fake = link(9, "fake0", MAC, "veth");
        fake.iflink = Some(10);
        let err = match_host_iface(MAC, Some("br-x"), &[fake.clone()], Some(HOST_NSID), &host);
        assert_eq!(err.unwrap_err(), MatchError::PeerNotOnHost("fake0".into()));
        // Its peer in yet another namespace: another id.
        fake.link_netnsid = Some(HOST_NSID + 5);
        let err = match_host_iface(MAC, Some("br-x"), &[fake.clone()], Some(HOST_NSID), &host);
        assert_eq!(err.unwrap_err(), MatchError::PeerNotOnHost("fake0".into()));
        // Host namespace unknown to the container: nothing matches.
        fake.link_netnsid = Some(HOST_NSID);
        let err = match_host_iface(MAC, Some("br-x"), &[fake], None, &host);
        assert_eq!(err.unwrap_err(), MatchError::PeerNotOnHost("fake0".into()));
    }

    #[test]
    fn peer_must_point_back() {
        let host = host();
        let mut eth0 = container().remove(1);
        eth0.index = 7; // veth10's peer is 9, not 7
        let err = match_host_iface(MAC, Some("br-x"), &[eth0.clone()], Some(HOST_NSID), &host);
        assert_eq!(err.unwrap_err(), MatchError::NotPeers("veth10".into()));
        eth0.index = 9;
        eth0.iflink = Some(99);
        let err = match_host_iface(MAC, Some("br-x"), &[eth0], Some(HOST_NSID), &host);
        assert_eq!(err.unwrap_err(), MatchError::NoHostLink(99));
    }

    #[test]
    fn two_good_candidates_are_ambiguous() {
        let mut host = host();
        let mut v20 = link(20, "veth20", "aa:00:00:00:00:20", "veth");
        v20.iflink = Some(19);
        v20.master = Some(3);
        host.push(v20);
        let mut links = container();
        let mut eth1 = link(19, "eth1", MAC, "veth");
        eth1.iflink = Some(20);
        eth1.link_netnsid = Some(HOST_NSID);
        links.push(eth1);
        let err = match_host_iface(MAC, Some("br-x"), &links, Some(HOST_NSID), &host);
        assert_eq!(err.unwrap_err(), MatchError::Ambiguous(MAC.into()));
    }

    #[test]
    fn a_good_candidate_wins_over_a_bad_one() {
        let host = host();
        let mut links = container();
        links.push(link(30, "dummy0", MAC, "dummy"));
        let got = match_host_iface(MAC, Some("br-x"), &links, Some(HOST_NSID), &host);
        assert_eq!(got.unwrap().name, "veth10");
    }

    #[test]
    fn shared_interface_is_cleared() {
        let ep = |iface: &str| Endpoint {
            network: "n".into(),
            host_iface: Some(iface.into()),
            ..Endpoint::default()
        };
        let mut containers = vec![
            Container {
                name: "a".into(),
                endpoints: vec![ep("veth1"), ep("veth2")],
                ..Container::default()
            },
            Container {
                name: "b".into(),
                endpoints: vec![ep("veth1")],
                ..Container::default()
            },
        ];
        clear_shared(&mut containers);
        assert_eq!(containers[0].endpoints[0].host_iface, None);
        assert_eq!(
            containers[0].endpoints[1].host_iface.as_deref(),
            Some("veth2")
        );
        assert_eq!(containers[1].endpoints[0].host_iface, None);
    }

    #[test]
    fn nothing_to_find_spawns_nothing() {
        // No pid, no MAC: no thread, no namespace, no error, even unprivileged.
        let mut containers = vec![Container {
            name: "hostnet".into(),
            network_mode: "host".into(),
            endpoints: vec![Endpoint {
                network: "host".into(),
                host_iface: Some("stale".into()),
                ..Endpoint::default()
            }],
            ..Container::default()
        }];
        find_host_ifaces(&mut containers).unwrap();
        assert_eq!(containers[0].endpoints[0].host_iface, None);
    }
}
