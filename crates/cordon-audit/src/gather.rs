//! Gathering the facts once: the Engine API (`/info`, `/version`, the
//! default bridge, container and image inspect, image history, all
//! concurrently), the daemon's command line and `daemon.json`, host files,
//! and each container's `/proc/<pid>`.

use std::collections::BTreeMap;

use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::Docker;
use cordon_docker::dockerd::Dockerd;
use cordon_policy::PolicyFile;
use futures_util::stream::{self, StreamExt};

use crate::checks::{files, host};
use crate::facts::{ContainerFacts, CordonFacts, Facts, HostFacts, ImageFacts};
use crate::flags::DaemonConfig;
use crate::hostfs::{self, Names};
use crate::procfs;

/// How many API requests run at once.
const PARALLEL: usize = 16;

/// What to gather.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only these containers (names or ids); every running one when empty.
    pub containers: Vec<String>,
    /// The policy to measure coverage against.
    pub policy: Option<PolicyFile>,
    /// Whether cordon's table is installed, when the caller could tell
    /// (`Err` says why it could not).
    pub table_installed: Option<Result<bool, String>>,
}

/// Why gathering failed.
#[derive(Debug)]
pub enum GatherError {
    /// A container named with `--container` does not exist.
    NoContainer(String, String),
    /// The Engine API failed.
    Api(String),
}

impl std::fmt::Display for GatherError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GatherError::NoContainer(n, e) => {
                write!(f, "no container {n}: {e} (list them with `docker ps`)")
            }
            GatherError::Api(e) => write!(f, "{e}"),
        }
    }
}

/// Gathers every fact; `warnings` receives what could not be read.
pub async fn gather(
    docker: &Docker,
    scope: Scope,
    warnings: &mut Vec<String>,
) -> Result<Facts, GatherError> {
    let api = |what: &str, e: bollard::errors::Error| {
        GatherError::Api(format!(
            "cannot {what}: {e} (is dockerd running and reachable?)"
        ))
    };
    let (info, version, bridge, daemon, ids, listed) = tokio::join!(
        docker.info(),
        docker.version(),
        docker.inspect_network(
            "bridge",
            None::<bollard::query_parameters::InspectNetworkOptions>
        ),
        cordon_docker::dockerd::find(docker),
        container_ids(docker, &scope.containers),
        docker.list_networks(None::<bollard::query_parameters::ListNetworksOptions>),
    );
    // Docker's network list, raw (bridge names, for CORDON-3) and as the
    // inventory sees it (drivers, for CORDON-2); `None` when unlisted.
    let (raw_networks, networks) = match listed {
        Ok(list) => {
            let seen = list
                .iter()
                .map(|n| cordon_docker::inventory::network_from(n, false))
                .collect();
            (list, Some(seen))
        }
        Err(e) => {
            warnings.push(format!("cannot list Docker's networks: {e}"));
            (Vec::new(), None)
        }
    };
    let info = info.map_err(|e| api("ask Docker for /info", e))?;
    let version = version.map_err(|e| api("ask Docker for /version", e))?;
    let ids = ids?;
    let inspected: Vec<_> = stream::iter(ids)
        .map(|(name, id)| async move { (name, docker.inspect_container(&id, None).await) })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let mut containers = Vec::new();
    for (name, r) in inspected {
        match r {
            Ok(i) => containers.push(i),
            // Gone between listing and inspecting: not an error unless named.
            Err(e) if scope.containers.contains(&name) => {
                return Err(GatherError::NoContainer(name, e.to_string()))
            }
            Err(e) => warnings.push(format!("container {name} vanished: {e}")),
        }
    }
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    let mut image_ids: Vec<String> = containers.iter().filter_map(|c| c.image.clone()).collect();
    image_ids.sort();
    image_ids.dedup();
    let images: BTreeMap<String, ImageFacts> = stream::iter(image_ids)
        .map(|id| async move {
            let (i, h) = tokio::join!(docker.inspect_image(&id), docker.image_history(&id));
            (id, i, h)
        })
        .buffer_unordered(PARALLEL)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .filter_map(|(id, i, h)| match i {
            Ok(inspect) => Some((
                id,
                ImageFacts {
                    inspect,
                    history: h.unwrap_or_default(),
                },
            )),
            Err(e) => {
                warnings.push(format!("cannot inspect image {id}: {e}"));
                None
            }
        })
        .collect();

    let dockerd = match daemon {
        Ok(p) => Some(p),
        Err(e) => {
            warnings.push(format!(
                "dockerd not identified ({e}): daemon settings unknown"
            ));
            None
        }
    };
    let daemon = dockerd.as_ref().map(daemon_config);
    if let Some(e) = daemon.as_ref().and_then(|d| d.json_error.clone()) {
        warnings.push(e);
    }
    let commands = procfs::commands_by_pid_ns();
    let mut host = host_facts(dockerd.as_ref(), daemon.as_ref());
    host.docker_proxies = commands
        .values()
        .flatten()
        .filter(|c| *c == "docker-proxy")
        .count();
    host.cap_bnd = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| procfs::parse_status(&s).cap_bnd)
        .unwrap_or(crate::caps::all(40));
    let containers = containers
        .into_iter()
        .map(|inspect| {
            let pid = inspect
                .state
                .as_ref()
                .filter(|s| s.running == Some(true))
                .and_then(|s| s.pid)
                .and_then(|p| u32::try_from(p).ok())
                .filter(|p| *p > 0);
            let proc = pid.and_then(|p| procfs::read(p, &commands));
            ContainerFacts { inspect, proc }
        })
        .collect();
    let (table_installed, table_error) = match scope.table_installed {
        Some(Ok(b)) => (Some(b), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    Ok(Facts {
        info,
        version,
        daemon,
        default_bridge: bridge.ok(),
        networks: raw_networks,
        host,
        containers,
        images,
        cordon: CordonFacts {
            policy: scope.policy,
            table_installed,
            table_error,
            networks,
        },
    })
}

/// (name as asked or listed, id) of the containers to audit.
async fn container_ids(
    docker: &Docker,
    named: &[String],
) -> Result<Vec<(String, String)>, GatherError> {
    if !named.is_empty() {
        return Ok(named.iter().map(|n| (n.clone(), n.clone())).collect());
    }
    let list = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(false).build()))
        .await
        .map_err(|e| {
            GatherError::Api(format!("cannot list containers: {e} (is dockerd running?)"))
        })?;
    Ok(list
        .into_iter()
        .filter_map(|c| {
            let id = c.id?;
            let name = c
                .names
                .and_then(|n| n.first().cloned())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_else(|| id.clone());
            Some((name, id))
        })
        .collect())
}

fn daemon_config(p: &Dockerd) -> DaemonConfig {
    let (json, json_error) = match std::fs::read_to_string(&p.config_path) {
        Ok(t) => match serde_json::from_str::<serde_json::Value>(&t) {
            Ok(serde_json::Value::Object(m)) => (Some(m), None),
            Ok(_) => (None, Some(format!("{}: not a JSON object", p.config_file))),
            Err(e) => (None, Some(format!("{}: {e}", p.config_file))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
        Err(e) => (None, Some(format!("cannot read {}: {e}", p.config_file))),
    };
    DaemonConfig {
        pid: p.pid,
        flags: DaemonConfig::parse_args(&p.args),
        config_file: p.config_file.clone(),
        json,
        json_error,
    }
}

/// Where dockerd's binary is looked for when the daemon could not be
/// identified (its `/proc/<pid>/exe` is the answer otherwise).
pub const DOCKERD_PATHS: [&str; 3] = [
    "/usr/bin/dockerd",
    "/usr/sbin/dockerd",
    "/usr/local/bin/dockerd",
];

/// Where containerd's socket is looked for when the daemon could not be
/// identified: the system containerd's, then Docker's own managed one's.
pub const CONTAINERD_SOCKETS: [&str; 2] = [
    cordon_docker::dockerd::SYSTEM_CONTAINERD_SOCKET,
    "/run/docker/containerd/containerd.sock",
];

/// Where the container runtime's programs (CIS 1.1.14–1.1.18) are looked
/// for, in this order; the first found is taken with its symlinks
/// resolved (Debian's `/usr/bin/runc` links to `/usr/sbin/runc`: a watch
/// on the link does not see runc run).
pub const BINARY_DIRS: [&str; 6] = [
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/bin",
    "/sbin",
];

/// Where program `name` really is: the first of [`BINARY_DIRS`] that has
/// it, symlinks resolved.
pub fn find_binary(name: &str) -> Option<String> {
    BINARY_DIRS
        .iter()
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.exists())
        .and_then(|p| std::fs::canonicalize(p).ok())
        .map(|p| p.display().to_string())
}

fn first_existing(paths: &[&str]) -> Option<String> {
    paths
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
}

/// Host files, units, audit rules, groups, mounts, namespaces; where
/// dockerd is identified, its binary, its containerd and its mounts.
fn host_facts(dockerd: Option<&Dockerd>, daemon: Option<&DaemonConfig>) -> HostFacts {
    let names = Names::system();
    let mountinfo = dockerd
        .and_then(|d| std::fs::read_to_string(format!("/proc/{}/mountinfo", d.pid)).ok())
        .or_else(|| std::fs::read_to_string("/proc/self/mountinfo").ok())
        .unwrap_or_default();
    let mut h = HostFacts {
        units: hostfs::unit_files(&["docker.service", "docker.socket"]),
        audit_rules: hostfs::audit_rules(),
        mounts: procfs::mounts(&mountinfo),
        docker_group: names.members_with_primary("docker"),
        namespaces: procfs::namespaces("/proc/self"),
        apparmor: hostfs::apparmor_enabled(),
        docker_socket: cordon_docker::dockerd::socket_path().map(|p| p.display().to_string()),
        containerd_socket: match dockerd {
            Some(d) => Some(d.containerd_socket.clone()),
            None => first_existing(&CONTAINERD_SOCKETS),
        },
        dockerd_binary: dockerd
            .and_then(|d| d.exe.clone())
            .or_else(|| first_existing(&DOCKERD_PATHS)),
        binaries: host::AUDITED
            .iter()
            .filter_map(|(_, _, w)| match w {
                host::Watched::Binary(name) => find_binary(name).map(|p| (name.to_string(), p)),
                _ => None,
            })
            .collect(),
        ..Default::default()
    };
    h.audit_watched = h
        .audit_rules
        .as_deref()
        .map(hostfs::watched_paths)
        .unwrap_or_default()
        .iter()
        .map(|p| hostfs::resolve_watch(p))
        .collect();
    let mut paths: Vec<String> = files::paths_of_interest(&h, daemon);
    paths.extend(host::AUDITED.iter().filter_map(|(_, _, w)| w.path(&h)));
    paths.extend(h.units.values().cloned());
    for dir in files::TREES {
        paths.extend(walk(dir, 2));
    }
    for p in paths {
        let st = hostfs::stat(&p, &names);
        h.files.insert(p, st);
    }
    h
}

/// Files below `dir`, `depth` levels deep.
fn walk(dir: &str, depth: usize) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path().display().to_string();
        if e.file_type().is_ok_and(|t| t.is_dir()) && depth > 0 {
            out.extend(walk(&p, depth - 1));
        } else {
            out.push(p);
        }
    }
    out
}
