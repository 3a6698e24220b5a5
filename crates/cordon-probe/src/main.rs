//! `cordon-probe`: run inside a sandboxed container, it reports how locked
//! down it is, as one JSON object on stdout:
//!
//! - `uid`, `caps` (`CapEff`, `CapPrm`, `CapBnd`, `CapInh`, `CapAmb` in hex),
//!   `seccomp` mode (2 = filter), `no_new_privs`;
//! - `writable`: sensitive paths it could open for writing (none should be);
//! - `calls`: dangerous calls and whether each succeeded (none should);
//! - `namespaces`: the inode of each `/proc/self/ns/*` link, which the test
//!   compares with the host's;
//! - `escape_vectors`: every finding above that would help an escape.
//!
//! It never writes anything: paths are opened for writing and closed,
//! calls are made with arguments that change nothing lasting.

use std::ffi::CString;
use std::fmt::Write as _;

/// Paths that must not be writable inside a sandbox.
const SENSITIVE: &[&str] = &[
    "/proc/sysrq-trigger",
    "/proc/sys/kernel/core_pattern",
    "/proc/sys/kernel/modprobe",
    "/proc/sys/vm/drop_caches",
    "/sys/kernel/uevent_helper",
    "/sys/fs/cgroup/cgroup.procs",
    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    "/sys/fs/cgroup/release_agent",
    "/dev/kmsg",
    "/dev/mem",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/etc/passwd",
    "/bin/sh",
];

/// Directories where creating a file must fail.
const SENSITIVE_DIRS: &[&str] = &["/", "/etc", "/bin", "/usr", "/sbin", "/lib"];

/// Sockets that must not be reachable.
const SOCKETS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
];

const O_WRONLY: i32 = 0o1;
const O_CREAT_EXCL_WRONLY: i32 = 0o100 | 0o200 | 0o1;
const O_NONBLOCK: i32 = 0o4000;
const W_OK: i32 = 2;

extern "C" {
    fn open(path: *const i8, flags: i32, mode: u32) -> i32;
    fn close(fd: i32) -> i32;
    fn unlink(path: *const i8) -> i32;
    fn syscall(n: i64, ...) -> i64;
    fn access(path: *const i8, mode: i32) -> i32;
    fn getuid() -> u32;
    fn geteuid() -> u32;
}

/// x86_64 system call numbers.
mod nr {
    pub const UNSHARE: i64 = 272;
    pub const MOUNT: i64 = 165;
    pub const IO_URING_SETUP: i64 = 425;
    pub const USERFAULTFD: i64 = 323;
    pub const PERF_EVENT_OPEN: i64 = 298;
    pub const BPF: i64 = 321;
    pub const KEYCTL: i64 = 250;
    pub const ADD_KEY: i64 = 248;
    pub const PTRACE: i64 = 101;
    pub const SETUID: i64 = 105;
    pub const CHROOT: i64 = 161;
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

fn writable(path: &str) -> bool {
    let p = c(path);
    // SAFETY: valid C string; the descriptor is closed at once; nothing is
    // written.
    unsafe {
        let fd = open(p.as_ptr(), O_WRONLY | O_NONBLOCK, 0);
        if fd >= 0 {
            close(fd);
            return true;
        }
        access(p.as_ptr(), W_OK) == 0 && std::fs::metadata(path).is_ok_and(|m| m.is_dir())
    }
}

fn creatable(dir: &str) -> bool {
    let path = format!(
        "{}/.cordon-probe-{}",
        dir.trim_end_matches('/'),
        std::process::id()
    );
    let p = c(&path);
    // SAFETY: valid C string; the file is removed at once.
    unsafe {
        let fd = open(p.as_ptr(), O_CREAT_EXCL_WRONLY, 0o600);
        if fd >= 0 {
            close(fd);
            unlink(p.as_ptr());
            return true;
        }
    }
    false
}

fn socket_reachable(path: &str) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// Makes each dangerous call; true when it succeeded.
fn calls() -> Vec<(&'static str, bool)> {
    let tmpfs = c("tmpfs");
    let target = c("/tmp");
    // SAFETY: raw system calls with harmless arguments: a new user
    // namespace for this process only, a mount that the probe's exit
    // discards, a tiny io_uring, and so on; descriptors are closed.
    unsafe {
        let closing = |r: i64| {
            if r >= 0 {
                close(r as i32);
                true
            } else {
                false
            }
        };
        let mut params = [0u8; 120];
        let mut attr = [0u8; 128];
        attr[4..8].copy_from_slice(&128u32.to_ne_bytes());
        let mut bpf_attr = [0u8; 128];
        vec![
            ("unshare_user", syscall(nr::UNSHARE, 0x1000_0000i64) == 0),
            ("unshare_mount", syscall(nr::UNSHARE, 0x0002_0000i64) == 0),
            (
                "mount",
                syscall(
                    nr::MOUNT,
                    tmpfs.as_ptr(),
                    target.as_ptr(),
                    tmpfs.as_ptr(),
                    0i64,
                    0i64,
                ) == 0,
            ),
            (
                "io_uring_setup",
                closing(syscall(nr::IO_URING_SETUP, 1i64, params.as_mut_ptr())),
            ),
            ("userfaultfd", closing(syscall(nr::USERFAULTFD, 0i64))),
            (
                "perf_event_open",
                closing(syscall(
                    nr::PERF_EVENT_OPEN,
                    attr.as_mut_ptr(),
                    0i64,
                    -1i64,
                    -1i64,
                    0i64,
                )),
            ),
            (
                "bpf",
                closing(syscall(nr::BPF, 0i64, bpf_attr.as_mut_ptr(), 128i64)),
            ),
            ("keyctl", syscall(nr::KEYCTL, 0i64, -3i64, 0i64) >= 0),
            (
                "add_key",
                syscall(
                    nr::ADD_KEY,
                    c("user").as_ptr(),
                    c("probe").as_ptr(),
                    c("x").as_ptr(),
                    1i64,
                    -3i64,
                ) >= 0,
            ),
            (
                "ptrace_traceme",
                syscall(nr::PTRACE, 0i64, 0i64, 0i64, 0i64) == 0,
            ),
            ("setuid_root", syscall(nr::SETUID, 0i64) == 0),
            ("chroot", syscall(nr::CHROOT, c("/").as_ptr()) == 0),
        ]
    }
}

fn ns_inode(name: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{name}"))
        .map(|l| l.display().to_string())
        .unwrap_or_default()
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn main() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let caps: Vec<(&str, String)> = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
        .iter()
        .map(|k| (*k, status_field(&status, &format!("{k}:"))))
        .collect();
    let seccomp = status_field(&status, "Seccomp:");
    let nnp = status_field(&status, "NoNewPrivs:");
    // SAFETY: plain getters.
    let (uid, euid) = unsafe { (getuid(), geteuid()) };
    let mut vectors: Vec<String> = Vec::new();
    if uid == 0 || euid == 0 {
        vectors.push("runs as root".into());
    }
    for (k, v) in &caps {
        if u64::from_str_radix(v, 16).unwrap_or(1) != 0 {
            vectors.push(format!("{k} is {v}"));
        }
    }
    if seccomp != "2" {
        vectors.push(format!("seccomp mode {seccomp}, not a filter"));
    }
    if nnp != "1" {
        vectors.push("no_new_privs not set".into());
    }
    let mut writable_paths: Vec<String> = SENSITIVE
        .iter()
        .filter(|p| writable(p))
        .map(|p| p.to_string())
        .collect();
    writable_paths.extend(
        SENSITIVE_DIRS
            .iter()
            .filter(|d| creatable(d))
            .map(|d| format!("{d} (create)")),
    );
    for p in &writable_paths {
        vectors.push(format!("{p} is writable"));
    }
    let sockets: Vec<&str> = SOCKETS
        .iter()
        .copied()
        .filter(|s| socket_reachable(s))
        .collect();
    for s in &sockets {
        vectors.push(format!("{s} answers"));
    }
    let calls = calls();
    for (name, ok) in &calls {
        if *ok {
            vectors.push(format!("{name} succeeded"));
        }
    }
    let namespaces: Vec<(&str, String)> = ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"]
        .iter()
        .map(|n| (*n, ns_inode(n)))
        .collect();

    let obj = |pairs: Vec<String>| format!("{{{}}}", pairs.join(","));
    let list = |items: Vec<String>| format!("[{}]", items.join(","));
    let out = obj(vec![
        format!("\"uid\":{uid}"),
        format!("\"euid\":{euid}"),
        format!(
            "\"caps\":{}",
            obj(caps
                .iter()
                .map(|(k, v)| format!("{}:{}", json_str(k), json_str(v)))
                .collect())
        ),
        format!("\"seccomp\":{}", json_str(&seccomp)),
        format!("\"no_new_privs\":{}", nnp == "1"),
        format!(
            "\"writable\":{}",
            list(writable_paths.iter().map(|p| json_str(p)).collect())
        ),
        format!(
            "\"sockets\":{}",
            list(sockets.iter().map(|s| json_str(s)).collect())
        ),
        format!(
            "\"calls\":{}",
            obj(calls
                .iter()
                .map(|(k, v)| format!("{}:{v}", json_str(k)))
                .collect())
        ),
        format!(
            "\"namespaces\":{}",
            obj(namespaces
                .iter()
                .map(|(k, v)| format!("{}:{}", json_str(k), json_str(v)))
                .collect())
        ),
        format!(
            "\"escape_vectors\":{}",
            list(vectors.iter().map(|v| json_str(v)).collect())
        ),
    ]);
    println!("{out}");
}
