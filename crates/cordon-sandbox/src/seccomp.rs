//! The sandbox's seccomp profile: an allowlist in Docker's JSON format,
//! passed inline as `SecurityOpt: seccomp=<json>`.
//!
//! It starts from what Docker's default profile allows a container without
//! capabilities and removes more: io_uring (a large, often-exploited kernel
//! surface), `userfaultfd` (race widening for kernel exploits),
//! `perf_event_open`, the keyring calls, `bpf`, namespace creation
//! (`unshare`, `setns`, and `clone` with any `CLONE_NEW*` flag, so no new
//! user namespace), every mount call, `ptrace` and cross-process memory
//! access, `personality` beyond the harmless values, and sockets of any
//! family but unix, IPv4, IPv6 and netlink. Everything not listed fails
//! with `EPERM`; `clone3` fails with `ENOSYS` so that libc falls back to
//! the filtered `clone`.

use serde_json::{json, Value};

/// System calls allowed without condition.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "alarm",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fallocate",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futex",
    "futex_waitv",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "ioprio_get",
    "io_setup",
    "io_submit",
    "kill",
    "lchown",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "madvise",
    "membarrier",
    "memfd_create",
    "mincore",
    "mkdir",
    "mkdirat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedsend",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "pselect6",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "sendfile",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_tid_address",
    "setuid",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "socketpair",
    "splice",
    "stat",
    "statfs",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "times",
    "tkill",
    "truncate",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimes",
    "vfork",
    "wait4",
    "waitid",
    "write",
    "writev",
    "arch_prctl",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
];

/// System calls Docker's default profile allows (to a container without
/// capabilities) that this profile denies, each with why. Tested: none of
/// them may appear in [`ALLOWED`].
pub const DENIED: &[(&str, &str)] = &[
    (
        "io_uring_setup",
        "io_uring: large kernel surface, many privilege escalations",
    ),
    ("io_uring_enter", "io_uring"),
    ("io_uring_register", "io_uring"),
    (
        "userfaultfd",
        "pauses kernel page faults to win exploit races",
    ),
    (
        "perf_event_open",
        "kernel exploit surface and side channels",
    ),
    ("keyctl", "kernel keyrings are not namespaced"),
    ("add_key", "kernel keyrings are not namespaced"),
    ("request_key", "kernel keyrings are not namespaced"),
    ("bpf", "eBPF verifier bugs"),
    ("unshare", "new namespaces, above all user namespaces"),
    ("setns", "joining namespaces"),
    ("mount", "mounting filesystems"),
    ("umount2", "unmounting masks over /proc and /sys"),
    ("pivot_root", "changing the root"),
    ("ptrace", "tracing other processes of the run"),
    ("process_vm_readv", "reading another process's memory"),
    ("process_vm_writev", "writing another process's memory"),
    (
        "name_to_handle_at",
        "file handles (the shocker escape's first half)",
    ),
    ("open_by_handle_at", "file handles (the shocker escape)"),
    ("adjtimex", "clock tampering"),
    ("clock_adjtime", "clock tampering"),
    ("remap_file_pages", "deprecated, past exploit target"),
    (
        "vmsplice",
        "past privilege escalations (Dirty Pipe helpers)",
    ),
    ("fanotify_mark", "filesystem-wide notifications"),
    ("mknod", "device nodes"),
    ("mknodat", "device nodes"),
    ("syslog", "kernel log"),
    ("memfd_secret", "memory hidden from the kernel"),
];

/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
/// CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET`: `clone` is allowed only
/// with none of these bits.
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// Socket families allowed: `AF_UNIX`, `AF_INET`, `AF_INET6`, `AF_NETLINK`.
const SOCKET_FAMILIES: &[u64] = &[1, 2, 10, 16];

/// `personality` values allowed: `PER_LINUX`, `UNAME26`, `PER_LINUX32`,
/// `UNAME26|PER_LINUX32`, and the query `0xffffffff`.
const PERSONALITIES: &[u64] = &[0, 8, 0x20000, 0x20008, 0xffff_ffff];

/// The profile as Docker's seccomp JSON.
pub fn profile() -> Value {
    let mut rules = vec![json!({ "names": ALLOWED, "action": "SCMP_ACT_ALLOW" })];
    rules.push(json!({
        "names": ["clone"],
        "action": "SCMP_ACT_ALLOW",
        "args": [{ "index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" }],
    }));
    rules.push(json!({ "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 }));
    for family in SOCKET_FAMILIES {
        rules.push(json!({
            "names": ["socket"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{ "index": 0, "value": family, "op": "SCMP_CMP_EQ" }],
        }));
    }
    for p in PERSONALITIES {
        rules.push(json!({
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{ "index": 0, "value": p, "op": "SCMP_CMP_EQ" }],
        }));
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            { "architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
            { "architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"] },
        ],
        "syscalls": rules,
    })
}

/// The `SecurityOpt` entry carrying the profile inline.
pub fn security_opt() -> String {
    format!("seccomp={}", profile())
}

/// True when the profile lets `name` through without condition.
pub fn allows(name: &str) -> bool {
    ALLOWED.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_calls_are_not_allowed() {
        for (name, why) in DENIED {
            assert!(!allows(name), "{name} is allowed but denied for: {why}");
        }
        let text = profile().to_string();
        for (name, _) in DENIED {
            assert!(!text.contains(&format!("\"{name}\"")), "{name} appears");
        }
    }

    #[test]
    fn clone_excludes_every_namespace_flag() {
        const CLONE_NEWUSER: u64 = 0x1000_0000;
        const CLONE_NEWNS: u64 = 0x0002_0000;
        const CLONE_NEWNET: u64 = 0x4000_0000;
        for f in [CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET] {
            assert_eq!(f & CLONE_NAMESPACE_FLAGS, f);
        }
        let p = profile();
        let clone = p["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["names"][0] == "clone")
            .unwrap();
        assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(clone["args"][0]["valueTwo"], 0);
    }

    #[test]
    fn default_is_deny() {
        let p = profile();
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
        assert!(allows("read") && allows("execve") && !allows("clone"));
    }
}
