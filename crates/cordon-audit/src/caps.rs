//! Linux capabilities: names, bit masks, and the set Docker gives a
//! container for its `--privileged`, `--cap-add` and `--cap-drop`.

/// Capability names by number (`CAP_` omitted).
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The capabilities Docker grants by default.
pub const DOCKER_DEFAULT: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Every capability the kernel knows (`cap_last_cap`).
pub fn all(last: u8) -> u64 {
    if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    }
}

/// The bit of a name (`SYS_ADMIN`, `CAP_SYS_ADMIN`, any case).
pub fn bit(name: &str) -> Option<u64> {
    let n = name.to_ascii_uppercase();
    let n = n.strip_prefix("CAP_").unwrap_or(&n);
    NAMES.iter().position(|x| *x == n).map(|i| 1u64 << i)
}

/// The mask of a list of names.
pub fn mask(names: &[&str]) -> u64 {
    names.iter().filter_map(|n| bit(n)).fold(0, |a, b| a | b)
}

/// The names in a mask.
pub fn names(mask: u64) -> Vec<&'static str> {
    NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1u64 << i) != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// The capability set Docker gives a container, where `every` is the
/// host's own bounding set (what `--privileged` and `--cap-add ALL` get).
pub fn configured(privileged: bool, add: &[String], drop: &[String], every: u64) -> u64 {
    if privileged {
        return every;
    }
    let is_all = |v: &[String]| v.iter().any(|c| c.eq_ignore_ascii_case("ALL"));
    let mut set = mask(&DOCKER_DEFAULT);
    if is_all(drop) {
        set = 0;
    } else {
        for d in drop {
            set &= !bit(d).unwrap_or(0);
        }
    }
    if is_all(add) {
        set = every;
    } else {
        for a in add {
            set |= bit(a).unwrap_or(0);
        }
    }
    set & every
}

/// A mask in words: `none`, `all N` (the host's whole bounding set
/// `every`), or the names.
pub fn describe(mask: u64, every: u64) -> String {
    if mask == 0 {
        "none".into()
    } else if mask == every {
        format!("all {}", every.count_ones())
    } else {
        names(mask).join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_sets() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let every = all(40);
        assert_eq!(configured(false, &[], &[], every), mask(&DOCKER_DEFAULT));
        assert_eq!(configured(false, &[], &s(&["ALL"]), every), 0);
        assert_eq!(
            configured(false, &s(&["NET_BIND_SERVICE"]), &s(&["ALL"]), every),
            bit("NET_BIND_SERVICE").unwrap()
        );
        assert_eq!(configured(true, &[], &[], every), every);
        // A host whose own bounding set lacks SYS_RESOURCE gives no more.
        let host = every & !bit("SYS_RESOURCE").unwrap();
        assert_eq!(configured(true, &[], &[], host), host);
        let sa = configured(false, &s(&["CAP_SYS_ADMIN"]), &[], every);
        assert!(names(sa).contains(&"SYS_ADMIN"));
        // Docker's default set is the well-known bounding set 0xa80425fb.
        assert_eq!(mask(&DOCKER_DEFAULT), 0xa80425fb);
        assert_eq!(describe(0, every), "none");
        assert_eq!(describe(every, every), "all 41");
    }
}
