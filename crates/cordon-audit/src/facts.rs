//! Everything the checks look at, gathered once (see [`crate::gather`]).
//!
//! Checks are pure functions of these facts, so they are tested from
//! fixtures built in code, without Docker.

use std::collections::BTreeMap;

use bollard::models::{
    ContainerInspectResponse, ImageHistoryResponseItem, ImageInspect, Network, NetworkInspect,
    SystemInfo, SystemVersion,
};
use cordon_policy::PolicyFile;

use crate::flags::DaemonConfig;

/// The facts of one audit.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// `GET /info`.
    pub info: SystemInfo,
    /// `GET /version`.
    pub version: SystemVersion,
    /// The daemon's command line and `daemon.json`, when the process
    /// answering the socket was identified.
    pub daemon: Option<DaemonConfig>,
    /// The default `bridge` network (`GET /networks/bridge`).
    pub default_bridge: Option<NetworkInspect>,
    /// Every network (`GET /networks`).
    pub networks: Vec<Network>,
    /// Host files, mounts, audit rules, namespaces.
    pub host: HostFacts,
    /// The audited containers.
    pub containers: Vec<ContainerFacts>,
    /// The images of the audited containers, by image id.
    pub images: BTreeMap<String, ImageFacts>,
    /// The cordon policy and whether its tables are installed.
    pub cordon: CordonFacts,
}

/// A file's type, owner and mode, from `lstat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFact {
    /// `file`, `dir`, `socket`, `symlink` or `other`.
    pub kind: &'static str,
    /// Permission bits (`0o660`).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
    /// Owner name (or the number).
    pub owner: String,
    /// Group name (or the number).
    pub group: String,
}

/// What the host itself shows.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// Files of interest by path; `None` when absent.
    pub files: BTreeMap<String, Option<FileFact>>,
    /// The docker.service / docker.socket unit files found, by unit name.
    pub units: BTreeMap<String, String>,
    /// The text of the audit rules (`/etc/audit/audit.rules` and
    /// `/etc/audit/rules.d/*.rules`); `None` when there are none.
    pub audit_rules: Option<String>,
    /// The paths the audit rules watch, as the kernel resolves them (see
    /// [`crate::hostfs::resolve_watch`]).
    pub audit_watched: Vec<String>,
    /// The mounts dockerd sees (`/proc/<dockerd pid>/mountinfo`, else
    /// this process's).
    pub mounts: Vec<crate::procfs::Mount>,
    /// Members of the `docker` group, when it exists.
    pub docker_group: Option<Vec<String>>,
    /// This process's namespaces (`net`, `pid`, …) by inode.
    pub namespaces: BTreeMap<String, u64>,
    /// AppArmor is enabled in the kernel.
    pub apparmor: bool,
    /// Number of running `docker-proxy` processes.
    pub docker_proxies: usize,
    /// The Docker socket cordon talked to.
    pub docker_socket: Option<String>,
    /// The socket of the containerd dockerd uses (its `--containerd`, its
    /// own managed containerd's, or the system one's), where found.
    pub containerd_socket: Option<String>,
    /// dockerd's binary (`/proc/<pid>/exe`), where found.
    pub dockerd_binary: Option<String>,
    /// The container runtime's programs (`containerd`, `runc`, …) by
    /// name: where each really is, symlinks resolved (see
    /// [`crate::gather::BINARY_DIRS`]); absent when not found.
    pub binaries: BTreeMap<String, String>,
    /// The auditor's own capability bounding set (the host's): what a
    /// privileged container gets.
    pub cap_bnd: u64,
}

/// One container's facts.
#[derive(Debug, Clone, Default)]
pub struct ContainerFacts {
    /// `GET /containers/{id}/json`.
    pub inspect: ContainerInspectResponse,
    /// What `/proc/<pid>` shows, when it runs.
    pub proc: Option<ProcFacts>,
}

impl ContainerFacts {
    /// The name without Docker's leading `/`.
    pub fn name(&self) -> &str {
        self.inspect
            .name
            .as_deref()
            .unwrap_or("")
            .trim_start_matches('/')
    }

    /// The image id it runs.
    pub fn image_id(&self) -> &str {
        self.inspect.image.as_deref().unwrap_or("")
    }

    /// `HostConfig`, or an empty one.
    pub fn host_config(&self) -> std::borrow::Cow<'_, bollard::models::HostConfig> {
        match &self.inspect.host_config {
            Some(h) => std::borrow::Cow::Borrowed(h),
            None => std::borrow::Cow::Owned(Default::default()),
        }
    }

    /// `Config`, or an empty one.
    pub fn config(&self) -> std::borrow::Cow<'_, bollard::models::ContainerConfig> {
        match &self.inspect.config {
            Some(c) => std::borrow::Cow::Borrowed(c),
            None => std::borrow::Cow::Owned(Default::default()),
        }
    }
}

/// A container's main process as the kernel shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcFacts {
    /// Its pid on the host.
    pub pid: u32,
    /// `Seccomp:` of `/proc/<pid>/status` (0 none, 1 strict, 2 filter).
    pub seccomp: Option<u8>,
    /// `NoNewPrivs:`.
    pub no_new_privs: Option<bool>,
    /// `CapEff:`.
    pub cap_eff: Option<u64>,
    /// `CapBnd:`: the container's capability set, whatever its user.
    pub cap_bnd: Option<u64>,
    /// Effective uid as the host sees it (`Uid:`, second field).
    pub uid: Option<u32>,
    /// `/proc/<pid>/uid_map`: (inside, outside, count).
    pub uid_map: Vec<(u64, u64, u64)>,
    /// The root mount (`/` in `/proc/<pid>/mountinfo`) is read-only.
    pub root_readonly: Option<bool>,
    /// Mount points in its mount namespace.
    pub mount_points: Vec<String>,
    /// Its namespaces by kind (`net`, …) and inode.
    pub namespaces: BTreeMap<String, u64>,
    /// `/proc/<pid>/attr/current` (the AppArmor or SELinux label).
    pub security_label: Option<String>,
    /// Memory limit of its cgroup (`max` or bytes).
    pub memory_max: Option<String>,
    /// Pids limit of its cgroup (`max` or a number).
    pub pids_max: Option<String>,
    /// The commands of the processes in its pid namespace.
    pub commands: Vec<String>,
}

impl ProcFacts {
    /// True when namespace `kind` is the auditor's own (the host's).
    pub fn shares_ns(&self, host: &HostFacts, kind: &str) -> Option<bool> {
        Some(self.namespaces.get(kind)? == host.namespaces.get(kind)?)
    }

    /// The uid inside the container for the host uid `uid`.
    pub fn inner_uid(&self) -> Option<u64> {
        let uid = u64::from(self.uid?);
        if self.uid_map.is_empty() {
            return Some(uid);
        }
        self.uid_map
            .iter()
            .find(|(_, out, n)| uid >= *out && uid < out + n)
            .map(|(inside, out, _)| inside + (uid - out))
    }
}

/// An image's facts.
#[derive(Debug, Clone, Default)]
pub struct ImageFacts {
    /// `GET /images/{id}/json`.
    pub inspect: ImageInspect,
    /// `GET /images/{id}/history`.
    pub history: Vec<ImageHistoryResponseItem>,
}

impl ImageFacts {
    /// The first tag, else the short id.
    pub fn name(&self) -> String {
        self.inspect
            .repo_tags
            .as_ref()
            .and_then(|t| t.first().cloned())
            .unwrap_or_else(|| {
                let id = self.inspect.id.as_deref().unwrap_or("");
                id.trim_start_matches("sha256:").chars().take(12).collect()
            })
    }
}

/// cordon's own state.
#[derive(Debug, Clone, Default)]
pub struct CordonFacts {
    /// The policy the audit measures containers against.
    pub policy: Option<PolicyFile>,
    /// `inet cordon` is installed; `None` when it could not be checked.
    pub table_installed: Option<bool>,
    /// Why the table could not be checked.
    pub table_error: Option<String>,
    /// Docker's networks (for their drivers); `None` when they could not
    /// be listed.
    pub networks: Option<Vec<cordon_inventory::Network>>,
}
