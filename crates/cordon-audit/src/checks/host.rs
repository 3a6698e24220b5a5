//! CIS section 1: host configuration.

use super::{automated, manual, manual_with, Check, Meta};
use crate::facts::Facts;
use crate::hostfs::audit_watches;
use crate::model::{Object, Outcome, Severity, Status};

/// The files CIS 1.1.3–1.1.18 want audited: (id, title, path or unit).
/// A name without `/` is a systemd unit, looked up in the unit directories.
pub const AUDITED: [(&str, &str, &str); 16] = [
    (
        "1.1.3",
        "Ensure auditing is configured for the Docker daemon",
        "/usr/bin/dockerd",
    ),
    (
        "1.1.4",
        "Ensure auditing is configured for /run/containerd",
        "/run/containerd",
    ),
    (
        "1.1.5",
        "Ensure auditing is configured for /var/lib/docker",
        "/var/lib/docker",
    ),
    (
        "1.1.6",
        "Ensure auditing is configured for /etc/docker",
        "/etc/docker",
    ),
    (
        "1.1.7",
        "Ensure auditing is configured for docker.service",
        "docker.service",
    ),
    (
        "1.1.8",
        "Ensure auditing is configured for containerd.sock",
        "/run/containerd/containerd.sock",
    ),
    (
        "1.1.9",
        "Ensure auditing is configured for docker.socket",
        "docker.socket",
    ),
    (
        "1.1.10",
        "Ensure auditing is configured for /etc/default/docker",
        "/etc/default/docker",
    ),
    (
        "1.1.11",
        "Ensure auditing is configured for /etc/docker/daemon.json",
        "/etc/docker/daemon.json",
    ),
    (
        "1.1.12",
        "Ensure auditing is configured for /etc/containerd/config.toml",
        "/etc/containerd/config.toml",
    ),
    (
        "1.1.13",
        "Ensure auditing is configured for /etc/sysconfig/docker",
        "/etc/sysconfig/docker",
    ),
    (
        "1.1.14",
        "Ensure auditing is configured for /usr/bin/containerd",
        "/usr/bin/containerd",
    ),
    (
        "1.1.15",
        "Ensure auditing is configured for /usr/bin/containerd-shim",
        "/usr/bin/containerd-shim",
    ),
    (
        "1.1.16",
        "Ensure auditing is configured for /usr/bin/containerd-shim-runc-v1",
        "/usr/bin/containerd-shim-runc-v1",
    ),
    (
        "1.1.17",
        "Ensure auditing is configured for /usr/bin/containerd-shim-runc-v2",
        "/usr/bin/containerd-shim-runc-v2",
    ),
    (
        "1.1.18",
        "Ensure auditing is configured for /usr/bin/runc",
        "/usr/bin/runc",
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
                source: "/info DockerRootDir; /proc/self/mountinfo",
                remediation:
                    "mount a dedicated filesystem on Docker's data root (e.g. /var/lib/docker)",
            },
            |f: &Facts| {
                let root = f
                    .info
                    .docker_root_dir
                    .clone()
                    .unwrap_or_else(|| "/var/lib/docker".into());
                let ok = f
                    .host
                    .mount_points
                    .iter()
                    .any(|m| m.trim_end_matches('/') == root.trim_end_matches('/'));
                vec![Outcome::verdict(
                    Object::file(&root),
                    ok,
                    if ok {
                        format!("{root} is a mount point")
                    } else {
                        format!("{root} is not a mount point")
                    },
                )]
            },
        ),
        manual_with(
            1,
            Meta {
                id: "1.1.2",
                title: "Ensure only trusted users are allowed to control Docker daemon",
                source: "/etc/group (members of docker)",
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
                source: "/etc/audit/audit.rules, /etc/audit/rules.d/*.rules",
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

/// Whether the audit rules watch `target` (a path or a unit name).
fn audited(f: &Facts, target: &str) -> Outcome {
    let path = if target.contains('/') {
        Some(target.to_string())
    } else {
        f.host.units.get(target).cloned()
    };
    let exists = path
        .as_ref()
        .is_some_and(|p| f.host.files.get(p).is_some_and(|x| x.is_some()));
    let Some(path) = path.filter(|_| exists) else {
        return Outcome::new(
            Object::file(target),
            Status::NotApplicable,
            format!("{target} does not exist on this host"),
        );
    };
    match &f.host.audit_rules {
        None => Outcome::new(
            Object::file(&path),
            Status::Fail,
            "no audit rules configured (/etc/audit absent)",
        ),
        Some(rules) => {
            let ok = audit_watches(rules, &path);
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
