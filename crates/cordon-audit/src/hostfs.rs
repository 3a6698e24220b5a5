//! Reading the host: file types, owners and modes, systemd units, audit
//! rules, user and group names (through NSS), the `docker` group and a
//! few kernel switches.

use std::cell::RefCell;
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

/// Where user and group names come from.
pub trait Directory {
    /// The name of a uid.
    fn user(&self, uid: u32) -> Option<String>;
    /// The name of a gid.
    fn group(&self, gid: u32) -> Option<String>;
    /// The members a group lists, by group name; `None` when there is no
    /// such group.
    fn members(&self, group: &str) -> Option<Vec<String>>;
    /// The gid of a group, by name.
    fn gid(&self, group: &str) -> Option<u32>;
    /// The users whose primary group is `gid` (they belong to the group
    /// without being listed in it).
    fn primary_members(&self, gid: u32) -> Vec<String>;
}

/// The system's user and group databases, through NSS (`getpwuid_r`,
/// `getgrgid_r`, `getgrnam_r`): users and groups from LDAP or sssd count as
/// much as `/etc/passwd` and `/etc/group`. A lookup that fails is treated
/// as "no such name".
#[derive(Debug, Clone, Copy, Default)]
pub struct Nss;

impl Directory for Nss {
    fn user(&self, uid: u32) -> Option<String> {
        nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .map(|u| u.name)
    }

    fn group(&self, gid: u32) -> Option<String> {
        nix::unistd::Group::from_gid(gid.into())
            .ok()
            .flatten()
            .map(|g| g.name)
    }

    fn members(&self, group: &str) -> Option<Vec<String>> {
        nix::unistd::Group::from_name(group)
            .ok()
            .flatten()
            .map(|g| g.mem)
    }

    fn gid(&self, group: &str) -> Option<u32> {
        nix::unistd::Group::from_name(group)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw())
    }

    fn primary_members(&self, gid: u32) -> Vec<String> {
        /// `getpwent` walks one process-wide cursor: one walker at a time.
        static WALK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = WALK.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        // SAFETY: setpwent/getpwent/endpwent take no arguments; the cursor
        // they share is process-wide and guarded by WALK (nothing else in
        // cordon walks it). Each returned entry is valid until the next
        // call, and its name is copied out before that.
        unsafe {
            libc::setpwent();
            loop {
                let pw = libc::getpwent();
                if pw.is_null() {
                    break;
                }
                if (*pw).pw_gid == gid && !(*pw).pw_name.is_null() {
                    let name = std::ffi::CStr::from_ptr((*pw).pw_name);
                    out.push(name.to_string_lossy().into_owned());
                }
            }
            libc::endpwent();
        }
        out
    }
}

/// Fixed tables, for tests that must not depend on the host's users.
#[derive(Debug, Clone, Default)]
pub struct Fixed {
    /// Users by uid.
    pub users: BTreeMap<u32, String>,
    /// Groups by gid: name and members.
    pub groups: BTreeMap<u32, (String, Vec<String>)>,
    /// Users' primary groups: user name → gid.
    pub primary: BTreeMap<String, u32>,
}

impl Directory for Fixed {
    fn user(&self, uid: u32) -> Option<String> {
        self.users.get(&uid).cloned()
    }

    fn group(&self, gid: u32) -> Option<String> {
        self.groups.get(&gid).map(|g| g.0.clone())
    }

    fn members(&self, group: &str) -> Option<Vec<String>> {
        self.groups
            .values()
            .find(|(n, _)| n == group)
            .map(|(_, m)| m.clone())
    }

    fn gid(&self, group: &str) -> Option<u32> {
        self.groups
            .iter()
            .find(|(_, (n, _))| n == group)
            .map(|(gid, _)| *gid)
    }

    fn primary_members(&self, gid: u32) -> Vec<String> {
        self.primary
            .iter()
            .filter(|(_, g)| **g == gid)
            .map(|(u, _)| u.clone())
            .collect()
    }
}

/// Owner and group names for [`stat`], each id looked up once.
pub struct Names {
    dir: Box<dyn Directory>,
    users: RefCell<BTreeMap<u32, String>>,
    groups: RefCell<BTreeMap<u32, String>>,
}

impl Default for Names {
    /// No names at all: every id shows as its number.
    fn default() -> Self {
        Names::new(Fixed::default())
    }
}

impl Names {
    /// Names from `dir`.
    pub fn new(dir: impl Directory + 'static) -> Names {
        Names {
            dir: Box::new(dir),
            users: RefCell::default(),
            groups: RefCell::default(),
        }
    }

    /// The system's names, through NSS.
    pub fn system() -> Names {
        Names::new(Nss)
    }

    /// The name of a uid, else the number.
    pub fn user(&self, uid: u32) -> String {
        self.users
            .borrow_mut()
            .entry(uid)
            .or_insert_with(|| self.dir.user(uid).unwrap_or_else(|| uid.to_string()))
            .clone()
    }

    /// The name of a gid, else the number.
    pub fn group(&self, gid: u32) -> String {
        self.groups
            .borrow_mut()
            .entry(gid)
            .or_insert_with(|| self.dir.group(gid).unwrap_or_else(|| gid.to_string()))
            .clone()
    }

    /// Every member of a group, by name: those it lists and those whose
    /// primary group it is, sorted, each once; `None` when it does not
    /// exist.
    pub fn members_with_primary(&self, group: &str) -> Option<Vec<String>> {
        let mut m = self.dir.members(group)?;
        if let Some(gid) = self.dir.gid(group) {
            m.extend(self.dir.primary_members(gid));
        }
        m.sort();
        m.dedup();
        Some(m)
    }

    /// The members a group lists, by name; `None` when it does not exist.
    pub fn members(&self, group: &str) -> Option<Vec<String>> {
        self.dir.members(group)
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

/// The paths audit rules watch (`-w PATH`, `-F path=PATH`, `-F dir=PATH`),
/// as written, without a trailing `/`.
pub fn watched_paths(rules: &str) -> Vec<String> {
    let mut out = Vec::new();
    for l in rules.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        let words: Vec<&str> = l.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            let p = if *w == "-w" {
                words.get(i + 1).copied()
            } else {
                w.strip_prefix("path=").or_else(|| w.strip_prefix("dir="))
            };
            if let Some(p) = p {
                out.push(p.trim_end_matches('/').to_string());
            }
        }
    }
    out
}

/// True when an audit rule watches `path` as written (`-w PATH` or
/// `-F path=PATH`).
pub fn audit_watches(rules: &str, path: &str) -> bool {
    let path = path.trim_end_matches('/');
    watched_paths(rules).iter().any(|w| w == path)
}

/// A watched path as the kernel resolves it when the rule is loaded: the
/// directories' symlinks followed (`/var/run/x` watches `/run/x`), the
/// last component not (a watch on a symlink watches the link). As written
/// when its directory does not resolve.
pub fn resolve_watch(path: &str) -> String {
    let p = Path::new(path);
    match (p.parent(), p.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|d| d.join(name).display().to_string())
            .unwrap_or_else(|_| path.to_string()),
        _ => path.to_string(),
    }
}

/// AppArmor is enabled in the kernel.
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the lookups that reach the directory.
    struct Counting(Fixed, std::rc::Rc<std::cell::Cell<usize>>);

    impl Directory for Counting {
        fn user(&self, uid: u32) -> Option<String> {
            self.1.set(self.1.get() + 1);
            self.0.user(uid)
        }
        fn group(&self, gid: u32) -> Option<String> {
            self.1.set(self.1.get() + 1);
            self.0.group(gid)
        }
        fn members(&self, group: &str) -> Option<Vec<String>> {
            self.0.members(group)
        }
        fn gid(&self, group: &str) -> Option<u32> {
            self.0.gid(group)
        }
        fn primary_members(&self, gid: u32) -> Vec<String> {
            self.0.primary_members(gid)
        }
    }

    #[test]
    fn names_and_groups() {
        let n = Names::new(Fixed {
            users: [(0, "root".to_string())].into(),
            groups: [
                (0, ("root".to_string(), vec![])),
                (
                    999,
                    ("docker".to_string(), vec!["alice".into(), "bob".into()]),
                ),
            ]
            .into(),
            primary: [
                ("carol".to_string(), 999),
                ("alice".to_string(), 999),
                ("dave".to_string(), 0),
            ]
            .into(),
        });
        assert_eq!(n.user(0), "root");
        assert_eq!(n.user(5), "5");
        assert_eq!(n.group(999), "docker");
        assert_eq!(n.members("docker").unwrap(), ["alice", "bob"]);
        assert_eq!(n.members("nope"), None);
        // carol's primary group is docker: she controls Docker as much as
        // a listed member; alice is both and counts once; dave is not one.
        assert_eq!(
            n.members_with_primary("docker").unwrap(),
            ["alice", "bob", "carol"]
        );
        assert_eq!(n.members_with_primary("nope"), None);
    }

    /// On the real NSS: a user made for the test, whose primary group is
    /// a group made for the test, is found as its member.
    #[test]
    fn primary_members_through_nss() {
        let me = nix::unistd::getuid();
        let Some(user) = nix::unistd::User::from_uid(me).ok().flatten() else {
            eprintln!("skipped: the test's own user has no passwd entry");
            return;
        };
        let found = Nss.primary_members(user.gid.as_raw());
        assert!(
            found.contains(&user.name),
            "{} (primary gid {}) not among {found:?}",
            user.name,
            user.gid
        );
        // An unused gid has nobody.
        assert!(Nss.primary_members(4_000_000_000).is_empty());
    }

    #[test]
    fn each_id_is_looked_up_once() {
        let calls = std::rc::Rc::new(std::cell::Cell::new(0));
        let n = Names::new(Counting(Fixed::default(), calls.clone()));
        for _ in 0..3 {
            assert_eq!(n.user(1000), "1000");
            assert_eq!(n.group(1000), "1000");
        }
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn audit_rule_forms() {
        let r = "# -w /usr/bin/runc\n-w /usr/bin/dockerd -k docker\n-a exit,always -F path=/etc/docker/daemon.json -k docker\n";
        assert!(audit_watches(r, "/usr/bin/dockerd"));
        assert!(audit_watches(r, "/etc/docker/daemon.json"));
        assert!(!audit_watches(r, "/usr/bin/runc"));
        assert_eq!(
            watched_paths("-w /etc/docker/ -k d\n-a always,exit -F dir=/x -k d\n"),
            ["/etc/docker", "/x"]
        );
    }

    #[test]
    fn watches_resolve_their_directories_not_their_last_component() {
        let dir = std::env::temp_dir().join(format!("cordon-watch-{}", std::process::id()));
        let real = dir.join("real");
        std::fs::create_dir_all(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.join("link")).unwrap();
        std::os::unix::fs::symlink(real.join("sock"), real.join("alias")).unwrap();
        let real = std::fs::canonicalize(&real).unwrap();
        let shown = |p: &std::path::Path| p.display().to_string();
        // Through a symlinked directory: the real directory.
        assert_eq!(
            resolve_watch(&shown(&dir.join("link/sock"))),
            shown(&real.join("sock"))
        );
        // A symlink as the last component stays itself.
        assert_eq!(
            resolve_watch(&shown(&dir.join("link/alias"))),
            shown(&real.join("alias"))
        );
        // A directory that does not exist: as written.
        assert_eq!(
            resolve_watch("/nonexistent-cordon/x"),
            "/nonexistent-cordon/x"
        );
        std::fs::remove_dir_all(&dir).unwrap();
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
