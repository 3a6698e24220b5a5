//! Reading a container's main process from `/proc`: its status fields,
//! uid map, mounts, namespaces, label and cgroup limits. The parsers are
//! pure; [`read`] does the I/O.

use std::collections::BTreeMap;

use crate::facts::ProcFacts;

/// The namespaces compared with the host's.
pub const NAMESPACES: [&str; 5] = ["net", "pid", "ipc", "uts", "user"];

/// Reads what `/proc/<pid>` shows; fields that cannot be read stay `None`.
/// `commands` maps pid-namespace inodes to the commands running in them.
pub fn read(pid: u32, commands: &BTreeMap<u64, Vec<String>>) -> Option<ProcFacts> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut p = parse_status(&status);
    p.pid = pid;
    p.uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map"))
        .map(|t| parse_uid_map(&t))
        .unwrap_or_default();
    if let Ok(m) = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")) {
        p.root_readonly = root_readonly(&m);
        p.mount_points = mount_points(&m);
    }
    p.namespaces = namespaces(&format!("/proc/{pid}"));
    p.security_label = std::fs::read_to_string(format!("/proc/{pid}/attr/current"))
        .ok()
        .map(|s| s.trim_end_matches(['\n', '\0']).to_string());
    if let Ok(cg) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
        p.memory_max = cgroup_value(&cg, "memory", &["memory.max", "memory.limit_in_bytes"]);
        p.pids_max = cgroup_value(&cg, "pids", &["pids.max"]);
    }
    if let Some(ns) = p.namespaces.get("pid") {
        p.commands = commands.get(ns).cloned().unwrap_or_default();
    }
    Some(p)
}

/// The fields of `/proc/<pid>/status` the checks use.
pub fn parse_status(text: &str) -> ProcFacts {
    let mut p = ProcFacts::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k {
            "Seccomp" => p.seccomp = v.parse().ok(),
            "NoNewPrivs" => p.no_new_privs = v.parse::<u8>().ok().map(|n| n == 1),
            "CapEff" => p.cap_eff = u64::from_str_radix(v, 16).ok(),
            "CapBnd" => p.cap_bnd = u64::from_str_radix(v, 16).ok(),
            "Uid" => p.uid = v.split_whitespace().nth(1).and_then(|u| u.parse().ok()),
            _ => {}
        }
    }
    p
}

/// `/proc/<pid>/uid_map` lines: (inside, outside, count).
pub fn parse_uid_map(text: &str) -> Vec<(u64, u64, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().map(|x| x.parse::<u64>().ok());
            Some((f.next()??, f.next()??, f.next()??))
        })
        .collect()
}

/// Whether the mount at `/` is read-only, from its per-mount options (the
/// sixth field of mountinfo). The last mount at `/` is the visible one.
pub fn root_readonly(mountinfo: &str) -> Option<bool> {
    mountinfo.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.get(4) == Some(&"/")).then(|| f.get(5).is_some_and(|o| o.split(',').any(|x| x == "ro")))
    })
}

/// Every mount point of a mountinfo text (octal escapes decoded).
pub fn mount_points(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(unescape))
        .collect()
}

/// One line of a mountinfo text (`proc_pid_mountinfo(5)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The device (`major:minor`): the same on two mounts of one
    /// filesystem, as `st_dev` is.
    pub dev: String,
    /// The directory of that filesystem mounted here (`/` for a whole
    /// filesystem, a subdirectory for a bind mount).
    pub root: String,
    /// Where it is mounted.
    pub mount_point: String,
    /// The filesystem type (`ext4`, `tmpfs`, ...).
    pub fstype: String,
    /// The mount source (`/dev/sda2`, `tmpfs`, ...).
    pub source: String,
}

/// Every mount of a mountinfo text, in order (a later mount on the same
/// point hides an earlier one). Lines that do not parse are skipped.
pub fn mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let mut r = right.split(' ');
            Some(Mount {
                dev: f.get(2)?.to_string(),
                root: unescape(f.get(3)?),
                mount_point: unescape(f.get(4)?),
                fstype: r.next()?.to_string(),
                source: unescape(r.next()?),
            })
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let octal = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok());
            if let Some(n) = octal {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The namespace inodes of a `/proc/<pid>` (or `/proc/self`) directory.
pub fn namespaces(dir: &str) -> BTreeMap<String, u64> {
    NAMESPACES
        .iter()
        .filter_map(|k| {
            let link = std::fs::read_link(format!("{dir}/ns/{k}")).ok()?;
            Some((k.to_string(), ns_inode(&link.to_string_lossy())?))
        })
        .collect()
}

/// The inode of a namespace link text `net:[4026531992]`.
pub fn ns_inode(link: &str) -> Option<u64> {
    link.split_once(":[")?.1.strip_suffix(']')?.parse().ok()
}

/// A limit file of the process's cgroup: v2 (`0::/path`) or the v1
/// hierarchy of `controller`; the first of `files` that exists.
fn cgroup_value(cgroup: &str, controller: &str, files: &[&str]) -> Option<String> {
    let path = cgroup_path(cgroup, controller)?;
    files.iter().find_map(|f| {
        let candidates = [
            format!("/sys/fs/cgroup{}/{f}", path.0),
            format!("/sys/fs/cgroup/{controller}{}/{f}", path.0),
        ];
        let c = if path.1 {
            &candidates[..1]
        } else {
            &candidates[1..]
        };
        c.iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .map(|s| s.trim().to_string())
    })
}

/// The cgroup path for `controller` and whether it is the v2 one.
pub fn cgroup_path(cgroup: &str, controller: &str) -> Option<(String, bool)> {
    let mut v2 = None;
    for line in cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        if ctrls.split(',').any(|c| c == controller) {
            return Some((path.to_string(), false));
        }
        if ctrls.is_empty() {
            v2 = Some((path.to_string(), true));
        }
    }
    v2
}

/// True when a cgroup limit value means "no limit" (`max`, or cgroup v1's
/// page-rounded `i64::MAX`).
pub fn unlimited(value: &str) -> bool {
    value == "max" || value.parse::<u64>().is_ok_and(|n| n >= 1 << 62)
}

/// The pid namespace inode and command of every process, grouped.
pub fn commands_by_pid_ns() -> BTreeMap<u64, Vec<String>> {
    let mut out: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Some(ns) = std::fs::read_link(format!("/proc/{pid}/ns/pid"))
            .ok()
            .and_then(|l| ns_inode(&l.to_string_lossy()))
        else {
            continue;
        };
        if let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) {
            out.entry(ns).or_default().push(comm.trim().to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let p = parse_status(
            "Name:\tsleep\nUid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\nCapBnd:\t00000000a80425fb\nNoNewPrivs:\t1\nSeccomp:\t2\n",
        );
        assert_eq!(p.uid, Some(1000));
        assert_eq!(p.cap_eff, Some(0));
        assert_eq!(p.cap_bnd, Some(0xa80425fb));
        assert_eq!(p.no_new_privs, Some(true));
        assert_eq!(p.seccomp, Some(2));
    }

    #[test]
    fn root_mount_flags() {
        let ro = "1 0 0:1 / / ro,relatime - overlay overlay rw,lowerdir=x\n2 1 0:2 / /proc rw - proc proc rw\n";
        let rw = "1 0 0:1 / / rw,relatime - overlay overlay rw\n";
        assert_eq!(root_readonly(ro), Some(true));
        assert_eq!(root_readonly(rw), Some(false));
        assert_eq!(root_readonly(""), None);
        assert_eq!(mount_points(ro), ["/", "/proc"]);
        assert_eq!(mount_points("1 0 0:1 / /a\\040b rw - x x rw"), ["/a b"]);
    }

    #[test]
    fn mount_lines() {
        let m = mounts(
            "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
             44 27 254:0 /var/lib/docker /var/lib/docker rw,relatime shared:3 - ext4 /dev/vda rw\n\
             45 27 0:50 / /srv/a\\040b rw master:1 - tmpfs tmpfs rw\n\
             garbage\n",
        );
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[1],
            Mount {
                dev: "254:0".into(),
                root: "/var/lib/docker".into(),
                mount_point: "/var/lib/docker".into(),
                fstype: "ext4".into(),
                source: "/dev/vda".into(),
            }
        );
        assert_eq!(m[2].mount_point, "/srv/a b");
        assert_eq!(m[2].fstype, "tmpfs");
    }

    #[test]
    fn uid_maps_and_namespaces() {
        assert_eq!(parse_uid_map("0 100000 65536\n"), [(0, 100000, 65536)]);
        let p = ProcFacts {
            uid: Some(100000),
            uid_map: parse_uid_map("0 100000 65536\n"),
            ..Default::default()
        };
        assert_eq!(p.inner_uid(), Some(0));
        assert_eq!(ns_inode("net:[4026531992]"), Some(4026531992));
        assert_eq!(ns_inode("garbage"), None);
    }

    #[test]
    fn cgroups() {
        let v1 = "4:memory:/docker/abc\n1:cpu:/\n0::/\n";
        assert_eq!(
            cgroup_path(v1, "memory"),
            Some(("/docker/abc".into(), false))
        );
        let v2 = "0::/system.slice/docker-abc.scope\n";
        assert_eq!(
            cgroup_path(v2, "pids"),
            Some(("/system.slice/docker-abc.scope".into(), true))
        );
        assert!(unlimited("max"));
        assert!(unlimited("9223372036854771712"));
        assert!(!unlimited("67108864"));
    }
}
