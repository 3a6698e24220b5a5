//! Reading the host: file types, owners and modes, systemd units, audit
//! rules, the `docker` group, mounts and a few kernel switches.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::facts::FileFact;

/// Where systemd unit files live, most specific first.
pub const UNIT_DIRS: [&str; 3] = [
    "/etc/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// `lstat` of a path, with owner and group names; `None` when absent.
pub fn stat(path: &str, names: &Names) -> Option<FileFact> {
    let m = std::fs::symlink_metadata(path).ok()?;
    let t = m.file_type();
    let kind = if t.is_socket() {
        "socket"
    } else if t.is_dir() {
        "dir"
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_file() {
        "file"
    } else {
        "other"
    };
    Some(FileFact {
        kind,
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        owner: names.user(m.uid()),
        group: names.group(m.gid()),
    })
}

/// User and group names from `/etc/passwd` and `/etc/group`.
#[derive(Debug, Clone, Default)]
pub struct Names {
    users: BTreeMap<u32, String>,
    groups: BTreeMap<u32, (String, Vec<String>)>,
}

impl Names {
    /// Reads the host's files (missing ones give numbers only).
    pub fn load() -> Names {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        Names::parse(&read("/etc/passwd"), &read("/etc/group"))
    }

    /// Parses passwd and group texts.
    pub fn parse(passwd: &str, group: &str) -> Names {
        let mut n = Names::default();
        for l in passwd.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if let (Some(name), Some(Ok(id))) = (f.first(), f.get(2).map(|s| s.parse())) {
                n.users.entry(id).or_insert_with(|| name.to_string());
            }
        }
        for l in group.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if let (Some(name), Some(Ok(id))) = (f.first(), f.get(2).map(|s| s.parse())) {
                let members = f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|x| !x.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                n.groups
                    .entry(id)
                    .or_insert_with(|| (name.to_string(), members));
            }
        }
        n
    }

    /// The name of a uid, else the number.
    pub fn user(&self, uid: u32) -> String {
        self.users.get(&uid).cloned().unwrap_or(uid.to_string())
    }

    /// The name of a gid, else the number.
    pub fn group(&self, gid: u32) -> String {
        self.groups
            .get(&gid)
            .map(|g| g.0.clone())
            .unwrap_or(gid.to_string())
    }

    /// The members of a group by name.
    pub fn members(&self, group: &str) -> Option<Vec<String>> {
        self.groups
            .values()
            .find(|(n, _)| n == group)
            .map(|(_, m)| m.clone())
    }
}

/// The unit files of `units` found in [`UNIT_DIRS`], by unit name.
pub fn unit_files(units: &[&str]) -> BTreeMap<String, String> {
    units
        .iter()
        .filter_map(|u| {
            UNIT_DIRS
                .iter()
                .map(|d| format!("{d}/{u}"))
                .find(|p| Path::new(p).exists())
                .map(|p| (u.to_string(), p))
        })
        .collect()
}

/// The audit rules as configured: `/etc/audit/audit.rules` and
/// `/etc/audit/rules.d/*.rules`; `None` when neither exists.
pub fn audit_rules() -> Option<String> {
    let mut text = String::new();
    let mut found = false;
    if let Ok(t) = std::fs::read_to_string("/etc/audit/audit.rules") {
        text.push_str(&t);
        found = true;
    }
    let mut extra: Vec<_> = std::fs::read_dir("/etc/audit/rules.d")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .collect();
    extra.sort();
    for p in extra {
        if let Ok(t) = std::fs::read_to_string(p) {
            text.push('\n');
            text.push_str(&t);
            found = true;
        }
    }
    found.then_some(text)
}

/// True when an audit rule watches `path` (`-w PATH` or `-F path=PATH`).
pub fn audit_watches(rules: &str, path: &str) -> bool {
    rules.lines().any(|l| {
        let l = l.trim();
        if l.starts_with('#') {
            return false;
        }
        let words: Vec<&str> = l.split_whitespace().collect();
        words
            .windows(2)
            .any(|w| w[0] == "-w" && w[1].trim_end_matches('/') == path.trim_end_matches('/'))
            || words
                .iter()
                .any(|w| *w == format!("path={path}") || *w == format!("dir={path}"))
    })
}

/// AppArmor is enabled in the kernel.
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_groups() {
        let n = Names::parse(
            "root:x:0:0::/root:/bin/sh\n",
            "root:x:0:\ndocker:x:999:alice,bob\n",
        );
        assert_eq!(n.user(0), "root");
        assert_eq!(n.user(5), "5");
        assert_eq!(n.group(999), "docker");
        assert_eq!(n.members("docker").unwrap(), ["alice", "bob"]);
        assert_eq!(n.members("nope"), None);
    }

    #[test]
    fn audit_rule_forms() {
        let r = "# -w /usr/bin/runc\n-w /usr/bin/dockerd -k docker\n-a exit,always -F path=/etc/docker/daemon.json -k docker\n";
        assert!(audit_watches(r, "/usr/bin/dockerd"));
        assert!(audit_watches(r, "/etc/docker/daemon.json"));
        assert!(!audit_watches(r, "/usr/bin/runc"));
    }

    #[test]
    fn sockets_are_sockets() {
        let dir = std::env::temp_dir().join(format!("cordon-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("s.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let names = Names::default();
        assert_eq!(stat(sock.to_str().unwrap(), &names).unwrap().kind, "socket");
        assert_eq!(stat(dir.to_str().unwrap(), &names).unwrap().kind, "dir");
        assert!(stat(dir.join("absent").to_str().unwrap(), &names).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
