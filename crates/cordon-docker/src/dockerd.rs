//! Finding the dockerd cordon talks to, and reading its configuration.
//!
//! Docker's API does not report how the daemon was started (`--iptables`,
//! `--config-file`, `--containerd`, its binary, ...), so cordon reads it
//! where dockerd itself reads it. The masquerade decision
//! ([`crate::masquerade`]) and the audit (`cordon audit`) use what this
//! module finds:
//!
//! 1. **Which process.** The peer of a connection to the daemon's unix
//!    socket (`DOCKER_HOST`, else `/var/run/docker.sock`), from
//!    `SO_PEERCRED`, when that process is a `dockerd`. Otherwise (socket
//!    activation makes systemd the socket's owner; `tcp://` has no peer)
//!    every `dockerd` in `/proc`. Either way the candidate must use the data
//!    root `/info` reports (`DockerRootDir`), so a second daemon on the same
//!    host is never mistaken for the one cordon talks to; exactly one
//!    candidate must remain.
//! 2. **Its settings.** Its command line (`/proc/<pid>/cmdline`), then the
//!    `daemon.json` it reads (`--config-file`, default
//!    `/etc/docker/daemon.json`, opened through `/proc/<pid>/root` so a
//!    daemon in another mount namespace is read right). A command-line flag
//!    wins over the file.

use std::path::{Path, PathBuf};

use bollard::Docker;

use crate::connect::DEFAULT_HOST;

/// Docker's default configuration file.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/docker/daemon.json";
/// Docker's default data root.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/docker";
/// Docker's default exec root, where the containerd it manages itself
/// keeps its socket (`<exec-root>/containerd/containerd.sock`).
pub const DEFAULT_EXEC_ROOT: &str = "/var/run/docker";
/// The socket of the host's own (system) containerd, containerd's default.
pub const SYSTEM_CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

/// What dockerd's command line says; `None` where it says nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// `--iptables[=BOOL]`.
    pub iptables: Option<bool>,
    /// `--ip-masq[=BOOL]`.
    pub ip_masq: Option<bool>,
    /// `--config-file PATH`.
    pub config_file: Option<String>,
    /// `--data-root PATH` (or the old `-g` / `--graph`).
    pub data_root: Option<String>,
    /// `--exec-root PATH`.
    pub exec_root: Option<String>,
    /// `--containerd ADDRESS`: the containerd to use instead of starting
    /// one.
    pub containerd: Option<String>,
}

/// Parses dockerd's arguments (without argv\[0\]) the way its flag library
/// (spf13/pflag) does for the flags cordon needs: `--flag`, `--flag=VALUE`
/// and, for flags that take a value, `--flag VALUE`. The last occurrence
/// wins. A boolean that does not parse is left unset.
pub fn parse_flags(args: &[String]) -> Flags {
    let mut f = Flags::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg, None),
        };
        let value = |i: &mut usize| -> Option<String> {
            if let Some(v) = inline {
                return Some(v.to_string());
            }
            let v = args.get(*i).cloned();
            *i += 1;
            v
        };
        match name {
            "--iptables" => f.iptables = inline.map_or(Some(true), parse_bool),
            "--ip-masq" => f.ip_masq = inline.map_or(Some(true), parse_bool),
            "--config-file" => f.config_file = value(&mut i),
            "--data-root" | "--graph" | "-g" => f.data_root = value(&mut i),
            "--exec-root" => f.exec_root = value(&mut i),
            "--containerd" => f.containerd = value(&mut i),
            _ => {}
        }
    }
    f
}

/// Go's `strconv.ParseBool`, which pflag uses.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// What a `daemon.json` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSettings {
    /// `"iptables"`.
    pub iptables: Option<bool>,
    /// `"ip-masq"`.
    pub ip_masq: Option<bool>,
    /// `"data-root"` (or the old `"graph"`).
    pub data_root: Option<String>,
    /// `"exec-root"`.
    pub exec_root: Option<String>,
    /// `"containerd"`.
    pub containerd: Option<String>,
}

/// Reads the keys cordon needs from a `daemon.json`; other keys are
/// ignored. An error is one line saying what is wrong.
pub fn parse_daemon_json(text: &str) -> Result<FileSettings, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let obj = v
        .as_object()
        .ok_or_else(|| "not a JSON object".to_string())?;
    let boolean = |key: &str| -> Result<Option<bool>, String> {
        match obj.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(format!("\"{key}\" is {other}, not true or false")),
        }
    };
    let string = |key: &str| obj.get(key).and_then(|v| v.as_str()).map(str::to_string);
    Ok(FileSettings {
        iptables: boolean("iptables")?,
        ip_masq: boolean("ip-masq")?,
        data_root: string("data-root").or_else(|| string("graph")),
        exec_root: string("exec-root"),
        containerd: string("containerd"),
    })
}

/// The dockerd cordon talks to, as found in `/proc` (see the module
/// documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerd {
    /// Its process id.
    pub pid: u32,
    /// Its arguments, without argv\[0\].
    pub args: Vec<String>,
    /// What its command line says.
    pub flags: Flags,
    /// What its `daemon.json` says (empty when it has none).
    pub file: FileSettings,
    /// The `daemon.json` it reads, as it names it.
    pub config_file: String,
    /// The same file as this process reaches it (through
    /// `/proc/<pid>/root`).
    pub config_path: PathBuf,
    /// Its data root, as configured (flag, file, else Docker's default).
    pub data_root: String,
    /// Its binary, from `/proc/<pid>/exe` (`None` when that link cannot be
    /// read, e.g. without root).
    pub exe: Option<String>,
    /// The socket of the containerd it uses (see [`containerd_socket`]),
    /// symlinks resolved.
    pub containerd_socket: String,
}

/// The binary a `/proc/<pid>/exe` link names: the kernel appends
/// ` (deleted)` when the file was replaced (a package upgrade) while the
/// process runs; the path is then that of the new binary.
pub fn exe_path(link: &Path) -> String {
    let s = link.to_string_lossy();
    s.strip_suffix(" (deleted)").unwrap_or(&s).to_string()
}

/// The containerd socket a dockerd uses, by dockerd's own rule: the
/// address `--containerd` (or `"containerd"` in `daemon.json`) names;
/// else, when dockerd started its own containerd (`managed`: a
/// `containerd` child process), that one's socket,
/// `<exec-root>/containerd/containerd.sock`; else the system containerd at
/// [`SYSTEM_CONTAINERD_SOCKET`] (dockerd uses it when it finds it at
/// start).
pub fn containerd_socket(flags: &Flags, file: &FileSettings, managed: bool) -> String {
    if let Some(addr) = flags.containerd.as_ref().or(file.containerd.as_ref()) {
        return addr.strip_prefix("unix://").unwrap_or(addr).to_string();
    }
    if managed {
        let exec_root = flags
            .exec_root
            .as_deref()
            .or(file.exec_root.as_deref())
            .unwrap_or(DEFAULT_EXEC_ROOT);
        return format!(
            "{}/containerd/containerd.sock",
            exec_root.trim_end_matches('/')
        );
    }
    SYSTEM_CONTAINERD_SOCKET.to_string()
}

/// The command name and parent pid of a `/proc/<pid>/stat` text (the
/// name is between the first `(` and the last `)`, and may hold both).
pub fn stat_name_and_ppid(stat: &str) -> Option<(&str, u32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?;
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let _state = rest.next()?;
    Some((name, rest.next()?.parse().ok()?))
}

/// True when process `pid` has a child named `name`.
fn has_child(pid: u32, name: &str) -> bool {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .any(|e| {
            std::fs::read_to_string(e.path().join("stat"))
                .ok()
                .as_deref()
                .and_then(stat_name_and_ppid)
                .is_some_and(|(n, ppid)| ppid == pid && n == name)
        })
}

/// Finds the dockerd `docker` talks to (see the module documentation).
/// `Err` says, in one line, why it could not be identified.
pub async fn find(docker: &Docker) -> Result<Dockerd, String> {
    lookup(docker).await
}

/// Finds the daemon `docker` talks to, off the async threads.
async fn lookup(docker: &Docker) -> Result<Dockerd, String> {
    let root_dir = docker
        .info()
        .await
        .map_err(|e| format!("cannot ask Docker for its data root: {e}"))?
        .docker_root_dir
        .filter(|s| !s.is_empty());
    let socket = socket_path();
    tokio::task::spawn_blocking(move || find_daemon(socket.as_deref(), root_dir.as_deref()))
        .await
        .map_err(|e| format!("the daemon lookup failed: {e}"))?
}

/// The unix socket `DOCKER_HOST` names, as [`crate::connect()`] reads it.
pub fn socket_path() -> Option<PathBuf> {
    let host = std::env::var("DOCKER_HOST")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_HOST.to_string());
    if let Some(p) = host.strip_prefix("unix://") {
        return Some(PathBuf::from(p));
    }
    host.starts_with('/').then(|| PathBuf::from(host))
}

fn find_daemon(socket: Option<&Path>, root_dir: Option<&str>) -> Result<Dockerd, String> {
    let peer = socket.and_then(peer_pid).filter(|&p| is_dockerd(p));
    let candidates: Vec<u32> = match peer {
        Some(p) => vec![p],
        None => all_dockerd_pids(),
    };
    if candidates.is_empty() {
        return Err("no dockerd process found on this host".into());
    }
    let mut daemons = Vec::new();
    for pid in candidates {
        match read_daemon(pid) {
            Ok(d) => daemons.push(d),
            Err(e) => tracing::debug!(pid, error = %e, "skipping a dockerd"),
        }
    }
    if let Some(root) = root_dir {
        daemons.retain(|d| same_dir(d.pid, &d.data_root, root));
    }
    match daemons.len() {
        1 => Ok(daemons.remove(0)),
        0 => Err(format!(
            "no dockerd with data root {} found",
            root_dir.unwrap_or("?")
        )),
        n => Err(format!(
            "{n} dockerd processes use data root {}",
            root_dir.unwrap_or("?")
        )),
    }
}

/// The pid of the process that listens on a unix socket (`SO_PEERCRED`).
fn peer_pid(socket: &Path) -> Option<u32> {
    use std::os::fd::AsRawFd;
    let stream = std::os::unix::net::UnixStream::connect(socket).ok()?;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes and `len` is the size
    // of `cred`, as SO_PEERCRED requires; the fd is open for the call.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0 && cred.pid > 0).then_some(cred.pid as u32)
}

fn is_dockerd(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "dockerd")
}

fn all_dockerd_pids() -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&p| is_dockerd(p))
        .collect();
    pids.sort_unstable();
    pids
}

/// The arguments of process `pid`, without argv\[0\].
fn cmdline_args(pid: u32) -> Result<Vec<String>, String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map_err(|e| format!("cannot read the command line of pid {pid}: {e}"))?;
    Ok(raw
        .split(|&b| b == 0)
        .skip(1)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect())
}

fn read_daemon(pid: u32) -> Result<Dockerd, String> {
    let args = cmdline_args(pid)?;
    let flags = parse_flags(&args);
    let explicit = flags.config_file.is_some();
    let config = flags
        .config_file
        .clone()
        .unwrap_or_else(|| DEFAULT_CONFIG_FILE.to_string());
    let config_path = in_daemon_view(pid, &config);
    let file = match std::fs::read_to_string(&config_path) {
        Ok(text) => parse_daemon_json(&text).map_err(|e| format!("{config}: {e}"))?,
        // dockerd itself starts without its default file.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => FileSettings::default(),
        Err(e) => return Err(format!("cannot read {config}: {e}")),
    };
    let data_root = flags
        .data_root
        .clone()
        .or_else(|| file.data_root.clone())
        .unwrap_or_else(|| DEFAULT_DATA_ROOT.to_string());
    let exe = match std::fs::read_link(format!("/proc/{pid}/exe")) {
        Ok(link) => Some(exe_path(&link)),
        Err(e) => {
            tracing::debug!(pid, error = %e, "cannot read dockerd's binary");
            None
        }
    };
    let socket = containerd_socket(&flags, &file, has_child(pid, "containerd"));
    let containerd_socket = resolved(pid, &socket).unwrap_or(socket);
    Ok(Dockerd {
        pid,
        args,
        flags,
        file,
        config_file: config,
        config_path,
        data_root,
        exe,
        containerd_socket,
    })
}

/// A path as process `pid` sees it: through its root, and relative to its
/// working directory when not absolute.
fn in_daemon_view(pid: u32, path: &str) -> PathBuf {
    if path.starts_with('/') {
        PathBuf::from(format!("/proc/{pid}/root{path}"))
    } else {
        PathBuf::from(format!("/proc/{pid}/cwd/{path}"))
    }
}

/// True when the daemon's configured data root is the directory Docker
/// reports (which it has resolved through symlinks).
fn same_dir(pid: u32, configured: &str, reported: &str) -> bool {
    let trim = |s: &str| s.trim_end_matches('/').to_string();
    if trim(configured) == trim(reported) {
        return true;
    }
    resolved(pid, configured).is_some_and(|p| Path::new(&p) == Path::new(&trim(reported)))
}

/// A path as process `pid` names it, with symlinks resolved (`/var/run/x`
/// is `/run/x`), as this process reaches it; `None` when it does not
/// resolve. (The kernel resolves `/proc/<pid>/root` itself to the
/// daemon's root as this process sees it, usually `/`.)
fn resolved(pid: u32, path: &str) -> Option<String> {
    let p = std::fs::canonicalize(in_daemon_view(pid, path)).ok()?;
    let p = match p.strip_prefix(format!("/proc/{pid}/root")) {
        Ok(inside) => Path::new("/").join(inside),
        Err(_) => p,
    };
    Some(p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn flags_in_every_form() {
        assert_eq!(parse_flags(&[]), Flags::default());
        let f = parse_flags(&args(
            "-H unix:///run/x.sock --iptables=false --ip-masq --config-file /etc/x.json --data-root=/srv/d",
        ));
        assert_eq!(f.iptables, Some(false));
        assert_eq!(f.ip_masq, Some(true));
        assert_eq!(f.config_file.as_deref(), Some("/etc/x.json"));
        assert_eq!(f.data_root.as_deref(), Some("/srv/d"));
        assert_eq!(parse_flags(&args("--iptables")).iptables, Some(true));
        assert_eq!(parse_flags(&args("--iptables=0")).iptables, Some(false));
        assert_eq!(parse_flags(&args("--iptables=F")).iptables, Some(false));
        assert_eq!(
            parse_flags(&args("--iptables=false --iptables=true")).iptables,
            Some(true),
            "the last one wins"
        );
        assert_eq!(parse_flags(&args("--iptables=maybe")).iptables, None);
        assert_eq!(
            parse_flags(&args("-g /old")).data_root.as_deref(),
            Some("/old")
        );
        // A look-alike flag is not ours.
        assert_eq!(parse_flags(&args("--ip6tables=false")).iptables, None);
    }

    #[test]
    fn daemon_json_keys() {
        let f = parse_daemon_json(
            r#"{"iptables": false, "ip-masq": true, "data-root": "/d", "log-level": "info"}"#,
        )
        .unwrap();
        assert_eq!(
            f,
            FileSettings {
                iptables: Some(false),
                ip_masq: Some(true),
                data_root: Some("/d".into()),
                ..Default::default()
            }
        );
        assert_eq!(parse_daemon_json("{}").unwrap(), FileSettings::default());
        assert_eq!(
            parse_daemon_json(r#"{"graph": "/g"}"#)
                .unwrap()
                .data_root
                .as_deref(),
            Some("/g")
        );
        let err = parse_daemon_json(r#"{"iptables": "no"}"#).unwrap_err();
        assert_eq!(err, r#""iptables" is "no", not true or false"#);
        assert!(parse_daemon_json("[1]").is_err());
        assert!(!parse_daemon_json("{").unwrap_err().contains('\n'));
    }

    #[test]
    fn the_binary_is_where_the_exe_link_points() {
        // Debian's docker.io: not /usr/bin/dockerd.
        assert_eq!(
            exe_path(Path::new("/usr/sbin/dockerd")),
            "/usr/sbin/dockerd"
        );
        // Upgraded while running: the path of the new binary.
        assert_eq!(
            exe_path(Path::new("/usr/bin/dockerd (deleted)")),
            "/usr/bin/dockerd"
        );
    }

    #[test]
    fn this_process_exe_is_found() {
        // The same readlink the lookup does, on a process that surely runs.
        let me = exe_path(&std::fs::read_link("/proc/self/exe").unwrap());
        assert_eq!(Path::new(&me), std::env::current_exe().unwrap());
    }

    #[test]
    fn the_containerd_socket_dockerd_uses() {
        let none = (Flags::default(), FileSettings::default());
        // A system containerd, found by dockerd at start.
        assert_eq!(
            containerd_socket(&none.0, &none.1, false),
            "/run/containerd/containerd.sock"
        );
        // Docker's own managed containerd, below its exec root.
        assert_eq!(
            containerd_socket(&none.0, &none.1, true),
            "/var/run/docker/containerd/containerd.sock"
        );
        let exec = parse_flags(&args("--exec-root /srv/exec/"));
        assert_eq!(
            containerd_socket(&exec, &none.1, true),
            "/srv/exec/containerd/containerd.sock"
        );
        let file =
            parse_daemon_json(r#"{"exec-root": "/x", "containerd": "/run/c.sock"}"#).unwrap();
        assert_eq!(file.exec_root.as_deref(), Some("/x"));
        assert_eq!(containerd_socket(&none.0, &file, true), "/run/c.sock");
        // A flag wins over the file, and a unix:// prefix is dropped.
        let flag = parse_flags(&args("--containerd unix:///run/k.sock"));
        assert_eq!(containerd_socket(&flag, &file, true), "/run/k.sock");
        let inline = parse_flags(&args("--containerd=/run/i.sock"));
        assert_eq!(inline.containerd.as_deref(), Some("/run/i.sock"));
    }

    #[test]
    fn stat_lines() {
        assert_eq!(
            stat_name_and_ppid("23660 (containerd) S 23639 23660 23639 0 -1"),
            Some(("containerd", 23639))
        );
        assert_eq!(
            stat_name_and_ppid("7 (a) b) (c) R 1 7 7"),
            Some(("a) b) (c", 1))
        );
        assert_eq!(stat_name_and_ppid("garbage"), None);
    }
}
