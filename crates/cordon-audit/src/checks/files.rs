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
/// is, where it is, the owner and group wanted, the widest mode allowed,
/// the type wanted, and the titles and fixes of both checks.
struct Rule {
    owner_id: &'static str,
    mode_id: &'static str,
    what: &'static str,
    target: Target,
    owner: (&'static str, &'static str),
    mode: u32,
    kind: &'static str,
    owner_title: &'static str,
    mode_title: &'static str,
    owner_fix: &'static str,
    mode_fix: &'static str,
}

macro_rules! rule {
    ($oid:literal, $mid:literal, $what:literal, $target:expr, $user:literal, $group:literal, $mode:literal, $mode_text:literal, $kind:literal) => {
        Rule {
            owner_id: $oid,
            mode_id: $mid,
            what: $what,
            target: $target,
            owner: ($user, $group),
            mode: $mode,
            kind: $kind,
            owner_title: concat!(
                "Ensure that the ",
                $what,
                " ownership is set to ",
                $user,
                ":",
                $group
            ),
            mode_title: concat!(
                "Ensure that the ",
                $what,
                " permissions are set to ",
                $mode_text,
                " or more restrictive"
            ),
            owner_fix: concat!("chown ", $user, ":", $group, " the ", $what),
            mode_fix: concat!("chmod ", $mode_text, " the ", $what, " (or stricter)"),
        }
    };
}

const RULES: [Rule; 12] = [
    rule!(
        "3.1",
        "3.2",
        "docker.service file",
        Target::Unit("docker.service"),
        "root",
        "root",
        0o644,
        "644",
        "file"
    ),
    rule!(
        "3.3",
        "3.4",
        "docker.socket file",
        Target::Unit("docker.socket"),
        "root",
        "root",
        0o644,
        "644",
        "file"
    ),
    rule!(
        "3.5",
        "3.6",
        "/etc/docker directory",
        Target::Path("/etc/docker"),
        "root",
        "root",
        0o755,
        "755",
        "dir"
    ),
    rule!(
        "3.7",
        "3.8",
        "registry certificate files",
        Target::Tree("/etc/docker/certs.d"),
        "root",
        "root",
        0o444,
        "444",
        "file"
    ),
    rule!(
        "3.9",
        "3.10",
        "TLS CA certificate file",
        Target::Flag("--tlscacert", "tlscacert"),
        "root",
        "root",
        0o444,
        "444",
        "file"
    ),
    rule!(
        "3.11",
        "3.12",
        "Docker server certificate file",
        Target::Flag("--tlscert", "tlscert"),
        "root",
        "root",
        0o444,
        "444",
        "file"
    ),
    rule!(
        "3.13",
        "3.14",
        "Docker server certificate key file",
        Target::Flag("--tlskey", "tlskey"),
        "root",
        "root",
        0o400,
        "400",
        "file"
    ),
    rule!(
        "3.15",
        "3.16",
        "Docker socket file",
        Target::DockerSocket,
        "root",
        "docker",
        0o660,
        "660",
        "socket"
    ),
    rule!(
        "3.17",
        "3.18",
        "daemon.json file",
        Target::DaemonJson,
        "root",
        "root",
        0o644,
        "644",
        "file"
    ),
    rule!(
        "3.19",
        "3.20",
        "/etc/default/docker file",
        Target::Path("/etc/default/docker"),
        "root",
        "root",
        0o644,
        "644",
        "file"
    ),
    rule!(
        "3.21",
        "3.22",
        "/etc/sysconfig/docker file",
        Target::Path("/etc/sysconfig/docker"),
        "root",
        "root",
        0o644,
        "644",
        "file"
    ),
    rule!(
        "3.23",
        "3.24",
        "containerd socket file",
        Target::ContainerdSocket,
        "root",
        "root",
        0o660,
        "660",
        "socket"
    ),
];

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
        let source = "lstat of the file the daemon uses (its flags, daemon.json, unit directories)";
        v.push(automated(
            3,
            Severity::Medium,
            Meta {
                id: r.owner_id,
                title: r.owner_title,
                source,
                remediation: r.owner_fix,
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
                title: r.mode_title,
                source,
                remediation: r.mode_fix,
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
