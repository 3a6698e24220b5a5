//! CIS section 3: Docker daemon configuration files: owner, group, mode
//! and type (sockets must be sockets), from `lstat` of the files the
//! running daemon actually uses.

use super::{automated, Check, Meta};
use crate::facts::{Facts, FileFact, HostFacts};
use crate::flags::DaemonConfig;
use crate::model::{Object, Outcome, Severity, Status};

/// Which file a check looks at.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// A systemd unit, found in the unit directories.
    Unit(&'static str),
    /// A fixed path.
    Path(&'static str),
    /// Every file below a directory (registry certificates).
    Tree(&'static str),
    /// The file a daemon flag (or `daemon.json` key) names.
    Flag(&'static str, &'static str),
    /// The Docker socket cordon talks to.
    DockerSocket,
    /// containerd's socket.
    ContainerdSocket,
    /// The `daemon.json` the daemon reads.
    DaemonJson,
}

/// One file rule: ids of the ownership and the permission check, what it
/// is, where it is, the owner and group wanted, the widest mode allowed
/// and the type wanted.
struct Rule {
    owner_id: &'static str,
    mode_id: &'static str,
    what: &'static str,
    target: Target,
    owner: (&'static str, &'static str),
    mode: u32,
    kind: &'static str,
}

const RULES: [Rule; 12] = [
    Rule {
        owner_id: "3.1",
        mode_id: "3.2",
        what: "docker.service file",
        target: Target::Unit("docker.service"),
        owner: ("root", "root"),
        mode: 0o644,
        kind: "file",
    },
    Rule {
        owner_id: "3.3",
        mode_id: "3.4",
        what: "docker.socket file",
        target: Target::Unit("docker.socket"),
        owner: ("root", "root"),
        mode: 0o644,
        kind: "file",
    },
    Rule {
        owner_id: "3.5",
        mode_id: "3.6",
        what: "/etc/docker directory",
        target: Target::Path("/etc/docker"),
        owner: ("root", "root"),
        mode: 0o755,
        kind: "dir",
    },
    Rule {
        owner_id: "3.7",
        mode_id: "3.8",
        what: "registry certificate files",
        target: Target::Tree("/etc/docker/certs.d"),
        owner: ("root", "root"),
        mode: 0o444,
        kind: "file",
    },
    Rule {
        owner_id: "3.9",
        mode_id: "3.10",
        what: "TLS CA certificate file",
        target: Target::Flag("--tlscacert", "tlscacert"),
        owner: ("root", "root"),
        mode: 0o444,
        kind: "file",
    },
    Rule {
        owner_id: "3.11",
        mode_id: "3.12",
        what: "Docker server certificate file",
        target: Target::Flag("--tlscert", "tlscert"),
        owner: ("root", "root"),
        mode: 0o444,
        kind: "file",
    },
    Rule {
        owner_id: "3.13",
        mode_id: "3.14",
        what: "Docker server certificate key file",
        target: Target::Flag("--tlskey", "tlskey"),
        owner: ("root", "root"),
        mode: 0o400,
        kind: "file",
    },
    Rule {
        owner_id: "3.15",
        mode_id: "3.16",
        what: "Docker socket file",
        target: Target::DockerSocket,
        owner: ("root", "docker"),
        mode: 0o660,
        kind: "socket",
    },
    Rule {
        owner_id: "3.17",
        mode_id: "3.18",
        what: "daemon.json file",
        target: Target::DaemonJson,
        owner: ("root", "root"),
        mode: 0o644,
        kind: "file",
    },
    Rule {
        owner_id: "3.19",
        mode_id: "3.20",
        what: "/etc/default/docker file",
        target: Target::Path("/etc/default/docker"),
        owner: ("root", "root"),
        mode: 0o644,
        kind: "file",
    },
    Rule {
        owner_id: "3.21",
        mode_id: "3.22",
        what: "/etc/sysconfig/docker file",
        target: Target::Path("/etc/sysconfig/docker"),
        owner: ("root", "root"),
        mode: 0o644,
        kind: "file",
    },
    Rule {
        owner_id: "3.23",
        mode_id: "3.24",
        what: "containerd socket file",
        target: Target::ContainerdSocket,
        owner: ("root", "root"),
        mode: 0o660,
        kind: "socket",
    },
];

/// Titles, leaked once: the registry holds `&'static str`.
fn title(kind: &str, what: &str) -> &'static str {
    Box::leak(
        format!(
            "Ensure that {what} {kind} are set to {}",
            if kind == "ownership" {
                "root:root or as required"
            } else {
                "the benchmark's mode or more restrictive"
            }
        )
        .into_boxed_str(),
    )
}

/// The paths a target names on this host (none when it does not apply).
pub fn resolve(target: Target, host: &HostFacts, daemon: Option<&DaemonConfig>) -> Vec<String> {
    match target {
        Target::Unit(u) => host.units.get(u).cloned().into_iter().collect(),
        Target::Path(p) => vec![p.to_string()],
        Target::Tree(dir) => host
            .files
            .keys()
            .filter(|p| p.starts_with(&format!("{dir}/")))
            .cloned()
            .collect(),
        Target::Flag(flag, key) => daemon
            .and_then(|d| d.get(&[flag], key))
            .map(|s| s.value)
            .into_iter()
            .collect(),
        Target::DockerSocket => host.docker_socket.clone().into_iter().collect(),
        Target::ContainerdSocket => host.containerd_socket.clone().into_iter().collect(),
        Target::DaemonJson => vec![daemon.map_or_else(
            || "/etc/docker/daemon.json".to_string(),
            |d| d.config_file.clone(),
        )],
    }
}

/// Every path section 3 looks at, for the gatherer to `lstat` (trees are
/// walked by the gatherer itself).
pub fn paths_of_interest(host: &HostFacts, daemon: Option<&DaemonConfig>) -> Vec<String> {
    RULES
        .iter()
        .filter(|r| !matches!(r.target, Target::Tree(_)))
        .flat_map(|r| resolve(r.target, host, daemon))
        .collect()
}

/// The directories section 3 wants walked.
pub const TREES: [&str; 1] = ["/etc/docker/certs.d"];

/// Section 3's checks.
pub fn checks() -> Vec<Check> {
    let mut v = Vec::new();
    for r in &RULES {
        let (target, owner, mode, kind, what) = (r.target, r.owner, r.mode, r.kind, r.what);
        let remediation_owner: &'static str =
            Box::leak(format!("chown {}:{} the {what}", owner.0, owner.1).into_boxed_str());
        let remediation_mode: &'static str =
            Box::leak(format!("chmod {mode:o} the {what} (or stricter)").into_boxed_str());
        let source = "lstat of the file the daemon uses (its flags, daemon.json, unit directories)";
        v.push(automated(
            3,
            Severity::Medium,
            Meta {
                id: r.owner_id,
                title: title("ownership", what),
                source,
                remediation: remediation_owner,
            },
            move |f: &Facts| {
                each_file(f, target, what, |path, st| {
                    let ok = st.owner == owner.0 && (st.group == owner.1 || st.group == "root");
                    Outcome::verdict(
                        Object::file(path),
                        ok,
                        format!("{path} is owned by {}:{}", st.owner, st.group),
                    )
                })
            },
        ));
        v.push(automated(
            3,
            Severity::Medium,
            Meta {
                id: r.mode_id,
                title: title("permissions", what),
                source,
                remediation: remediation_mode,
            },
            move |f: &Facts| {
                each_file(f, target, what, |path, st| {
                    let extra = st.mode & !mode;
                    let right_kind = st.kind == kind;
                    Outcome::verdict(
                        Object::file(path),
                        extra == 0 && right_kind,
                        format!(
                            "{path} is a {} with mode {:o}{}",
                            st.kind,
                            st.mode,
                            if right_kind {
                                String::new()
                            } else {
                                format!(" (expected a {kind})")
                            }
                        ),
                    )
                })
            },
        ));
    }
    v
}

fn each_file(
    f: &Facts,
    target: Target,
    what: &str,
    check: impl Fn(&str, &FileFact) -> Outcome,
) -> Vec<Outcome> {
    let paths = resolve(target, &f.host, f.daemon.as_ref());
    let out: Vec<Outcome> = paths
        .iter()
        .filter_map(|p| {
            f.host
                .files
                .get(p)
                .and_then(|s| s.as_ref())
                .map(|s| check(p, s))
        })
        .collect();
    if out.is_empty() {
        let name = paths.first().cloned().unwrap_or_else(|| what.to_string());
        return vec![Outcome::new(
            Object::file(&name),
            Status::NotApplicable,
            format!("no {what} on this host"),
        )];
    }
    out
}
