//! CIS section 1: host configuration.

use super::{automated, manual, manual_with, Check, Meta};
use std::path::Path;

use crate::facts::{Facts, HostFacts};
use crate::hostfs::audit_watches;
use crate::model::{Object, Outcome, Severity, Status};
use crate::procfs::Mount;

/// What an audit rule of CIS 1.1.3–1.1.18 must watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    /// A fixed path.
    Path(&'static str),
    /// A systemd unit, looked up in the unit directories.
    Unit(&'static str),
    /// dockerd's binary, wherever the running daemon's is
    /// ([`HostFacts::dockerd_binary`]).
    DockerdBinary,
    /// The socket of the containerd dockerd uses
    /// ([`HostFacts::containerd_socket`]).
    ContainerdSocket,
    /// The state directory of the containerd dockerd uses: the directory
    /// of its socket (`/run/containerd` for the system containerd,
    /// `<exec-root>/containerd` for Docker's own managed one).
    ContainerdState,
    /// A program of the container runtime, by name, where it really is
    /// ([`HostFacts::binaries`]: found on the usual paths, symlinks
    /// resolved, since a watch on a symlink does not see the program run).
    Binary(&'static str),
}

impl Watched {
    /// The path on this host; `None` when there is none.
    pub fn path(self, host: &HostFacts) -> Option<String> {
        match self {
            Watched::Path(p) => Some(p.to_string()),
            Watched::Unit(u) => host.units.get(u).cloned(),
            Watched::DockerdBinary => host.dockerd_binary.clone(),
            Watched::ContainerdSocket => host.containerd_socket.clone(),
            Watched::ContainerdState => host
                .containerd_socket
                .as_deref()
                .and_then(|s| Path::new(s).parent().map(|d| d.display().to_string())),
            Watched::Binary(name) => host.binaries.get(name).cloned(),
        }
    }

    /// What it is, for a message.
    fn name(self) -> &'static str {
        match self {
            Watched::Path(p) | Watched::Unit(p) => p,
            Watched::DockerdBinary => "dockerd's binary",
            Watched::ContainerdSocket => "containerd's socket",
            Watched::ContainerdState => "containerd's state directory",
            Watched::Binary(name) => name,
        }
    }
}

/// The files CIS 1.1.3–1.1.18 want audited: (id, title, what).
pub const AUDITED: [(&str, &str, Watched); 16] = [
    (
        "1.1.3",
        "Ensure auditing is configured for the Docker daemon",
        Watched::DockerdBinary,
    ),
    (
        "1.1.4",
        "Ensure auditing is configured for /run/containerd",
        Watched::ContainerdState,
    ),
    (
        "1.1.5",
        "Ensure auditing is configured for /var/lib/docker",
        Watched::Path("/var/lib/docker"),
    ),
    (
        "1.1.6",
        "Ensure auditing is configured for /etc/docker",
        Watched::Path("/etc/docker"),
    ),
    (
        "1.1.7",
        "Ensure auditing is configured for docker.service",
        Watched::Unit("docker.service"),
    ),
    (
        "1.1.8",
        "Ensure auditing is configured for containerd.sock",
        Watched::ContainerdSocket,
    ),
    (
        "1.1.9",
        "Ensure auditing is configured for docker.socket",
        Watched::Unit("docker.socket"),
    ),
    (
        "1.1.10",
        "Ensure auditing is configured for /etc/default/docker",
        Watched::Path("/etc/default/docker"),
    ),
    (
        "1.1.11",
        "Ensure auditing is configured for /etc/docker/daemon.json",
        Watched::Path("/etc/docker/daemon.json"),
    ),
    (
        "1.1.12",
        "Ensure auditing is configured for /etc/containerd/config.toml",
        Watched::Path("/etc/containerd/config.toml"),
    ),
    (
        "1.1.13",
        "Ensure auditing is configured for /etc/sysconfig/docker",
        Watched::Path("/etc/sysconfig/docker"),
    ),
    (
        "1.1.14",
        "Ensure auditing is configured for /usr/bin/containerd",
        Watched::Binary("containerd"),
    ),
    (
        "1.1.15",
        "Ensure auditing is configured for /usr/bin/containerd-shim",
        Watched::Binary("containerd-shim"),
    ),
    (
        "1.1.16",
        "Ensure auditing is configured for /usr/bin/containerd-shim-runc-v1",
        Watched::Binary("containerd-shim-runc-v1"),
    ),
    (
        "1.1.17",
        "Ensure auditing is configured for /usr/bin/containerd-shim-runc-v2",
        Watched::Binary("containerd-shim-runc-v2"),
    ),
    (
        "1.1.18",
        "Ensure auditing is configured for /usr/bin/runc",
        Watched::Binary("runc"),
    ),
];

/// Section 1's checks.
pub fn checks() -> Vec<Check> {
    let mut v = vec![
        automated(
            1,
            Severity::Low,
            Meta {
                id: "1.1.1",
                title: "Ensure a separate partition for containers has been created",
                source: "/info DockerRootDir; /proc/<dockerd pid>/mountinfo (device of the Docker root against /'s)",
                remediation:
                    "mount a dedicated filesystem on Docker's data root (e.g. /var/lib/docker); a bind mount of a directory of / is not one",
            },
            |f: &Facts| {
                let root = f
                    .info
                    .docker_root_dir
                    .clone()
                    .unwrap_or_else(|| "/var/lib/docker".into());
                let (ok, why) = separate_partition(&f.host.mounts, &root);
                vec![Outcome::verdict(Object::file(&root), ok, why)]
            },
        ),
        manual_with(
            1,
            Meta {
                id: "1.1.2",
                title: "Ensure only trusted users are allowed to control Docker daemon",
                source: "the user and group databases through NSS (members the docker group lists, and users whose primary group it is)",
                remediation:
                    "remove untrusted users from the docker group (gpasswd -d USER docker)",
            },
            |f: &Facts| match &f.host.docker_group {
                Some(m) if m.is_empty() => "the docker group has no members".into(),
                Some(m) => format!("docker group members: {}", m.join(", ")),
                None => "no docker group".into(),
            },
        ),
    ];
    for (id, title, target) in AUDITED {
        v.push(automated(
            1,
            Severity::Low,
            Meta {
                id,
                title,
                source: match target {
                    Watched::DockerdBinary => "/etc/audit/audit.rules, /etc/audit/rules.d/*.rules; the binary: /proc/<dockerd pid>/exe",
                    Watched::ContainerdSocket => "/etc/audit/audit.rules, /etc/audit/rules.d/*.rules; the socket: dockerd's --containerd, else its own managed containerd's, else /run/containerd/containerd.sock",
                    Watched::ContainerdState => "/etc/audit/audit.rules, /etc/audit/rules.d/*.rules; the directory of containerd's socket (1.1.8)",
                    Watched::Binary(_) => "/etc/audit/audit.rules, /etc/audit/rules.d/*.rules; the program: the first of /usr/bin, /usr/sbin, /usr/local/bin, /usr/local/sbin, /bin, /sbin that has it, symlinks resolved",
                    _ => "/etc/audit/audit.rules, /etc/audit/rules.d/*.rules",
                },
                remediation:
                    "add `-w PATH -k docker` to /etc/audit/rules.d/docker.rules and restart auditd",
            },
            move |f: &Facts| vec![audited(f, target)],
        ));
    }
    v.push(manual(
        1,
        Meta {
            id: "1.2.1",
            title: "Ensure the container host has been hardened",
            source: "a person",
            remediation: "harden the host OS (CIS benchmark for the distribution)",
        },
    ));
    v.push(manual_with(
        1,
        Meta {
            id: "1.2.2",
            title: "Ensure that the version of Docker is up to date",
            source: "/version",
            remediation: "upgrade Docker to a supported release",
        },
        |f: &Facts| {
            format!(
                "Docker {} (API {}), containerd {}",
                f.version.version.as_deref().unwrap_or("?"),
                f.version.api_version.as_deref().unwrap_or("?"),
                f.info
                    .containerd_commit
                    .as_ref()
                    .and_then(|c| c.id.clone())
                    .unwrap_or_else(|| "?".into())
            )
        },
    ));
    v
}

/// The mount that holds `path`: the last one (it hides earlier ones) on
/// the longest mount point that is `path` or one of its parents.
fn holding_mount<'a>(mounts: &'a [Mount], path: &str) -> Option<&'a Mount> {
    let path = Path::new(path);
    let mut best: Option<&Mount> = None;
    for m in mounts {
        let point = Path::new(&m.mount_point);
        let longer = best.is_none_or(|b| {
            point.components().count() >= Path::new(&b.mount_point).components().count()
        });
        if path.starts_with(point) && longer {
            best = Some(m);
        }
    }
    best
}

/// CIS 1.1.1: whether the Docker root `root` is on a filesystem of its
/// own, from a mount table. Being a mount point is not enough: a bind
/// mount of a directory of `/` (same device, `major:minor`, as `/`) is on
/// the root filesystem, and so is a btrfs subvolume of the same device.
/// The Docker root may also sit below a separate mount (`/var`). Returns
/// the verdict and why.
pub fn separate_partition(mounts: &[Mount], root: &str) -> (bool, String) {
    let (Some(slash), Some(m)) = (holding_mount(mounts, "/"), holding_mount(mounts, root)) else {
        return (
            false,
            format!("cannot tell where {root} is mounted (no mount table)"),
        );
    };
    let root_fs = format!("{} {}, device {}", slash.fstype, slash.source, slash.dev);
    if std::ptr::eq(m, slash) {
        return (
            false,
            format!("{root} is a directory of the root filesystem ({root_fs}), not a partition"),
        );
    }
    let at = if Path::new(&m.mount_point) == Path::new(root) {
        format!("{root} is a mount point")
    } else {
        format!("{root} is on the mount {}", m.mount_point)
    };
    if m.dev == slash.dev {
        return (
            false,
            format!(
                "{at}, but a bind mount of {} of the root filesystem ({root_fs}): not a separate partition",
                m.root
            ),
        );
    }
    if m.source.starts_with("/dev/") && m.source == slash.source && m.fstype == slash.fstype {
        return (
            false,
            format!(
                "{at}, but of the same {} filesystem as / ({}): not a separate partition",
                m.fstype, m.source
            ),
        );
    }
    let memory = if matches!(m.fstype.as_str(), "tmpfs" | "ramfs") {
        ", held in memory"
    } else {
        ""
    };
    (
        true,
        format!(
            "{at} of a separate filesystem ({} {}, device {}; / is device {}){memory}",
            m.fstype, m.source, m.dev, slash.dev
        ),
    )
}

/// Whether the audit rules watch `target`.
fn audited(f: &Facts, target: Watched) -> Outcome {
    let path = target.path(&f.host);
    let exists = path
        .as_ref()
        .is_some_and(|p| f.host.files.get(p).is_some_and(|x| x.is_some()));
    let Some(path) = path.filter(|_| exists) else {
        let name = target.name();
        return Outcome::new(
            Object::file(name),
            Status::NotApplicable,
            format!("{name} does not exist on this host"),
        );
    };
    match &f.host.audit_rules {
        None => Outcome::new(
            Object::file(&path),
            Status::Fail,
            "no audit rules configured (/etc/audit absent)",
        ),
        Some(rules) => {
            let ok = audit_watches(rules, &path)
                || f.host
                    .audit_watched
                    .iter()
                    .any(|w| w == path.trim_end_matches('/'));
            Outcome::verdict(
                Object::file(&path),
                ok,
                if ok {
                    format!("audit rules watch {path}")
                } else {
                    format!("no audit rule watches {path}")
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::mounts;

    const SLASH: &str = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n";

    fn judge(extra: &str, root: &str) -> (bool, String) {
        separate_partition(&mounts(&format!("{SLASH}{extra}")), root)
    }

    #[test]
    fn a_real_partition_is_separate() {
        let (ok, why) = judge(
            "50 27 253:16 / /var/lib/docker rw,relatime - xfs /dev/vdb1 rw\n",
            "/var/lib/docker",
        );
        assert!(ok, "{why}");
        assert!(why.contains("is a mount point of a separate filesystem (xfs /dev/vdb1, device 253:16; / is device 254:0)"), "{why}");
        // Below a separate /var is separate from / too.
        let (ok, why) = judge(
            "50 27 253:16 / /var rw - ext4 /dev/vdb1 rw\n",
            "/var/lib/docker",
        );
        assert!(ok, "{why}");
        assert!(why.contains("is on the mount /var"), "{why}");
    }

    #[test]
    fn a_bind_mount_of_a_directory_of_slash_is_not() {
        let (ok, why) = judge(
            "44 27 254:0 /var/lib/docker /var/lib/docker rw,relatime shared:3 - ext4 /dev/vda rw\n",
            "/var/lib/docker",
        );
        assert!(!ok, "{why}");
        assert!(
            why.contains("a bind mount of /var/lib/docker of the root filesystem"),
            "{why}"
        );
        // A plain directory of / is not either.
        let (ok, why) = judge("", "/var/lib/docker");
        assert!(!ok);
        assert!(why.contains("a directory of the root filesystem"), "{why}");
        // Nor a btrfs subvolume of the root's device.
        let btrfs = "27 1 0:31 /@ / rw - btrfs /dev/sda2 rw\n45 27 0:33 /@docker /var/lib/docker rw - btrfs /dev/sda2 rw\n";
        let (ok, why) = separate_partition(&mounts(btrfs), "/var/lib/docker");
        assert!(!ok, "{why}");
        assert!(why.contains("same btrfs filesystem"), "{why}");
    }

    #[test]
    fn a_tmpfs_is_a_separate_filesystem_in_memory() {
        let (ok, why) = judge(
            "60 27 0:45 / /var/lib/docker rw - tmpfs tmpfs rw,size=1048576k\n",
            "/var/lib/docker",
        );
        assert!(ok, "{why}");
        assert!(why.ends_with("held in memory"), "{why}");
    }

    #[test]
    fn the_visible_mount_decides() {
        // A later mount on the same point hides the earlier one.
        let (ok, why) = judge(
            "50 27 253:16 / /var/lib/docker rw - xfs /dev/vdb1 rw\n51 27 254:0 /srv/d /var/lib/docker rw - ext4 /dev/vda rw\n",
            "/var/lib/docker",
        );
        assert!(!ok, "{why}");
        // A mount point that merely shares a prefix does not hold it.
        let (ok, _) = judge(
            "50 27 253:16 / /var/lib/dock rw - xfs /dev/vdb1 rw\n",
            "/var/lib/docker",
        );
        assert!(!ok);
        let (ok, why) = separate_partition(&[], "/var/lib/docker");
        assert!(!ok && why.contains("no mount table"), "{why}");
    }

    #[test]
    fn watched_paths_come_from_the_host() {
        let host = HostFacts {
            dockerd_binary: Some("/usr/sbin/dockerd".into()),
            containerd_socket: Some("/run/docker/containerd/containerd.sock".into()),
            ..Default::default()
        };
        let path = |id: &str| {
            let (_, _, w) = AUDITED.iter().find(|(i, _, _)| *i == id).unwrap();
            w.path(&host)
        };
        assert_eq!(path("1.1.3").as_deref(), Some("/usr/sbin/dockerd"));
        assert_eq!(
            path("1.1.8").as_deref(),
            Some("/run/docker/containerd/containerd.sock")
        );
        assert_eq!(path("1.1.7"), None, "no docker.service unit here");
    }
}
