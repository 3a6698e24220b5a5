//! Does Docker masquerade its bridge networks itself?
//!
//! A dockerd started with `--iptables=false` (or `"iptables": false` in its
//! `daemon.json`) installs no NAT, so its containers cannot reach anything
//! beyond the host; cordon then masquerades their IPv4 traffic itself (see
//! `docs/iptables-false.md`). Docker's API does not report the setting, so
//! it is read where dockerd reads it:
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
//!    wins over the file; neither means Docker's default (`true`).
//!
//! `--ip-masq=false` (`"ip-masq": false`) means the operator wants no
//! masquerading at all, and cordon adds none either. When the daemon cannot
//! be identified, cordon assumes Docker's default (it manages iptables) and
//! masquerades nothing: it never adds NAT it is not sure is missing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::Docker;

use crate::connect::DEFAULT_HOST;

/// Docker's default configuration file.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/docker/daemon.json";
/// Docker's default data root.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/docker";
/// The network option that turns Docker's masquerading of one bridge
/// network off.
pub const MASQUERADE_OPTION: &str = "com.docker.network.bridge.enable_ip_masquerade";

/// The NAT-related settings of one dockerd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatSettings {
    /// `--iptables`: Docker installs its own iptables rules, NAT included.
    pub iptables: bool,
    /// `--ip-masq`: masquerading is wanted at all.
    pub ip_masq: bool,
}

impl Default for NatSettings {
    fn default() -> Self {
        NatSettings {
            iptables: true,
            ip_masq: true,
        }
    }
}

impl NatSettings {
    /// True when cordon must masquerade for this daemon: it installs no
    /// NAT, yet masquerading is wanted.
    pub fn cordon_masquerades(self) -> bool {
        !self.iptables && self.ip_masq
    }
}

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
            _ => {}
        }
    }
    f
}

/// Go's `strconv.ParseBool`, which pflag uses.
fn parse_bool(s: &str) -> Option<bool> {
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
    })
}

/// The effective settings: a flag wins over the file, either over
/// Docker's default.
pub fn effective(flags: &Flags, file: &FileSettings) -> NatSettings {
    let d = NatSettings::default();
    NatSettings {
        iptables: flags.iptables.or(file.iptables).unwrap_or(d.iptables),
        ip_masq: flags.ip_masq.or(file.ip_masq).unwrap_or(d.ip_masq),
    }
}

/// Whether one bridge network needs cordon's masquerading, given whether
/// its daemon needs it at all: never for other drivers or `internal`
/// networks, nor when the network's own
/// `com.docker.network.bridge.enable_ip_masquerade` is false.
pub fn network_masquerade(
    cordon_masquerades: bool,
    driver: &str,
    internal: bool,
    options: Option<&HashMap<String, String>>,
) -> bool {
    let enabled = options
        .and_then(|o| o.get(MASQUERADE_OPTION))
        .and_then(|v| parse_bool(v.trim()))
        .unwrap_or(true);
    cordon_masquerades && driver == "bridge" && !internal && enabled
}

/// One dockerd process as found in `/proc`.
#[derive(Debug, Clone)]
struct Daemon {
    pid: u32,
    flags: Flags,
    file: FileSettings,
    data_root: String,
}

/// Finds the settings of the daemon `docker` talks to (see the module
/// documentation). `Err` says, in one line, why they could not be known.
pub async fn detect(docker: &Docker) -> Result<NatSettings, String> {
    let d = lookup(docker).await?;
    let s = effective(&d.flags, &d.file);
    tracing::debug!(
        pid = d.pid,
        iptables = s.iptables,
        ip_masq = s.ip_masq,
        "dockerd settings"
    );
    Ok(s)
}

/// Finds the daemon `docker` talks to, off the async threads.
async fn lookup(docker: &Docker) -> Result<Daemon, String> {
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

/// The dockerd process that answers `docker` (see the module
/// documentation, step 1): the process id, its arguments (without
/// argv\[0\]) and the path of the `daemon.json` it reads, as seen from
/// this process (through `/proc/<pid>/root`). `Err` says, in one line, why
/// it could not be identified.
pub async fn daemon_process(docker: &Docker) -> Result<DaemonProcess, String> {
    let d = lookup(docker).await?;
    let config = d
        .flags
        .config_file
        .as_deref()
        .unwrap_or(DEFAULT_CONFIG_FILE);
    Ok(DaemonProcess {
        pid: d.pid,
        config_file: config.to_string(),
        config_path: in_daemon_view(d.pid, config),
        args: cmdline_args(d.pid).unwrap_or_default(),
    })
}

/// One identified dockerd, as [`daemon_process`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonProcess {
    /// Its process id.
    pub pid: u32,
    /// Its arguments, without argv\[0\].
    pub args: Vec<String>,
    /// The `daemon.json` it reads, as it names it.
    pub config_file: String,
    /// The same file as this process reaches it.
    pub config_path: PathBuf,
}

fn find_daemon(socket: Option<&Path>, root_dir: Option<&str>) -> Result<Daemon, String> {
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

fn read_daemon(pid: u32) -> Result<Daemon, String> {
    let args = cmdline_args(pid)?;
    let flags = parse_flags(&args);
    let explicit = flags.config_file.is_some();
    let config = flags.config_file.as_deref().unwrap_or(DEFAULT_CONFIG_FILE);
    let path = in_daemon_view(pid, config);
    let file = match std::fs::read_to_string(&path) {
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
    Ok(Daemon {
        pid,
        flags,
        file,
        data_root,
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
    let resolved = std::fs::canonicalize(in_daemon_view(pid, configured))
        .ok()
        .and_then(|p| {
            p.strip_prefix(format!("/proc/{pid}/root"))
                .ok()
                .map(Path::to_path_buf)
        });
    match resolved {
        Some(p) => Path::new("/").join(p) == Path::new(&trim(reported)),
        None => false,
    }
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
    fn a_flag_wins_over_the_file() {
        let file = FileSettings {
            iptables: Some(false),
            ..Default::default()
        };
        assert!(effective(&Flags::default(), &file).cordon_masquerades());
        let flags = Flags {
            iptables: Some(true),
            ..Default::default()
        };
        assert!(!effective(&flags, &file).cordon_masquerades());
        assert_eq!(
            effective(&Flags::default(), &FileSettings::default()),
            NatSettings::default()
        );
        assert!(!NatSettings::default().cordon_masquerades());
        let no_masq = Flags {
            iptables: Some(false),
            ip_masq: Some(false),
            ..Default::default()
        };
        assert!(!effective(&no_masq, &FileSettings::default()).cordon_masquerades());
    }

    #[test]
    fn per_network_masquerade() {
        let off: HashMap<String, String> =
            [(MASQUERADE_OPTION.to_string(), "false".to_string())].into();
        let on: HashMap<String, String> =
            [(MASQUERADE_OPTION.to_string(), "true".to_string())].into();
        assert!(network_masquerade(true, "bridge", false, None));
        assert!(network_masquerade(true, "bridge", false, Some(&on)));
        assert!(!network_masquerade(true, "bridge", false, Some(&off)));
        assert!(!network_masquerade(true, "bridge", true, None), "internal");
        assert!(!network_masquerade(true, "macvlan", false, None));
        assert!(!network_masquerade(false, "bridge", false, None));
    }
}
